//! Where receipts go: the [`ArchiveSink`] trait and its implementations.

use crate::error::Result;
use crate::model::{ArchivePath, Body, ScanCursor, ScanUpdate, SinkEntry, SinkItemId};
use async_trait::async_trait;
use std::fmt;

mod local;
mod memory;
mod names;
pub mod onedrive;

pub use local::LocalDirSink;
pub use memory::InMemorySink;
pub use onedrive::OneDriveSink;

/// What a sink can do, as data: the planner and the conformance suite read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkCapabilities {
    /// Item ids survive renames and moves. Without them an item's id is its path,
    /// so a renamed folder looks deleted.
    pub stable_ids: bool,
    /// [`ArchiveSink::scan`] can report only the changes since a cursor.
    pub delta: bool,
    /// [`ArchiveSink::quota`] reports free space.
    pub quota: bool,
    /// Large files are uploaded in resumable pieces.
    pub resumable_upload: bool,
    /// Names that differ only in case name the same item.
    pub case_insensitive: bool,
    /// The longest item name accepted, in UTF-16 code units.
    pub max_name_len: usize,
    /// The longest path accepted from the storage's own root, in UTF-16 code units,
    /// prefix included.
    pub max_path_len: usize,
    /// The length of the path from the storage's own root to the archive root,
    /// with its trailing `/` (for example `Apps/receipt-sync/` on OneDrive).
    pub root_prefix_len: usize,
    /// [`ArchiveSink::replace_file`] replaces the sync's own small files (the
    /// accountant's index). Without it an index is written once and not updated.
    pub replace: bool,
}

impl SinkCapabilities {
    /// The most conservative capabilities: no ids, no delta, no quota,
    /// OneDrive's name limits. Sinks start from here and switch on what they have.
    pub const fn minimal() -> Self {
        Self {
            stable_ids: false,
            delta: false,
            quota: false,
            resumable_upload: false,
            case_insensitive: true,
            max_name_len: 255,
            max_path_len: 400,
            root_prefix_len: 0,
            replace: false,
        }
    }
}

/// How much space the storage has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Bytes in total.
    pub total: u64,
    /// Bytes used.
    pub used: u64,
    /// Bytes that can still be written.
    pub remaining: u64,
}

/// A storage the archive lives in.
///
/// # Contract
/// Paths are relative to the archive root, which the sink owns; nothing outside
/// it is ever read, written, renamed or deleted.
/// - [`scan`](Self::scan) with `None` lists everything under the root
///   ([`ScanUpdate::Full`]); with a cursor it may answer [`ScanUpdate::Changes`]
///   (only when [`SinkCapabilities::delta`]) or fall back to a full listing (for
///   example when the cursor expired). Entries never include the root itself.
/// - [`create_folder`](Self::create_folder) creates the folder at `path`, whose parent
///   must exist ([`crate::Error::NotFound`] otherwise). It is idempotent: if a folder
///   already sits there it is returned; if a file does, [`crate::Error::AlreadyExists`].
/// - [`write_file`](Self::write_file) creates a file from exactly `body.len()` bytes. It
///   **never overwrites**: if anything sits at `path` it fails with
///   [`crate::Error::AlreadyExists`] and changes nothing. It is atomic: either the whole
///   file appears or nothing does (a short or long body is [`crate::Error::Integrity`]).
///   The parent folder must exist.
/// - [`rename_folder`](Self::rename_folder) renames, in place, the folder `id` currently at
///   `path`; [`crate::Error::NotFound`] if it is gone, [`crate::Error::AlreadyExists`] if
///   the new name is taken.
/// - [`replace_file`](Self::replace_file) replaces the content of the file `id`, which
///   the caller's last scan showed at `path`, with exactly `body.len()` bytes,
///   atomically; it never creates a file: [`crate::Error::NotFound`] when the file is
///   gone (nothing is written).
///   The sync calls it only for a small file it wrote itself and knows unchanged (the
///   accountant's index); a sink that cannot replace answers
///   [`crate::Error::Rejected`], the default.
/// - [`quota`](Self::quota) is `None` when the storage does not say.
/// - Every method may be called concurrently; none retries a request forever.
#[async_trait]
pub trait ArchiveSink: Send + Sync + fmt::Debug {
    /// What this sink can do.
    fn capabilities(&self) -> SinkCapabilities;

    /// What is in the archive: everything, or what changed since `cursor`.
    async fn scan(&self, cursor: Option<&ScanCursor>) -> Result<ScanUpdate>;

    /// Creates (or finds) the folder at `path`.
    async fn create_folder(&self, path: &ArchivePath) -> Result<SinkEntry>;

    /// Creates the file at `path` from `body`.
    async fn write_file(&self, path: &ArchivePath, body: Body) -> Result<SinkEntry>;

    /// Renames the folder `id`, now at `path`, to `new_name`.
    async fn rename_folder(
        &self,
        id: &SinkItemId,
        path: &ArchivePath,
        new_name: &str,
    ) -> Result<SinkEntry>;

    /// The storage's free space, when it reports it.
    async fn quota(&self) -> Result<Option<Quota>>;

    /// Replaces the content of the sync's own file `id`, now at `path`, with `body`.
    async fn replace_file(
        &self,
        id: &SinkItemId,
        path: &ArchivePath,
        body: Body,
    ) -> Result<SinkEntry> {
        let _ = (id, body);
        Err(crate::Error::Rejected {
            service: "sink",
            operation: format!("replace {path}"),
            message: "this sink cannot replace a file; the index stays as it was".into(),
        })
    }
}

/// A shared sink is a sink: wrappers (fault injection, counting) can take `Arc<dyn ArchiveSink>`.
#[async_trait]
impl<T: ArchiveSink + ?Sized> ArchiveSink for std::sync::Arc<T> {
    fn capabilities(&self) -> SinkCapabilities {
        (**self).capabilities()
    }

    async fn scan(&self, cursor: Option<&ScanCursor>) -> Result<ScanUpdate> {
        (**self).scan(cursor).await
    }

    async fn create_folder(&self, path: &ArchivePath) -> Result<SinkEntry> {
        (**self).create_folder(path).await
    }

    async fn write_file(&self, path: &ArchivePath, body: Body) -> Result<SinkEntry> {
        (**self).write_file(path, body).await
    }

    async fn rename_folder(
        &self,
        id: &SinkItemId,
        path: &ArchivePath,
        new_name: &str,
    ) -> Result<SinkEntry> {
        (**self).rename_folder(id, path, new_name).await
    }

    async fn quota(&self) -> Result<Option<Quota>> {
        (**self).quota().await
    }

    async fn replace_file(
        &self,
        id: &SinkItemId,
        path: &ArchivePath,
        body: Body,
    ) -> Result<SinkEntry> {
        (**self).replace_file(id, path, body).await
    }
}
