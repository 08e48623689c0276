//! The contents of the sync state, and the changes the sync records as it goes.

use crate::layout::LayoutSettings;
use crate::model::{
    AccountId, ArchivePath, ArchiveSnapshot, BankAccount, Receipt, ReceiptId, ScanCursor,
    ScanUpdate, SinkChange, SinkEntry, SinkItemId, TransactionId, TransactionStatus,
};
use crate::source::{BankTransaction, Watermark};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The state format this version writes. A state with a higher version is refused.
///
/// 1: the base file is JSON (`state.json`). 2: it is binary (`state.bin`); the journal
/// is the same in both, and a state of format 1 is read and converted.
pub const STATE_VERSION: u32 = 2;

/// The placement settings a state was made with: stored at the first sync, changed only
/// explicitly ([`crate::plan::settings`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSettings {
    /// Receipts of transactions emitted before this day are not archived.
    pub start_date: Option<NaiveDate>,
    /// How paths were laid out.
    pub layout: LayoutSettings,
}

/// What the sync knows of one bank account and its folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// The account as the source last described it.
    pub account: BankAccount,
    /// The folder's name as the sync last set it (to notice a renamed bank account).
    pub folder_name: Option<String>,
    /// The folder's id in the archive, once created or adopted.
    pub folder_id: Option<SinkItemId>,
    /// When a read of the whole account (not from a watermark) last finished.
    #[serde(default)]
    pub full_read_at: Option<DateTime<Utc>>,
}

/// Where and how a receipt was archived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    /// The path the file was written to (or adopted at).
    pub path: ArchivePath,
    /// The file's id in the archive.
    pub file_id: SinkItemId,
    /// The ids of the folders above the file, from the top down, when it was archived.
    /// A missing one, or one with another id at the same place, means the user deleted
    /// a folder.
    pub folder_ids: Vec<SinkItemId>,
    /// Bytes written.
    pub size: u64,
    /// When it was archived.
    pub at: DateTime<Utc>,
}

/// One row of an index as it was written: enough to say why the next one differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedRow {
    /// The transaction.
    pub transaction: TransactionId,
    /// How many of its receipts the row named.
    pub receipts: usize,
    /// Its status then.
    pub status: TransactionStatus,
}

/// An accountant's index the sync wrote ([`crate::index`]), by account and period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexRecord {
    /// Where it was written: `index.csv`, or the name beside it when the user's own
    /// file holds that place.
    pub path: ArchivePath,
    /// Its id in the archive.
    pub file_id: SinkItemId,
    /// The period folder's id when it was written; `None` after a reset (whatever
    /// folder is at the place then is taken as the period's).
    pub folder_id: Option<SinkItemId>,
    /// Its size in bytes: a file of another size at that id was edited by the user.
    pub size: u64,
    /// The fingerprint of the bytes written ([`crate::index::content_hash`]).
    pub hash: String,
    /// Its rows, in short.
    pub rows: Vec<IndexedRow>,
    /// When it was written.
    pub at: DateTime<Utc>,
}

/// Why a receipt is no longer archived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TombstoneReason {
    /// The user deleted a folder that held the receipt.
    FolderDeleted {
        /// The folder's path when it was deleted.
        folder: ArchivePath,
    },
}

/// A receipt that must not be archived again until a reset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// Why.
    pub reason: TombstoneReason,
    /// Where the file was.
    pub path: ArchivePath,
    /// When the sync noticed.
    pub at: DateTime<Utc>,
}

/// A folder rename the sync asked of the sink, recorded before asking: until its
/// outcome is recorded, the records cannot say whether it happened (a crash, or a
/// failed journal append, can fall between the rename and its record). The next scan
/// settles it ([`crate::plan::settle_renames`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRename {
    /// The folder's id when the rename was asked.
    pub folder: SinkItemId,
    /// Its path before.
    pub from: ArchivePath,
    /// Its path once renamed.
    pub to: ArchivePath,
    /// Whether item ids are paths (sinks without stable ids).
    pub ids_are_paths: bool,
}

/// What the last run did, for status reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    /// When the run started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Files written.
    pub uploaded: u64,
    /// Receipts that failed.
    pub failed: u64,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
}

/// The durable memory of a sync.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncState {
    /// The format version ([`STATE_VERSION`]).
    pub version: u32,
    /// The settings it was made with; `None` until the first run.
    #[serde(default)]
    pub settings: Option<StateSettings>,
    /// Every bank account seen, by id.
    #[serde(default)]
    pub accounts: BTreeMap<AccountId, AccountRecord>,
    /// Every receipt the source ever showed, by id: the catalog the planner works from,
    /// since a source read from a watermark only shows what changed.
    #[serde(default)]
    pub receipts: BTreeMap<ReceiptId, Receipt>,
    /// Every transaction the source listed as such (with or without receipts), by id:
    /// the rows of the accountant's index. Left out of the file when empty, so a state
    /// without one reads and writes as it always did.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub transactions: BTreeMap<TransactionId, BankTransaction>,
    /// The accountant's indexes written, by account and period
    /// ([`crate::plan::index_key`]). Left out of the file when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub indexes: BTreeMap<String, IndexRecord>,
    /// Receipts archived, by id.
    #[serde(default)]
    pub exported: BTreeMap<ReceiptId, ExportRecord>,
    /// Receipts not to archive again until a reset.
    #[serde(default)]
    pub tombstones: BTreeMap<ReceiptId, Tombstone>,
    /// Receipts the source no longer has, which were never archived.
    #[serde(default)]
    pub vanished: BTreeMap<ReceiptId, DateTime<Utc>>,
    /// Where to resume reading each account.
    #[serde(default)]
    pub watermarks: BTreeMap<AccountId, Watermark>,
    /// The sync's picture of the archive.
    #[serde(default)]
    pub snapshot: ArchiveSnapshot,
    /// Where to resume scanning the archive.
    #[serde(default)]
    pub scan_cursor: Option<ScanCursor>,
    /// What the last run did.
    #[serde(default)]
    pub last_run: Option<RunSummary>,
    /// Folder renames asked of the sink whose outcome is not recorded yet. Left out of
    /// the file when empty, so a state without one reads as it always did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_renames: Vec<PendingRename>,
}

/// One change to a [`SyncState`], recorded as soon as it happens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateChange {
    /// The source's bank accounts, as listed at the start of a run.
    AccountsSeen(Vec<BankAccount>),
    /// Receipts read from the source (new or changed).
    ReceiptsSeen(Vec<Receipt>),
    /// Transactions read from the source (new or changed), receipts or not.
    TransactionsSeen(Vec<BankTransaction>),
    /// An account's read position moved.
    WatermarkAdvanced {
        /// The account.
        account: AccountId,
        /// Where to resume.
        watermark: Watermark,
    },
    /// An item appeared in the archive because the sync created it.
    ItemWritten(SinkEntry),
    /// An account's folder was created, adopted or renamed.
    AccountFolder {
        /// The account.
        account: AccountId,
        /// The folder's name as the sync set it.
        name: String,
        /// The folder's id.
        id: SinkItemId,
    },
    /// The sync is about to ask the sink to rename a folder. Recorded first, so that
    /// the next scan can settle a rename whose outcome was never recorded.
    FolderRenameStarted(PendingRename),
    /// A rename recorded as started did not happen, or its outcome cannot be told
    /// from the archive: it is forgotten, and the deletion rules see the archive as it is.
    FolderRenameAbandoned(PendingRename),
    /// A folder was renamed by the sync; every record below it moves with it.
    FolderRenamed {
        /// Its path before.
        from: ArchivePath,
        /// Its path after.
        to: ArchivePath,
        /// The folder as it is now.
        entry: SinkEntry,
        /// Whether item ids are paths (sinks without stable ids), so they move too.
        ids_are_paths: bool,
    },
    /// A receipt was archived (written or adopted).
    Exported {
        /// The receipt.
        receipt: ReceiptId,
        /// Where.
        record: ExportRecord,
    },
    /// An accountant's index was written.
    IndexWritten {
        /// Its account and period ([`crate::plan::index_key`]).
        key: String,
        /// What was written.
        record: IndexRecord,
    },
    /// A receipt was tombstoned.
    Tombstoned {
        /// The receipt.
        receipt: ReceiptId,
        /// Why.
        tombstone: Tombstone,
    },
    /// A read of a whole account finished without a failure.
    FullReadFinished {
        /// The account.
        account: AccountId,
        /// When.
        at: DateTime<Utc>,
    },
    /// A run ended.
    RunFinished(RunSummary),
    /// The placement settings were adopted or explicitly changed
    /// ([`crate::plan::settings`]). Older journals never hold it, so they read as before.
    SettingsChanged(crate::plan::SettingsChange),
    /// The source no longer has a receipt that was never archived.
    Vanished {
        /// The receipt.
        receipt: ReceiptId,
        /// When this was noticed.
        at: DateTime<Utc>,
    },
    /// The archive was scanned: the picture of the archive takes the scan's answer and
    /// the scan cursor moves, in one change, so they are never recorded apart. Older
    /// versions never write it (they saved the whole state after each scan).
    ArchiveScanned(ScanUpdate),
}

impl StateChange {
    /// The change that records a scan's answer against `snapshot` (the picture it is to
    /// update): a list of changes leaves out those that change nothing there (an item
    /// the snapshot holds as it is, mentioned once; a removal of an unknown item), so
    /// that the first scan after an export does not journal the sync's own writes again.
    /// Applying it gives the same picture as applying `update`.
    pub fn archive_scanned(snapshot: &ArchiveSnapshot, update: ScanUpdate) -> Self {
        let ScanUpdate::Changes { changes, cursor } = update else {
            return Self::ArchiveScanned(update);
        };
        // An item mentioned twice may change and change back: its changes all stay.
        let mut mentions: HashMap<&SinkItemId, usize> = HashMap::new();
        for change in &changes {
            *mentions.entry(change_id(change)).or_default() += 1;
        }
        let idle: Vec<bool> = changes
            .iter()
            .map(|change| {
                mentions[change_id(change)] == 1
                    && match change {
                        SinkChange::Upsert(entry) => snapshot.holds(entry),
                        SinkChange::Removed(id) => !snapshot.contains(id),
                    }
            })
            .collect();
        let changes = changes
            .into_iter()
            .zip(idle)
            .filter_map(|(change, idle)| (!idle).then_some(change))
            .collect();
        Self::ArchiveScanned(ScanUpdate::Changes { changes, cursor })
    }
}

fn change_id(change: &SinkChange) -> &SinkItemId {
    match change {
        SinkChange::Upsert(entry) => &entry.id,
        SinkChange::Removed(id) => id,
    }
}

impl SyncState {
    /// An empty state made with `settings`.
    pub fn new(settings: StateSettings) -> Self {
        Self {
            version: STATE_VERSION,
            settings: Some(settings),
            ..Self::default()
        }
    }

    /// Applies one change. Pure: no I/O.
    pub fn apply(&mut self, change: &StateChange) {
        match change {
            StateChange::AccountsSeen(accounts) => {
                for account in accounts {
                    self.accounts
                        .entry(account.id.clone())
                        .and_modify(|rec| rec.account = account.clone())
                        .or_insert_with(|| AccountRecord {
                            account: account.clone(),
                            folder_name: None,
                            folder_id: None,
                            full_read_at: None,
                        });
                }
            }
            StateChange::ReceiptsSeen(receipts) => {
                for r in receipts {
                    self.vanished.remove(&r.id);
                    self.receipts.insert(r.id.clone(), r.clone());
                }
            }
            StateChange::TransactionsSeen(transactions) => {
                for t in transactions {
                    self.transactions
                        .insert(t.transaction.id.clone(), t.clone());
                }
            }
            StateChange::WatermarkAdvanced { account, watermark } => {
                self.watermarks.insert(account.clone(), watermark.clone());
            }
            StateChange::ItemWritten(entry) => self.snapshot.upsert(entry.clone()),
            StateChange::AccountFolder { account, name, id } => {
                if let Some(rec) = self.accounts.get_mut(account) {
                    rec.folder_name = Some(name.clone());
                    rec.folder_id = Some(id.clone());
                }
            }
            StateChange::FolderRenamed {
                from,
                to,
                entry,
                ids_are_paths,
            } => {
                self.pending_renames.retain(|pending| pending.from != *from);
                self.apply_folder_rename(from, to, entry, *ids_are_paths);
            }
            StateChange::FolderRenameStarted(pending) => {
                self.pending_renames.retain(|p| p.from != pending.from);
                self.pending_renames.push(pending.clone());
            }
            StateChange::FolderRenameAbandoned(pending) => {
                self.pending_renames.retain(|p| p != pending);
            }
            StateChange::FullReadFinished { account, at } => {
                if let Some(rec) = self.accounts.get_mut(account) {
                    rec.full_read_at = Some(*at);
                }
            }
            StateChange::RunFinished(summary) => self.last_run = Some(summary.clone()),
            StateChange::Exported { receipt, record } => {
                self.tombstones.remove(receipt);
                self.exported.insert(receipt.clone(), record.clone());
            }
            StateChange::IndexWritten { key, record } => {
                self.indexes.insert(key.clone(), record.clone());
            }
            StateChange::Tombstoned { receipt, tombstone } => {
                self.exported.remove(receipt);
                self.tombstones.insert(receipt.clone(), tombstone.clone());
            }
            StateChange::Vanished { receipt, at } => {
                self.vanished.insert(receipt.clone(), *at);
            }
            StateChange::ArchiveScanned(update) => {
                self.snapshot.apply(update);
                self.scan_cursor = match update {
                    ScanUpdate::Full { cursor, .. } => cursor.clone(),
                    ScanUpdate::Changes { cursor, .. } => Some(cursor.clone()),
                };
            }
            StateChange::SettingsChanged(change) => {
                self.settings = Some(change.to.clone());
                if change.widens() {
                    // The catalog holds nothing before the old start date: read every
                    // account whole again, from the new one.
                    self.watermarks.clear();
                }
            }
        }
    }

    fn apply_folder_rename(
        &mut self,
        from: &ArchivePath,
        to: &ArchivePath,
        entry: &SinkEntry,
        ids_are_paths: bool,
    ) {
        let moved_id = |id: &SinkItemId| -> SinkItemId {
            if !ids_are_paths {
                return id.clone();
            }
            ArchivePath::parse(id.as_str())
                .ok()
                .and_then(|p| p.rebase(from, to))
                .map(|p| SinkItemId::new(p.as_str()))
                .unwrap_or_else(|| id.clone())
        };
        for record in self.exported.values_mut() {
            if let Some(path) = record.path.rebase(from, to) {
                record.path = path;
                record.file_id = moved_id(&record.file_id);
                record.folder_ids = record.folder_ids.iter().map(&moved_id).collect();
            }
        }
        for rec in self.accounts.values_mut() {
            if let Some(id) = &rec.folder_id {
                rec.folder_id = Some(moved_id(id));
            }
        }
        for index in self.indexes.values_mut() {
            if let Some(path) = index.path.rebase(from, to) {
                index.path = path;
                index.file_id = moved_id(&index.file_id);
                index.folder_id = index.folder_id.as_ref().map(&moved_id);
            }
        }
        if ids_are_paths {
            // Every item below the folder has a new id: rebuild the snapshot.
            let entries = self.snapshot.entries().into_iter().map(|mut e| {
                e.id = moved_id(&e.id);
                e.parent = e.parent.as_ref().map(&moved_id);
                e
            });
            self.snapshot = ArchiveSnapshot::from_entries(entries);
        }
        self.snapshot.upsert(entry.clone());
    }

    /// "Reconfigure the integration": forgets what was archived and every tombstone,
    /// and rereads the source from the start, so the next sync brings back everything
    /// the user deleted. The settings (start date, layout) are kept. The picture of the archive is kept, so files still in place
    /// are adopted, never written twice.
    pub fn reset(&mut self) {
        self.exported.clear();
        self.tombstones.clear();
        self.vanished.clear();
        self.watermarks.clear();
        for rec in self.accounts.values_mut() {
            rec.folder_id = None;
        }
        // Indexes come back too: a period folder the user deleted is written again,
        // and the index files still in place stay known as the sync's own.
        for index in self.indexes.values_mut() {
            index.folder_id = None;
        }
    }
    /// Binds the state to another archive: forgets the picture of the old archive and
    /// every export record made in it, so nothing of the old archive can look deleted
    /// (no tombstone comes of the move). The catalog, the read positions, the settings
    /// and the tombstones are kept: the next sync adopts the files already in the new
    /// archive (same place, same size) and writes the rest, without rereading the source.
    pub fn rebind(&mut self) {
        self.exported.clear();
        self.indexes.clear();
        self.snapshot = ArchiveSnapshot::default();
        self.scan_cursor = None;
        self.pending_renames.clear();
        for rec in self.accounts.values_mut() {
            rec.folder_id = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_renames_leave_the_format_as_it_was_when_there_are_none() {
        // A state written before pending renames existed still loads…
        let old = r#"{"version":1,"settings":null}"#;
        let state: SyncState = serde_json::from_str(old).unwrap();
        assert!(state.pending_renames.is_empty());
        // …and a state without one is written as before, so older versions read it.
        let written = serde_json::to_string(&SyncState::default()).unwrap();
        assert!(!written.contains("pending_renames"), "{written}");
    }

    #[test]
    fn a_recorded_settings_change_replays_and_an_earlier_start_date_rereads_the_source() {
        let settings = |day: u32| StateSettings {
            start_date: NaiveDate::from_ymd_opt(2025, 1, day),
            layout: LayoutSettings::default(),
        };
        let mut state = SyncState::new(settings(20));
        state.watermarks.insert(
            AccountId::new("acc"),
            Watermark::new("2025-02-01T00:00:00Z"),
        );
        let later = StateChange::SettingsChanged(crate::plan::SettingsChange {
            from: Some(settings(20)),
            to: settings(25),
        });
        // Journaled like every change: it reads back as written.
        let line = serde_json::to_string(&later).unwrap();
        assert_eq!(serde_json::from_str::<StateChange>(&line).unwrap(), later);
        state.apply(&later);
        assert_eq!(state.settings, Some(settings(25)));
        assert_eq!(state.watermarks.len(), 1, "a later date reads on as before");
        state.apply(&StateChange::SettingsChanged(crate::plan::SettingsChange {
            from: Some(settings(25)),
            to: settings(5),
        }));
        assert_eq!(state.settings, Some(settings(5)));
        assert!(state.watermarks.is_empty(), "an earlier date reads whole");
    }

    #[test]
    fn a_rebind_forgets_the_old_archive_and_keeps_the_bank() {
        let path = |p: &str| ArchivePath::parse(p).unwrap();
        let folder = |id: &str, name: &str| SinkEntry {
            id: SinkItemId::new(id),
            parent: None,
            name: name.into(),
            kind: crate::model::EntryKind::Folder,
        };
        let mut state = SyncState::new(StateSettings {
            start_date: NaiveDate::from_ymd_opt(2025, 1, 1),
            layout: LayoutSettings::default(),
        });
        let account = AccountId::new("acc");
        state
            .watermarks
            .insert(account.clone(), Watermark::new("w"));
        let receipt = ReceiptId::new("r1");
        state.exported.insert(
            receipt.clone(),
            ExportRecord {
                path: path("Main/r1.pdf"),
                file_id: SinkItemId::new("f1"),
                folder_ids: vec![SinkItemId::new("main")],
                size: 1,
                at: Utc::now(),
            },
        );
        let gone = ReceiptId::new("r2");
        state.tombstones.insert(
            gone.clone(),
            Tombstone {
                reason: TombstoneReason::FolderDeleted {
                    folder: path("Old"),
                },
                path: path("Old/r2.pdf"),
                at: Utc::now(),
            },
        );
        state.snapshot.upsert(folder("main", "Main"));
        state.scan_cursor = Some(ScanCursor::new("delta"));
        let before = state.clone();

        state.rebind();
        assert!(state.exported.is_empty());
        assert!(state.snapshot.entries().is_empty());
        assert_eq!(state.scan_cursor, None, "the new archive is scanned whole");
        assert_eq!(state.settings, before.settings);
        assert_eq!(
            state.watermarks, before.watermarks,
            "the bank is not reread"
        );
        assert_eq!(state.receipts, before.receipts);
        assert_eq!(
            state.tombstones, before.tombstones,
            "what the user deleted stays deleted"
        );
    }

    #[test]
    fn a_recorded_scan_leaves_out_what_changes_nothing_and_applies_the_same() {
        let entry = |id: &str, name: &str| SinkEntry {
            id: SinkItemId::new(id),
            parent: None,
            name: name.into(),
            kind: crate::model::EntryKind::File { size: 3 },
        };
        let snapshot = ArchiveSnapshot::from_entries([entry("a", "a.pdf"), entry("b", "b.pdf")]);
        let update = ScanUpdate::Changes {
            changes: vec![
                SinkChange::Upsert(entry("a", "a.pdf")),
                SinkChange::Upsert(entry("b", "b.pdf")),
                SinkChange::Removed(SinkItemId::new("b")),
                SinkChange::Upsert(entry("b", "b.pdf")),
                SinkChange::Upsert(entry("c", "c.pdf")),
                SinkChange::Removed(SinkItemId::new("gone")),
            ],
            cursor: ScanCursor::new("next"),
        };
        let change = StateChange::archive_scanned(&snapshot, update.clone());
        let StateChange::ArchiveScanned(ScanUpdate::Changes { changes, .. }) = &change else {
            panic!("{change:?}");
        };
        assert_eq!(changes.len(), 4, "{changes:?}");
        let mut whole = SyncState {
            snapshot: snapshot.clone(),
            ..SyncState::default()
        };
        let mut recorded = whole.clone();
        whole.apply(&StateChange::ArchiveScanned(update));
        recorded.apply(&change);
        assert_eq!(recorded, whole);
        assert_eq!(recorded.scan_cursor, Some(ScanCursor::new("next")));
    }

    #[test]
    fn a_rename_record_settles_its_pending_rename() {
        let path = |p: &str| ArchivePath::parse(p).unwrap();
        let pending = PendingRename {
            folder: SinkItemId::new("f1"),
            from: path("Main"),
            to: path("Business"),
            ids_are_paths: false,
        };
        let mut state = SyncState::default();
        state.apply(&StateChange::FolderRenameStarted(pending.clone()));
        state.apply(&StateChange::FolderRenameStarted(pending.clone()));
        assert_eq!(state.pending_renames, vec![pending.clone()], "once");
        state.apply(&StateChange::FolderRenamed {
            from: path("Main"),
            to: path("Business"),
            entry: SinkEntry {
                id: SinkItemId::new("f1"),
                parent: None,
                name: "Business".into(),
                kind: crate::model::EntryKind::Folder,
            },
            ids_are_paths: false,
        });
        assert!(state.pending_renames.is_empty());
        state.apply(&StateChange::FolderRenameStarted(pending.clone()));
        state.apply(&StateChange::FolderRenameAbandoned(pending));
        assert!(state.pending_renames.is_empty());
    }
}
