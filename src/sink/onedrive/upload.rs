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

use super::client::{BodySource, Failure, GraphClient, jitter, read_failure, read_json};
use super::error::{SERVICE, malformed, network_error};
use super::model::{DriveItem, UploadSession};
use super::quickxor::QuickXorHash;
use crate::error::{Error, Result};
use crate::model::Body;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE};
use reqwest::{Method, StatusCode};
use std::sync::Arc;
use url::Url;

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

// ---- simple upload ------------------------------------------------------------------------

struct TeeState {
    reader: Reader,
    kept: Vec<Bytes>,
    problem: Option<Error>,
}

impl TeeState {
    async fn pull(&mut self) -> Option<std::io::Result<Bytes>> {
        if self.problem.is_some() {
            return Some(Err(std::io::Error::other("the body failed")));
        }
        match self.reader.next_chunk().await {
            Ok(Some(chunk)) => {
                self.kept.push(chunk.clone());
                Some(Ok(chunk))
            }
            Ok(None) => None,
            Err(e) => {
                self.problem = Some(e);
                Some(Err(std::io::Error::other("the body failed")))
            }
        }
    }
}

/// Streams the body on the first attempt while keeping its chunks (at most the cutoff),
/// and resends the kept chunks on a retry, so the source is read exactly once.
struct Tee {
    state: Arc<tokio::sync::Mutex<TeeState>>,
    total: u64,
    first: bool,
}

impl BodySource for Tee {
    async fn next_body(&mut self) -> Result<Option<(reqwest::Body, u64)>> {
        if std::mem::take(&mut self.first) {
            let stream = futures::stream::unfold(self.state.clone(), |state| async move {
                let item = state.lock().await.pull().await;
                item.map(|item| (item, state))
            });
            return Ok(Some((reqwest::Body::wrap_stream(stream), self.total)));
        }
        let mut state = self.state.lock().await;
        // Finish reading what the failed attempt left unread, then resend everything.
        while state.pull().await.is_some_and(|r| r.is_ok()) {}
        if let Some(problem) = state.problem.take() {
            return Err(problem);
        }
        let chunks = state.kept.clone();
        let stream = futures::stream::iter(chunks.into_iter().map(Ok::<Bytes, std::io::Error>));
        Ok(Some((reqwest::Body::wrap_stream(stream), self.total)))
    }

    fn content_type(&self) -> Option<&'static str> {
        Some("application/octet-stream")
    }
}

/// One `PUT …:/{name}:/content?@microsoft.graph.conflictBehavior=fail`.
pub(crate) async fn simple(
    client: &GraphClient,
    parent_id: &str,
    name: &str,
    body: Body,
    what: &str,
) -> Result<Uploaded> {
    let total = body.len();
    let state = Arc::new(tokio::sync::Mutex::new(TeeState {
        reader: Reader::new(body, what),
        kept: Vec::new(),
        problem: None,
    }));
    let mut tee = Tee {
        state: state.clone(),
        total,
        first: true,
    };
    let url = client.simple_upload_url(parent_id, name);
    let result = client
        .call("upload a file", Method::PUT, &url, &mut tee)
        .await;
    let mut state = state.lock().await;
    if let Some(problem) = state.problem.take() {
        return Err(problem);
    }
    let response = match result {
        Ok(response) => response,
        Err(failure) => return Err(upload_failure(client, failure, total).await),
    };
    let item: DriveItem = read_json("upload a file", response).await?;
    // The request only carried `total` bytes; make sure the body had no more.
    let extra = match state.reader.next_chunk().await {
        Ok(None) => None,
        Ok(Some(_)) => Some(state.reader.integrity("more bytes".into())),
        Err(e) => Some(e),
    };
    if let Some(error) = extra {
        discard(client, &item).await;
        return Err(error);
    }
    Ok(Uploaded {
        item,
        len: total,
        hash: state.reader.hasher.to_base64(),
    })
}

// ---- upload session -----------------------------------------------------------------------

enum Fragment {
    /// The final fragment committed the file.
    Done(DriveItem),
    /// More is expected from this offset.
    Next(Option<u64>),
    /// Ask the session where it stands (416, or a 202 whose body was cut).
    AskStatus,
    /// Back off, then ask the session where it stands (5xx, throttling, dropped connection).
    Retry(Error),
    /// The session is gone (404, or a 401 on its pre-authenticated URL).
    Expired,
    /// Give up and delete the session.
    Fatal(Error),
}

/// An upload session: `createUploadSession`, then fragments in order.
pub(crate) async fn session(
    client: &GraphClient,
    fragment_size: u64,
    parent_id: &str,
    name: &str,
    body: Body,
    what: &str,
) -> Result<Uploaded> {
    let fragment = usize::try_from(fragment_size).unwrap_or(UNIT).max(UNIT);
    let mut reader = Reader::new(body, what);
    let total = reader.total;
    // Bytes from `base` not yet acknowledged; one fragment-sized allocation, reused.
    let mut unacked = BytesMut::with_capacity(fragment);
    let mut restarts = 0;
    'session: loop {
        let url = open_session(client, parent_id, name, total).await?;
        let mut base = 0u64;
        let mut attempt = 0u32;
        let mut started = tokio::time::Instant::now();
        loop {
            if let Err(e) = reader.fill(&mut unacked, fragment).await {
                delete_session(client, &url).await;
                return Err(e);
            }
            let is_last = base + unacked.len() as u64 == total;
            let n = if is_last {
                unacked.len()
            } else {
                unacked.len() / UNIT * UNIT
            };
            let frag = unacked.split_to(n).freeze();
            let outcome = put_fragment(client, &url, base, &frag, total).await;
            let ack = match outcome {
                Fragment::Done(item) => {
                    return Ok(Uploaded {
                        item,
                        len: total,
                        hash: reader.hasher.to_base64(),
                    });
                }
                Fragment::Next(next) => {
                    attempt = 0;
                    started = tokio::time::Instant::now();
                    Ok(next.unwrap_or(base + n as u64))
                }
                Fragment::Fatal(error) => {
                    delete_session(client, &url).await;
                    return Err(finish_error(client, error, total).await);
                }
                Fragment::Expired => Err(()),
                Fragment::AskStatus | Fragment::Retry(_) => {
                    attempt += 1;
                    let give_up = match outcome {
                        Fragment::Retry(error) => {
                            let jitter = jitter(started, attempt);
                            match client.retry.delay_after(
                                attempt,
                                &error,
                                started.elapsed(),
                                jitter,
                            ) {
                                Some(delay) => {
                                    tokio::time::sleep(delay).await;
                                    None
                                }
                                None => Some(error),
                            }
                        }
                        _ if attempt >= client.retry.max_attempts => Some(malformed(
                            "upload session",
                            "the session keeps refusing the range it asked for",
                        )),
                        _ => None,
                    };
                    if let Some(error) = give_up {
                        delete_session(client, &url).await;
                        return Err(error);
                    }
                    session_status(client, &url)
                        .await
                        .map(|next| next.unwrap_or(base))
                }
            };
            match ack {
                Ok(ack) if ack > base + n as u64 => {
                    delete_session(client, &url).await;
                    return Err(malformed(
                        "upload session",
                        "the session claims bytes that were never sent",
                    ));
                }
                Ok(ack) if ack >= base => {
                    let rel = usize::try_from(ack - base).unwrap_or(n);
                    if rel < n {
                        // Partly or not at all received: what is missing goes first again.
                        let mut merged =
                            BytesMut::with_capacity(fragment.max(n - rel + unacked.len()));
                        merged.extend_from_slice(&frag[rel..]);
                        merged.extend_from_slice(&unacked);
                        unacked = merged;
                    }
                    drop(frag);
                    base = ack;
                    // Reclaims the one allocation once the sent fragment is released.
                    unacked.reserve(fragment.saturating_sub(unacked.len()));
                }
                // The session lost bytes we no longer hold, or expired (a 404: already gone).
                Ok(_) | Err(()) => {
                    if ack.is_ok() {
                        delete_session(client, &url).await;
                    }
                    if base == 0 && restarts < MAX_RESTARTS {
                        // Every byte read is still held: start over in a new session.
                        restarts += 1;
                        let mut merged = BytesMut::with_capacity(fragment.max(n + unacked.len()));
                        merged.extend_from_slice(&frag);
                        merged.extend_from_slice(&unacked);
                        unacked = merged;
                        tracing::debug!(restarts, "upload session expired; restarting it");
                        continue 'session;
                    }
                    return Err(Error::Transient {
                        service: SERVICE,
                        operation: "upload a file".into(),
                        message: format!(
                            "the upload session expired after {base} of {total} bytes; \
                             the upload starts over"
                        ),
                        retry_after: None,
                    });
                }
            }
        }
    }
}

async fn open_session(
    client: &GraphClient,
    parent_id: &str,
    name: &str,
    total: u64,
) -> Result<Url> {
    let session: UploadSession = match client.create_upload_session(parent_id, name, total).await {
        Ok(session) => session,
        Err(failure) => return Err(upload_failure(client, failure, total).await),
    };
    let raw = session
        .upload_url
        .ok_or_else(|| malformed("uploadUrl", "missing"))?;
    let url = Url::parse(&raw).map_err(|e| malformed("uploadUrl", e.to_string()))?;
    super::builder::check_scheme(&url).map_err(|why| malformed("uploadUrl", why))?;
    Ok(url)
}

async fn put_fragment(
    client: &GraphClient,
    url: &Url,
    base: u64,
    frag: &Bytes,
    total: u64,
) -> Fragment {
    let end = base + frag.len() as u64;
    let request = client
        .upload_request(Method::PUT, url)
        .await
        .header(
            CONTENT_RANGE,
            format!("bytes {base}-{}/{total}", end.saturating_sub(1)),
        )
        .header(CONTENT_LENGTH, frag.len())
        .body(frag.clone());
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return Fragment::Retry(network_error("upload a fragment", &e)),
    };
    match response.status().as_u16() {
        200 | 201 => match read_json::<DriveItem>("upload a fragment", response).await {
            Ok(item) => Fragment::Done(item),
            Err(e) => Fragment::Fatal(e),
        },
        202 => match read_json::<UploadSession>("upload a fragment", response).await {
            Ok(status) => Fragment::Next(first_expected(&status.next_expected_ranges)),
            Err(_) => Fragment::AskStatus,
        },
        // Bytes the service already has, or a range it did not expect (onedrive-graph.md §3).
        416 => Fragment::AskStatus,
        // The session is gone: start the whole upload over (onedrive-graph.md §3).
        404 | 401 => Fragment::Expired,
        _ => {
            let failure = read_failure(response).await;
            let status = failure.status;
            if matches!(status.as_u16(), 429 | 503 | 509)
                && let Some(wait) = failure.retry_after
            {
                client
                    .throttle
                    .pause_for(wait.min(client.retry.max_retry_after));
            }
            let error = failure.into_error("upload a fragment", client.app_folder);
            if status.is_server_error() && status != StatusCode::INSUFFICIENT_STORAGE
                || status == StatusCode::TOO_MANY_REQUESTS
            {
                Fragment::Retry(error)
            } else {
                Fragment::Fatal(error)
            }
        }
    }
}

/// `GET {uploadUrl}`: where the session stands. `Err(())` when it expired.
async fn session_status(client: &GraphClient, url: &Url) -> std::result::Result<Option<u64>, ()> {
    let response = match client.upload_request(Method::GET, url).await.send().await {
        Ok(response) => response,
        Err(_) => return Ok(None),
    };
    match response.status().as_u16() {
        200 => match read_json::<UploadSession>("read an upload session", response).await {
            Ok(status) => Ok(first_expected(&status.next_expected_ranges)),
            Err(_) => Ok(None),
        },
        404 | 401 => Err(()),
        _ => Ok(None),
    }
}

/// `DELETE {uploadUrl}`; best effort (expired sessions are cleaned up lazily anyway).
async fn delete_session(client: &GraphClient, url: &Url) {
    if let Err(e) = client
        .upload_request(Method::DELETE, url)
        .await
        .send()
        .await
    {
        tracing::debug!(error = %network_error("cancel an upload session", &e), "could not cancel the upload session");
    }
}

/// The start of the first missing range (`"12345-"` or `"12345-67890"`). The list may be
/// partial, so only its first entry is used, never as a fragment size (onedrive-graph.md §3).
fn first_expected(ranges: &[String]) -> Option<u64> {
    let first = ranges.first()?;
    first.split('-').next()?.trim().parse().ok()
}

/// Maps a failed request of an upload, filling in the sizes of a full drive.
async fn upload_failure(client: &GraphClient, failure: Failure, total: u64) -> Error {
    let error = failure.into_error("upload a file", client.app_folder);
    finish_error(client, error, total).await
}

/// A full drive (507 `quotaLimitReached`/`insufficientStorage`, onedrive-graph.md §5) reports
/// the file's size and, when the drive says, the space left.
async fn finish_error(client: &GraphClient, error: Error, total: u64) -> Error {
    match error {
        Error::QuotaExceeded { .. } => {
            let remaining = match client.get_drive().await {
                Ok(drive) => drive.quota.and_then(|q| q.remaining).unwrap_or(0),
                Err(_) => 0,
            };
            Error::QuotaExceeded {
                needed: total,
                remaining,
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_expected_range() {
        assert_eq!(first_expected(&["327680-".into()]), Some(327_680));
        assert_eq!(first_expected(&["10-20".into(), "30-".into()]), Some(10));
        assert_eq!(first_expected(&[]), None);
        assert_eq!(first_expected(&["x-".into()]), None);
    }
}
