//! Random histories against the real `Syncer`: new and edited receipts at the bank,
//! the user deleting, renaming and moving files and folders and adding their own,
//! faults, crashes and cancellations at any step, resets. After a final clean sync the
//! invariants of the design hold, on every kind of archive.
//!
//! A second organisation archives into the same drive with its own state, its
//! accounts named like the first one's (same names, same IBAN endings): it syncs and
//! resets at random steps, while the user acts on the first organisation's files and
//! folders only. Its archive must stay whole: none of its receipts tombstoned, each
//! archived once, whatever the first one's history.
//!
//! Half the histories write the accountant's indexes, and their user also edits and
//! deletes indexes: a deleted index comes back, an edited one is never overwritten (the
//! new one goes beside it once there is something new to show), a period folder the user
//! deleted is never brought back by an index, and a second plan writes nothing.

#![cfg(feature = "testkit")]

mod common;

use chrono::NaiveDate;
use common::drives::{GraphDrive, LocalDrive, TestDrive, listing};
use proptest::prelude::*;
use receipt_sync::http::RetryConfig;
use receipt_sync::index::{IndexSettings, Separator};
use receipt_sync::model::EntryKind;
use receipt_sync::model::{AccountId, BankAccount, CurrencyCode, ReceiptId, TransactionStatus};
use receipt_sync::plan::{index_key, plan_indexes};
use receipt_sync::sink::InMemorySink;
use receipt_sync::source::InMemorySource;
use receipt_sync::state::{InMemoryStateStore, StateStore, SyncState};
use receipt_sync::sync::{SyncConfig, SyncEvent, SyncObserver, Syncer};
use receipt_sync::testkit::faults::{CrashMode, FaultPlan, FaultySink, FaultySource};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone, Debug)]
enum Step {
    NewReceipt {
        account: u8,
        month: u8,
        day: u8,
        size: u16,
        declined: bool,
    },
    EditLabel(u8),
    SettleAmount(u8),
    RemoveAtBank(u8),
    DeleteFile(u8),
    DeleteFolder(u8),
    Rename(u8),
    MoveFile(u8, u8),
    UserFile(u8),
    RenameAccount(u8),
    FaultySync {
        seed: u64,
        transient: u8,
        crash: Option<(u8, bool)>,
    },
    CancelledSync(u8),
    /// A sync whose first folder rename lands and then crashes, before or after its effect.
    CrashOnRename(bool),
    Reset,
    Sync,
    /// The user rewrites an index (of the sync's, or one it wrote beside an edit).
    EditIndex(u8),
    /// The user deletes an index.
    DeleteIndex(u8),
    /// A new receipt at the second organisation's bank.
    OtherReceipt {
        account: u8,
        month: u8,
        day: u8,
    },
    /// A sync of the second organisation.
    OtherSync,
    /// A reset of the second organisation.
    OtherReset,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0u8..2, 1u8..4, 1u8..28, 20u16..3000, prop::bool::weighted(0.1)).prop_map(
            |(account, month, day, size, declined)| Step::NewReceipt { account, month, day, size, declined }),
        1 => any::<u8>().prop_map(Step::EditLabel),
        1 => any::<u8>().prop_map(Step::SettleAmount),
        1 => any::<u8>().prop_map(Step::RemoveAtBank),
        2 => any::<u8>().prop_map(Step::DeleteFile),
        1 => any::<u8>().prop_map(Step::DeleteFolder),
        1 => any::<u8>().prop_map(Step::Rename),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Step::MoveFile(a, b)),
        1 => any::<u8>().prop_map(Step::UserFile),
        1 => any::<u8>().prop_map(Step::RenameAccount),
        2 => (any::<u64>(), 0u8..30, proptest::option::of((0u8..12, any::<bool>())))
            .prop_map(|(seed, transient, crash)| Step::FaultySync { seed, transient, crash }),
        1 => (1u8..40).prop_map(Step::CancelledSync),
        1 => any::<bool>().prop_map(Step::CrashOnRename),
        1 => Just(Step::Reset),
        3 => Just(Step::Sync),
        2 => (0u8..2, 1u8..4, 1u8..28).prop_map(
            |(account, month, day)| Step::OtherReceipt { account, month, day }),
        2 => Just(Step::OtherSync),
        1 => Just(Step::OtherReset),
        1 => any::<u8>().prop_map(Step::EditIndex),
        1 => any::<u8>().prop_map(Step::DeleteIndex),
    ]
}

/// Whether `path` names an index the sync writes (in its place, or beside an edit).
fn is_index(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "index.csv" || name == "index (receipt-sync).csv"
}

/// An account named `name` whose IBAN ends in 0137, in either organisation.
fn account_0137(id: &str, name: &str) -> BankAccount {
    BankAccount {
        id: AccountId::new(id),
        name: name.to_owned(),
        iban: Some(format!("FR76 {id} 0137")),
        currency: CurrencyCode::EUR,
    }
}

/// The second organisation: its bank (account ids `b-acc-*`, receipt ids `b-r*`) and
/// its own state, in the same drive.
struct Other {
    bank: InMemorySource,
    store: InMemoryStateStore,
    next: usize,
}

impl Other {
    fn new() -> Self {
        let bank = InMemorySource::new();
        bank.add_account(account_0137("b-acc-0", "Main account"));
        bank.add_account(account_0137("b-acc-1", "Travel"));
        Self {
            bank,
            store: InMemoryStateStore::new(),
            next: 0,
        }
    }

    fn syncer(&self, sink: Arc<dyn receipt_sync::sink::ArchiveSink>) -> Syncer {
        Syncer::new(
            Arc::new(self.bank.clone()),
            sink,
            Arc::new(self.store.clone()),
            World::config(false),
        )
    }

    /// Whether `bytes` are one of its receipts.
    fn owns(bytes: &[u8]) -> bool {
        bytes.starts_with(b"receipt b-r")
    }
}

/// The bytes of a receipt: unique to it, so the archive can be searched by content.
fn receipt_bytes(id: &str, size: u16) -> Vec<u8> {
    let head = format!("receipt {id};");
    let mut bytes = head.clone().into_bytes();
    while bytes.len() < usize::from(size).max(head.len()) {
        bytes.push(b'.');
    }
    bytes
}

struct World<'a> {
    bank: InMemorySource,
    drive: &'a dyn TestDrive,
    store: Arc<dyn StateStore>,
    next: usize,
    /// Receipts removed at the bank.
    removed: BTreeSet<String>,
    /// The user's own files still in the archive: content → present.
    user_contents: BTreeSet<Vec<u8>>,
    /// The user deleted or renamed a folder: the only ways to earn a tombstone.
    user_touched_folders: bool,
    /// The second organisation, which the user leaves alone.
    other: Other,
    /// Whether the sync writes the accountant's indexes.
    index: bool,
    /// Folders the user deleted while the state recorded files in them, since the last
    /// reset.
    deleted_folders: BTreeSet<String>,
    /// Steps taken, to make each edit's content unique.
    steps: usize,
    /// A pass crashed after a write landed and before it was recorded.
    crashed_after_a_write: bool,
}

struct CancelAfter {
    events: AtomicUsize,
    after: usize,
    notify: tokio::sync::Notify,
}

impl SyncObserver for CancelAfter {
    fn on_event(&self, _event: &SyncEvent) {
        if self.events.fetch_add(1, Ordering::SeqCst) + 1 == self.after {
            self.notify.notify_one();
        }
    }
}

impl<'a> World<'a> {
    fn new(drive: &'a dyn TestDrive) -> Self {
        Self::with_store(drive, Arc::new(InMemoryStateStore::new()), false)
    }

    fn with_store(drive: &'a dyn TestDrive, store: Arc<dyn StateStore>, index: bool) -> Self {
        let bank = InMemorySource::new();
        bank.add_account(account_0137("acc-0", "Main account"));
        bank.add_account(account_0137("acc-1", "Travel"));
        Self {
            bank,
            drive,
            store,
            next: 0,
            removed: BTreeSet::new(),
            user_contents: BTreeSet::new(),
            user_touched_folders: false,
            other: Other::new(),
            index,
            deleted_folders: BTreeSet::new(),
            steps: 0,
            crashed_after_a_write: false,
        }
    }

    fn config(index: bool) -> SyncConfig {
        let config = SyncConfig::default()
            .with_retry(RetryConfig::fast().with_max_attempts(3))
            .with_concurrency(3);
        if index {
            config.with_index(IndexSettings::with_separator(Separator::Semicolon))
        } else {
            config
        }
    }

    fn index_settings(&self) -> IndexSettings {
        Self::config(self.index).index
    }

    fn syncer(
        &self,
        source: Arc<dyn receipt_sync::source::ReceiptSource>,
        sink: Arc<dyn receipt_sync::sink::ArchiveSink>,
    ) -> Syncer {
        Syncer::new(source, sink, self.store.clone(), Self::config(self.index))
    }

    fn pick_receipt(&self, n: u8) -> Option<ReceiptId> {
        let count = self.next;
        (count > 0).then(|| ReceiptId::new(format!("r{}", usize::from(n) % count)))
    }

    async fn archive(&self) -> (Vec<String>, Vec<String>) {
        let (folders, files) = listing(self.drive.sink().as_ref()).await;
        (
            folders.into_iter().map(|p| p.to_string()).collect(),
            files.into_iter().map(|p| p.to_string()).collect(),
        )
    }

    /// What the user acts on: the archive without the second organisation's files,
    /// nor the folders holding only its files. A folder holding files of both (which
    /// the layout must never make) stays in, so that a deletion there would show.
    async fn first_organisations(&self) -> (Vec<String>, Vec<String>) {
        let (folders, files) = self.archive().await;
        let contents: BTreeMap<String, Vec<u8>> = self.drive.files().into_iter().collect();
        let is_others = |path: &String| contents.get(path).is_some_and(|b| Other::owns(b));
        let holders = |mine: bool| -> BTreeSet<String> {
            files
                .iter()
                .filter(|f| is_others(f) != mine)
                .flat_map(|f| {
                    let parts: Vec<&str> = f.split('/').collect();
                    (1..parts.len()).map(move |n| parts[..n].join("/"))
                })
                .collect()
        };
        let (of_others, of_first) = (holders(false), holders(true));
        let folders = folders
            .into_iter()
            .filter(|f| !of_others.contains(f) || of_first.contains(f))
            .collect();
        let files = files.into_iter().filter(|f| !is_others(f)).collect();
        (folders, files)
    }

    fn note_user_files(&mut self) {
        let present: BTreeSet<Vec<u8>> = self.drive.files().into_iter().map(|(_, b)| b).collect();
        self.user_contents.retain(|c| present.contains(c));
    }

    /// Whether the state records, under `folder`, a receipt archived in its own
    /// period's folder (not one the user moved there) or an index with its folder: the
    /// sync can then tell that the user deleted the folder. After a reset, until a pass
    /// records the files again, it cannot, and brings the folder back.
    async fn records_under(&self, folder: &str) -> bool {
        let Ok(Some(state)) = self.store.load().await else {
            return false;
        };
        let prefix = format!("{folder}/");
        let under = |path: &receipt_sync::model::ArchivePath| path.to_string().starts_with(&prefix);
        let layout = self
            .syncer(Arc::new(self.bank.clone()), self.drive.sink())
            .layout();
        let in_its_period = |id: &ReceiptId, path: &receipt_sync::model::ArchivePath| {
            let period = state
                .receipts
                .get(id)
                .map(|r| layout.period_folder(layout.receipt_day(r)));
            let parent = path.parent().map(|p| p.to_string());
            period.is_some_and(|period| {
                parent.is_some_and(|parent| parent.ends_with(&format!("/{period}")))
            })
        };
        state
            .exported
            .iter()
            .any(|(id, r)| under(&r.path) && in_its_period(id, &r.path))
            || state
                .indexes
                .values()
                .any(|r| r.folder_id.is_some() && under(&r.path))
    }

    /// The first organisation's indexes in the archive.
    async fn index_files(&self) -> Vec<String> {
        let (_, files) = self.first_organisations().await;
        files.into_iter().filter(|f| is_index(f)).collect()
    }

    /// Stops following the deleted folders a receipt brought back (a new receipt of
    /// theirs, or one of a reset): only an index alone must never bring one back.
    fn forget_folders_brought_back(&mut self) {
        if self.deleted_folders.is_empty() {
            return;
        }
        let files = self.drive.files();
        self.deleted_folders.retain(|folder| {
            let prefix = format!("{folder}/");
            !files
                .iter()
                .any(|(p, _)| p.starts_with(&prefix) && !is_index(p))
        });
    }

    async fn step(&mut self, step: &Step) {
        self.steps += 1;
        self.forget_folders_brought_back();
        match *step {
            Step::NewReceipt {
                account,
                month,
                day,
                size,
                declined,
            } => {
                let id = format!("r{}", self.next);
                self.next += 1;
                let day = NaiveDate::from_ymd_opt(2026, u32::from(month), u32::from(day)).unwrap();
                let account = AccountId::new(format!("acc-{account}"));
                let mut receipt =
                    InMemorySource::receipt(&id, &account, day, &format!("Shop {id}"), -1234);
                if declined {
                    receipt.transaction.status = TransactionStatus::Declined;
                }
                self.bank.add_receipt(receipt, receipt_bytes(&id, size));
            }
            Step::EditLabel(n) => {
                if let Some(id) = self.pick_receipt(n) {
                    let _ = self
                        .bank
                        .edit_receipt(&id, |r| r.transaction.label.push_str(" (edited)"));
                }
            }
            Step::SettleAmount(n) => {
                if let Some(id) = self.pick_receipt(n) {
                    let _ = self
                        .bank
                        .edit_receipt(&id, |r| r.transaction.amount.cents -= 1);
                }
            }
            Step::RemoveAtBank(n) => {
                if let Some(id) = self.pick_receipt(n) {
                    self.bank.remove_receipt(&id);
                    self.removed.insert(id.to_string());
                }
            }
            Step::DeleteFile(n) => {
                let (_, files) = self.first_organisations().await;
                if !files.is_empty() {
                    self.drive.delete(&files[usize::from(n) % files.len()]);
                }
                self.note_user_files();
            }
            Step::DeleteFolder(n) => {
                let (folders, _) = self.first_organisations().await;
                if !folders.is_empty() {
                    let folder = &folders[usize::from(n) % folders.len()];
                    let known = self.index && self.records_under(folder).await;
                    self.drive.delete(folder);
                    if known {
                        self.deleted_folders.insert(folder.clone());
                    }
                    self.user_touched_folders = true;
                }
                self.note_user_files();
            }
            Step::Rename(n) => {
                let (folders, files) = self.first_organisations().await;
                let folder_count = folders.len();
                let all: Vec<String> = folders.into_iter().chain(files).collect();
                if !all.is_empty() {
                    let index = usize::from(n) % all.len();
                    self.user_touched_folders |= index < folder_count;
                    let path = &all[index];
                    let name = path.rsplit('/').next().unwrap();
                    self.drive.rename(path, &format!("{name} (mine)"));
                }
            }
            Step::MoveFile(a, b) => {
                let (folders, files) = self.first_organisations().await;
                if !files.is_empty() && !folders.is_empty() {
                    let file = &files[usize::from(a) % files.len()];
                    let folder = &folders[usize::from(b) % folders.len()];
                    self.drive.move_into(file, folder);
                }
            }
            Step::UserFile(n) => {
                let (folders, _) = self.first_organisations().await;
                if !folders.is_empty() {
                    let folder = &folders[usize::from(n) % folders.len()];
                    let content = format!("user file {n} in {folder}").into_bytes();
                    self.drive
                        .add_user_file(&format!("{folder}/notes {n}.txt"), &content);
                    self.user_contents.insert(content);
                    self.note_user_files();
                }
            }
            Step::RenameAccount(n) => {
                let account = AccountId::new(format!("acc-{}", n % 2));
                let _ = self.bank.rename_account(&account, &format!("Renamed {n}"));
            }
            Step::FaultySync {
                seed,
                transient,
                crash,
            } => {
                let mut sink_plan = FaultPlan::seeded(seed).transient(f64::from(transient) / 100.0);
                if let Some((after, after_effect)) = crash {
                    self.crashed_after_a_write |= after_effect;
                    let mode = if after_effect {
                        CrashMode::AfterEffect
                    } else {
                        CrashMode::BeforeEffect
                    };
                    sink_plan = sink_plan.crash_after(u64::from(after), mode);
                }
                let source_plan =
                    FaultPlan::seeded(seed ^ 0x5eed).transient(f64::from(transient) / 200.0);
                let syncer = self.syncer(
                    Arc::new(FaultySource::new(self.bank.clone(), source_plan)),
                    Arc::new(FaultySink::new(self.drive.sink(), sink_plan)),
                );
                let _ = syncer.run().await;
            }
            Step::CancelledSync(after) => {
                let observer = Arc::new(CancelAfter {
                    events: AtomicUsize::new(0),
                    after: usize::from(after),
                    notify: tokio::sync::Notify::new(),
                });
                let syncer = self
                    .syncer(Arc::new(self.bank.clone()), self.drive.sink())
                    .with_observer(observer.clone());
                tokio::select! {
                    _ = syncer.run() => {}
                    () = observer.notify.notified() => {}
                }
            }
            Step::CrashOnRename(after_effect) => {
                let mode = if after_effect {
                    CrashMode::AfterEffect
                } else {
                    CrashMode::BeforeEffect
                };
                let plan = FaultPlan::none().crash_on("rename_folder", mode);
                let syncer = self.syncer(
                    Arc::new(self.bank.clone()),
                    Arc::new(FaultySink::new(self.drive.sink(), plan)),
                );
                let _ = syncer.run().await;
            }
            Step::EditIndex(n) => {
                let indexes = self.index_files().await;
                if !indexes.is_empty() {
                    let path = &indexes[usize::from(n) % indexes.len()];
                    // Saved by a spreadsheet: the file is replaced, with other bytes.
                    let content = format!("edited {path} at step {}\r\n", self.steps).into_bytes();
                    self.drive.delete(path);
                    self.drive.add_user_file(path, &content);
                    self.note_user_files();
                    self.user_contents.insert(content);
                }
            }
            Step::DeleteIndex(n) => {
                let indexes = self.index_files().await;
                if !indexes.is_empty() {
                    self.drive.delete(&indexes[usize::from(n) % indexes.len()]);
                    self.note_user_files();
                }
            }
            Step::Reset => {
                // A reset writes everything again, deleted folders included.
                self.deleted_folders.clear();
                self.syncer(Arc::new(self.bank.clone()), self.drive.sink())
                    .reset()
                    .await
                    .unwrap();
            }
            Step::Sync => {
                let _ = self
                    .syncer(Arc::new(self.bank.clone()), self.drive.sink())
                    .run()
                    .await;
            }
            Step::OtherReceipt {
                account,
                month,
                day,
            } => {
                let id = format!("b-r{}", self.other.next);
                self.other.next += 1;
                let day = NaiveDate::from_ymd_opt(2026, u32::from(month), u32::from(day)).unwrap();
                let account = AccountId::new(format!("b-acc-{account}"));
                let receipt =
                    InMemorySource::receipt(&id, &account, day, &format!("Shop {id}"), -1234);
                self.other
                    .bank
                    .add_receipt(receipt, receipt_bytes(&id, 100));
            }
            Step::OtherSync => {
                let _ = self.other.syncer(self.drive.sink()).run().await;
            }
            Step::OtherReset => {
                self.other.syncer(self.drive.sink()).reset().await.unwrap();
            }
        }
    }

    /// The second organisation's archive is whole: each receipt once, none tombstoned,
    /// and a second sync does nothing.
    async fn check_other(&self) -> Result<(), TestCaseError> {
        let report = self
            .other
            .syncer(self.drive.sink())
            .run()
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(report.is_complete(), "the second organisation: {}", report);
        let state = self.other.store.snapshot().expect("a state");
        prop_assert!(
            state.tombstones.is_empty(),
            "the first organisation's history tombstoned the second's receipts: {:?}",
            state.tombstones
        );
        let files = self.drive.files();
        for id in state.receipts.keys() {
            let head = format!("receipt {id};");
            let copies = files
                .iter()
                .filter(|(_, b)| b.starts_with(head.as_bytes()))
                .count();
            prop_assert_eq!(copies, 1, "{} of the second organisation", id);
        }
        let again = self
            .other
            .syncer(self.drive.sink())
            .run()
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for kind in [
            "upload",
            "create-folder",
            "rename-folder",
            "adopt",
            "tombstone",
        ] {
            prop_assert_eq!(
                again.count(kind),
                0,
                "second organisation did {}: {}",
                kind,
                again
            );
        }
        Ok(())
    }

    /// Clean syncs until one completes (a crash can leave a file to adopt next time).
    async fn converge(&self) -> Result<(), TestCaseError> {
        for _ in 0..3 {
            let report = self
                .syncer(Arc::new(self.bank.clone()), self.drive.sink())
                .run()
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            if report.is_complete() {
                return Ok(());
            }
        }
        Err(TestCaseError::fail("three clean syncs did not converge"))
    }

    async fn check(&self) -> Result<(), TestCaseError> {
        let state = self.store.load().await.unwrap().expect("a state");
        let stable_ids = self.drive.sink().capabilities().stable_ids;
        let files = self.drive.files();
        let mut by_content: BTreeMap<&[u8], Vec<&str>> = BTreeMap::new();
        for (path, bytes) in &files {
            by_content.entry(bytes.as_slice()).or_default().push(path);
        }
        for (id, receipt) in &state.receipts {
            let id = id.as_str();
            let removed = self.removed.contains(id);
            let expected_bytes = if removed {
                None
            } else {
                self.bank.get(&ReceiptId::new(id)).map(|r| r.size)
            };
            let copies: Vec<&str> = files
                .iter()
                .filter(|(_, b)| b.starts_with(format!("receipt {id};").as_bytes()))
                .map(|(p, _)| p.as_str())
                .collect();
            prop_assert!(
                copies.len() <= 1,
                "{id} archived {} times: {copies:?}",
                copies.len()
            );
            let eligible = receipt.transaction.status != TransactionStatus::Declined;
            if state.tombstones.contains_key(&receipt.id) {
                // Without stable ids a folder the user renamed looks deleted: its files stay
                // where the user put them (never copied again). With ids, a tombstone means
                // the folder and its files are gone.
                if stable_ids {
                    prop_assert!(
                        copies.is_empty(),
                        "tombstoned {id} is in the archive at {copies:?}"
                    );
                }
            } else if eligible && expected_bytes.is_some() {
                prop_assert_eq!(copies.len(), 1, "{} is not archived", id);
                let (_, bytes) = files.iter().find(|(p, _)| p == copies[0]).unwrap();
                prop_assert_eq!(
                    Some(bytes.len() as u64),
                    expected_bytes,
                    "{} bytes differ",
                    id
                );
            } else if !eligible {
                prop_assert!(copies.is_empty(), "declined {id} archived");
            }
        }
        // A crash or a cancellation at any step (a folder rename included) never passes
        // for a folder the user deleted.
        if !self.user_touched_folders {
            prop_assert!(
                state.tombstones.is_empty(),
                "tombstones without a folder deleted or renamed by the user: {:?}",
                state.tombstones.keys().collect::<Vec<_>>()
            );
        }
        for content in &self.user_contents {
            prop_assert!(
                by_content.contains_key(content.as_slice()),
                "a user file changed or vanished: {:?}",
                String::from_utf8_lossy(content)
            );
        }
        if self.index {
            self.check_indexes(&state, &files).await?;
        }
        // A second sync writes nothing.
        let before = self.archive().await;
        let report = self
            .syncer(Arc::new(self.bank.clone()), self.drive.sink())
            .run()
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for kind in [
            "upload",
            "create-folder",
            "rename-folder",
            "adopt",
            "tombstone",
            "index",
        ] {
            prop_assert_eq!(
                report.count(kind),
                0,
                "second sync did {}: {}",
                kind,
                report
            );
        }
        prop_assert_eq!(before, self.archive().await);
        Ok(())
    }
}

impl World<'_> {
    /// The index invariants, on the converged state and archive: each period's index
    /// of the sync's is in place (a deleted one came back), as written or as the user
    /// edited it (then never overwritten, and left alone only while nothing new is to
    /// show, else the new one is beside it); no folder the user deleted came back
    /// holding only indexes; and a second plan writes none.
    async fn check_indexes(
        &self,
        state: &SyncState,
        files: &[(String, Vec<u8>)],
    ) -> Result<(), TestCaseError> {
        let layout = self
            .syncer(Arc::new(self.bank.clone()), self.drive.sink())
            .layout();
        let settings = self.index_settings();
        let start = state.settings.as_ref().and_then(|s| s.start_date);
        let again = plan_indexes(state, &layout, start, false, &settings);
        prop_assert!(again.is_empty(), "a second plan writes indexes:\n{}", again);
        let (folders, _) = self.archive().await;
        let folders: BTreeSet<String> = folders.into_iter().collect();
        let contents: BTreeMap<&str, &[u8]> = files
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_slice()))
            .collect();
        let periods: BTreeMap<String, _> =
            receipt_sync::index::collect(state, &layout, start, false)
                .into_iter()
                .map(|(key, period)| (index_key(&key), period))
                .collect();
        let paths = state.snapshot.path_index();
        for (key, record) in &state.indexes {
            let (Some(period), Some(folder)) = (periods.get(key), record.path.parent()) else {
                continue;
            };
            // Only where the period folder the index was written in is still there,
            // under the account's folder as the sync knows it (rule 1: without one, the
            // receipts' plan decides first).
            let account = key
                .rsplit_once('/')
                .map(|(account, _)| AccountId::new(account));
            let account_folder = account
                .and_then(|a| state.accounts.get(&a))
                .and_then(|a| a.folder_id.as_ref())
                .and_then(|id| state.snapshot.path_of(id));
            let same_folder = match paths.get(&folder) {
                Some((id, EntryKind::Folder)) => {
                    record.folder_id.as_ref().is_none_or(|f| f == id)
                        && account_folder.is_some_and(|a| folder.parent().as_ref() == Some(&a))
                }
                _ => false,
            };
            if !same_folder || !folders.contains(&folder.to_string()) {
                continue;
            }
            let path = record.path.to_string();
            let Some(bytes) = contents.get(path.as_str()) else {
                return Err(TestCaseError::fail(format!(
                    "the index {path} is gone and was not written again"
                )));
            };
            if bytes.len() as u64 != record.size {
                // Not the file written (the user's edit, or a file the user moved
                // there): never overwritten, which `user_contents` checks for edits.
                // An edit of the file written beside is left alone, and nothing more is
                // written (the plan says the place is taken): only `index.csv` gets a
                // file beside it.
                // A crash after an index's replacement landed, before it was recorded,
                // makes the sync's own file look edited; a second one, after the file
                // beside it landed, leaves both unrecorded: that period's index then
                // stays as it is (docs/accountant-index.md, Assumptions).
                if !path.ends_with("/index.csv") || self.crashed_after_a_write {
                    continue;
                }
                let now = receipt_sync::index::render(&period.rows, &folder, settings.separator);
                prop_assert_eq!(
                    receipt_sync::index::content_hash(&now),
                    record.hash.clone(),
                    "{} was edited and its period changed since, yet nothing was written beside it",
                    path
                );
            }
        }
        // A receipt may bring a deleted folder back (a new one, or a reset), never an
        // index alone. One the bank no longer has may, too: the pass makes its folder
        // before it finds it gone (then the index goes in the folder the pass made).
        let removed_periods: BTreeSet<String> = self
            .removed
            .iter()
            .filter_map(|id| state.receipts.get(&ReceiptId::new(id.as_str())))
            .map(|r| layout.period_folder(layout.receipt_day(r)))
            .collect();
        for folder in &self.deleted_folders {
            let name = folder.rsplit('/').next().unwrap_or(folder);
            let is_period = folder.contains('/');
            if (is_period && removed_periods.contains(name))
                || (!is_period && !removed_periods.is_empty())
            {
                continue;
            }
            let prefix = format!("{folder}/");
            let inside: Vec<&str> = files
                .iter()
                .map(|(p, _)| p.as_str())
                .filter(|p| p.starts_with(&prefix))
                .collect();
            prop_assert!(
                !inside.iter().any(|p| is_index(p)) || inside.iter().any(|p| !is_index(p)),
                "{} was deleted by the user and came back holding only indexes: {:?}",
                folder,
                inside
            );
        }
        Ok(())
    }
}

async fn run_history(
    drive: &dyn TestDrive,
    steps: &[Step],
    index: bool,
) -> Result<(), TestCaseError> {
    run_history_with(drive, Arc::new(InMemoryStateStore::new()), steps, index).await
}

async fn run_history_with(
    drive: &dyn TestDrive,
    store: Arc<dyn StateStore>,
    steps: &[Step],
    index: bool,
) -> Result<(), TestCaseError> {
    let mut world = World::with_store(drive, store, index);
    for step in steps {
        world.step(step).await;
    }
    world.converge().await?;
    world.check().await?;
    world.check_other().await
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn cases(default: u32) -> ProptestConfig {
    // CI runs the default; `HISTORY_CASES` raises it for long runs.
    let cases = std::env::var("HISTORY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(256))]
    #[test]
    fn histories_against_the_in_memory_drive(
        steps in proptest::collection::vec(step(), 0..40),
        index in any::<bool>(),
    ) {
        let drive = InMemorySink::new();
        runtime().block_on(run_history(&drive, &steps, index))?;
    }

    #[test]
    fn histories_against_a_drive_without_ids_or_delta(
        steps in proptest::collection::vec(step(), 0..40),
        index in any::<bool>(),
    ) {
        let drive = InMemorySink::new().without_ids();
        runtime().block_on(run_history(&drive, &steps, index))?;
    }
}

proptest! {
    #![proptest_config(cases(32))]
    #[test]
    fn histories_against_a_local_folder(
        steps in proptest::collection::vec(step(), 0..25),
        index in any::<bool>(),
    ) {
        let drive = LocalDrive::new();
        runtime().block_on(run_history(&drive, &steps, index))?;
    }

    #[test]
    fn histories_against_onedrive_on_the_fake_graph(
        steps in proptest::collection::vec(step(), 0..25),
        index in any::<bool>(),
    ) {
        let rt = runtime();
        rt.block_on(async {
            let drive = GraphDrive::new().await;
            run_history(&drive, &steps, index).await
        })?;
    }
}

#[cfg(feature = "postgres")]
proptest! {
    // Each case is a new organisation in one shared cluster: fewer cases, as each
    // change is a round trip to a real server.
    #![proptest_config(cases(32))]
    #[test]
    fn histories_against_the_in_memory_drive_with_the_postgres_store(
        steps in proptest::collection::vec(step(), 0..25),
        without_ids in any::<bool>(),
        index in any::<bool>(),
    ) {
        use receipt_sync::testkit::postgres::{TestCluster, unique_name};
        let Some(cluster) = TestCluster::shared() else {
            return Ok(());
        };
        // Half the cases on a drive whose ids are paths: renames move every id below.
        let drive = if without_ids {
            InMemorySink::new().without_ids()
        } else {
            InMemorySink::new()
        };
        runtime().block_on(async {
            // The pool lives on this case's runtime.
            let database = receipt_sync::state::PgDatabase::connect(cluster.url())
                .await
                .unwrap();
            let store = Arc::new(database.store(unique_name("org")));
            run_history_with(&drive, store, &steps, index).await
        })?;
    }
}

#[cfg(feature = "postgres")]
proptest! {
    // OneDrive over HTTP and a real PostgreSQL: the slowest pairing, so the fewest cases.
    #![proptest_config(cases(16))]
    #[test]
    fn histories_against_onedrive_on_the_fake_graph_with_the_postgres_store(
        steps in proptest::collection::vec(step(), 0..25),
        index in any::<bool>(),
    ) {
        use receipt_sync::testkit::postgres::{TestCluster, unique_name};
        let Some(cluster) = TestCluster::shared() else {
            return Ok(());
        };
        runtime().block_on(async {
            let drive = GraphDrive::new().await;
            let database = receipt_sync::state::PgDatabase::connect(cluster.url())
                .await
                .unwrap();
            let store = Arc::new(database.store(unique_name("org")));
            run_history_with(&drive, store, &steps, index).await
        })?;
    }
}

#[test]
fn a_full_drive_stops_the_sync_cleanly_and_loses_nothing() {
    runtime().block_on(async {
        let drive = InMemorySink::new().with_quota(10_000);
        let world = World::new(&drive);
        let account = AccountId::new("acc-0");
        for i in 0..20 {
            let id = format!("r{i}");
            let day = NaiveDate::from_ymd_opt(2026, 1, 1 + i).unwrap();
            world.bank.add_receipt(
                InMemorySource::receipt(&id, &account, day, "Shop", -1),
                receipt_bytes(&id, 1000),
            );
        }
        let report = world
            .syncer(Arc::new(world.bank.clone()), drive.sink())
            .run()
            .await
            .unwrap();
        let stopped = report.stopped.as_ref().expect("the run stops");
        assert!(
            matches!(
                stopped,
                receipt_sync::Error::QuotaExceeded {
                    needed: 10_000,
                    remaining: 0
                }
            ),
            "{stopped}"
        );
        assert_eq!(drive.files().len(), 10, "what fits is written, no more");
        assert_eq!(report.waiting_for_space.len(), 10, "{report}");
        assert!(report.failures.is_empty(), "{report}");
        drive.set_quota(1_000_000);
        let report = world
            .syncer(Arc::new(world.bank.clone()), drive.sink())
            .run()
            .await
            .unwrap();
        assert!(report.is_complete(), "{report}");
        assert_eq!(report.count("upload"), 10);
        assert_eq!(drive.files().len(), 20);
    });
}

#[test]
fn a_drive_filling_up_mid_run_stops_with_the_state_consistent() {
    runtime().block_on(async {
        let drive = InMemorySink::new();
        let mut world = World::new(&drive);
        for i in 0..30u8 {
            let step = Step::NewReceipt {
                account: i % 2,
                month: 1 + i % 3,
                day: 1 + i % 28,
                size: 500,
                declined: false,
            };
            world.step(&step).await;
        }
        let faulty = Arc::new(FaultySink::new(drive.clone(), FaultPlan::none()));
        let fills_up = faulty.clone();
        let uploads = AtomicUsize::new(0);
        let observer = move |event: &SyncEvent| {
            if matches!(event, SyncEvent::Finished { kind: "upload", .. })
                && uploads.fetch_add(1, Ordering::SeqCst) + 1 == 5
            {
                fills_up.set_drive_full(true);
            }
        };
        let syncer = world
            .syncer(Arc::new(world.bank.clone()), faulty.clone())
            .with_observer(Arc::new(observer));
        let report = syncer.run().await.unwrap();
        let stopped = report.stopped.as_ref().expect("a full drive stops the run");
        assert_eq!(
            stopped.kind(),
            receipt_sync::ErrorKind::QuotaExceeded,
            "{report}"
        );
        let archived = world.store.load().await.unwrap().unwrap().exported.len();
        assert!((5..30).contains(&archived), "{archived} recorded");
        assert_eq!(
            drive.files().len(),
            archived,
            "every file written is recorded"
        );
        world.converge().await.unwrap();
        world.check().await.unwrap();
    });
}

#[test]
fn the_same_receipt_is_never_downloaded_twice_in_a_quiet_day() {
    runtime().block_on(async {
        let drive = InMemorySink::new();
        let mut world = World::new(&drive);
        for i in 0..10u8 {
            world
                .step(&Step::NewReceipt {
                    account: 0,
                    month: 1,
                    day: 1 + i,
                    size: 100,
                    declined: false,
                })
                .await;
        }
        world.step(&Step::Sync).await;
        let opens = world.bank.opens();
        let writes = drive.writes();
        world.step(&Step::Sync).await;
        assert_eq!(world.bank.opens(), opens);
        assert_eq!(drive.writes(), writes);
    });
}

/// Found by CI: a sync cancelled while a local write sat in the blocking pool; the
/// write landed after the next scan, and the receipt was copied twice. The race is
/// rare, so the history runs several times (`a_scan_after_cancelled_writes_sees_every_file_that_lands`
/// in `local_dir_sink.rs` pins the cause).
#[test]
fn regression_a_cancelled_local_write_lands_after_the_next_scan() {
    let steps = vec![
        Step::NewReceipt {
            account: 1,
            month: 3,
            day: 9,
            size: 133,
            declined: false,
        },
        Step::DeleteFile(190),
        Step::NewReceipt {
            account: 0,
            month: 2,
            day: 18,
            size: 512,
            declined: false,
        },
        Step::NewReceipt {
            account: 1,
            month: 2,
            day: 26,
            size: 2360,
            declined: false,
        },
        Step::NewReceipt {
            account: 0,
            month: 1,
            day: 8,
            size: 2803,
            declined: true,
        },
        Step::EditLabel(185),
        Step::Rename(221),
        Step::Reset,
        Step::MoveFile(74, 198),
        Step::FaultySync {
            seed: 17675039722615841312,
            transient: 14,
            crash: Some((2, true)),
        },
        Step::MoveFile(121, 49),
        Step::NewReceipt {
            account: 0,
            month: 3,
            day: 23,
            size: 110,
            declined: false,
        },
        Step::FaultySync {
            seed: 1057248177787358100,
            transient: 17,
            crash: None,
        },
        Step::Rename(204),
        Step::Rename(121),
        Step::Reset,
        Step::Sync,
        Step::DeleteFile(160),
        Step::RenameAccount(232),
        Step::EditLabel(87),
        Step::RemoveAtBank(118),
        Step::CancelledSync(6),
        Step::Reset,
    ];
    for _ in 0..20 {
        let drive = LocalDrive::new();
        runtime()
            .block_on(run_history(&drive, &steps, false))
            .unwrap();
    }
}

/// Found by the index invariants: after a reset, an index that needed no rewrite kept a
/// record without its folder's id, and a period folder the user deleted afterwards came
/// back holding only its index.
#[test]
fn regression_a_period_folder_deleted_after_a_reset_stays_deleted() {
    let receipt = |account, month| Step::NewReceipt {
        account,
        month,
        day: 1,
        size: 20,
        declined: false,
    };
    let steps = vec![
        receipt(1, 1),
        receipt(0, 1),
        receipt(1, 2),
        receipt(0, 1),
        Step::Sync,
        Step::Reset,
        Step::Sync,
        // The Travel account's January folder.
        Step::DeleteFolder(18),
        receipt(0, 1),
    ];
    let drive = InMemorySink::new();
    runtime()
        .block_on(run_history(&drive, &steps, true))
        .unwrap();
}
