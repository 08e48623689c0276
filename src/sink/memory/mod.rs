//! An archive sink in memory that behaves like a OneDrive app folder: stable item
//! ids that are never reused, case-insensitive names, OneDrive's naming rules, a
//! change feed, a quota. User actions (deleting a folder, renaming a file, …) go
//! through helpers beside the trait and show up in the change feed.

mod drive;
#[cfg(test)]
mod feed_tests;
#[cfg(test)]
mod tests;
mod user;

use super::{ArchiveSink, Quota, SinkCapabilities, names};
use crate::error::{Error, Result};
use crate::model::{
    ArchivePath, Body, EntryKind, ScanCursor, ScanUpdate, SinkChange, SinkEntry, SinkItemId,
};
use async_trait::async_trait;
use bytes::Bytes;
use drive::{Change, Drive};
use futures::stream::{self, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

const SERVICE: &str = "memory-sink";

/// Tells apart the cursors of different sinks in one process.
static INSTANCES: AtomicU64 = AtomicU64::new(0);

/// An [`ArchiveSink`] kept in memory. Clones share the same drive.
///
/// By default it claims stable ids, a change feed and a quota, with OneDrive's name
/// limits. [`without_ids`](Self::without_ids), [`without_delta`](Self::without_delta)
/// and [`without_quota`](Self::without_quota) emulate weaker storages; the
/// capabilities it reports always match what it does.
///
/// ```
/// # use receipt_sync::sink::{ArchiveSink, InMemorySink};
/// # use receipt_sync::model::{ArchivePath, Body};
/// # futures::executor::block_on(async {
/// let sink = InMemorySink::new();
/// sink.create_folder(&ArchivePath::parse("Main").unwrap()).await.unwrap();
/// let path = ArchivePath::parse("Main/r.pdf").unwrap();
/// sink.write_file(&path, Body::from_bytes("%PDF")).await.unwrap();
/// assert_eq!(sink.read("main/R.PDF").as_deref(), Some(&b"%PDF"[..]));
/// sink.delete_folder_as_user("Main").unwrap();
/// assert!(!sink.exists("Main/r.pdf"));
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct InMemorySink {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    /// Prefix of every cursor this sink issues.
    instance: String,
    writes: AtomicU64,
    scans: AtomicU64,
}

#[derive(Debug)]
struct State {
    drive: Drive,
    caps: SinkCapabilities,
    quota_total: u64,
    /// Part of every cursor; bumped to expire them all (an expired delta link).
    epoch: u64,
}

impl Default for InMemorySink {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemorySink {
    /// The quota a new sink starts with: OneDrive's free plan, 5 GB.
    pub const DEFAULT_QUOTA: u64 = 5_000_000_000;

    /// An empty drive with stable ids, a change feed and [`Self::DEFAULT_QUOTA`].
    pub fn new() -> Self {
        let caps = SinkCapabilities {
            stable_ids: true,
            delta: true,
            quota: true,
            replace: true,
            ..SinkCapabilities::minimal()
        };
        let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    drive: Drive::default(),
                    caps,
                    quota_total: Self::DEFAULT_QUOTA,
                    epoch: 0,
                }),
                instance: format!("mem{instance}:"),
                writes: AtomicU64::new(0),
                scans: AtomicU64::new(0),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Item ids become paths, so a rename looks like a new item; the change feed goes
    /// too (a feed keyed by paths would not say what moved). Meant at construction.
    pub fn without_ids(self) -> Self {
        {
            let mut state = self.state();
            state.caps.stable_ids = false;
            state.caps.delta = false;
        }
        self
    }

    /// Every scan is a full listing. Meant at construction.
    pub fn without_delta(self) -> Self {
        self.state().caps.delta = false;
        self
    }

    /// [`ArchiveSink::quota`] says nothing; the quota is still enforced, like a disk
    /// that fills up without warning. Meant at construction.
    pub fn without_quota(self) -> Self {
        self.state().caps.quota = false;
        self
    }

    /// Sets the drive's size in bytes; writes that do not fit fail with
    /// [`Error::QuotaExceeded`].
    pub fn with_quota(self, total: u64) -> Self {
        self.set_quota(total);
        self
    }

    /// Changes the drive's size in bytes, at any time.
    pub fn set_quota(&self, total: u64) {
        self.state().quota_total = total;
    }

    /// Forgets every cursor issued so far, as when a delta link expires
    /// (onedrive-graph.md §4 "Resync"): the next scan from one is a full listing.
    pub fn expire_cursors(&self) {
        self.state().epoch += 1;
    }

    /// Files written, folders created and folders renamed through [`ArchiveSink`].
    pub fn writes(&self) -> u64 {
        self.inner.writes.load(Ordering::SeqCst)
    }

    /// How many times [`ArchiveSink::scan`] was called.
    pub fn scans(&self) -> u64 {
        self.inner.scans.load(Ordering::SeqCst)
    }

    fn cursor(&self, state: &State) -> ScanCursor {
        let (epoch, seq) = (state.epoch, state.drive.seq());
        ScanCursor::new(format!("{}{epoch}:{seq}", self.inner.instance))
    }

    /// The sequence number in `cursor`, when this sink issued it and it has not expired.
    fn parse_cursor(&self, state: &State, cursor: &ScanCursor) -> Option<u64> {
        let (epoch, seq) = cursor
            .expose()
            .strip_prefix(&self.inner.instance)?
            .split_once(':')?;
        let seq: u64 = seq.parse().ok()?;
        (epoch.parse() == Ok(state.epoch) && seq <= state.drive.seq()).then_some(seq)
    }
}

/// Reads a whole body, checking its announced length as [`Body::collect`] does. A body
/// that arrives in one piece is kept as it came, its buffer shared with the sender
/// rather than copied: a drive full of small files then holds no second copy of them.
async fn receive(body: Body, what: &str) -> Result<Bytes> {
    let len = body.len();
    let mut stream = body.into_stream();
    let (mut chunks, mut received) = (Vec::new(), 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        received += chunk.len() as u64;
        chunks.push(chunk);
        if received > len {
            break;
        }
    }
    if let [whole] = &chunks[..]
        && received == len
    {
        return Ok(whole.clone());
    }
    let pieces = Body::new(len, stream::iter(chunks.into_iter().map(Ok)).boxed());
    Ok(Bytes::from(pieces.collect(what).await?))
}

fn stable_id(id: u64) -> SinkItemId {
    SinkItemId::new(format!("item-{id}"))
}

impl State {
    fn item_id(&self, id: u64) -> Option<SinkItemId> {
        if self.caps.stable_ids {
            Some(stable_id(id))
        } else {
            self.drive.path_of(id).map(|p| SinkItemId::new(p.as_str()))
        }
    }

    fn find(&self, id: &SinkItemId) -> Option<u64> {
        if self.caps.stable_ids {
            let n: u64 = id.as_str().strip_prefix("item-")?.parse().ok()?;
            self.drive.node(n).map(|_| n)
        } else {
            self.drive.resolve(&ArchivePath::parse(id.as_str()).ok()?)
        }
    }

    fn entry(&self, id: u64) -> Option<SinkEntry> {
        let node = self.drive.node(id)?;
        Some(SinkEntry {
            id: self.item_id(id)?,
            parent: match node.parent {
                Some(p) => Some(self.item_id(p)?),
                None => None,
            },
            name: node.name.to_string(),
            kind: match &node.bytes {
                None => EntryKind::Folder,
                Some(b) => EntryKind::File {
                    size: b.len() as u64,
                },
            },
        })
    }

    fn entry_or_gone(&self, id: u64, path: &ArchivePath) -> Result<SinkEntry> {
        self.entry(id).ok_or_else(|| Error::NotFound {
            what: path.to_string(),
        })
    }

    /// The folder holding `path`, which must exist.
    fn parent_of(&self, path: &ArchivePath) -> Result<Option<u64>> {
        let parent = path.parent();
        self.drive
            .folder(parent.as_ref())
            .map_err(|()| Error::NotFound {
                what: format!("folder {}", parent.as_ref().map_or("", ArchivePath::as_str)),
            })
    }

    /// Checks that a file of `len` bytes can go at `path`.
    fn check_write(&self, path: &ArchivePath, len: u64) -> Result<Option<u64>> {
        let parent = self.parent_of(path)?;
        if self.drive.child(parent, path.file_name()).is_some() {
            return Err(Error::AlreadyExists {
                what: path.to_string(),
            });
        }
        let remaining = self.quota_total.saturating_sub(self.drive.used());
        if len > remaining {
            return Err(Error::quota_exceeded(len, remaining));
        }
        Ok(parent)
    }
}

#[async_trait]
impl ArchiveSink for InMemorySink {
    fn capabilities(&self) -> SinkCapabilities {
        self.state().caps
    }

    async fn scan(&self, cursor: Option<&ScanCursor>) -> Result<ScanUpdate> {
        self.inner.scans.fetch_add(1, Ordering::SeqCst);
        let state = self.state();
        let now = self.cursor(&state);
        let since = cursor
            .filter(|_| state.caps.delta)
            .and_then(|c| self.parse_cursor(&state, c));
        if let Some(since) = since {
            let changes = state
                .drive
                .changes_since(since)
                .into_iter()
                .filter_map(|change| match change {
                    Change::Upsert(id) => state.entry(id).map(SinkChange::Upsert),
                    // The feed exists only with stable ids, so a gone item's id needs no path.
                    Change::Removed(id) => Some(SinkChange::Removed(stable_id(id))),
                })
                .collect();
            return Ok(ScanUpdate::Changes {
                changes,
                cursor: now,
            });
        }
        let entries = state
            .drive
            .walk()
            .into_iter()
            .filter_map(|id| state.entry(id))
            .collect();
        Ok(ScanUpdate::Full {
            entries,
            cursor: state.caps.delta.then_some(now),
        })
    }

    async fn create_folder(&self, path: &ArchivePath) -> Result<SinkEntry> {
        let mut state = self.state();
        names::check_path(path, &state.caps, SERVICE, "create folder")?;
        let parent = state.parent_of(path)?;
        if let Some(existing) = state.drive.child(parent, path.file_name()) {
            return match state.drive.node(existing) {
                Some(node) if node.is_folder() => state.entry_or_gone(existing, path),
                _ => Err(Error::AlreadyExists {
                    what: format!("a file at {path}"),
                }),
            };
        }
        let id = state.drive.insert(parent, path.file_name(), None);
        self.inner.writes.fetch_add(1, Ordering::SeqCst);
        state.entry_or_gone(id, path)
    }

    async fn write_file(&self, path: &ArchivePath, body: Body) -> Result<SinkEntry> {
        let len = body.len();
        {
            let state = self.state();
            names::check_path(path, &state.caps, SERVICE, "write")?;
            state.check_write(path, len)?;
        }
        // Read the body outside the lock; nothing is stored unless all of it arrives.
        let bytes = receive(body, path.as_str()).await?;
        let mut state = self.state();
        // Check again: another writer may have taken the name or the space meanwhile.
        let parent = state.check_write(path, len)?;
        let id = state.drive.insert(parent, path.file_name(), Some(bytes));
        self.inner.writes.fetch_add(1, Ordering::SeqCst);
        state.entry_or_gone(id, path)
    }

    async fn replace_file(
        &self,
        id: &SinkItemId,
        path: &ArchivePath,
        body: Body,
    ) -> Result<SinkEntry> {
        let gone = || Error::NotFound {
            what: format!("file {id} at {path}"),
        };
        let bytes = receive(body, path.as_str()).await?;
        let mut state = self.state();
        let node = state.find(id).ok_or_else(gone)?;
        let in_place = state.drive.node(node).is_some_and(|n| !n.is_folder())
            && state.drive.resolve(path) == Some(node);
        if !in_place {
            return Err(gone());
        }
        state.drive.replace_bytes(node, bytes);
        self.inner.writes.fetch_add(1, Ordering::SeqCst);
        state.entry_or_gone(node, path)
    }

    async fn rename_folder(
        &self,
        id: &SinkItemId,
        path: &ArchivePath,
        new_name: &str,
    ) -> Result<SinkEntry> {
        let mut state = self.state();
        let target = names::renamed(path, new_name, SERVICE)?;
        names::check_path(&target, &state.caps, SERVICE, "rename folder to")?;
        let gone = || Error::NotFound {
            what: format!("folder {id} at {path}"),
        };
        let node_id = state.find(id).ok_or_else(gone)?;
        let node = state.drive.node(node_id).ok_or_else(gone)?;
        if !node.is_folder() {
            return Err(gone());
        }
        let parent = node.parent;
        if state
            .drive
            .child(parent, new_name)
            .is_some_and(|other| other != node_id)
        {
            return Err(Error::AlreadyExists {
                what: target.to_string(),
            });
        }
        state.drive.relocate(node_id, parent, new_name);
        self.inner.writes.fetch_add(1, Ordering::SeqCst);
        state.entry_or_gone(node_id, &target)
    }

    async fn quota(&self) -> Result<Option<Quota>> {
        let state = self.state();
        if !state.caps.quota {
            return Ok(None);
        }
        let used = state.drive.used();
        Ok(Some(Quota {
            total: state.quota_total,
            used,
            remaining: state.quota_total.saturating_sub(used),
        }))
    }
}
