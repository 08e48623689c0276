//! Uploads: files up to the cutoff (and empty files) in one `PUT`, larger ones through an
//! upload session sent in fragments (onedrive-graph.md §3).
//!
//! # Guarantees
//! - Nothing is ever overwritten: both paths set conflictBehavior `fail`, so a taken name is
//!   [`Error::AlreadyExists`].
//! - Each byte is read from the body once and hashed (QuickXorHash) as it is read; the
//!   item Graph returns must have the announced size and, when Graph reports one, the same
//!   hash, or it is deleted (it is ours) and [`Error::Integrity`] is returned for a retry.
//! - Memory per upload is bounded: a simple upload keeps its bytes (at most the cutoff) until
//!   acknowledged, so a retry can resend them; a session keeps one fragment, read into one
//!   reusable buffer, until the service acknowledges it.
//! - A session that fails for good is deleted, so nothing half-written is left.
//!
//! # Session expiry (a 404 on the upload URL)
//! Microsoft says to start the whole upload over (onedrive-graph.md §3 "Best practice").
//! When every byte read so far is still held (nothing acknowledged has been dropped yet),
//! a new session is opened and the upload restarts from byte 0 in place. Otherwise the bytes
//! are gone, so a retryable [`Error::Transient`] is returned and the caller re-opens the
//! source and calls `write_file` again.

pub(crate) mod session;
mod simple;

pub(crate) use session::session;
pub(crate) use simple::{simple, simple_replace};

use super::model::DriveItem;
use super::quickxor::QuickXorHash;
use super::request::{Failure, GraphClient};
use crate::error::{Error, Result};
use crate::model::Body;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;

/// Every fragment but the last is a multiple of this (onedrive-graph.md §3).
const UNIT: usize = super::builder::FRAGMENT_UNIT as usize;
/// In-place restarts of an expired session before giving the upload back to the caller.
const MAX_RESTARTS: u32 = 2;

/// A finished upload: the item, and what was sent.
pub(crate) struct Uploaded {
    pub item: DriveItem,
    pub len: u64,
    pub hash: String,
}

/// The bytes of a body, read once, hashed as read, checked against the announced length.
struct Reader {
    stream: BoxStream<'static, Result<Bytes>>,
    pending: Bytes,
    read: u64,
    total: u64,
    hasher: QuickXorHash,
    what: String,
}

impl Reader {
    fn new(body: Body, what: &str) -> Self {
        Self {
            total: body.len(),
            stream: body.into_stream(),
            pending: Bytes::new(),
            read: 0,
            hasher: QuickXorHash::new(),
            what: what.to_owned(),
        }
    }

    fn integrity(&self, actual: String) -> Error {
        Error::Integrity {
            what: self.what.clone(),
            expected: format!("{} bytes", self.total),
            actual,
        }
    }

    /// The next chunk of the body, hashed; `None` once `total` bytes were read and the
    /// stream has ended (a longer or shorter stream is an Integrity error).
    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            if !self.pending.is_empty() {
                return Ok(Some(std::mem::take(&mut self.pending)));
            }
            match self.stream.next().await {
                Some(Ok(chunk)) if chunk.is_empty() => continue,
                Some(Ok(chunk)) => {
                    let len = chunk.len() as u64;
                    if self.read + len > self.total {
                        return Err(self.integrity("more bytes".into()));
                    }
                    self.read += len;
                    self.hasher.update(&chunk);
                    return Ok(Some(chunk));
                }
                Some(Err(e)) => return Err(e),
                None if self.read < self.total => {
                    return Err(self.integrity(format!("{} bytes", self.read)));
                }
                None => return Ok(None),
            }
        }
    }

    /// Tops `buf` up to `limit` bytes (fewer only at the end of the body). Once the last
    /// byte is in, checks that the stream has truly ended.
    async fn fill(&mut self, buf: &mut BytesMut, limit: usize) -> Result<()> {
        while buf.len() < limit {
            let Some(mut chunk) = self.next_chunk().await? else {
                return Ok(());
            };
            let room = limit - buf.len();
            if chunk.len() > room {
                self.pending = chunk.split_off(room);
            }
            buf.extend_from_slice(&chunk);
        }
        if self.read == self.total && self.pending.is_empty() {
            // Surfaces a too-long body before the last fragment commits the file.
            if let Some(extra) = self.next_chunk().await? {
                self.pending = extra;
            }
        }
        Ok(())
    }
}

/// Maps a failed request of an upload, filling in the sizes of a full drive.
async fn upload_failure(client: &GraphClient, failure: Failure, total: u64) -> Error {
    let error = failure.into_error("upload a file", client.app_folder);
    finish_error(client, error, total).await
}

/// A full drive (507 `quotaLimitReached`/`insufficientStorage`, onedrive-graph.md §5) reports
/// how much more the file needs than the space the drive says is left.
async fn finish_error(client: &GraphClient, error: Error, total: u64) -> Error {
    match error {
        Error::QuotaExceeded { .. } => {
            let remaining = match client.get_drive().await {
                Ok(drive) => drive.quota.and_then(|q| q.remaining).unwrap_or(0),
                Err(_) => 0,
            };
            Error::quota_exceeded(total, remaining)
        }
        other => other,
    }
}

/// Checks the created item against what was sent; a mismatch deletes it (it is ours) and
/// is an [`Error::Integrity`], so a retry can write it again.
pub(crate) async fn verify(client: &GraphClient, uploaded: &Uploaded, what: &str) -> Result<()> {
    let item = &uploaded.item;
    let mismatch = if item.size != Some(uploaded.len) {
        Some((
            format!("{} bytes", uploaded.len),
            item.size
                .map_or_else(|| "no size".to_owned(), |s| format!("{s} bytes")),
        ))
    } else {
        // quickXorHash may be missing on fresh items (onedrive-graph.md §3, §12.7).
        item.quick_xor_hash()
            .filter(|theirs| *theirs != uploaded.hash)
            .map(|theirs| {
                (
                    format!("quickXorHash {}", uploaded.hash),
                    format!("quickXorHash {theirs}"),
                )
            })
    };
    match mismatch {
        None => Ok(()),
        Some((expected, actual)) => {
            discard(client, item).await;
            Err(Error::Integrity {
                what: what.to_owned(),
                expected,
                actual,
            })
        }
    }
}

/// Deletes an item this upload just created.
async fn discard(client: &GraphClient, item: &DriveItem) {
    if let Some(id) = &item.id
        && let Err(e) = client.delete_item(id).await
    {
        tracing::warn!(error = %e, "could not delete a bad upload");
    }
}
