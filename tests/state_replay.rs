//! The journal alone carries a run: random runs against the real `Syncer` with the file
//! store, which rewrites `state.json` only now and then. After every run, what a fresh
//! store loads (the last saved state with the journal replayed on it) is exactly the
//! state the run held in memory at its end, the one a save would have written.
//!
//! Every field a run changes (settings, accounts and their folders, the catalog, export
//! records, tombstones, watermarks, the archive's picture and its scan cursor, the last
//! run, pending renames) must therefore reach the journal as a change.

#![cfg(feature = "testkit")]

use async_trait::async_trait;
use chrono::NaiveDate;
use proptest::prelude::*;
use receipt_sync::Result;
use receipt_sync::model::{AccountId, EntryKind, ReceiptId, SinkEntry, SinkItemId};
use receipt_sync::sink::{ArchiveSink, InMemorySink};
use receipt_sync::source::InMemorySource;
use receipt_sync::state::{JsonFileStateStore, StateChange, StateLock, StateStore, SyncState};
use receipt_sync::sync::{SyncConfig, Syncer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The file store, keeping a copy of the state each run ends with (given to
/// `checkpoint`, or to `save` by a reset).
#[derive(Debug)]
struct Witness {
    inner: JsonFileStateStore,
    last: Mutex<Option<SyncState>>,
}

#[async_trait]
impl StateStore for Witness {
    async fn load(&self) -> Result<Option<SyncState>> {
        self.inner.load().await
    }

    async fn save(&self, state: &SyncState) -> Result<()> {
        *self.last.lock().unwrap() = Some(state.clone());
        self.inner.save(state).await
    }

    async fn record(&self, changes: &[StateChange]) -> Result<()> {
        self.inner.record(changes).await
    }

    async fn checkpoint(&self, state: &SyncState) -> Result<()> {
        *self.last.lock().unwrap() = Some(state.clone());
        self.inner.checkpoint(state).await
    }

    async fn lock(&self) -> Result<StateLock> {
        self.inner.lock().await
    }
}

#[derive(Clone, Debug)]
enum Step {
    NewReceipt { account: u8, month: u8, day: u8 },
    EditLabel(u8),
    RemoveAtBank(u8),
    DeleteFolder(u8),
    DeleteFile(u8),
    RenameAccount(u8),
    StartDate(u8),
    ExpireCursors,
    Reset,
    Sync,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0u8..3, 1u8..4, 1u8..28)
            .prop_map(|(account, month, day)| Step::NewReceipt { account, month, day }),
        1 => any::<u8>().prop_map(Step::EditLabel),
        1 => any::<u8>().prop_map(Step::RemoveAtBank),
        1 => any::<u8>().prop_map(Step::DeleteFolder),
        1 => any::<u8>().prop_map(Step::DeleteFile),
        1 => any::<u8>().prop_map(Step::RenameAccount),
        1 => (0u8..40).prop_map(Step::StartDate),
        1 => Just(Step::ExpireCursors),
        1 => Just(Step::Reset),
        4 => Just(Step::Sync),
    ]
}

struct World {
    bank: Arc<InMemorySource>,
    drive: Arc<InMemorySink>,
    dir: tempfile::TempDir,
    store: Arc<Witness>,
    receipts: Vec<ReceiptId>,
    start_date: Option<NaiveDate>,
}

impl World {
    fn new(delta: bool, compaction_bytes: u64) -> Self {
        let bank = InMemorySource::new();
        for i in 0..3 {
            bank.add_account_named(&format!("acc-{i}"), &format!("Account {i}"));
        }
        let drive = if delta {
            InMemorySink::new()
        } else {
            InMemorySink::new().without_delta()
        };
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Witness {
            inner: JsonFileStateStore::new(dir.path()).with_compaction_bytes(compaction_bytes),
            last: Mutex::new(None),
        });
        Self {
            bank: Arc::new(bank),
            drive: Arc::new(drive),
            dir,
            store,
            receipts: Vec::new(),
            start_date: None,
        }
    }

    fn syncer(&self) -> Syncer {
        Syncer::new(
            self.bank.clone(),
            self.drive.clone(),
            self.store.clone(),
            SyncConfig::default()
                .with_concurrency(4)
                .with_start_date(self.start_date),
        )
    }

    /// The archive's paths, folders and files apart.
    async fn archive(&self) -> (Vec<String>, Vec<String>) {
        let entries = match self.drive.scan(None).await.unwrap() {
            receipt_sync::model::ScanUpdate::Full { entries, .. } => entries,
            receipt_sync::model::ScanUpdate::Changes { .. } => unreachable!("a full scan"),
        };
        let by_id: HashMap<SinkItemId, SinkEntry> =
            entries.iter().map(|e| (e.id.clone(), e.clone())).collect();
        let path = |entry: &SinkEntry| {
            let mut names = vec![entry.name.clone()];
            let mut parent = entry.parent.clone();
            while let Some(id) = parent {
                let up = &by_id[&id];
                names.push(up.name.clone());
                parent = up.parent.clone();
            }
            names.reverse();
            names.join("/")
        };
        let mut folders = Vec::new();
        let mut files = Vec::new();
        for entry in &entries {
            match entry.kind {
                EntryKind::Folder => folders.push(path(entry)),
                EntryKind::File { .. } => files.push(path(entry)),
            }
        }
        folders.sort();
        files.sort();
        (folders, files)
    }

    /// The state a run ended with is the state a fresh store loads.
    async fn check(&self, after: &str) {
        let expected = self.store.last.lock().unwrap().take();
        let Some(expected) = expected else {
            return;
        };
        let loaded = JsonFileStateStore::new(self.dir.path())
            .load()
            .await
            .unwrap()
            .expect("a state");
        assert_eq!(loaded, expected, "after {after}");
    }

    async fn apply(&mut self, step: &Step) {
        match *step {
            Step::NewReceipt {
                account,
                month,
                day,
            } => {
                let id = format!("r{}", self.receipts.len());
                let day = NaiveDate::from_ymd_opt(2026, u32::from(month), u32::from(day)).unwrap();
                let account = AccountId::new(format!("acc-{account}"));
                let receipt =
                    InMemorySource::receipt(&id, &account, day, &format!("Shop {id}"), -1234);
                self.bank
                    .add_receipt(receipt, format!("receipt {id};").into_bytes());
                self.receipts.push(ReceiptId::new(id));
            }
            Step::EditLabel(n) | Step::RemoveAtBank(n) if self.receipts.is_empty() => {
                let _ = n;
            }
            Step::EditLabel(n) => {
                let id = &self.receipts[usize::from(n) % self.receipts.len()];
                let _ = self
                    .bank
                    .edit_receipt(id, |r| r.transaction.label.push_str(" (edited)"));
            }
            Step::RemoveAtBank(n) => {
                let id = &self.receipts[usize::from(n) % self.receipts.len()];
                self.bank.remove_receipt(id);
            }
            Step::DeleteFolder(n) => {
                let (folders, _) = self.archive().await;
                if !folders.is_empty() {
                    let _ = self
                        .drive
                        .delete_folder_as_user(&folders[usize::from(n) % folders.len()]);
                }
            }
            Step::DeleteFile(n) => {
                let (_, files) = self.archive().await;
                if !files.is_empty() {
                    let _ = self
                        .drive
                        .delete_file_as_user(&files[usize::from(n) % files.len()]);
                }
            }
            Step::RenameAccount(n) => {
                let account = AccountId::new(format!("acc-{}", n % 3));
                let _ = self.bank.rename_account(&account, &format!("Renamed {n}"));
            }
            Step::StartDate(day) => {
                // Later or earlier than the receipts' days, or the stored one.
                self.start_date = (day > 0).then(|| {
                    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
                        + chrono::Days::new(u64::from(day) * 2)
                });
            }
            Step::ExpireCursors => self.drive.expire_cursors(),
            Step::Reset => {
                self.syncer().reset().await.unwrap();
                self.check("a reset").await;
            }
            Step::Sync => {
                self.syncer().run().await.unwrap();
                self.check("a sync").await;
            }
        }
    }
}

async fn history(steps: &[Step], delta: bool, compaction_bytes: u64) {
    let mut world = World::new(delta, compaction_bytes);
    for (i, step) in steps.iter().enumerate() {
        world.apply(step).await;
        let _ = i;
    }
    world.apply(&Step::Sync).await;
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    /// Replaying the journal yields the state each run ended with, whether the store
    /// rewrites the state at every run (threshold 0) or almost never (the default).
    #[test]
    fn replaying_the_journal_gives_the_state_of_the_run(
        steps in prop::collection::vec(step(), 1..40),
        delta in any::<bool>(),
        compact in any::<bool>(),
    ) {
        let compaction_bytes = if compact { 0 } else { u64::MAX };
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(history(&steps, delta, compaction_bytes));
    }
}

/// A quiet day leaves `state.json` as it was: only the journal grows.
#[tokio::test]
async fn a_quiet_day_appends_to_the_journal_and_leaves_the_state_file() {
    let mut world = World::new(true, receipt_sync::state::DEFAULT_COMPACTION_BYTES);
    for i in 0..30u8 {
        world
            .apply(&Step::NewReceipt {
                account: i % 3,
                month: 1 + i % 3,
                day: 1 + i % 28,
            })
            .await;
    }
    world.apply(&Step::Sync).await;
    let state_path = world.store.inner.state_path();
    let before = std::fs::read(&state_path).unwrap();
    let journal_before = std::fs::metadata(world.store.inner.journal_path())
        .map(|m| m.len())
        .unwrap_or(0);
    world.apply(&Step::Sync).await;
    assert_eq!(std::fs::read(&state_path).unwrap(), before, "not rewritten");
    let journal_after = std::fs::metadata(world.store.inner.journal_path())
        .unwrap()
        .len();
    let journal = std::fs::read_to_string(world.store.inner.journal_path()).unwrap();
    assert!(
        journal_after > journal_before && journal_after - journal_before < 2048,
        "a few lines: {journal_before} → {journal_after}\n{journal}"
    );
    assert!(journal.contains("run_finished"), "{journal}");
}
