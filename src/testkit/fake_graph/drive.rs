//! The fake drive's state: items by id, tombstones and moves for delta, quota, shares.

use bytes::Bytes;
use std::collections::HashMap;

/// A refusal, rendered as a Graph error body.
#[derive(Clone, Debug)]
pub(crate) struct DriveError {
    pub status: u16,
    pub code: &'static str,
    pub inner: Option<&'static str>,
    pub message: String,
}

impl DriveError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            inner: None,
            message: message.into(),
        }
    }

    pub fn with_inner(mut self, inner: &'static str) -> Self {
        self.inner = Some(inner);
        self
    }

    pub fn not_found() -> Self {
        Self::new(404, "itemNotFound", "The resource could not be found.")
    }

    pub fn name_taken() -> Self {
        Self::new(
            409,
            "nameAlreadyExists",
            "The specified item name already exists.",
        )
    }
}

pub(crate) type DriveResult<T> = Result<T, DriveError>;

/// What to do when a name is taken (`@microsoft.graph.conflictBehavior`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conflict {
    Fail,
    Replace,
    Rename,
}

impl Conflict {
    pub fn parse(value: Option<&str>, default: Conflict) -> DriveResult<Conflict> {
        match value.map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("fail") => Ok(Conflict::Fail),
            Some("replace") => Ok(Conflict::Replace),
            Some("rename") => Ok(Conflict::Rename),
            Some(_) => Err(DriveError::new(
                400,
                "invalidRequest",
                "Unknown conflictBehavior.",
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Folder,
    File(Bytes),
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub id: String,
    pub name: String,
    pub parent: Option<String>,
    pub kind: Kind,
    /// Bumped on every change (eTag).
    pub version: u64,
    /// The change sequence number of the last change (delta).
    pub seq: u64,
    pub special: bool,
}

impl Node {
    pub fn is_folder(&self) -> bool {
        matches!(self.kind, Kind::Folder)
    }
}

/// A deleted item, remembered for delta.
#[derive(Clone, Debug)]
pub(crate) struct Tombstone {
    pub id: String,
    pub name: String,
    pub parent: Option<String>,
    pub was_folder: bool,
    pub seq: u64,
    /// Its ancestors when it was deleted (for folder-scoped delta).
    pub ancestors: Vec<String>,
    /// For a descendant of a deleted folder (when tombstones do not cascade): its last
    /// change before the deletion. A reader whose cursor predates that change (the item
    /// moved in, say) is told of its deletion, since delta reports the latest state of
    /// every item that changed; other descendants are covered by the folder's tombstone.
    pub only_if_changed_after: Option<u64>,
}

/// An item that moved, with where it was (delta reports it to the folder it left).
#[derive(Clone, Debug)]
pub(crate) struct Moved {
    pub id: String,
    pub seq: u64,
    pub old_ancestors: Vec<String>,
}

/// One share on an item.
#[derive(Clone, Debug)]
pub(crate) struct Perm {
    pub id: String,
    pub roles: Vec<String>,
    pub link: Option<(String, String)>,
    pub email: Option<String>,
}

pub(crate) struct Drive {
    pub drive_id: String,
    pub root_id: String,
    pub app_name: String,
    pub nodes: HashMap<String, Node>,
    next_id: u64,
    pub seq: u64,
    /// Delta tokens of an older epoch get a 410.
    pub epoch: u64,
    pub tombstones: Vec<Tombstone>,
    pub moves: Vec<Moved>,
    pub quota_total: u64,
    pub reserved_names: bool,
    pub cascade_tombstones: bool,
    approot: Option<String>,
    pub perms: HashMap<String, Vec<Perm>>,
}

impl Drive {
    pub fn new(app_name: &str, quota_total: u64) -> Self {
        let drive_id = "f4ke0000d21ve001".to_owned();
        let root_id = format!("{}!root", drive_id.to_uppercase());
        let mut nodes = HashMap::new();
        nodes.insert(
            root_id.clone(),
            Node {
                id: root_id.clone(),
                name: "root".into(),
                parent: None,
                kind: Kind::Folder,
                version: 1,
                seq: 0,
                special: false,
            },
        );
        Self {
            drive_id,
            root_id,
            app_name: app_name.to_owned(),
            nodes,
            next_id: 100,
            seq: 0,
            epoch: 1,
            tombstones: Vec::new(),
            moves: Vec::new(),
            quota_total,
            reserved_names: true,
            cascade_tombstones: false,
            approot: None,
            perms: HashMap::new(),
        }
    }

    pub(super) fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{}!s{:08x}", self.drive_id.to_uppercase(), self.next_id)
    }

    pub(super) fn bump(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn get(&self, id: &str) -> Option<&Node> {
        // `root` is an alias of the drive root, as on Graph.
        if id.eq_ignore_ascii_case("root") {
            return self.nodes.get(&self.root_id);
        }
        self.nodes.get(id)
    }

    pub fn canonical_id(&self, id: &str) -> DriveResult<String> {
        self.get(id)
            .map(|n| n.id.clone())
            .ok_or_else(DriveError::not_found)
    }

    /// The ids above `id`, nearest first, up to the drive root.
    pub fn ancestors(&self, id: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut current = self.nodes.get(id).and_then(|n| n.parent.clone());
        while let Some(p) = current {
            if out.len() > 256 {
                break;
            }
            current = self.nodes.get(&p).and_then(|n| n.parent.clone());
            out.push(p);
        }
        out
    }

    pub fn is_within(&self, id: &str, folder: &str) -> bool {
        id == folder || self.ancestors(id).iter().any(|a| a == folder)
    }

    /// The path from the drive root (`""` for the root itself).
    pub fn path_of(&self, id: &str) -> String {
        let mut names = Vec::new();
        let mut current = self.nodes.get(id);
        while let Some(node) = current {
            if node.parent.is_none() || names.len() > 256 {
                break;
            }
            names.push(node.name.as_str());
            current = node.parent.as_deref().and_then(|p| self.nodes.get(p));
        }
        names.reverse();
        names.join("/")
    }

    pub fn children(&self, parent: &str) -> Vec<&Node> {
        let mut kids: Vec<&Node> = self
            .nodes
            .values()
            .filter(|n| n.parent.as_deref() == Some(parent))
            .collect();
        kids.sort_by_key(|n| n.name.to_lowercase());
        kids
    }

    /// A child by name, case-insensitively (OneDrive is case-insensitive, §7).
    pub fn child(&self, parent: &str, name: &str) -> Option<&Node> {
        let lower = name.to_lowercase();
        self.nodes
            .values()
            .find(|n| n.parent.as_deref() == Some(parent) && n.name.to_lowercase() == lower)
    }

    pub fn resolve(&self, base: &str, path: &[String]) -> DriveResult<String> {
        let mut current = self.canonical_id(base)?;
        for name in path {
            current = self
                .child(&current, name)
                .map(|n| n.id.clone())
                .ok_or_else(DriveError::not_found)?;
        }
        Ok(current)
    }

    pub fn size_of(&self, id: &str) -> u64 {
        match self.nodes.get(id).map(|n| &n.kind) {
            Some(Kind::File(bytes)) => bytes.len() as u64,
            Some(Kind::Folder) => self.children(id).iter().map(|c| self.size_of(&c.id)).sum(),
            None => 0,
        }
    }

    pub fn used(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| match &n.kind {
                Kind::File(b) => b.len() as u64,
                Kind::Folder => 0,
            })
            .sum()
    }

    pub fn remaining(&self) -> u64 {
        self.quota_total.saturating_sub(self.used())
    }

    pub fn approot_id(&self) -> Option<&str> {
        self.approot
            .as_deref()
            .filter(|id| self.nodes.contains_key(*id))
    }

    /// The app folder, created (with `Apps`) on first access (onedrive-graph.md §2).
    pub fn approot(&mut self) -> String {
        if let Some(id) = self.approot_id() {
            return id.to_owned();
        }
        let root = self.root_id.clone();
        let apps = match self.child(&root, "Apps") {
            Some(n) => n.id.clone(),
            None => self.insert(&root, "Apps", Kind::Folder),
        };
        let app_name = self.app_name.clone();
        let id = match self.child(&apps, &app_name) {
            Some(n) => n.id.clone(),
            None => self.insert(&apps, &app_name, Kind::Folder),
        };
        if let Some(node) = self.nodes.get_mut(&id) {
            node.special = true;
        }
        self.approot = Some(id.clone());
        id
    }

    /// Every item under `folder` (itself excluded), breadth first: parents before children.
    pub fn subtree(&self, folder: &str) -> Vec<&Node> {
        let mut out: Vec<&Node> = Vec::new();
        let mut queue = std::collections::VecDeque::from([folder.to_owned()]);
        while let Some(current) = queue.pop_front() {
            for kid in self.children(&current) {
                if kid.is_folder() {
                    queue.push_back(kid.id.clone());
                }
                out.push(kid);
            }
        }
        out
    }
}
