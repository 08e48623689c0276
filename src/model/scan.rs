//! What a sink reports about the archive, and the snapshot the sync keeps of it.

use super::{ArchivePath, PathKey, SinkItemId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// Whether an archive item is a file or a folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A folder.
    Folder,
    /// A file of `size` bytes.
    File {
        /// Its size in bytes.
        size: u64,
    },
}

/// One item of the archive, as a sink reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SinkEntry {
    /// The sink's id of the item.
    pub id: SinkItemId,
    /// The containing folder's id; `None` for an item directly under the archive root.
    pub parent: Option<SinkItemId>,
    /// The item's name.
    pub name: String,
    /// File (with its size) or folder.
    pub kind: EntryKind,
}

impl SinkEntry {
    /// Whether this entry is a folder.
    pub fn is_folder(&self) -> bool {
        self.kind == EntryKind::Folder
    }
}

/// One change since a scan cursor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkChange {
    /// The item is new, or changed (renamed, moved, rewritten).
    Upsert(SinkEntry),
    /// The item was deleted, or left the archive. For a folder, everything it held is gone too,
    /// whether or not the sink also reports each descendant.
    Removed(SinkItemId),
}

/// An opaque position in a sink's change feed (OneDrive's delta link).
///
/// It may embed a pre-authenticated token, so it is redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScanCursor(String);

impl ScanCursor {
    /// Wraps a sink's cursor.
    pub fn new(cursor: impl Into<String>) -> Self {
        Self(cursor.into())
    }

    /// The cursor, for the sink that issued it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ScanCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScanCursor([redacted])")
    }
}

/// The answer to a scan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanUpdate {
    /// Everything under the archive root: replaces what the caller knew.
    Full {
        /// Every file and folder under the root (not the root itself).
        entries: Vec<SinkEntry>,
        /// Where to resume from next time, when the sink has a change feed.
        cursor: Option<ScanCursor>,
    },
    /// Only what changed since the cursor the scan was given.
    Changes {
        /// The changes, oldest first; the last one for an item wins.
        changes: Vec<SinkChange>,
        /// Where to resume from next time.
        cursor: ScanCursor,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Item {
    parent: Option<SinkItemId>,
    name: String,
    kind: EntryKind,
}

/// The sync's picture of the archive: every item by id, with paths derived from parents.
///
/// Kept in the sync state between runs, so a sink with a change feed only
/// reports what changed. Pure data: applying an update does no I/O.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveSnapshot {
    items: HashMap<SinkItemId, Item>,
}

/// Folders nest only a few levels deep here; anything deeper is treated as a
/// parent cycle from a malformed feed.
const MAX_DEPTH: usize = 64;

impl ArchiveSnapshot {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// A snapshot of exactly `entries`.
    pub fn from_entries(entries: impl IntoIterator<Item = SinkEntry>) -> Self {
        let entries = entries.into_iter();
        let mut snapshot = Self::new();
        snapshot.items.reserve(entries.size_hint().0);
        for entry in entries {
            snapshot.upsert(entry);
        }
        snapshot.prune_orphans();
        snapshot
    }

    /// Applies a scan's answer: a full listing replaces everything; changes are
    /// applied in order, then items whose folder is gone are dropped.
    pub fn apply(&mut self, update: &ScanUpdate) {
        match update {
            ScanUpdate::Full { entries, .. } => {
                *self = Self::from_entries(entries.iter().cloned());
            }
            ScanUpdate::Changes { changes, .. } => {
                for change in changes {
                    match change {
                        SinkChange::Upsert(entry) => self.upsert(entry.clone()),
                        SinkChange::Removed(id) => {
                            self.items.remove(id);
                        }
                    }
                }
                self.prune_orphans();
            }
        }
    }

    /// Adds or replaces one item (the sync's own writes go in this way).
    pub fn upsert(&mut self, entry: SinkEntry) {
        self.items.insert(
            entry.id,
            Item {
                parent: entry.parent,
                name: entry.name,
                kind: entry.kind,
            },
        );
    }

    /// Removes one item and everything under it.
    pub fn remove(&mut self, id: &SinkItemId) {
        if self.items.remove(id).is_some() {
            self.prune_orphans();
        }
    }

    /// Drops every item whose chain of parents does not reach the root
    /// (a deleted folder's descendants, items moved out of the archive, cycles).
    ///
    /// Runs on every load and every scan, over the whole archive: it borrows the ids
    /// rather than cloning each one, and clones only those it drops.
    fn prune_orphans(&mut self) {
        let unreachable: Vec<SinkItemId> = {
            let mut memo: HashMap<&SinkItemId, bool> = HashMap::with_capacity(self.items.len());
            let mut chain = Vec::new();
            self.items
                .keys()
                .filter(|id| !self.resolve_reachable(id, &mut memo, &mut chain))
                .cloned()
                .collect()
        };
        for id in &unreachable {
            self.items.remove(id);
        }
    }

    fn resolve_reachable<'a>(
        &'a self,
        id: &'a SinkItemId,
        memo: &mut HashMap<&'a SinkItemId, bool>,
        chain: &mut Vec<&'a SinkItemId>,
    ) -> bool {
        // Walk up until a known answer or the root, then record the answer for the whole chain.
        chain.clear();
        let mut current = Some(id);
        let answer = loop {
            let Some(cur) = current else { break true };
            if let Some(&known) = memo.get(cur) {
                break known;
            }
            if chain.len() > MAX_DEPTH {
                break false;
            }
            let Some((key, item)) = self.items.get_key_value(cur) else {
                break false;
            };
            chain.push(key);
            current = item.parent.as_ref();
        };
        for link in chain.drain(..) {
            memo.insert(link, answer);
        }
        answer
    }

    /// Whether an item with this id is in the archive.
    pub fn contains(&self, id: &SinkItemId) -> bool {
        self.items.contains_key(id)
    }

    /// Whether the snapshot holds exactly this entry (same parent, name and kind).
    pub fn holds(&self, entry: &SinkEntry) -> bool {
        self.items.get(&entry.id).is_some_and(|item| {
            item.parent == entry.parent && item.name == entry.name && item.kind == entry.kind
        })
    }

    /// The item as an entry, if it is in the archive.
    pub fn entry(&self, id: &SinkItemId) -> Option<SinkEntry> {
        self.items.get(id).map(|item| SinkEntry {
            id: id.clone(),
            parent: item.parent.clone(),
            name: item.name.clone(),
            kind: item.kind,
        })
    }

    /// The item's kind, if it is in the archive.
    pub fn kind(&self, id: &SinkItemId) -> Option<EntryKind> {
        self.items.get(id).map(|item| item.kind)
    }

    /// The item's current path, if it is in the archive.
    pub fn path_of(&self, id: &SinkItemId) -> Option<ArchivePath> {
        let mut names = Vec::new();
        let mut current = Some(id);
        while let Some(cur) = current {
            let item = self.items.get(cur)?;
            names.push(item.name.as_str());
            if names.len() > MAX_DEPTH {
                return None;
            }
            current = item.parent.as_ref();
        }
        names.reverse();
        ArchivePath::from_names(names).ok()
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the archive is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Every item, as entries, sorted by id (a stable order for serialization).
    pub fn entries(&self) -> Vec<SinkEntry> {
        let mut out: Vec<SinkEntry> = self
            .items
            .iter()
            .map(|(id, item)| SinkEntry {
                id: id.clone(),
                parent: item.parent.clone(),
                name: item.name.clone(),
                kind: item.kind,
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// An index from case-insensitive path to item, for lookups by path.
    /// When two items share a key (possible on case-sensitive stores), the smallest id wins.
    pub fn path_index(&self) -> PathIndex {
        let mut by_key: HashMap<PathKey, (SinkItemId, EntryKind)> =
            HashMap::with_capacity(self.items.len());
        for (id, item) in &self.items {
            let Some(path) = self.path_of(id) else {
                continue;
            };
            let key = path.key();
            match by_key.get(&key) {
                Some((existing, _)) if existing <= id => {}
                _ => {
                    by_key.insert(key, (id.clone(), item.kind));
                }
            }
        }
        PathIndex { by_key }
    }
}

/// Lookups of archive items by path; see [`ArchiveSnapshot::path_index`].
#[derive(Clone, Debug, Default)]
pub struct PathIndex {
    by_key: HashMap<PathKey, (SinkItemId, EntryKind)>,
}

impl PathIndex {
    /// The item at `path` (case-insensitively), with its kind.
    pub fn get(&self, path: &ArchivePath) -> Option<(&SinkItemId, EntryKind)> {
        self.by_key.get(&path.key()).map(|(id, kind)| (id, *kind))
    }

    /// The item whose case-insensitive key ([`ArchivePath::key`]) is `key`: lets a
    /// caller that looks up many paths lower-case them into one reused buffer.
    pub fn get_by_key(&self, key: &str) -> Option<(&SinkItemId, EntryKind)> {
        self.by_key.get(key).map(|(id, kind)| (id, *kind))
    }

    /// Records an item at `path` (the sync's own writes during planning).
    pub fn insert(&mut self, path: &ArchivePath, id: SinkItemId, kind: EntryKind) {
        self.by_key.insert(path.key(), (id, kind));
    }
}

impl Serialize for ArchiveSnapshot {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.entries().serialize(s)
    }
}

impl<'de> Deserialize<'de> for ArchiveSnapshot {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::from_entries(Vec::<SinkEntry>::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(id: &str, parent: Option<&str>, name: &str) -> SinkEntry {
        SinkEntry {
            id: id.into(),
            parent: parent.map(Into::into),
            name: name.into(),
            kind: EntryKind::Folder,
        }
    }

    fn file(id: &str, parent: &str, name: &str, size: u64) -> SinkEntry {
        SinkEntry {
            id: id.into(),
            parent: Some(parent.into()),
            name: name.into(),
            kind: EntryKind::File { size },
        }
    }

    #[test]
    fn a_folder_tombstone_removes_its_descendants() {
        let mut snap = ArchiveSnapshot::from_entries([
            folder("a", None, "Main"),
            folder("b", Some("a"), "2026-11"),
            file("c", "b", "x.pdf", 3),
            folder("d", Some("a"), "2026-12"),
        ]);
        assert_eq!(
            snap.path_of(&"c".into()).unwrap().as_str(),
            "Main/2026-11/x.pdf"
        );
        snap.apply(&ScanUpdate::Changes {
            changes: vec![SinkChange::Removed("b".into())],
            cursor: ScanCursor::new("next"),
        });
        assert!(!snap.contains(&"c".into()));
        assert!(snap.contains(&"d".into()));
        assert_eq!(snap.len(), 2);
    }

    #[test]
    fn renames_follow_ids_and_cycles_are_dropped() {
        let mut snap = ArchiveSnapshot::from_entries([
            folder("a", None, "Main"),
            file("c", "a", "x.pdf", 3),
            folder("p", Some("q"), "loop"),
            folder("q", Some("p"), "loop"),
        ]);
        assert_eq!(snap.len(), 2);
        snap.upsert(folder("a", None, "Renamed"));
        assert_eq!(snap.path_of(&"c".into()).unwrap().as_str(), "Renamed/x.pdf");
        let index = snap.path_index();
        let found = index.get(&ArchivePath::parse("renamed/X.PDF").unwrap());
        assert_eq!(found.map(|(id, _)| id.as_str()), Some("c"));
    }

    #[test]
    fn serializes_as_entries() {
        let snap =
            ArchiveSnapshot::from_entries([folder("a", None, "Main"), file("c", "a", "x", 1)]);
        let json = serde_json::to_string(&snap).unwrap();
        let back: ArchiveSnapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, snap);
    }
}
