//! Blocking file-system steps of [`super::LocalDirSink`]. Every path is built from
//! the root down, checking each folder on the way with `symlink_metadata`, so that
//! no link planted inside the archive is ever followed.

use super::SERVICE;
use crate::error::{Error, Result};
use crate::model::{ArchivePath, EntryKind, SinkEntry, SinkItemId};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Temporary files are named `.receipt-sync-<random>.tmp`, in the root; scans skip them.
pub(super) const TEMP_PREFIX: &str = ".receipt-sync-";
pub(super) const TEMP_SUFFIX: &str = ".tmp";

pub(super) fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

/// A temporary file untouched for this long was left by a process that died mid-write
/// (a live write touches its file with every chunk); scans remove it.
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Removes the temporary file `item` of the root if it is stale. Best effort: a failure
/// leaves it for the next scan.
fn remove_if_stale(item: &fs::DirEntry) {
    let stale = item.metadata().is_ok_and(|meta| {
        meta.is_file()
            && meta
                .modified()
                .ok()
                .and_then(|at| at.elapsed().ok())
                .is_some_and(|age| age >= STALE_TEMP_AGE)
    });
    if stale && let Err(error) = fs::remove_file(item.path()) {
        tracing::warn!(file = %item.path().display(), %error, "could not remove a stale temporary file");
    }
}

/// The entry the sink reports for `path`: its id is the path itself.
pub(super) fn entry(path: &ArchivePath, kind: EntryKind) -> SinkEntry {
    SinkEntry {
        id: SinkItemId::new(path.as_str()),
        parent: path.parent().map(|p| SinkItemId::new(p.as_str())),
        name: path.file_name().to_owned(),
        kind,
    }
}

fn symlink_refused(operation: &str, path: &ArchivePath) -> Error {
    Error::Rejected {
        service: SERVICE,
        operation: format!("{operation} {path}"),
        message: format!("{path} is a symbolic link; receipt-sync never follows one"),
    }
}

/// The absolute path of the folder `folder` (`None`: the root), checking that it and
/// every folder above it is a real folder, not a symbolic link.
///
/// # Errors
/// [`Error::NotFound`] when a folder is missing (or a file is in its place);
/// [`Error::Rejected`] when one is a symbolic link.
pub(super) fn real_folder(
    root: &Path,
    folder: Option<&ArchivePath>,
    operation: &str,
) -> Result<PathBuf> {
    let Some(folder) = folder else {
        return Ok(root.to_owned());
    };
    let mut abs = root.to_owned();
    let mut walked = Vec::new();
    for name in folder.names() {
        abs.push(name);
        walked.push(name);
        let missing = || Error::NotFound {
            what: format!("folder {}", walked.join("/")),
        };
        match fs::symlink_metadata(&abs) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let here = ArchivePath::from_names(&walked).unwrap_or_else(|_| folder.clone());
                return Err(symlink_refused(operation, &here));
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(missing()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
            Err(e) => return Err(Error::io("inspect", &abs, e)),
        }
    }
    Ok(abs)
}

/// What sits at `abs`, without following a link: `None` when nothing does.
pub(super) fn probe(abs: &Path) -> Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(abs) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("inspect", abs, e)),
    }
}

/// Whether `a` and `b` are the same file (a case-only rename on a case-insensitive disk).
pub(super) fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

/// Every real file and folder under `root`, parents before children, siblings by
/// name. Symbolic links, temporary files, other special files and names that are
/// not valid archive names (not UTF-8, or holding a `\`) are skipped; temporary files
/// a killed process left in the root a day ago or more are removed.
pub(super) fn scan(root: &Path) -> Result<Vec<SinkEntry>> {
    let mut out = Vec::new();
    let mut stack: Vec<(PathBuf, Option<ArchivePath>)> = vec![(root.to_owned(), None)];
    while let Some((dir, rel)) = stack.pop() {
        let reader = match fs::read_dir(&dir) {
            Ok(r) => r,
            // Removed while we were scanning: it is simply not there any more.
            Err(e) if e.kind() == io::ErrorKind::NotFound && rel.is_some() => continue,
            Err(e) => return Err(Error::io("list", &dir, e)),
        };
        let mut found = Vec::new();
        for item in reader {
            let item = item.map_err(|e| Error::io("list", &dir, e))?;
            let Ok(name) = item.file_name().into_string() else {
                tracing::warn!(folder = %dir.display(), "skipping a name that is not UTF-8");
                continue;
            };
            if is_temp_name(&name) {
                if rel.is_none() {
                    remove_if_stale(&item);
                }
                continue;
            }
            let path = match &rel {
                Some(parent) => parent.join(&name),
                None => ArchivePath::parse(name.as_str()),
            };
            let Ok(path) = path else {
                tracing::warn!(folder = %dir.display(), name, "skipping a name the archive cannot hold");
                continue;
            };
            // `DirEntry::file_type` and `metadata` do not follow symbolic links.
            let Ok(kind) = item.file_type() else { continue };
            if kind.is_dir() {
                found.push((path, EntryKind::Folder, item.path()));
            } else if kind.is_file() {
                let Ok(meta) = item.metadata() else { continue };
                let size = meta.len();
                found.push((path, EntryKind::File { size }, item.path()));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        // Push folders in reverse so that the first one is listed first.
        for (path, kind, abs) in found.iter().rev() {
            if *kind == EntryKind::Folder {
                stack.push((abs.clone(), Some(path.clone())));
            }
        }
        out.extend(found.into_iter().map(|(path, kind, _)| entry(&path, kind)));
    }
    Ok(out)
}
