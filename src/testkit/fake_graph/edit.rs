//! Changes to the fake drive: creating, writing, renaming, moving and deleting items, with
//! OneDrive's naming rules, conflict behaviours and quota.

use super::drive::{Conflict, Drive, DriveError, DriveResult, Kind, Moved, Node, Tombstone};
use super::names::{MAX_PATH_LEN, check_name};
use bytes::Bytes;

impl Drive {
    pub(super) fn insert(&mut self, parent: &str, name: &str, kind: Kind) -> String {
        let id = self.new_id();
        let seq = self.bump();
        self.nodes.insert(
            id.clone(),
            Node {
                id: id.clone(),
                name: name.to_owned(),
                parent: Some(parent.to_owned()),
                kind,
                version: 1,
                seq,
                special: false,
            },
        );
        id
    }

    pub fn validate_new(&self, parent: &str, name: &str) -> DriveResult<()> {
        if let Some(why) = check_name(name, self.reserved_names) {
            return Err(DriveError::new(400, "invalidRequest", why).with_inner("invalidPath"));
        }
        let parent_path = self.path_of(parent);
        let full = if parent_path.is_empty() {
            name.encode_utf16().count()
        } else {
            parent_path.encode_utf16().count() + 1 + name.encode_utf16().count()
        };
        if full >= MAX_PATH_LEN {
            return Err(
                DriveError::new(400, "invalidRequest", "The path is too long.")
                    .with_inner("pathIsTooLong"),
            );
        }
        Ok(())
    }

    fn parent_folder(&self, parent: &str) -> DriveResult<String> {
        match self.get(parent) {
            Some(n) if n.is_folder() => Ok(n.id.clone()),
            Some(_) => Err(DriveError::new(
                400,
                "invalidRequest",
                "The parent is not a folder.",
            )),
            None => Err(DriveError::not_found()),
        }
    }

    /// A free name for `rename`: "name 1", files "name 1.ext" (onedrive-graph.md §2).
    fn free_name(&self, parent: &str, name: &str, folder: bool) -> String {
        let (stem, ext) = match name.rfind('.') {
            Some(i) if !folder && i > 0 => (&name[..i], &name[i..]),
            _ => (name, ""),
        };
        (1..)
            .map(|n| format!("{stem} {n}{ext}"))
            .find(|candidate| self.child(parent, candidate).is_none())
            .unwrap_or_else(|| name.to_owned())
    }

    /// Creates a folder; `Ok((id, created))`.
    pub fn create_folder(
        &mut self,
        parent: &str,
        name: &str,
        conflict: Conflict,
    ) -> DriveResult<(String, bool)> {
        let parent = self.parent_folder(parent)?;
        self.validate_new(&parent, name)?;
        if let Some(existing) = self.child(&parent, name) {
            return match conflict {
                Conflict::Fail => Err(DriveError::name_taken()),
                Conflict::Replace if existing.is_folder() => Ok((existing.id.clone(), false)),
                Conflict::Replace => Err(DriveError::name_taken()),
                Conflict::Rename => {
                    let free = self.free_name(&parent, name, true);
                    Ok((self.insert(&parent, &free, Kind::Folder), true))
                }
            };
        }
        Ok((self.insert(&parent, name, Kind::Folder), true))
    }

    /// Creates every missing folder of `path` under `base` (simple PUT creates parents, §2).
    pub fn ensure_folders(&mut self, base: &str, path: &[String]) -> DriveResult<String> {
        let mut current = self.canonical_id(base)?;
        for name in path {
            current = match self.child(&current, name) {
                Some(n) if n.is_folder() => n.id.clone(),
                Some(_) => return Err(DriveError::name_taken()),
                None => self.create_folder(&current, name, Conflict::Fail)?.0,
            };
        }
        Ok(current)
    }

    /// Writes a file; `Ok((id, created))`. Checks the quota (507 when full, §5).
    pub fn put_file(
        &mut self,
        parent: &str,
        name: &str,
        bytes: Bytes,
        conflict: Conflict,
    ) -> DriveResult<(String, bool)> {
        let parent = self.parent_folder(parent)?;
        self.validate_new(&parent, name)?;
        let existing = self
            .child(&parent, name)
            .map(|n| (n.id.clone(), n.is_folder(), self.size_of(&n.id)));
        let freed = match (&existing, conflict) {
            (Some((_, false, size)), Conflict::Replace) => *size,
            _ => 0,
        };
        if self.used() - freed + bytes.len() as u64 > self.quota_total {
            return Err(DriveError::new(
                507,
                "quotaLimitReached",
                "Insufficient Space Available",
            ));
        }
        match existing {
            None => Ok((self.insert(&parent, name, Kind::File(bytes)), true)),
            Some(_) if conflict == Conflict::Fail => Err(DriveError::name_taken()),
            Some((_, true, _)) if conflict == Conflict::Replace => Err(DriveError::name_taken()),
            Some((id, _, _)) if conflict == Conflict::Replace => {
                self.replace_content(&id, bytes)?;
                Ok((id, false))
            }
            Some(_) => {
                let free = self.free_name(&parent, name, false);
                Ok((self.insert(&parent, &free, Kind::File(bytes)), true))
            }
        }
    }

    pub fn replace_content(&mut self, id: &str, bytes: Bytes) -> DriveResult<()> {
        let seq = self.bump();
        let node = self.nodes.get_mut(id).ok_or_else(DriveError::not_found)?;
        if node.is_folder() {
            return Err(DriveError::new(
                400,
                "invalidRequest",
                "A folder has no content.",
            ));
        }
        node.kind = Kind::File(bytes);
        node.version += 1;
        node.seq = seq;
        Ok(())
    }

    /// Renames and/or moves an item (PATCH).
    pub fn update(
        &mut self,
        id: &str,
        name: Option<&str>,
        new_parent: Option<&str>,
    ) -> DriveResult<()> {
        let id = self.canonical_id(id)?;
        if id == self.root_id {
            return Err(DriveError::new(
                403,
                "accessDenied",
                "The root cannot be changed.",
            ));
        }
        let node = self
            .nodes
            .get(&id)
            .cloned()
            .ok_or_else(DriveError::not_found)?;
        let parent = match new_parent {
            Some(p) => self.parent_folder(p)?,
            None => node.parent.clone().unwrap_or_default(),
        };
        if self.is_within(&parent, &id) {
            return Err(DriveError::new(
                400,
                "invalidRequest",
                "A folder cannot move into itself.",
            ));
        }
        let name = name.unwrap_or(&node.name).to_owned();
        self.validate_new(&parent, &name)?;
        if let Some(other) = self.child(&parent, &name)
            && other.id != id
        {
            return Err(DriveError::name_taken());
        }
        if node.parent.as_deref() != Some(parent.as_str()) {
            let old_ancestors = self.ancestors(&id);
            let seq = self.seq + 1;
            self.moves.push(Moved {
                id: id.clone(),
                seq,
                old_ancestors,
            });
        }
        let seq = self.bump();
        if let Some(node) = self.nodes.get_mut(&id) {
            node.name = name;
            node.parent = Some(parent);
            node.version += 1;
            node.seq = seq;
        }
        Ok(())
    }

    /// Deletes an item and everything under it. A folder leaves one tombstone of its own,
    /// or one per descendant too when `cascade_tombstones` (onedrive-graph.md §4, §12.4).
    pub fn delete(&mut self, id: &str) -> DriveResult<()> {
        let id = self.canonical_id(id)?;
        if id == self.root_id {
            return Err(DriveError::new(
                403,
                "accessDenied",
                "The root cannot be deleted.",
            ));
        }
        let mut doomed = vec![id.clone()];
        let mut i = 0;
        while let Some(current) = doomed.get(i).cloned() {
            doomed.extend(self.children(&current).iter().map(|c| c.id.clone()));
            i += 1;
        }
        let seq = self.bump();
        for (n, victim) in doomed.iter().enumerate() {
            let ancestors = self.ancestors(victim);
            if let Some(node) = self.nodes.get(victim) {
                let own = n == 0 || self.cascade_tombstones;
                self.tombstones.push(Tombstone {
                    id: node.id.clone(),
                    name: node.name.clone(),
                    parent: node.parent.clone(),
                    was_folder: node.is_folder(),
                    seq,
                    ancestors,
                    only_if_changed_after: (!own).then_some(node.seq),
                });
            }
        }
        for victim in &doomed {
            self.nodes.remove(victim);
            self.perms.remove(victim);
        }
        Ok(())
    }
}
