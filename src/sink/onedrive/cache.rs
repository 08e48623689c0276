//! What the sink remembers between calls: archive folder paths → ids, filled by scans and
//! creations, so a write costs one request instead of a lookup per folder.
//!
//! The cache is a hint: a renamed or deleted folder is found out by the next scan (which
//! updates or drops the entries concerned) or by a 404, which forgets the path. Missing
//! entries fall back to path addressing.

use crate::model::{ArchivePath, ArchiveSnapshot, PathKey, ScanUpdate, SinkChange, SinkEntry};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Default)]
pub(crate) struct FolderCache {
    by_path: HashMap<PathKey, String>,
    path_of: HashMap<String, ArchivePath>,
    /// Folder ids known to be inside the archive (delta uses it to tell outsiders).
    folders: HashSet<String>,
}

impl FolderCache {
    pub fn get(&self, path: &ArchivePath) -> Option<String> {
        self.by_path.get(&path.key()).cloned()
    }

    pub fn is_known_folder(&self, id: &str) -> bool {
        self.folders.contains(id)
    }

    pub fn insert(&mut self, path: &ArchivePath, id: &str) {
        if let Some(old) = self.path_of.insert(id.to_owned(), path.clone()) {
            self.by_path.remove(&old.key());
        }
        self.by_path.insert(path.key(), id.to_owned());
        self.folders.insert(id.to_owned());
    }

    /// Forgets `path` and every path under it (their ids stay known as folders).
    pub fn forget(&mut self, path: &ArchivePath) {
        self.by_path.retain(|key, _| {
            let k = key.as_str();
            let p = path.key();
            !(k == p.as_str()
                || (k.starts_with(p.as_str()) && k.as_bytes().get(p.as_str().len()) == Some(&b'/')))
        });
        self.path_of.retain(|_, p| !p.starts_with(path));
    }

    /// Learns from a scan's answer.
    pub fn learn(&mut self, update: &ScanUpdate) {
        match update {
            ScanUpdate::Full { entries, .. } => self.replace(entries),
            ScanUpdate::Changes { changes, .. } => {
                let mut moved = false;
                for change in changes {
                    match change {
                        SinkChange::Upsert(entry) if entry.is_folder() => {
                            let id = entry.id.as_str();
                            let parent_path = match &entry.parent {
                                None => None,
                                Some(parent) => match self.path_of.get(parent.as_str()) {
                                    Some(p) => Some(p.clone()),
                                    None => {
                                        moved = true;
                                        continue;
                                    }
                                },
                            };
                            let path = match parent_path {
                                None => ArchivePath::parse(entry.name.clone()),
                                Some(p) => p.join(&entry.name),
                            };
                            match (path, self.path_of.get(id)) {
                                (Ok(new), Some(old)) if *old == new => {}
                                (Ok(new), None) => self.insert(&new, id),
                                _ => moved = true,
                            }
                            self.folders.insert(id.to_owned());
                        }
                        SinkChange::Upsert(_) => {}
                        SinkChange::Removed(id) => {
                            if self.folders.remove(id.as_str()) {
                                moved = true;
                            }
                        }
                    }
                }
                if moved {
                    // A folder moved, was renamed or went away: paths below it are stale.
                    // Ids are kept; paths are looked up again on demand.
                    self.by_path.clear();
                    self.path_of.clear();
                }
            }
        }
    }

    fn replace(&mut self, entries: &[SinkEntry]) {
        *self = Self::default();
        let snapshot = ArchiveSnapshot::from_entries(entries.iter().cloned());
        for entry in entries.iter().filter(|e| e.is_folder()) {
            if let Some(path) = snapshot.path_of(&entry.id) {
                self.insert(&path, entry.id.as_str());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EntryKind, ScanCursor};

    fn folder(id: &str, parent: Option<&str>, name: &str) -> SinkEntry {
        SinkEntry {
            id: id.into(),
            parent: parent.map(Into::into),
            name: name.into(),
            kind: EntryKind::Folder,
        }
    }

    #[test]
    fn full_scans_fill_and_renames_invalidate() {
        let mut cache = FolderCache::default();
        cache.learn(&ScanUpdate::Full {
            entries: vec![folder("a", None, "Main"), folder("b", Some("a"), "2026-11")],
            cursor: None,
        });
        let p = ArchivePath::parse("main/2026-11").unwrap();
        assert_eq!(cache.get(&p).as_deref(), Some("b"));
        // An unchanged ancestor reported again keeps the cache.
        let same = ScanUpdate::Changes {
            changes: vec![SinkChange::Upsert(folder("a", None, "Main"))],
            cursor: ScanCursor::new("c"),
        };
        cache.learn(&same);
        assert_eq!(cache.get(&p).as_deref(), Some("b"));
        cache.learn(&ScanUpdate::Changes {
            changes: vec![SinkChange::Upsert(folder("a", None, "Renamed"))],
            cursor: ScanCursor::new("c"),
        });
        assert_eq!(cache.get(&p), None);
        assert!(cache.is_known_folder("b"));
        cache.insert(&ArchivePath::parse("x/y").unwrap(), "y");
        cache.forget(&ArchivePath::parse("X").unwrap());
        assert_eq!(cache.get(&ArchivePath::parse("x/y").unwrap()), None);
    }
}
