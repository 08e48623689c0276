//! The in-memory drive itself: a tree of items with ids that are never reused,
//! case-insensitive names, and a change feed in the manner of OneDrive's delta
//! (onedrive-graph.md §4: the latest state of each changed item, not each change;
//! renaming a folder reports the folder alone).
//!
//! Reading the feed costs what changed since the reader's cursor, not the size of
//! the drive: a quiet day on a large archive reads nothing.

use crate::model::ArchivePath;
use bytes::Bytes;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};

/// One file or folder.
#[derive(Clone, Debug)]
pub(super) struct Node {
    pub parent: Option<u64>,
    /// The name as given, the only copy of it the drive keeps.
    pub name: Box<str>,
    /// `None` for a folder.
    pub bytes: Option<Bytes>,
    /// The change-feed sequence number of the item's last change.
    pub changed: u64,
}

impl Node {
    pub fn is_folder(&self) -> bool {
        self.bytes.is_none()
    }
}

/// What the feed reports since a sequence number.
pub(super) enum Change {
    Upsert(u64),
    Removed(u64),
}

/// `S` hashes names; tests swap in one that makes every name collide.
#[derive(Debug, Default)]
pub(super) struct Drive<S = RandomState> {
    /// Every item ever made, at index `id - 1`: ids are handed out in order and
    /// never reused, so a removed item leaves a `None`.
    nodes: Vec<Option<Node>>,
    /// OneDrive names are case-insensitive (§7): the items under a parent are found
    /// by the hash of their lower-cased name, `name_key(parent, name)`. A hash
    /// rather than the lower-cased name itself, so that each name is stored once (in
    /// its node); two names whose keys collide are told apart by comparing them.
    names: HashMap<u64, u64>,
    /// Items whose key was already taken by another name when they got it (rare).
    collided: Vec<u64>,
    hasher: S,
    seq: u64,
    /// The feed's upserts: each live item under the sequence number of its last change.
    latest: BTreeMap<u64, u64>,
    /// Items whose deletion the feed reports, with the sequence number of the
    /// deletion: `(deletion, id)`, in the order of their deletions.
    removed: Vec<(u64, u64)>,
    /// Descendants removed with a folder: `(their last change, id)` → the removal.
    /// The feed reports one only to a reader whose cursor predates its last change
    /// (it moved in, say): the latest state of an item that changed is "deleted",
    /// while unchanged descendants are covered by the folder's tombstone alone.
    removed_with_parent: BTreeMap<(u64, u64), u64>,
    used: u64,
}

impl<S: BuildHasher> Drive<S> {
    /// The sequence number of the last change.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Bytes held by files.
    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn node(&self, id: u64) -> Option<&Node> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        self.nodes.get(index)?.as_ref()
    }

    fn node_mut(&mut self, id: u64) -> Option<&mut Node> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        self.nodes.get_mut(index)?.as_mut()
    }

    /// Where the item called `folded` (a lower-cased name) under `parent` is filed.
    fn name_key(&self, parent: Option<u64>, folded: &str) -> u64 {
        self.hasher.hash_one((parent, folded))
    }

    /// Whether item `id` is the one called `folded` (lower-cased) under `parent`.
    fn is_named(&self, id: u64, parent: Option<u64>, folded: &str) -> bool {
        self.node(id)
            .is_some_and(|n| n.parent == parent && n.name.to_lowercase() == folded)
    }

    /// The child of `parent` called `name`, case-insensitively.
    pub fn child(&self, parent: Option<u64>, name: &str) -> Option<u64> {
        let folded = name.to_lowercase();
        let is_it = |id: &u64| self.is_named(*id, parent, &folded);
        let key = self.name_key(parent, &folded);
        (self.names.get(&key).copied().filter(is_it))
            .or_else(|| self.collided.iter().copied().find(is_it))
    }

    /// Files item `id` under its name; the caller has checked that the name is free.
    fn file_name(&mut self, id: u64, parent: Option<u64>, name: &str) {
        let key = self.name_key(parent, &name.to_lowercase());
        match self.names.entry(key) {
            Entry::Occupied(_) => self.collided.push(id),
            Entry::Vacant(free) => {
                free.insert(id);
            }
        }
    }

    /// Takes item `id`'s name back, as filed by [`file_name`](Self::file_name).
    fn unfile_name(&mut self, id: u64, parent: Option<u64>, name: &str) {
        let folded = name.to_lowercase();
        let key = self.name_key(parent, &folded);
        if self.names.get(&key) != Some(&id) {
            self.collided.retain(|&other| other != id);
            return;
        }
        self.names.remove(&key);
        // An item that collided with this one may now have the key to itself.
        let heir = self.collided.iter().position(|&other| {
            self.node(other).is_some_and(|n| {
                other != id && self.name_key(n.parent, &n.name.to_lowercase()) == key
            })
        });
        if let Some(at) = heir {
            self.names.insert(key, self.collided.swap_remove(at));
        }
    }

    /// The item at `path`, case-insensitively.
    pub fn resolve(&self, path: &ArchivePath) -> Option<u64> {
        let mut current = None;
        for name in path.names() {
            let id = self.child(current, name)?;
            current = Some(id);
        }
        current
    }

    /// The folder `path` names (`None`: the root), or `Err(())` when no folder is there.
    pub fn folder(&self, path: Option<&ArchivePath>) -> Result<Option<u64>, ()> {
        let Some(path) = path else { return Ok(None) };
        match self.resolve(path) {
            Some(id) if self.node(id).is_some_and(Node::is_folder) => Ok(Some(id)),
            _ => Err(()),
        }
    }

    /// The item's path, with its names as stored.
    pub fn path_of(&self, id: u64) -> Option<ArchivePath> {
        let mut names = Vec::new();
        let mut current = Some(id);
        while let Some(cur) = current {
            let node = self.node(cur)?;
            names.push(&*node.name);
            current = node.parent;
        }
        names.reverse();
        ArchivePath::from_names(names).ok()
    }

    fn tick(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Adds an item under `parent`; the caller has checked that the name is free.
    pub fn insert(&mut self, parent: Option<u64>, name: &str, bytes: Option<Bytes>) -> u64 {
        let id = self.nodes.len() as u64 + 1;
        let changed = self.tick();
        self.used += bytes.as_ref().map_or(0, |b| b.len() as u64);
        self.file_name(id, parent, name);
        self.latest.insert(changed, id);
        self.nodes.push(Some(Node {
            parent,
            name: name.into(),
            bytes,
            changed,
        }));
        id
    }

    /// Marks item `id` as changed now, in the feed too.
    fn touch(&mut self, id: u64) {
        let changed = self.tick();
        if let Some(node) = self.node_mut(id) {
            let before = std::mem::replace(&mut node.changed, changed);
            self.latest.remove(&before);
            self.latest.insert(changed, id);
        }
    }

    /// Replaces a file's bytes in place (same id), as a change the feed reports.
    pub fn replace_bytes(&mut self, id: u64, bytes: Bytes) {
        self.touch(id);
        if let Some(node) = self.node_mut(id) {
            let new = bytes.len() as u64;
            let old = node.bytes.replace(bytes).map_or(0, |b| b.len() as u64);
            self.used = self.used - old + new;
        }
    }

    /// Renames and/or moves an item; the caller has checked that the target name is free.
    pub fn relocate(&mut self, id: u64, parent: Option<u64>, name: &str) {
        self.touch(id);
        let Some(node) = self.node_mut(id) else {
            return;
        };
        let old_parent = std::mem::replace(&mut node.parent, parent);
        let old_name = std::mem::replace(&mut node.name, name.into());
        self.unfile_name(id, old_parent, &old_name);
        self.file_name(id, parent, name);
    }

    /// Removes an item and everything under it. The feed reports the item alone:
    /// a deleted folder's children get no tombstones of their own, the hard case
    /// OneDrive's delta leaves to the caller (§4 "Deleted items").
    pub fn remove(&mut self, id: u64) {
        if self.node(id).is_none() {
            return;
        }
        // One pass: an item is doomed when `id` is on its chain of parents.
        let doomed: Vec<u64> = (1..=self.nodes.len() as u64)
            .filter(|&candidate| {
                let mut current = Some(candidate);
                while let Some(cur) = current {
                    if cur == id {
                        return true;
                    }
                    current = self.node(cur).and_then(|n| n.parent);
                }
                false
            })
            .collect();
        let seq = self.tick();
        for gone in doomed {
            let Some(node) = self.nodes.get_mut(gone as usize - 1).and_then(Option::take) else {
                continue;
            };
            self.unfile_name(gone, node.parent, &node.name);
            self.latest.remove(&node.changed);
            self.used -= node.bytes.map_or(0, |b| b.len() as u64);
            if gone != id {
                self.removed_with_parent.insert((node.changed, gone), seq);
            }
        }
        self.removed.push((seq, id));
    }

    /// Every item, depth first: parents before children, siblings by name.
    pub fn walk(&self) -> Vec<u64> {
        let mut by_parent: HashMap<Option<u64>, Vec<(&str, u64)>> = HashMap::new();
        for (id, node) in (1..).zip(&self.nodes) {
            if let Some(node) = node {
                by_parent
                    .entry(node.parent)
                    .or_default()
                    .push((&node.name, id));
            }
        }
        for children in by_parent.values_mut() {
            children.sort_unstable();
        }
        let mut out = Vec::with_capacity(self.nodes.len());
        depth_first(None, &by_parent, &mut out);
        out
    }

    /// The changes after sequence number `since`, oldest first; a folder's removal
    /// comes before the descendants it took along, those by id.
    pub fn changes_since(&self, since: u64) -> Vec<Change> {
        let after = since.saturating_add(1);
        // (sequence number, 0 for an item's own change or 1 for a descendant's removal, id)
        let mut out: Vec<(u64, u8, Change)> = self
            .latest
            .range(after..)
            .map(|(&seq, &id)| (seq, 0, Change::Upsert(id)))
            .collect();
        let first_removal = self.removed.partition_point(|&(seq, _)| seq <= since);
        out.extend(
            self.removed[first_removal..]
                .iter()
                .map(|&(seq, id)| (seq, 0, Change::Removed(id))),
        );
        out.extend(
            self.removed_with_parent
                .range((after, 0)..)
                .map(|(&(_, id), &seq)| (seq, 1, Change::Removed(id))),
        );
        out.sort_by_key(|&(seq, rank, ref change)| (seq, rank, change.id()));
        out.into_iter().map(|(_, _, c)| c).collect()
    }
}

impl Change {
    fn id(&self) -> u64 {
        match *self {
            Self::Upsert(id) | Self::Removed(id) => id,
        }
    }
}

fn depth_first(
    parent: Option<u64>,
    by_parent: &HashMap<Option<u64>, Vec<(&str, u64)>>,
    out: &mut Vec<u64>,
) {
    if let Some(children) = by_parent.get(&parent) {
        for &(_, id) in children {
            out.push(id);
            depth_first(Some(id), by_parent, out);
        }
    }
}
