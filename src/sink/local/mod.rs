//! The archive in a folder on disk.
//!
//! # Guarantees
//! 1. Nothing is written, renamed or deleted outside the root, by construction on
//!    Unix: the root is opened once, when the sink is made, and every step after goes
//!    through folder handles opened from it one name at a time, never following a
//!    symbolic link (`openat` with `O_NOFOLLOW`; `mkdirat`, `linkat`, `renameat2`,
//!    `unlinkat`, `fstatat` and listings relative to a handle; see [`folder`]). A
//!    folder swapped for a link after it was checked is no way out: the handle still
//!    names the real folder. A link planted inside the root, to a file or a folder, is
//!    not listed by [`scan`](ArchiveSink::scan) and not written through: writing below
//!    it fails with [`Error::Rejected`].
//! 2. A file appears whole or not at all: its bytes are streamed (chunk by chunk, so
//!    memory stays bounded) into `.receipt-sync-<random>.tmp` in the root, fsynced,
//!    then hard-linked to its name, which fails rather than replace anything that is
//!    there; the temporary name is then removed and the file's folder fsynced. A
//!    failure at any step removes the temporary file; one a killed process left behind
//!    is removed by a scan once it is a day old. A folder is renamed with
//!    `renameat2(RENAME_NOREPLACE)` (`renameatx_np(RENAME_EXCL)` on macOS), which
//!    never replaces what is in the way.
//! 3. A full disk, a user's disk quota or a file-size limit, at any step, is
//!    [`Error::DiskFull`]: it stops the sync (every other receipt would fail the same
//!    way), the temporary file is removed and nothing is recorded as archived.
//! 4. On Unix, [`quota`](ArchiveSink::quota) reports the free space of the root's file
//!    system (`fstatvfs`), so a sync that cannot fit stops before it writes anything.
//! 5. Blocking calls run on tokio's blocking pool. A change handed to the pool runs to
//!    its end even when the caller's future is dropped (a cancelled sync), so a scan
//!    first waits for every such change of this sink and its clones: it never misses a
//!    file that would land after it and be copied a second time.
//!
//! # Assumptions
//! - The archive sits on one file system that supports hard links.
//! - Names follow OneDrive's rules (so the archive can move there unchanged), and are
//!   at most 255 bytes long, the usual limit of Linux file systems.
//! - The root stays where it was when the sink was made: a root moved or replaced
//!   later is not followed (the sink keeps writing into the folder it opened).
//! - Nobody moves a folder out of the root in the instant (a few system calls)
//!   between the sink opening it and creating, linking or renaming in it: the handle
//!   follows the folder it names, so that one change would land where it went. A
//!   folder moved earlier, while a body streams, is found missing when the file's
//!   folder is opened again for the final link.
//! - Where there is no `openat` (Windows), each folder is checked before each step
//!   and a link swapped in between may be followed; the window is a few system calls.
//!   A file system without a no-replace rename (some FUSE and network ones; the BSDs)
//!   likewise checks the new name, then renames.

mod errors;
mod folder;
mod scan;
mod walk;
mod write;

use super::{ArchiveSink, Quota, SinkCapabilities, names};
use crate::error::{Error, Result};
use crate::fs_util::blocking;
use crate::model::{ArchivePath, Body, EntryKind, ScanCursor, ScanUpdate, SinkEntry, SinkItemId};
use async_trait::async_trait;
use errors::{already_exists, folder_missing, write_failed};
use folder::{Folder, Kind};
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::RwLock;
use walk::open_folder;
use write::TempFile;

const SERVICE: &str = "local";

/// Linux file systems limit a name to 255 bytes, whatever its UTF-16 length.
const MAX_NAME_BYTES: usize = 255;

/// An [`ArchiveSink`] in a folder on disk; see the module docs for its guarantees.
///
/// Item ids are paths relative to the root, so a renamed folder has a new id.
#[derive(Clone, Debug)]
pub struct LocalDirSink {
    /// The root's path, for [`LocalDirSink::root`] and messages; never opened again.
    root_path: Arc<PathBuf>,
    /// The root, opened once: every file-system step starts from this handle.
    root: Arc<Folder>,
    /// Changes hold a read share for as long as they run on the blocking pool; a scan
    /// takes the write side, so it sees the folder after every change started before it.
    changes: Arc<RwLock<()>>,
}

impl LocalDirSink {
    /// The archive in the folder `root`, created if missing. The root itself may be
    /// reached through symbolic links (it is resolved and opened once, here); nothing
    /// inside it is.
    ///
    /// # Errors
    /// [`Error::DiskFull`] when the disk has no room for the folder; [`Error::Io`]
    /// when it cannot be created, resolved or opened; [`Error::Config`] when `root` is
    /// not a folder.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)
            .map_err(|e| write_failed("create folder", root.clone(), e))?;
        let root = root
            .canonicalize()
            .map_err(|e| Error::io("resolve", &root, e))?;
        if !root.is_dir() {
            return Err(Error::Config(format!("{} is not a folder", root.display())));
        }
        let handle = Folder::open_root(&root).map_err(|e| Error::io("open", &root, e))?;
        Ok(Self {
            root_path: Arc::new(root),
            root: Arc::new(handle),
            changes: Arc::default(),
        })
    }

    /// The archive's folder.
    pub fn root(&self) -> &Path {
        &self.root_path
    }

    /// Runs a change of the folder on the blocking pool, holding a share of `changes`
    /// until it ends, whether or not the caller still waits for it. `f` gets the root
    /// and its path.
    async fn change<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Arc<Folder>, &Path) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let share = self.changes.clone().read_owned().await;
        let (root, root_path) = (self.root.clone(), self.root_path.clone());
        blocking(move || {
            let _share = share;
            f(&root, &root_path)
        })
        .await
    }

    /// Streams `body` into the temporary `file`, exactly `body.len()` bytes, and
    /// returns it with that length.
    async fn fill(
        &self,
        file: std::fs::File,
        path: &ArchivePath,
        body: Body,
    ) -> Result<(std::fs::File, u64)> {
        let expected = body.len();
        let mut file = tokio::fs::File::from_std(file);
        let mut stream = body.into_stream();
        let mut written = 0u64;
        let integrity = |actual: String| Error::Integrity {
            what: path.to_string(),
            expected: format!("{expected} bytes"),
            actual,
        };
        let shown = self.root_path.join(path.as_str());
        let failed = |e| write_failed("write", shown.clone(), e);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            written += chunk.len() as u64;
            if written > expected {
                return Err(integrity(format!("more than {expected} bytes")));
            }
            file.write_all(&chunk).await.map_err(failed)?;
        }
        if written != expected {
            return Err(integrity(format!("{written} bytes")));
        }
        file.flush().await.map_err(failed)?;
        Ok((file.into_std().await, expected))
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
            if write::is_temp_name(name) {
                return Err(rejected("the name is reserved for temporary files".into()));
            }
        }
        Ok(())
    }
}

/// The entry the sink reports for `path`: its id is the path itself.
fn entry(path: &ArchivePath, kind: EntryKind) -> SinkEntry {
    SinkEntry {
        id: SinkItemId::new(path.as_str()),
        parent: path.parent().map(|p| SinkItemId::new(p.as_str())),
        name: path.file_name().to_owned(),
        kind,
    }
}

#[async_trait]
impl ArchiveSink for LocalDirSink {
    fn capabilities(&self) -> SinkCapabilities {
        SinkCapabilities {
            case_insensitive: false,
            // Free space comes from `statvfs`, which only Unix has.
            quota: cfg!(unix),
            replace: true,
            ..SinkCapabilities::minimal()
        }
    }

    async fn scan(&self, _cursor: Option<&ScanCursor>) -> Result<ScanUpdate> {
        let (root, root_path) = (self.root.clone(), self.root_path.clone());
        let _no_change_running = self.changes.write().await;
        let entries = blocking(move || scan::scan(&root, &root_path)).await?;
        Ok(ScanUpdate::Full {
            entries,
            cursor: None,
        })
    }

    async fn create_folder(&self, path: &ArchivePath) -> Result<SinkEntry> {
        self.check(path, "create folder")?;
        let path = path.clone();
        self.change(move |root, root_path| {
            let parent = open_folder(root, root_path, path.parent().as_ref(), "create folder")?;
            let shown = || root_path.join(path.as_str());
            match parent.create_folder(path.file_name()) {
                Ok(()) => parent
                    .sync()
                    .map_err(|e| write_failed("sync folder", shown(), e))?,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let there = parent
                        .kind(path.file_name())
                        .map_err(|e| Error::io("inspect", shown(), e))?;
                    if there != Some(Kind::Folder) {
                        return Err(already_exists(&path));
                    }
                }
                // The folder above was removed since it was opened.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::NotFound {
                        what: format!("the folder above {path}"),
                    });
                }
                Err(e) => return Err(write_failed("create folder", shown(), e)),
            }
            Ok(entry(&path, EntryKind::Folder))
        })
        .await
    }

    async fn write_file(&self, path: &ArchivePath, body: Body) -> Result<SinkEntry> {
        self.check(path, "write")?;
        let target = path.clone();
        // 1. Check the place, and open a temporary file in the root.
        let (file, temp) = self
            .change(move |root, root_path| {
                let parent = open_folder(root, root_path, target.parent().as_ref(), "write")?;
                let there = parent
                    .kind(target.file_name())
                    .map_err(|e| Error::io("inspect", root_path.join(target.as_str()), e))?;
                if there.is_some() {
                    return Err(already_exists(&target));
                }
                TempFile::create(root, root_path)
            })
            .await?;
        // 2. Stream the body into it. On any error `temp` is dropped, which removes it.
        let (file, expected) = self.fill(file, path, body).await?;
        // 3. Make it durable, then give it its name without replacing anything.
        let target = path.clone();
        self.change(move |root, root_path| {
            write::put_in_place(file, temp, root, root_path, &target, expected)
        })
        .await
    }

    async fn replace_file(
        &self,
        id: &SinkItemId,
        path: &ArchivePath,
        body: Body,
    ) -> Result<SinkEntry> {
        self.check(path, "replace")?;
        // Ids are paths here: a file moved away is not this one.
        if id.as_str() != path.as_str() {
            return Err(Error::NotFound {
                what: format!("file {id} at {path}"),
            });
        }
        let (file, temp) = self.change(TempFile::create).await?;
        let (file, expected) = self.fill(file, path, body).await?;
        let target = path.clone();
        self.change(move |root, root_path| {
            write::replace_in_place(file, temp, root, root_path, &target, expected)
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
        let path = path.clone();
        self.change(move |root, root_path| {
            let parent = open_folder(root, root_path, path.parent().as_ref(), "rename folder")?;
            let (from, to) = (path.file_name(), target.file_name());
            let shown = || root_path.join(path.as_str());
            let there = parent
                .kind(from)
                .map_err(|e| Error::io("inspect", shown(), e))?;
            if there != Some(Kind::Folder) {
                return Err(folder_missing(&path));
            }
            match parent.rename_no_replace(from, to) {
                Ok(()) => {}
                // Taken, unless by the folder itself (a case-only rename on a
                // case-insensitive disk), which a plain rename handles.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let itself = parent
                        .same_entry(from, to)
                        .map_err(|e| Error::io("inspect", shown(), e))?;
                    if !itself {
                        return Err(already_exists(&target));
                    }
                    parent
                        .rename(from, to)
                        .map_err(|e| write_failed("rename", shown(), e))?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(folder_missing(&path));
                }
                Err(e) => return Err(write_failed("rename", shown(), e)),
            }
            parent
                .sync()
                .map_err(|e| write_failed("sync folder", shown(), e))?;
            Ok(entry(&target, EntryKind::Folder))
        })
        .await
    }

    async fn quota(&self) -> Result<Option<Quota>> {
        let (root, root_path) = (self.root.clone(), self.root_path.clone());
        let space = blocking(move || {
            root.space()
                .map_err(|e| Error::io("read the free space of", &*root_path, e))
        })
        .await?;
        Ok(space.map(|space| Quota {
            total: space.total,
            used: space.used,
            remaining: space.available,
        }))
    }
}
