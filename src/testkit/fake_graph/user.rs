//! What a test does to the fake drive as its user would (delete, rename, move, add files),
//! and what it inspects (files with their bytes, the tree, ids).

use super::drive::{Conflict, Kind};
use super::{FakeGraph, State};
use bytes::Bytes;
use std::collections::BTreeMap;

impl FakeGraph {
    /// The drive path of `relative` inside the app folder: `Apps/<app name>/<relative>`.
    pub fn app_path(&self, relative: &str) -> String {
        let app = self.lock().drive.app_name.clone();
        if relative.is_empty() {
            format!("Apps/{app}")
        } else {
            format!("Apps/{app}/{relative}")
        }
    }

    fn find(state: &State, path: &str) -> Option<String> {
        let names: Vec<String> = path
            .split('/')
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        state.drive.resolve(&state.drive.root_id, &names).ok()
    }

    /// The id of the item at `path` (from the drive root).
    pub fn id_of(&self, path: &str) -> Option<String> {
        Self::find(&self.lock(), path)
    }

    /// Deletes the file or folder at `path` as the user would (delta reports it).
    pub fn delete_as_user(&self, path: &str) -> bool {
        let mut state = self.lock();
        Self::find(&state, path).is_some_and(|id| state.drive.delete(&id).is_ok())
    }

    /// Renames the item at `path` as the user would.
    pub fn rename_as_user(&self, path: &str, new_name: &str) -> bool {
        let mut state = self.lock();
        Self::find(&state, path)
            .is_some_and(|id| state.drive.update(&id, Some(new_name), None).is_ok())
    }

    /// Moves the item at `path` into the folder at `new_parent` (`""`: the drive root).
    pub fn move_as_user(&self, path: &str, new_parent: &str) -> bool {
        let mut state = self.lock();
        match (Self::find(&state, path), Self::find(&state, new_parent)) {
            (Some(id), Some(parent)) => state.drive.update(&id, None, Some(&parent)).is_ok(),
            _ => false,
        }
    }

    /// Adds a folder at `path` (and its missing parents) as the user would; its id.
    pub fn add_user_folder(&self, path: &str) -> Option<String> {
        let mut state = self.lock();
        let names: Vec<String> = path
            .split('/')
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        if path.starts_with("Apps/") {
            state.drive.approot();
        }
        let root = state.drive.root_id.clone();
        state.drive.ensure_folders(&root, &names).ok()
    }

    /// Adds (or replaces) a file at `path` as the user would; its id.
    pub fn add_user_file(&self, path: &str, bytes: impl Into<Bytes>) -> Option<String> {
        let (parent, name) = match path.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => ("", path),
        };
        let parent_id = if parent.is_empty() {
            self.lock().drive.root_id.clone()
        } else {
            self.add_user_folder(parent)?
        };
        let mut state = self.lock();
        state
            .drive
            .put_file(&parent_id, name, bytes.into(), Conflict::Replace)
            .ok()
            .map(|(id, _)| id)
    }

    /// The bytes of the file at `path`.
    pub fn file(&self, path: &str) -> Option<Bytes> {
        let state = self.lock();
        let id = Self::find(&state, path)?;
        match &state.drive.get(&id)?.kind {
            Kind::File(bytes) => Some(bytes.clone()),
            Kind::Folder => None,
        }
    }

    /// Every file of the drive with its bytes, by path from the drive root.
    pub fn files(&self) -> BTreeMap<String, Bytes> {
        let state = self.lock();
        let drive = &state.drive;
        drive
            .subtree(&drive.root_id)
            .into_iter()
            .filter_map(|n| match &n.kind {
                Kind::File(bytes) => Some((drive.path_of(&n.id), bytes.clone())),
                Kind::Folder => None,
            })
            .collect()
    }

    /// Every path of the drive, folders with a trailing `/`, sorted.
    pub fn tree(&self) -> Vec<String> {
        let state = self.lock();
        let drive = &state.drive;
        let mut out: Vec<String> = drive
            .subtree(&drive.root_id)
            .into_iter()
            .map(|n| {
                let path = drive.path_of(&n.id);
                if n.is_folder() {
                    format!("{path}/")
                } else {
                    path
                }
            })
            .collect();
        out.sort();
        out
    }
}
