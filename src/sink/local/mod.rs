//! The archive in a folder on disk.
//!
//! # Guarantees
//! 1. Nothing is written, renamed or deleted outside the root: paths are built from
//!    checked [`ArchivePath`]s (no `..`), and every folder on the way is checked to be
//!    a real folder, never a symbolic link. A link planted inside the root, to a file
//!    or a folder, is not listed by [`scan`](ArchiveSink::scan) and not written
//!    through: writing below it fails with [`Error::Rejected`].
//! 2. A file appears whole or not at all: its bytes are streamed (chunk by chunk, so
//!    memory stays bounded) into `.receipt-sync-<random>.tmp` in the root, fsynced,
//!    then hard-linked to its name, which fails rather than replace anything that is
//!    there; the temporary name is then removed and the file's folder fsynced. A
//!    failure at any step removes the temporary file; one a killed process left behind
//!    is removed by a scan once it is a day old.
//! 3. Blocking calls run on tokio's blocking pool. A change handed to the pool runs to
//!    its end even when the caller's future is dropped (a cancelled sync), so a scan
//!    first waits for every such change of this sink and its clones: it never misses a
//!    file that would land after it and be copied a second time.
//!
//! # Assumptions
//! - Nobody swaps a folder for a symbolic link between the check and the write (std
//!   has no `openat`; the window is a few system calls wide).
//! - The archive sits on one file system that supports hard links.
//! - Names follow OneDrive's rules (so the archive can move there unchanged), and are
//!   at most 255 bytes long, the usual limit of Linux file systems.

mod fs;

use super::{ArchiveSink, Quota, SinkCapabilities, names};
use crate::error::{Error, Result};
use crate::fs_util::{blocking, sync_dir};
use crate::model::{ArchivePath, Body, EntryKind, ScanCursor, ScanUpdate, SinkEntry, SinkItemId};
use async_trait::async_trait;
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::RwLock;

const SERVICE: &str = "local";

/// Linux file systems limit a name to 255 bytes, whatever its UTF-16 length.
const MAX_NAME_BYTES: usize = 255;

/// An [`ArchiveSink`] in a folder on disk; see the module docs for its guarantees.
///
/// Item ids are paths relative to the root, so a renamed folder has a new id.
#[derive(Clone, Debug)]
pub struct LocalDirSink {
    root: Arc<PathBuf>,
    /// Changes hold a read share for as long as they run on the blocking pool; a scan
    /// takes the write side, so it sees the folder after every change started before it.
    changes: Arc<RwLock<()>>,
}

impl LocalDirSink {
    /// The archive in the folder `root`, created if missing. The root itself may be
    /// reached through symbolic links (it is resolved once, here); nothing inside it is.
    ///
    /// # Errors
    /// [`Error::Io`] when the folder cannot be created or resolved;
    /// [`Error::Config`] when `root` is not a folder.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| Error::io("create folder", &root, e))?;
        let root = root
            .canonicalize()
            .map_err(|e| Error::io("resolve", &root, e))?;
        if !root.is_dir() {
            return Err(Error::Config(format!("{} is not a folder", root.display())));
        }
        Ok(Self {
            root: Arc::new(root),
            changes: Arc::default(),
        })
    }

    /// The archive's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs a change of the folder on the blocking pool, holding a share of `changes`
    /// until it ends, whether or not the caller still waits for it.
    async fn change<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let share = self.changes.clone().read_owned().await;
        blocking(move || {
            let _share = share;
            f()
        })
        .await
    }

    /// Refuses names this sink cannot hold: OneDrive's rules, the 255-byte limit,
    /// and the temporary-file pattern (such a file would be invisible to scans).
    fn check(&self, path: &ArchivePath, operation: &str) -> Result<()> {
        names::check_path(path, &self.capabilities(), SERVICE, operation)?;
        let rejected = |message: String| Error::Rejected {
            service: SERVICE,
            operation: format!("{operation} {path}"),
            message,
        };
        for name in path.names() {
            if name.len() > MAX_NAME_BYTES {
                return Err(rejected(format!(
                    "the name is {} bytes long; the limit on disk is {MAX_NAME_BYTES}",
                    name.len()
                )));
            }
            if fs::is_temp_name(name) {
                return Err(rejected("the name is reserved for temporary files".into()));
            }
        }
        Ok(())
    }
}

fn already_exists(path: &ArchivePath) -> Error {
    Error::AlreadyExists {
        what: path.to_string(),
    }
}

#[async_trait]
impl ArchiveSink for LocalDirSink {
    fn capabilities(&self) -> SinkCapabilities {
        SinkCapabilities {
            case_insensitive: false,
            ..SinkCapabilities::minimal()
        }
    }

    async fn scan(&self, _cursor: Option<&ScanCursor>) -> Result<ScanUpdate> {
        let root = self.root.clone();
        let _no_change_running = self.changes.write().await;
        let entries = blocking(move || fs::scan(&root)).await?;
        Ok(ScanUpdate::Full {
            entries,
            cursor: None,
        })
    }

    async fn create_folder(&self, path: &ArchivePath) -> Result<SinkEntry> {
        self.check(path, "create folder")?;
        let (root, path) = (self.root.clone(), path.clone());
        self.change(move || {
            let parent = fs::real_folder(&root, path.parent().as_ref(), "create folder")?;
            let abs = parent.join(path.file_name());
            match std::fs::create_dir(&abs) {
                Ok(()) => sync_dir(&parent)?,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let meta = fs::probe(&abs)?;
                    if !meta.is_some_and(|m| m.file_type().is_dir()) {
                        return Err(already_exists(&path));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::NotFound {
                        what: format!("the folder above {path}"),
                    });
                }
                Err(e) => return Err(Error::io("create folder", abs, e)),
            }
            Ok(fs::entry(&path, EntryKind::Folder))
        })
        .await
    }

    async fn write_file(&self, path: &ArchivePath, body: Body) -> Result<SinkEntry> {
        self.check(path, "write")?;
        let expected = body.len();
        let (root, target) = (self.root.clone(), path.clone());
        // 1. Check the place, and open a temporary file in the root.
        let (file, temp) = self
            .change(move || {
                let parent = fs::real_folder(&root, target.parent().as_ref(), "write")?;
                if fs::probe(&parent.join(target.file_name()))?.is_some() {
                    return Err(already_exists(&target));
                }
                let temp = tempfile::Builder::new()
                    .prefix(fs::TEMP_PREFIX)
                    .suffix(fs::TEMP_SUFFIX)
                    .tempfile_in(&*root)
                    .map_err(|e| Error::io("create a temporary file in", &*root, e))?;
                Ok(temp.into_parts())
            })
            .await?;
        // 2. Stream the body into it. On any error `temp` is dropped, which removes it.
        let mut file = tokio::fs::File::from_std(file);
        let mut stream = body.into_stream();
        let mut written = 0u64;
        let integrity = |actual: String| Error::Integrity {
            what: path.to_string(),
            expected: format!("{expected} bytes"),
            actual,
        };
        let io = |e| Error::io("write", temp.to_path_buf(), e);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            written += chunk.len() as u64;
            if written > expected {
                return Err(integrity(format!("more than {expected} bytes")));
            }
            file.write_all(&chunk).await.map_err(io)?;
        }
        if written != expected {
            return Err(integrity(format!("{written} bytes")));
        }
        file.flush().await.map_err(io)?;
        let file = file.into_std().await;
        // 3. Make it durable, then give it its name without replacing anything.
        let (root, target) = (self.root.clone(), path.clone());
        self.change(move || {
            file.sync_all()
                .map_err(|e| Error::io("sync", temp.to_path_buf(), e))?;
            drop(file);
            // Check the folders again: one may have been swapped for a link meanwhile.
            let parent = fs::real_folder(&root, target.parent().as_ref(), "write")?;
            let abs = parent.join(target.file_name());
            match std::fs::hard_link(&temp, &abs) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(already_exists(&target));
                }
                Err(e) => return Err(Error::io("link into place", abs, e)),
            }
            // The new name must survive a crash; the temporary one need not (scans
            // skip it), so only the parent folder is fsynced.
            temp.close()
                .map_err(|e| Error::io("remove temporary file", &*root, e))?;
            sync_dir(&parent)?;
            Ok(fs::entry(&target, EntryKind::File { size: expected }))
        })
        .await
    }

    async fn rename_folder(
        &self,
        id: &SinkItemId,
        path: &ArchivePath,
        new_name: &str,
    ) -> Result<SinkEntry> {
        // Ids are paths here: an id elsewhere than `path` names a folder that moved.
        if id.as_str() != path.as_str() {
            return Err(Error::NotFound {
                what: format!("folder {id} at {path}"),
            });
        }
        let target = names::renamed(path, new_name, SERVICE)?;
        self.check(&target, "rename folder to")?;
        let (root, path) = (self.root.clone(), path.clone());
        self.change(move || {
            let parent = fs::real_folder(&root, path.parent().as_ref(), "rename folder")?;
            let from = parent.join(path.file_name());
            let to = parent.join(target.file_name());
            let Some(meta) = fs::probe(&from)?.filter(|m| m.file_type().is_dir()) else {
                return Err(Error::NotFound {
                    what: format!("folder {path}"),
                });
            };
            // rename(2) would replace an empty folder: refuse anything in the way,
            // unless it is the folder itself (a case-only rename on a case-insensitive disk).
            if let Some(other) = fs::probe(&to)?
                && !fs::same_file(&meta, &other)
            {
                return Err(already_exists(&target));
            }
            std::fs::rename(&from, &to).map_err(|e| Error::io("rename", from, e))?;
            sync_dir(&parent)?;
            Ok(fs::entry(&target, EntryKind::Folder))
        })
        .await
    }

    async fn quota(&self) -> Result<Option<Quota>> {
        // Free space needs statvfs, which std does not offer.
        Ok(None)
    }
}
