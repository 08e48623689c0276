//! The deletion rules, in one place: what the sync does about a receipt it archived
//! once, given what the archive holds now.
//!
//! # The flow, for a receipt with an export record
//! 1. **Its file is still there**: its id is in the archive (sinks with stable ids
//!    follow it wherever the user renamed or moved it; for sinks without, its id is
//!    its path). → archived, nothing to do.
//! 2. **Its file is gone, and a folder above it is gone too** (or was deleted and
//!    re-created, so the id at that place is a new one): the user deleted the
//!    **folder**. → tombstone: never archive this receipt again until a reset.
//! 3. **Its file is gone, every folder above it is still there** (same ids): the user
//!    deleted the **file**. → put it back, in its folder wherever that folder is now.
//!    If a file of the same size already sits there, it is recorded (adopted)
//!    instead; if something else sits there, nothing is overwritten.
//!
//! A reset ([`crate::state::SyncState::reset`]) forgets every export record and
//! tombstone; the next plan then treats every receipt as new, and the planner adopts
//! the files still in place instead of writing them twice.
//!
//! Receipts never archived are archived even into a period whose folder the user once
//! deleted: tombstones are per receipt, not per folder. This keeps the rule simple
//! and predictable ("what you deleted stays deleted; what is new arrives"), and
//! means a folder deleted by mistake costs only the receipts it held.
//!
//! # Guarantees
//! - A tombstoned receipt is never uploaded (the planner checks tombstones first).
//! - A user's own file is never a target: uploads go only to free paths, and the
//!   sinks refuse to overwrite.
//! - The verdict depends only on the record and the snapshot: the same inputs give
//!   the same verdict.
//!
//! # Assumptions
//! - The snapshot is complete: a full listing, or a change feed applied to the last
//!   one. An item missing from it is really gone.
//! - On sinks without stable ids, a folder the user deletes and re-creates by hand
//!   under the same name looks intact (rule 3, not 2), and a folder the user renames
//!   looks deleted (rule 2). Sinks with stable ids have neither blind spot.
//! - The records follow the sync's own folder renames, even one whose outcome a crash
//!   kept from being recorded: [`settle_renames`](super::settle_renames) settles it
//!   from the scan before these rules run.

use crate::model::{ArchivePath, ArchiveSnapshot, EntryKind, SinkItemId};
use crate::state::ExportRecord;

/// What the rules say about an archived receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Rule 1: the file is there.
    Archived,
    /// Rule 2: the user deleted `folder`; the receipt is tombstoned.
    FolderDeleted {
        /// The first deleted folder above the file, as it was recorded.
        folder: ArchivePath,
    },
    /// Rule 3: the user deleted the file; put it back at `path`.
    FileDeleted {
        /// Where the file belongs now: its recorded name in its folder's current place.
        path: ArchivePath,
    },
}

/// Applies the rules to one export record; see the module docs.
pub fn reconcile(record: &ExportRecord, snapshot: &ArchiveSnapshot) -> Verdict {
    if snapshot
        .kind(&record.file_id)
        .is_some_and(|k| k != EntryKind::Folder)
    {
        return Verdict::Archived;
    }
    let recorded_folders: Vec<ArchivePath> = record.path.ancestors().collect();
    for (depth, folder_id) in record.folder_ids.iter().enumerate() {
        if snapshot.kind(folder_id) != Some(EntryKind::Folder) {
            let folder = recorded_folders
                .get(depth)
                .cloned()
                .unwrap_or_else(|| record.path.clone());
            return Verdict::FolderDeleted { folder };
        }
    }
    Verdict::FileDeleted {
        path: put_back_path(record, snapshot),
    }
}

/// The recorded file name inside the innermost recorded folder, wherever it is now.
fn put_back_path(record: &ExportRecord, snapshot: &ArchiveSnapshot) -> ArchivePath {
    record
        .folder_ids
        .last()
        .and_then(|id: &SinkItemId| snapshot.path_of(id))
        .and_then(|folder| folder.join(record.path.file_name()).ok())
        .unwrap_or_else(|| record.path.clone())
}
