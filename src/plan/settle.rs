//! Folder renames the sync asked for but never saw recorded, settled from what the
//! archive shows, before anything is planned.
//!
//! The executor records [`StateChange::FolderRenameStarted`] before it asks the sink to
//! rename a folder, and [`StateChange::FolderRenamed`] once the sink answers. A crash,
//! or a journal append that fails, between the two leaves the folder renamed in the
//! archive but not in the records. With stable ids the records still find their files,
//! under stale paths; on a sink whose ids are paths the renamed folder looks exactly like
//! one the user deleted (rule 2 of [`reconcile`](mod@super::reconcile)), and every receipt
//! below it would be tombstoned. So the first scan after such a gap settles each pending
//! rename: it is recorded as done, or forgotten.
//!
//! # The flow, for each pending rename
//! 1. **Sinks with stable ids** follow the folder's id.
//!    - It is in the archive, at a place other than `from` (at `to`, or wherever the
//!      user moved it since): the rename happened → record it, to where the folder is.
//!    - It is still at `from`, or gone: the rename did not happen, or the user deleted
//!      the folder → forget it.
//! 2. **Sinks whose ids are paths** look at both places.
//!    - A folder at `to` and nothing at `from`: the rename happened → record it.
//!    - Anything else (still at `from`; at neither: deleted by the user; at both) →
//!      forget it.
//!
//! A forgotten rename changes nothing: the deletion rules then judge the archive as it
//! is, exactly as they would have without the rename.
//!
//! # Guarantees
//! - Pure: the same state gives the same changes.
//! - Every pending rename is settled, one way or the other, by the first scan after it.
//! - Only the sync's own renames are followed: a folder the user renamed by hand has no
//!   pending rename, so on sinks whose ids are paths it still looks deleted (the blind
//!   spot [`reconcile`](mod@super::reconcile) documents), never adopted by guess.
//!
//! # Assumptions
//! - The snapshot is complete: the scan has just run.
//! - The place `to` was free when the rename was planned (the planner checks it), so on
//!   a sink whose ids are paths a folder there, with nothing left at `from`, is the
//!   renamed one.
//! - Renamed folders are account folders: siblings at the top of the archive, so one
//!   rename never moves another's `from` or `to`.

use crate::model::{ArchivePath, ArchiveSnapshot, EntryKind, PathIndex, SinkEntry, SinkItemId};
use crate::state::{PendingRename, StateChange, SyncState};

/// The changes that settle every pending rename of `state`; see the module docs.
pub fn settle_renames(state: &SyncState) -> Vec<StateChange> {
    if state.pending_renames.is_empty() {
        return Vec::new();
    }
    let index = state.snapshot.path_index();
    state
        .pending_renames
        .iter()
        .map(|pending| settle(pending, &state.snapshot, &index))
        .collect()
}

fn settle(pending: &PendingRename, snapshot: &ArchiveSnapshot, index: &PathIndex) -> StateChange {
    let renamed = if pending.ids_are_paths {
        renamed_by_path(pending, index)
    } else {
        renamed_by_id(pending, snapshot, index)
    };
    match renamed {
        Some((to, entry)) => StateChange::FolderRenamed {
            from: pending.from.clone(),
            to,
            entry,
            ids_are_paths: pending.ids_are_paths,
        },
        None => StateChange::FolderRenameAbandoned(pending.clone()),
    }
}

/// Where the folder is now, if it moved away from `from`.
fn renamed_by_id(
    pending: &PendingRename,
    snapshot: &ArchiveSnapshot,
    index: &PathIndex,
) -> Option<(ArchivePath, SinkEntry)> {
    if snapshot.kind(&pending.folder) != Some(EntryKind::Folder) {
        return None;
    }
    let now = snapshot.path_of(&pending.folder)?;
    if now == pending.from {
        return None;
    }
    let entry = folder_entry(pending.folder.clone(), &now, index)?;
    Some((now, entry))
}

/// `to`, if a folder is there and nothing is left at `from`.
fn renamed_by_path(pending: &PendingRename, index: &PathIndex) -> Option<(ArchivePath, SinkEntry)> {
    if index.get(&pending.from).is_some() {
        return None;
    }
    let (id, EntryKind::Folder) = index.get(&pending.to)? else {
        return None;
    };
    let entry = folder_entry(id.clone(), &pending.to, index)?;
    Some((pending.to.clone(), entry))
}

/// The folder `id` at `path`, as the sink would report it.
fn folder_entry(id: SinkItemId, path: &ArchivePath, index: &PathIndex) -> Option<SinkEntry> {
    let parent = match path.parent() {
        Some(parent) => Some(index.get(&parent)?.0.clone()),
        None => None,
    };
    Some(SinkEntry {
        id,
        parent,
        name: path.file_name().to_owned(),
        kind: EntryKind::Folder,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> ArchivePath {
        ArchivePath::parse(path).unwrap()
    }

    fn folder(id: &str, name: &str) -> SinkEntry {
        SinkEntry {
            id: SinkItemId::new(id),
            parent: None,
            name: name.into(),
            kind: EntryKind::Folder,
        }
    }

    fn state_with(entries: Vec<SinkEntry>, ids_are_paths: bool, folder: &str) -> SyncState {
        SyncState {
            snapshot: ArchiveSnapshot::from_entries(entries),
            pending_renames: vec![PendingRename {
                folder: SinkItemId::new(folder),
                from: p("Main"),
                to: p("Business"),
                ids_are_paths,
            }],
            ..SyncState::default()
        }
    }

    fn outcome(state: &SyncState) -> Option<ArchivePath> {
        match settle_renames(state).as_slice() {
            [
                StateChange::FolderRenamed {
                    from, to, entry, ..
                },
            ] => {
                assert_eq!(from, &p("Main"));
                assert_eq!(entry.name, to.file_name());
                Some(to.clone())
            }
            [StateChange::FolderRenameAbandoned(pending)] => {
                assert_eq!(Some(pending), state.pending_renames.first());
                None
            }
            other => panic!("one change per pending rename, got {other:?}"),
        }
    }

    #[test]
    fn with_stable_ids_the_folder_id_says_where_it_went() {
        let at = |name: &str| state_with(vec![folder("f1", name)], false, "f1");
        assert_eq!(outcome(&at("Business")), Some(p("Business")));
        assert_eq!(outcome(&at("Moved by hand")), Some(p("Moved by hand")));
        assert_eq!(outcome(&at("Main")), None, "not renamed");
        assert_eq!(outcome(&state_with(vec![], false, "f1")), None, "deleted");
    }

    #[test]
    fn with_path_ids_the_folder_must_have_left_from_for_to() {
        let with = |names: &[&str]| {
            let entries = names.iter().map(|n| folder(n, n)).collect();
            state_with(entries, true, "Main")
        };
        assert_eq!(outcome(&with(&["Business"])), Some(p("Business")));
        assert_eq!(outcome(&with(&["Main"])), None, "not renamed");
        assert_eq!(outcome(&with(&["Main", "Business"])), None, "both there");
        assert_eq!(outcome(&with(&[])), None, "deleted by the user");
    }

    #[test]
    fn nothing_pending_nothing_to_settle() {
        assert!(settle_renames(&SyncState::default()).is_empty());
    }
}
