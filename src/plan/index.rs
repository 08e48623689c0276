//! Pure: which accountant's indexes to write ([`crate::index`]), and why.
//!
//! Planned after the receipts are archived, from the state as it is then: the rows
//! name the files just written, and the period folders are in the archive.
//!
//! # The deletion rules, for indexes
//! For each account's period with eligible transactions, in order:
//! 1. the account folder is not in the archive: nothing (the receipts' plan decides
//!    about it first);
//! 2. the period folder is gone (or another folder took its place) while an index
//!    was written in it, or while a receipt of the period is tombstoned (a record
//!    made before a reset knows no folder): the user deleted the folder, **it stays
//!    deleted**;
//!    a period folder never made (a period without any receipt) is created;
//! 3. the index the sync wrote is gone: the user deleted a file of ours, **it is
//!    written again**;
//! 4. the index is in place, as written (same id, same size): it is **replaced only
//!    when its bytes would change** (`conflictBehavior=replace` is used only here);
//! 5. anything else at `index.csv` (the user edited ours, or put their own there) is
//!    **never touched**: once there is something new to show, the new index goes
//!    beside it, as [`BESIDE_FILE_NAME`], and the plan says why.
//!
//! # Assumptions
//! An edit is seen by its size or, where a replaced file gets a new id, by its id:
//! an edit that keeps both on a sink whose ids are paths goes unnoticed. A reset
//! forgets which folder held each index, so a deleted period folder comes back.

use crate::index::{self, INDEX_FILE_NAME, IndexSettings, PeriodKey};
use crate::layout::Layout;
use crate::model::{ArchivePath, EntryKind, PathIndex, SinkItemId, TransactionStatus};
use crate::state::{IndexRecord, IndexedRow, SyncState};
use bytes::Bytes;
use chrono::NaiveDate;
use std::collections::HashSet;
use std::fmt;

/// The name the index takes beside an `index.csv` that is not the sync's.
pub const BESIDE_FILE_NAME: &str = "index (receipt-sync).csv";

/// The key of an account's period in [`SyncState::indexes`]: `<account>/<year>-<n>`.
pub fn index_key(key: &PeriodKey) -> String {
    let (account, (year, n)) = key;
    format!("{account}/{year}-{n:02}")
}

/// Why an index is written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexReason {
    /// The period has no index yet.
    NewPeriod,
    /// A transaction appeared in the period.
    TransactionAdded,
    /// A receipt of one of its transactions was archived.
    ReceiptArrived,
    /// A pending transaction settled.
    StatusSettled,
    /// Something else shown in it changed (a label, a note, a file name).
    Changed,
    /// The user deleted the index the sync wrote: it is a file of ours.
    DeletedByUser,
    /// The file at `index.csv` is not the one the sync wrote (edited, or the user's
    /// own): it is left alone, and the new index goes beside it.
    WrittenBeside,
}

impl fmt::Display for IndexReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IndexReason::NewPeriod => "new period",
            IndexReason::TransactionAdded => "a transaction was added",
            IndexReason::ReceiptArrived => "a receipt arrived",
            IndexReason::StatusSettled => "a transaction settled",
            IndexReason::Changed => "its content changed",
            IndexReason::DeletedByUser => "deleted by the user, written again",
            IndexReason::WrittenBeside => {
                "index.csv is not the one written (edited by the user?): left alone, written beside it"
            }
        })
    }
}

/// Why an index is not written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexLeftAlone {
    /// The user deleted the period folder: it stays deleted.
    FolderDeletedByUser,
    /// A file sits where the period folder, or the index beside `index.csv`, would go.
    PlaceTaken(ArchivePath),
    /// The user edited the index, and nothing it showed has changed since: their
    /// version stays, and nothing new needs writing beside it.
    EditedByUser,
}

impl fmt::Display for IndexLeftAlone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexLeftAlone::FolderDeletedByUser => {
                f.write_str("the period folder was deleted by the user: it stays deleted")
            }
            IndexLeftAlone::PlaceTaken(path) => {
                write!(
                    f,
                    "{path} is taken by a file of the user's: nothing written"
                )
            }
            IndexLeftAlone::EditedByUser => {
                f.write_str("edited by the user and unchanged at the bank: left alone")
            }
        }
    }
}

/// One index to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexWrite {
    /// Its account and period ([`index_key`]).
    pub key: String,
    /// The period folder.
    pub folder: ArchivePath,
    /// The period folder is not in the archive yet (a period without receipts).
    pub create_folder: bool,
    /// Where the index goes.
    pub path: ArchivePath,
    /// The sync's own index there, to replace (`None`: a new file).
    pub replace: Option<SinkItemId>,
    /// The bytes.
    pub bytes: Bytes,
    /// Their fingerprint.
    pub hash: String,
    /// Its rows, in short, for the record.
    pub rows: Vec<IndexedRow>,
    /// Why.
    pub reason: IndexReason,
}

/// The indexes a sync writes, and those it leaves alone, with why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexPlan {
    /// The writes.
    pub writes: Vec<IndexWrite>,
    /// The periods whose index is not written, and why.
    pub left_alone: Vec<(ArchivePath, IndexLeftAlone)>,
}

impl IndexPlan {
    /// Whether it writes nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

impl fmt::Display for IndexPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for write in &self.writes {
            let verb = if write.replace.is_some() {
                "replace"
            } else {
                "write"
            };
            writeln!(f, "  index {verb:<8} {} ({})", write.path, write.reason)?;
        }
        for (folder, why) in &self.left_alone {
            writeln!(f, "  index skip     {folder} ({why})")?;
        }
        Ok(())
    }
}

/// Plans the indexes; see the module docs.
pub fn plan_indexes(
    state: &SyncState,
    layout: &Layout,
    start_date: Option<NaiveDate>,
    include_declined: bool,
    settings: &IndexSettings,
) -> IndexPlan {
    let mut plan = IndexPlan::default();
    if !settings.enabled {
        return plan;
    }
    let paths = state.snapshot.path_index();
    // Periods holding a tombstoned receipt: the user deleted their folder (before any
    // index was recorded there, or since a reset made the record forget its folder).
    let tombstoned: HashSet<String> = state
        .tombstones
        .keys()
        .filter_map(|id| state.receipts.get(id))
        .map(|r| {
            let key = (
                r.transaction.account_id.clone(),
                layout.period_of(layout.receipt_day(r)),
            );
            index_key(&key)
        })
        .collect();
    for (period_key, period) in index::collect(state, layout, start_date, include_declined) {
        let key = index_key(&period_key);
        let Some(account_folder) = state
            .accounts
            .get(&period_key.0)
            .and_then(|a| a.folder_id.as_ref())
            .filter(|id| state.snapshot.kind(id) == Some(EntryKind::Folder))
            .and_then(|id| state.snapshot.path_of(id))
        else {
            continue;
        };
        let Ok(folder) = account_folder.join(&layout.period_folder(period.day)) else {
            continue;
        };
        let record = state.indexes.get(&key);
        let create_folder = match paths.get(&folder) {
            Some((id, EntryKind::Folder)) => {
                if record
                    .and_then(|r| r.folder_id.as_ref())
                    .is_some_and(|f| f != id)
                {
                    plan.left_alone
                        .push((folder, IndexLeftAlone::FolderDeletedByUser));
                    continue;
                }
                false
            }
            Some(_) => {
                plan.left_alone
                    .push((folder.clone(), IndexLeftAlone::PlaceTaken(folder)));
                continue;
            }
            None => {
                // A record made before a reset knows no folder id until its index is
                // written again: a tombstone of the period says the folder was deleted.
                let deleted =
                    record.is_some_and(|r| r.folder_id.is_some()) || tombstoned.contains(&key);
                if deleted {
                    plan.left_alone
                        .push((folder, IndexLeftAlone::FolderDeletedByUser));
                    continue;
                }
                true
            }
        };
        let bytes = index::render(&period.rows, &folder, settings.separator);
        let hash = index::content_hash(&bytes);
        let rows: Vec<IndexedRow> = period
            .rows
            .iter()
            .map(|r| IndexedRow {
                transaction: r.transaction_id.clone(),
                receipts: r
                    .receipts
                    .iter()
                    .filter(|p| p.parent().as_ref() == Some(&folder))
                    .count(),
                status: r.status.clone(),
            })
            .collect();
        let ours_in_folder = record.filter(|r| r.path.parent().as_ref() == Some(&folder));
        let main = folder.join(INDEX_FILE_NAME).ok();
        let Some(target) = ours_in_folder.map(|r| r.path.clone()).or(main) else {
            continue;
        };
        let decided = decide(&paths, ours_in_folder, &target, &hash, &folder);
        let (path, replace, reason) = match decided {
            Decision::Nothing => continue,
            Decision::LeftAlone(why) => {
                plan.left_alone.push((folder, why));
                continue;
            }
            Decision::Write {
                path,
                replace,
                reason,
            } => (path, replace, reason),
        };
        let reason = reason.unwrap_or_else(|| why_changed(record, &rows));
        plan.writes.push(IndexWrite {
            key,
            folder,
            create_folder,
            path,
            replace,
            bytes: Bytes::from(bytes),
            hash,
            rows,
            reason,
        });
    }
    plan
}

enum Decision {
    Nothing,
    LeftAlone(IndexLeftAlone),
    /// `reason` is `None` when it is the content's change.
    Write {
        path: ArchivePath,
        replace: Option<SinkItemId>,
        reason: Option<IndexReason>,
    },
}

/// Steps 3 to 5 of the module docs, at `target` (the sync's index in the folder, or
/// `index.csv`).
fn decide(
    paths: &PathIndex,
    record: Option<&IndexRecord>,
    target: &ArchivePath,
    hash: &str,
    folder: &ArchivePath,
) -> Decision {
    let recorded_here = record.filter(|r| &r.path == target);
    match paths.get(target) {
        None => Decision::Write {
            path: target.clone(),
            replace: None,
            reason: recorded_here.map(|_| IndexReason::DeletedByUser),
        },
        Some((id, EntryKind::File { size }))
            if recorded_here.is_some_and(|r| &r.file_id == id && r.size == size) =>
        {
            if recorded_here.is_some_and(|r| r.hash == hash) {
                Decision::Nothing
            } else {
                Decision::Write {
                    path: target.clone(),
                    replace: Some(id.clone()),
                    reason: None,
                }
            }
        }
        Some(_) if recorded_here.is_some_and(|r| r.hash == hash) => {
            Decision::LeftAlone(IndexLeftAlone::EditedByUser)
        }
        Some(_) => {
            // Not the sync's: never touched. Beside it, unless that is where we were.
            let Ok(beside) = folder.join(BESIDE_FILE_NAME) else {
                return Decision::Nothing;
            };
            if &beside == target {
                return Decision::LeftAlone(IndexLeftAlone::PlaceTaken(beside));
            }
            match paths.get(&beside) {
                None => Decision::Write {
                    path: beside,
                    replace: None,
                    reason: Some(IndexReason::WrittenBeside),
                },
                Some(_) => Decision::LeftAlone(IndexLeftAlone::PlaceTaken(beside)),
            }
        }
    }
}

/// What changed since the index last written, the most telling first.
fn why_changed(record: Option<&IndexRecord>, rows: &[IndexedRow]) -> IndexReason {
    let Some(record) = record else {
        return IndexReason::NewPeriod;
    };
    let before = |t| record.rows.iter().find(|r| &r.transaction == t);
    if rows.iter().any(|r| before(&r.transaction).is_none()) {
        return IndexReason::TransactionAdded;
    }
    if rows
        .iter()
        .any(|r| before(&r.transaction).is_some_and(|b| r.receipts > b.receipts))
    {
        return IndexReason::ReceiptArrived;
    }
    let settled = rows.iter().any(|r| {
        r.status == TransactionStatus::Completed
            && before(&r.transaction).is_some_and(|b| b.status == TransactionStatus::Pending)
    });
    if settled {
        IndexReason::StatusSettled
    } else {
        IndexReason::Changed
    }
}
