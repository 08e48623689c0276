//! Opening a folder of the archive from the root down, one name at a time.

use super::errors::{folder_missing, symlink_refused};
use super::folder::{Folder, Kind};
use crate::error::{Error, Result};
use crate::model::ArchivePath;
use std::path::Path;

/// Opens the folder `folder` (`None`: the root) from `root`, one name at a time, each
/// a real folder and never a symbolic link. The handle returned names that folder
/// whatever happens to the names above it afterwards.
///
/// # Errors
/// [`Error::NotFound`] when a folder is missing (or a file is in its place);
/// [`Error::Rejected`] when one is a symbolic link. `root_path` only names the folder
/// in other errors' messages.
pub(super) fn open_folder(
    root: &Folder,
    root_path: &Path,
    folder: Option<&ArchivePath>,
    operation: &str,
) -> Result<Folder> {
    let mut here = root
        .try_clone()
        .map_err(|e| Error::io("open", root_path, e))?;
    let Some(folder) = folder else {
        return Ok(here);
    };
    let mut walked = Vec::new();
    for name in folder.names() {
        walked.push(name);
        let shown = || root_path.join(walked.join("/"));
        let next = here
            .open_folder(name)
            .map_err(|e| Error::io("open folder", shown(), e))?;
        here = match next {
            Some(next) => next,
            None => {
                let at = ArchivePath::from_names(&walked).unwrap_or_else(|_| folder.clone());
                // What is there tells why; if it changed meanwhile, "missing" is true
                // of the moment the folder was looked for.
                let there = here
                    .kind(name)
                    .map_err(|e| Error::io("inspect", shown(), e))?;
                return Err(match there {
                    Some(Kind::Link) => symlink_refused(operation, &at),
                    _ => folder_missing(&at),
                });
            }
        };
    }
    Ok(here)
}
