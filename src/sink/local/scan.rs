//! The listing of the archive, walked through folder handles from the root down.

use super::folder::{Folder, Kind};
use super::write::is_temp_name;
use crate::error::{Error, Result};
use crate::model::{ArchivePath, EntryKind, SinkEntry};
use std::path::Path;
use std::sync::Arc;

/// A temporary file untouched for this long was left by a process that died mid-write
/// (a live write touches its file with every chunk); scans remove it.
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Removes the temporary file `name` of the root if it is stale. Best effort: a failure
/// leaves it for the next scan.
fn remove_if_stale(root: &Folder, root_path: &Path, name: &str) {
    let stale = root
        .modified(name)
        .ok()
        .flatten()
        .is_some_and(|at| at.elapsed().is_ok_and(|age| age >= STALE_TEMP_AGE));
    if stale && let Err(error) = root.remove_file(name) {
        let file = root_path.join(name);
        tracing::warn!(file = %file.display(), %error, "could not remove a stale temporary file");
    }
}

/// A folder still to list: its parent's handle and its name there (`None`: the root).
struct Pending {
    parent: Arc<Folder>,
    at: Option<ArchivePath>,
}

/// Every real file and folder under the root, parents before children, siblings by
/// name. Symbolic links, temporary files, other special files and names that are
/// not valid archive names (not UTF-8, or holding a `\`) are skipped; temporary files
/// a killed process left in the root a day ago or more are removed. A folder is opened
/// from its parent's handle when its turn comes, so only the folders above it are
/// open at once.
pub(super) fn scan(root: &Arc<Folder>, root_path: &Path) -> Result<Vec<SinkEntry>> {
    let mut out = Vec::new();
    let mut stack = vec![Pending {
        parent: root.clone(),
        at: None,
    }];
    while let Some(Pending { parent, at }) = stack.pop() {
        let shown = match &at {
            Some(at) => root_path.join(at.as_str()),
            None => root_path.to_owned(),
        };
        let folder = match &at {
            None => parent,
            Some(at) => match parent.open_folder(at.file_name()) {
                Ok(Some(folder)) => Arc::new(folder),
                // Removed, or swapped for a link or a file, since it was listed: it is
                // not in the archive any more.
                Ok(None) => continue,
                Err(e) => return Err(Error::io("open folder", shown, e)),
            },
        };
        let listed = folder.list().map_err(|e| Error::io("list", &shown, e))?;
        let mut found = Vec::new();
        for item in listed {
            let Ok(name) = item.name.into_string() else {
                tracing::warn!(folder = %shown.display(), "skipping a name that is not UTF-8");
                continue;
            };
            if is_temp_name(&name) {
                if at.is_none() && matches!(item.kind, Kind::File { .. }) {
                    remove_if_stale(&folder, root_path, &name);
                }
                continue;
            }
            let path = match &at {
                Some(parent) => parent.join(&name),
                None => ArchivePath::parse(name.as_str()),
            };
            let Ok(path) = path else {
                tracing::warn!(folder = %shown.display(), name, "skipping a name the archive cannot hold");
                continue;
            };
            match item.kind {
                Kind::Folder => found.push((path, EntryKind::Folder)),
                Kind::File { size } => found.push((path, EntryKind::File { size })),
                Kind::Link | Kind::Other => {}
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        // Push folders in reverse so that the first one is listed first.
        for (path, kind) in found.iter().rev() {
            if *kind == EntryKind::Folder {
                stack.push(Pending {
                    parent: folder.clone(),
                    at: Some(path.clone()),
                });
            }
        }
        out.extend(
            found
                .into_iter()
                .map(|(path, kind)| super::entry(&path, kind)),
        );
    }
    Ok(out)
}
