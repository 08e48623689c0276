//! The blocking steps of a write: a temporary file in the root, then its name.

use super::errors::{already_exists, write_failed};
use super::folder::{Folder, Kind};
use super::walk::open_folder;
use crate::error::Result;
use crate::model::{ArchivePath, EntryKind, SinkEntry};
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporary files are named `.receipt-sync-<random>.tmp`, in the root; scans skip them.
pub(super) const TEMP_PREFIX: &str = ".receipt-sync-";
pub(super) const TEMP_SUFFIX: &str = ".tmp";

pub(super) fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

/// A fresh temporary name: a per-process random key hashed with a counter, so two
/// writes (or two processes) practically never pick the same one; `O_EXCL` settles
/// the rare clash.
fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = RandomState::new().hash_one((n, std::process::id()));
    format!("{TEMP_PREFIX}{random:016x}{TEMP_SUFFIX}")
}

/// A temporary file in the root, removed when dropped: a write that fails or is
/// cancelled at any step leaves nothing behind.
#[derive(Debug)]
pub(super) struct TempFile {
    root: Arc<Folder>,
    name: String,
    /// Its path, for messages only.
    shown: PathBuf,
    removed: bool,
}

impl TempFile {
    /// Creates one in `root` (at `root_path`), open for writing.
    pub(super) fn create(root: &Arc<Folder>, root_path: &Path) -> Result<(File, Self)> {
        let mut attempts = 0;
        loop {
            let name = temp_name();
            match root.create_file(&name) {
                Ok(file) => {
                    let temp = Self {
                        root: root.clone(),
                        shown: root_path.join(&name),
                        name,
                        removed: false,
                    };
                    return Ok((file, temp));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => {
                    attempts += 1;
                }
                Err(e) => {
                    let path = root_path.to_owned();
                    return Err(write_failed("create a temporary file in", path, e));
                }
            }
        }
    }

    /// Removes it now, saying so if that fails.
    fn remove(mut self) -> Result<()> {
        self.removed = true;
        self.root
            .remove_file(&self.name)
            .map_err(|e| write_failed("remove temporary file", self.shown.clone(), e))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.removed
            && let Err(error) = self.root.remove_file(&self.name)
        {
            // Left for the scan that removes stale temporary files.
            tracing::warn!(file = %self.shown.display(), %error, "could not remove a temporary file");
        }
    }
}

/// Step 3 of a write: makes `file` (whole, `size` bytes) durable, then gives it the
/// name `target` without replacing anything, and makes that name durable.
pub(super) fn put_in_place(
    file: File,
    temp: TempFile,
    root: &Folder,
    root_path: &Path,
    target: &ArchivePath,
    size: u64,
) -> Result<SinkEntry> {
    let shown = root_path.join(target.as_str());
    file.sync_all()
        .map_err(|e| write_failed("sync", shown.clone(), e))?;
    drop(file);
    // The folder is opened again: it may have moved, or been swapped for a link,
    // while the body streamed. From here on the handle names the real folder.
    let parent = open_folder(root, root_path, target.parent().as_ref(), "write")?;
    match root.link(&temp.name, &parent, target.file_name()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(already_exists(target)),
        Err(e) => return Err(write_failed("link into place", shown, e)),
    }
    // The new name must survive a crash; the temporary one need not (scans skip it),
    // so only the parent folder is fsynced.
    temp.remove()?;
    parent
        .sync()
        .map_err(|e| write_failed("sync folder", shown, e))?;
    Ok(super::entry(target, EntryKind::File { size }))
}

/// The last step of a replacement: makes `file` (whole, `size` bytes) durable, then
/// puts it over the file at `target` in one rename, so a reader sees the old content
/// or the new, never a mix. [`crate::Error::NotFound`] when no file is there any more.
pub(super) fn replace_in_place(
    file: File,
    temp: TempFile,
    root: &Folder,
    root_path: &Path,
    target: &ArchivePath,
    size: u64,
) -> Result<SinkEntry> {
    let shown = root_path.join(target.as_str());
    file.sync_all()
        .map_err(|e| write_failed("sync", shown.clone(), e))?;
    drop(file);
    let parent = open_folder(root, root_path, target.parent().as_ref(), "replace")?;
    let there = parent
        .kind(target.file_name())
        .map_err(|e| write_failed("inspect", shown.clone(), e))?;
    if !matches!(there, Some(Kind::File { .. })) {
        return Err(crate::Error::NotFound {
            what: format!("file {target}"),
        });
    }
    // A rename replaces only within one folder: the content is first linked beside
    // the target under the temporary name (which scans skip), then renamed over it.
    root.link(&temp.name, &parent, &temp.name)
        .map_err(|e| write_failed("link beside", shown.clone(), e))?;
    if let Err(e) = parent.rename(&temp.name, target.file_name()) {
        let _ = parent.remove_file(&temp.name);
        return Err(write_failed("replace", shown, e));
    }
    temp.remove()?;
    parent
        .sync()
        .map_err(|e| write_failed("sync folder", shown, e))?;
    Ok(super::entry(target, EntryKind::File { size }))
}
