//! Pure: the indexes a dry run would write, so that the dry run shows them too.
//!
//! A pass plans the indexes from the state its receipts' actions left
//! ([`super::index`]). A dry run carries out no action, so the same state is made
//! here: the plan's actions are applied to a copy of the state as if each succeeded,
//! with stand-in ids for the items they would create, and the indexes are planned from
//! that copy.
//!
//! # Assumptions
//! Every action succeeds. A stand-in id (`planned:<path>`) never matches a recorded
//! one, so it never hides a deletion or an edit; it only ever names an item the plan
//! creates.

use super::{Action, IndexPlan, Plan, folder_ids_of, plan_indexes};
use crate::index::IndexSettings;
use crate::layout::Layout;
use crate::model::{ArchivePath, EntryKind, SinkEntry, SinkItemId};
use crate::state::{ExportRecord, StateChange, SyncState, Tombstone, TombstoneReason};
use chrono::{DateTime, NaiveDate};

/// The indexes a pass would write after carrying out `plan` on `state`.
pub fn preview_indexes(
    state: &SyncState,
    plan: &Plan,
    layout: &Layout,
    start_date: Option<NaiveDate>,
    include_declined: bool,
    settings: &IndexSettings,
) -> IndexPlan {
    if !settings.enabled {
        return IndexPlan::default();
    }
    let done = as_if_done(state, plan);
    plan_indexes(&done, layout, start_date, include_declined, settings)
}

/// `state` as it would be once every action of `plan` succeeded.
pub fn as_if_done(state: &SyncState, plan: &Plan) -> SyncState {
    let mut state = state.clone();
    // No clock in the planner: the time of a record does not decide any index.
    let at = DateTime::UNIX_EPOCH;
    for action in &plan.actions {
        let changes = match action {
            Action::Tombstone {
                receipt,
                path,
                folder,
            } => vec![StateChange::Tombstoned {
                receipt: receipt.clone(),
                tombstone: Tombstone {
                    reason: TombstoneReason::FolderDeleted {
                        folder: folder.clone(),
                    },
                    path: path.clone(),
                    at,
                },
            }],
            Action::RenameFolder {
                folder, from, to, ..
            } => {
                let Some(entry) = entry(&state, to, folder.clone(), EntryKind::Folder) else {
                    continue;
                };
                vec![StateChange::FolderRenamed {
                    from: from.clone(),
                    to: to.clone(),
                    entry,
                    ids_are_paths: false,
                }]
            }
            Action::CreateFolder { path } => entry(&state, path, stand_in(path), EntryKind::Folder)
                .map(StateChange::ItemWritten)
                .into_iter()
                .collect(),
            Action::Adopt {
                receipt,
                path,
                item,
                size,
            } => exported(&state, receipt, path, item.clone(), *size, at)
                .into_iter()
                .collect(),
            Action::Upload {
                receipt,
                path,
                size,
                ..
            } => {
                let id = stand_in(path);
                let kind = EntryKind::File { size: *size };
                let Some(written) = entry(&state, path, id.clone(), kind) else {
                    continue;
                };
                state.apply(&StateChange::ItemWritten(written));
                exported(&state, receipt, path, id, *size, at)
                    .into_iter()
                    .collect()
            }
            Action::Skip { .. } => Vec::new(),
        };
        for change in &changes {
            state.apply(change);
        }
    }
    // The account folders, renamed or created by now.
    record_account_folders(&mut state, plan);
    state
}

/// The id an item the plan creates gets in the preview.
fn stand_in(path: &ArchivePath) -> SinkItemId {
    SinkItemId::new(format!("planned:{path}"))
}

/// The entry of an item at `path`, under its parent folder as the state knows it.
fn entry(
    state: &SyncState,
    path: &ArchivePath,
    id: SinkItemId,
    kind: EntryKind,
) -> Option<SinkEntry> {
    let name = path.names().next_back()?.to_owned();
    let parent = match path.parent() {
        None => None,
        Some(parent) => match state.snapshot.path_index().get(&parent) {
            Some((id, EntryKind::Folder)) => Some(id.clone()),
            _ => return None,
        },
    };
    Some(SinkEntry {
        id,
        parent,
        name,
        kind,
    })
}

/// The record of a receipt archived at `path`, when its folders are in the state.
fn exported(
    state: &SyncState,
    receipt: &crate::model::ReceiptId,
    path: &ArchivePath,
    file_id: SinkItemId,
    size: u64,
    at: DateTime<chrono::Utc>,
) -> Option<StateChange> {
    let folder_ids = folder_ids_of(&state.snapshot.path_index(), path)?;
    Some(StateChange::Exported {
        receipt: receipt.clone(),
        record: ExportRecord {
            path: path.clone(),
            file_id,
            folder_ids,
            size,
            at,
        },
    })
}

/// Each account's folder, once it is in the (previewed) archive.
fn record_account_folders(state: &mut SyncState, plan: &Plan) {
    let index = state.snapshot.path_index();
    let changes: Vec<StateChange> = plan
        .account_folders
        .iter()
        .filter_map(|folder| match index.get(&folder.path) {
            Some((id, EntryKind::Folder)) => Some(StateChange::AccountFolder {
                account: folder.account.clone(),
                name: folder.name.clone(),
                id: id.clone(),
            }),
            _ => None,
        })
        .collect();
    for change in &changes {
        state.apply(change);
    }
}
