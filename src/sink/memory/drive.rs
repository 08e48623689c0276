//! The in-memory drive itself: a tree of items with ids that are never reused,
//! case-insensitive names, and a change feed in the manner of OneDrive's delta
//! (onedrive-graph.md §4: the latest state of each changed item, not each change;
//! renaming a folder reports the folder alone).

use crate::model::ArchivePath;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};

/// One file or folder.
#[derive(Clone, Debug)]
pub(super) struct Node {
    pub parent: Option<u64>,
    pub name: String,
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

#[derive(Debug, Default)]
pub(super) struct Drive {
    nodes: BTreeMap<u64, Node>,
    /// (parent, lower-case name) → item: OneDrive names are case-insensitive (§7).
    names: HashMap<(Option<u64>, String), u64>,
    next_id: u64,
    seq: u64,
    /// Items whose deletion the feed reports, with the sequence number of the deletion.
    removed: Vec<(u64, u64)>,
    /// Descendants removed with a folder: `(their last change, the removal, id)`.
    /// The feed reports one only to a reader whose cursor predates its last change
    /// (it moved in, say): the latest state of an item that changed is "deleted",
    /// while unchanged descendants are covered by the folder's tombstone alone.
    removed_with_parent: Vec<(u64, u64, u64)>,
    used: u64,
}

fn key(parent: Option<u64>, name: &str) -> (Option<u64>, String) {
    (parent, name.to_lowercase())
}

impl Drive {
    /// The sequence number of the last change.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Bytes held by files.
    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn node(&self, id: u64) -> Option<&Node> {
        self.nodes.get(&id)
    }

    /// The child of `parent` called `name`, case-insensitively.
    pub fn child(&self, parent: Option<u64>, name: &str) -> Option<u64> {
        self.names.get(&key(parent, name)).copied()
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
            Some(id) if self.nodes.get(&id).is_some_and(Node::is_folder) => Ok(Some(id)),
            _ => Err(()),
        }
    }

    /// The item's path, with its names as stored.
    pub fn path_of(&self, id: u64) -> Option<ArchivePath> {
        let mut names = Vec::new();
        let mut current = Some(id);
        while let Some(cur) = current {
            let node = self.nodes.get(&cur)?;
            names.push(node.name.as_str());
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
        self.next_id += 1;
        let id = self.next_id;
        let changed = self.tick();
        self.used += bytes.as_ref().map_or(0, |b| b.len() as u64);
        self.names.insert(key(parent, name), id);
        self.nodes.insert(
            id,
            Node {
                parent,
                name: name.to_owned(),
                bytes,
                changed,
            },
        );
        id
    }

    /// Replaces a file's bytes in place (same id), as a change the feed reports.
    pub fn replace_bytes(&mut self, id: u64, bytes: Bytes) {
        let changed = self.tick();
        if let Some(node) = self.nodes.get_mut(&id) {
            let old = node.bytes.as_ref().map_or(0, |b| b.len() as u64);
            self.used = self.used - old + bytes.len() as u64;
            node.bytes = Some(bytes);
            node.changed = changed;
        }
    }

    /// Renames and/or moves an item; the caller has checked that the target name is free.
    pub fn relocate(&mut self, id: u64, parent: Option<u64>, name: &str) {
        let changed = self.tick();
        if let Some(node) = self.nodes.get_mut(&id) {
            let old = key(node.parent, &node.name);
            node.parent = parent;
            node.name = name.to_owned();
            node.changed = changed;
            self.names.remove(&old);
            self.names.insert(key(parent, name), id);
        }
    }

    /// Removes an item and everything under it. The feed reports the item alone:
    /// a deleted folder's children get no tombstones of their own, the hard case
    /// OneDrive's delta leaves to the caller (§4 "Deleted items").
    pub fn remove(&mut self, id: u64) {
        let Some(node) = self.nodes.get(&id) else {
            return;
        };
        self.names.remove(&key(node.parent, &node.name));
        // One pass: an item is doomed when `id` is on its chain of parents.
        let doomed: Vec<u64> = self
            .nodes
            .keys()
            .copied()
            .filter(|&candidate| {
                let mut current = Some(candidate);
                while let Some(cur) = current {
                    if cur == id {
                        return true;
                    }
                    current = self.nodes.get(&cur).and_then(|n| n.parent);
                }
                false
            })
            .collect();
        let seq = self.tick();
        for gone in doomed {
            if let Some(node) = self.nodes.remove(&gone) {
                self.names.remove(&key(node.parent, &node.name));
                self.used -= node.bytes.map_or(0, |b| b.len() as u64);
                if gone != id {
                    self.removed_with_parent.push((node.changed, seq, gone));
                }
            }
        }
        self.removed.push((seq, id));
    }

    /// Every item, depth first: parents before children, siblings by name.
    pub fn walk(&self) -> Vec<u64> {
        let mut by_parent: HashMap<Option<u64>, Vec<(&str, u64)>> = HashMap::new();
        for (&id, node) in &self.nodes {
            by_parent
                .entry(node.parent)
                .or_default()
                .push((&node.name, id));
        }
        for children in by_parent.values_mut() {
            children.sort_unstable();
        }
        let mut out = Vec::with_capacity(self.nodes.len());
        depth_first(None, &by_parent, &mut out);
        out
    }

    /// The changes after sequence number `since`, oldest first.
    pub fn changes_since(&self, since: u64) -> Vec<Change> {
        let mut out: Vec<(u64, Change)> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.changed > since)
            .map(|(&id, n)| (n.changed, Change::Upsert(id)))
            .collect();
        out.extend(
            self.removed
                .iter()
                .filter(|(seq, _)| *seq > since)
                .map(|&(seq, id)| (seq, Change::Removed(id))),
        );
        out.extend(
            self.removed_with_parent
                .iter()
                .filter(|(last_change, _, _)| *last_change > since)
                .map(|&(_, seq, id)| (seq, Change::Removed(id))),
        );
        out.sort_by_key(|(seq, _)| *seq);
        out.into_iter().map(|(_, c)| c).collect()
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
