//! What a person does to the drive outside the sync (reported by the change feed,
//! never counted as the sync's writes), and inspection helpers for tests.

use super::{InMemorySink, SERVICE, State};
use crate::error::{Error, Result};
use crate::model::{ArchivePath, SinkItemId};
use crate::sink::names;
use bytes::Bytes;
use std::fmt::Write as _;

fn parse(path: &str) -> Result<ArchivePath> {
    ArchivePath::parse(path).map_err(|e| rejected(e.to_string()))
}

fn rejected(message: String) -> Error {
    Error::Rejected {
        service: SERVICE,
        operation: "user action".into(),
        message,
    }
}

fn not_found(what: impl Into<String>) -> Error {
    Error::NotFound { what: what.into() }
}

impl State {
    /// The item at `path` and whether it is a folder.
    fn locate(&self, path: &ArchivePath) -> Result<(u64, bool)> {
        let id = self
            .drive
            .resolve(path)
            .ok_or_else(|| not_found(path.as_str()))?;
        let is_folder = self.drive.node(id).is_some_and(|n| n.is_folder());
        Ok((id, is_folder))
    }

    /// Fails when `name` is taken under `parent` by another item than `me`.
    fn ensure_free(&self, parent: Option<u64>, name: &str, me: Option<u64>) -> Result<()> {
        match self.drive.child(parent, name) {
            Some(other) if Some(other) != me => Err(Error::AlreadyExists { what: name.into() }),
            _ => Ok(()),
        }
    }

    /// Creates the folders of `path` that are missing (`mkdir -p`), returning the last.
    fn make_folders(&mut self, path: &ArchivePath) -> Result<Option<u64>> {
        let mut current = None;
        for name in path.names() {
            current = Some(match self.drive.child(current, name) {
                Some(id) if self.drive.node(id).is_some_and(|n| n.is_folder()) => id,
                Some(_) => return Err(Error::AlreadyExists { what: name.into() }),
                None => self.drive.insert(current, name, None),
            });
        }
        Ok(current)
    }
}

impl InMemorySink {
    /// A person deletes the file at `path` (case-insensitive).
    ///
    /// # Errors
    /// [`Error::NotFound`] when no file is there.
    pub fn delete_file_as_user(&self, path: &str) -> Result<()> {
        let path = parse(path)?;
        let mut state = self.state();
        match state.locate(&path)? {
            (id, false) => {
                state.drive.remove(id);
                Ok(())
            }
            (_, true) => Err(not_found(format!("file {path} (a folder is there)"))),
        }
    }

    /// A person edits the file at `path` in place (a spreadsheet saving it): same id,
    /// new bytes.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no file is there.
    pub fn edit_file_as_user(&self, path: &str, bytes: impl Into<Bytes>) -> Result<()> {
        let path = parse(path)?;
        let mut state = self.state();
        match state.locate(&path)? {
            (id, false) => {
                state.drive.replace_bytes(id, bytes.into());
                Ok(())
            }
            (_, true) => Err(not_found(format!("file {path} (a folder is there)"))),
        }
    }

    /// A person deletes the folder at `path` and everything in it. The change feed
    /// reports only the folder's own removal, never its children's.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no folder is there.
    pub fn delete_folder_as_user(&self, path: &str) -> Result<()> {
        let path = parse(path)?;
        let mut state = self.state();
        match state.locate(&path)? {
            (id, true) => {
                state.drive.remove(id);
                Ok(())
            }
            (_, false) => Err(not_found(format!("folder {path} (a file is there)"))),
        }
    }

    /// A person renames the file or folder at `path` to `new_name`, in place.
    ///
    /// # Errors
    /// [`Error::NotFound`] when nothing is there; [`Error::AlreadyExists`] when the
    /// name is taken.
    pub fn rename_as_user(&self, path: &str, new_name: &str) -> Result<()> {
        let path = parse(path)?;
        let target = names::renamed(&path, new_name, SERVICE)?;
        let mut state = self.state();
        let (id, _) = state.locate(&path)?;
        let parent = state.drive.node(id).and_then(|n| n.parent);
        state.ensure_free(parent, target.file_name(), Some(id))?;
        state.drive.relocate(id, parent, target.file_name());
        Ok(())
    }

    /// A person moves the file or folder at `path` into the folder `new_parent`
    /// (`""`: the archive root), keeping its name.
    ///
    /// # Errors
    /// [`Error::NotFound`] when either is missing; [`Error::AlreadyExists`] when the
    /// name is taken there; [`Error::Rejected`] when moving a folder into itself.
    pub fn move_as_user(&self, path: &str, new_parent: &str) -> Result<()> {
        let path = parse(path)?;
        let new_parent = if new_parent.is_empty() {
            None
        } else {
            Some(parse(new_parent)?)
        };
        if new_parent.as_ref().is_some_and(|p| p.starts_with(&path)) {
            return Err(rejected(format!("{path} cannot move into itself")));
        }
        let mut state = self.state();
        let (id, _) = state.locate(&path)?;
        let parent = state
            .drive
            .folder(new_parent.as_ref())
            .map_err(|()| not_found(format!("folder {new_parent:?}")))?;
        state.ensure_free(parent, path.file_name(), Some(id))?;
        state.drive.relocate(id, parent, path.file_name());
        Ok(())
    }

    /// A person adds a file at `path`, creating the folders above it that are missing.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when something is already there.
    pub fn add_user_file(&self, path: &str, bytes: impl Into<Bytes>) -> Result<()> {
        let path = parse(path)?;
        let mut state = self.state();
        let parent = match path.parent() {
            Some(folder) => state.make_folders(&folder)?,
            None => None,
        };
        state.ensure_free(parent, path.file_name(), None)?;
        state
            .drive
            .insert(parent, path.file_name(), Some(bytes.into()));
        Ok(())
    }

    /// A person creates the folder at `path` and any missing folder above it.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when a file is in the way.
    pub fn add_user_folder(&self, path: &str) -> Result<()> {
        let path = parse(path)?;
        self.state().make_folders(&path).map(|_| ())
    }

    /// The bytes of the file at `path` (case-insensitive), if a file is there.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        let path = ArchivePath::parse(path).ok()?;
        let state = self.state();
        let id = state.drive.resolve(&path)?;
        state.drive.node(id)?.bytes.as_ref().map(|b| b.to_vec())
    }

    /// Whether a file or folder is at `path` (case-insensitive).
    pub fn exists(&self, path: &str) -> bool {
        ArchivePath::parse(path).is_ok_and(|p| self.state().drive.resolve(&p).is_some())
    }

    /// The id the sink reports for the item at `path`.
    pub fn id_of(&self, path: &str) -> Option<SinkItemId> {
        let path = ArchivePath::parse(path).ok()?;
        let state = self.state();
        state.item_id(state.drive.resolve(&path)?)
    }

    /// Every file with its bytes, sorted by path.
    pub fn files(&self) -> Vec<(ArchivePath, Vec<u8>)> {
        let state = self.state();
        let mut out: Vec<(ArchivePath, Vec<u8>)> = state
            .drive
            .walk()
            .into_iter()
            .filter_map(|id| {
                let bytes = state.drive.node(id)?.bytes.as_ref()?;
                Some((state.drive.path_of(id)?, bytes.to_vec()))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The whole drive as an indented listing, folders ending in `/`, files with their
    /// size, siblings by name: for test failure messages.
    pub fn tree(&self) -> String {
        let state = self.state();
        let mut out = String::new();
        for id in state.drive.walk() {
            let (Some(node), Some(path)) = (state.drive.node(id), state.drive.path_of(id)) else {
                continue;
            };
            let indent = "  ".repeat(path.depth() - 1);
            let _ = match &node.bytes {
                None => writeln!(out, "{indent}{}/", node.name),
                Some(b) => writeln!(out, "{indent}{} ({} B)", node.name, b.len()),
            };
        }
        out
    }
}
