//! A quiet day without loading the state ([`StateStore::load_settled`]): random
//! histories run in two worlds built alike, one whose store keeps the settled summary
//! and one whose store hides it, so that every pass of the second loads and plans the
//! whole state. After every step both worlds hold the same archive and the same state,
//! and their reports agree; the first world skips loading the state on every quiet day
//! that follows a settled one, and every complete pass leaves a settled one (its own
//! writes, reported back by the change feed the next day, change nothing).

#![cfg(feature = "testkit")]

use async_trait::async_trait;
use chrono::NaiveDate;
use proptest::prelude::*;
use receipt_sync::index::{IndexSettings, Separator};
use receipt_sync::model::{AccountId, ReceiptId};
use receipt_sync::sink::InMemorySink;
use receipt_sync::source::InMemorySource;
use receipt_sync::state::{
    JsonFileStateStore, Settled, StateChange, StateLock, StateStore, SyncState,
};
use receipt_sync::sync::{SyncConfig, SyncReport, Syncer};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A file store that counts whole loads, and can hide its settled summary.
#[derive(Debug)]
struct Watched {
    inner: JsonFileStateStore,
    hide_settled: bool,
    loads: AtomicU64,
}

#[async_trait]
impl StateStore for Watched {
    async fn load(&self) -> receipt_sync::Result<Option<SyncState>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load().await
    }
    async fn save(&self, state: &SyncState) -> receipt_sync::Result<()> {
        self.inner.save(state).await
    }
    async fn record(&self, changes: &[StateChange]) -> receipt_sync::Result<()> {
        self.inner.record(changes).await
    }
    async fn checkpoint(&self, state: &SyncState) -> receipt_sync::Result<()> {
        self.inner.checkpoint(state).await
    }
    async fn load_settled(&self) -> receipt_sync::Result<Option<Settled>> {
        if self.hide_settled {
            return Ok(None);
        }
        self.inner.load_settled().await
    }
    async fn save_settled(&self, settled: &Settled) -> receipt_sync::Result<()> {
        if self.hide_settled {
            return Ok(());
        }
        self.inner.save_settled(settled).await
    }
    async fn lock(&self) -> receipt_sync::Result<StateLock> {
        self.inner.lock().await
    }
}

#[derive(Clone, Debug)]
enum Step {
    NewReceipt { account: u8, month: u8 },
    EditLabel(u8),
    RemoveAtBank(u8),
    DeleteFile(u8),
    DeleteFolder(u8),
    RenameAccount(u8),
    Indexes(bool),
    StartDate(u8),
    ExpireCursor,
    Quiet,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0u8..2, 1u8..=3).prop_map(|(account, month)| Step::NewReceipt { account, month }),
        1 => any::<u8>().prop_map(Step::EditLabel),
        1 => any::<u8>().prop_map(Step::RemoveAtBank),
        1 => any::<u8>().prop_map(Step::DeleteFile),
        1 => any::<u8>().prop_map(Step::DeleteFolder),
        1 => any::<u8>().prop_map(Step::RenameAccount),
        1 => any::<bool>().prop_map(Step::Indexes),
        1 => (0u8..3).prop_map(Step::StartDate),
        1 => Just(Step::ExpireCursor),
        6 => Just(Step::Quiet),
    ]
}

struct World {
    bank: InMemorySource,
    drive: InMemorySink,
    store: Arc<Watched>,
    _dir: tempfile::TempDir,
    receipts: u32,
}

impl World {
    fn new(hide_settled: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bank = InMemorySource::new();
        bank.add_account_named("acc-0", "Main");
        bank.add_account_named("acc-1", "Travel");
        let store = Arc::new(Watched {
            inner: JsonFileStateStore::new(dir.path().join("state")),
            hide_settled,
            loads: AtomicU64::new(0),
        });
        Self {
            bank,
            drive: InMemorySink::new(),
            store,
            _dir: dir,
            receipts: 0,
        }
    }

    /// A world keeping its summary, whose bank has `count` receipts of one account and
    /// month.
    fn with_receipts(count: usize, account: u8, month: u8) -> Self {
        let mut world = Self::new(false);
        for _ in 0..count {
            world.act(&Step::NewReceipt { account, month });
        }
        world
    }

    fn pick<T: Clone>(items: &[T], at: u8) -> Option<T> {
        (!items.is_empty()).then(|| items[usize::from(at) % items.len()].clone())
    }

    /// Carries out what happens before a pass, alike in both worlds.
    fn act(&mut self, step: &Step) {
        match step {
            Step::NewReceipt { account, month } => {
                let id = format!("r{}", self.receipts);
                self.receipts += 1;
                let account = AccountId::new(format!("acc-{account}"));
                let day = NaiveDate::from_ymd_opt(2025, u32::from(*month), 10).unwrap();
                let receipt = InMemorySource::receipt(&id, &account, day, "Shop", -1200);
                self.bank.add_receipt(receipt, format!("bytes of {id}"));
            }
            Step::EditLabel(at) => {
                let ids: Vec<String> = (0..self.receipts).map(|i| format!("r{i}")).collect();
                if let Some(id) = Self::pick(&ids, *at) {
                    let _ = self.bank.edit_receipt(&ReceiptId::new(id), |r| {
                        r.transaction.label.push('+');
                    });
                }
            }
            Step::RemoveAtBank(at) => {
                let ids: Vec<String> = (0..self.receipts).map(|i| format!("r{i}")).collect();
                if let Some(id) = Self::pick(&ids, *at) {
                    self.bank.remove_receipt(&ReceiptId::new(id));
                }
            }
            Step::DeleteFile(at) => {
                let files: Vec<String> = self
                    .drive
                    .files()
                    .into_iter()
                    .map(|(path, _)| path.to_string())
                    .filter(|path| path.ends_with(".pdf"))
                    .collect();
                if let Some(path) = Self::pick(&files, *at) {
                    self.drive.delete_file_as_user(&path).unwrap();
                }
            }
            Step::DeleteFolder(at) => {
                let folders: Vec<String> = self
                    .drive
                    .files()
                    .into_iter()
                    .filter_map(|(path, _)| {
                        let path = path.to_string();
                        path.rsplit_once('/').map(|(folder, _)| folder.to_owned())
                    })
                    .collect();
                if let Some(folder) = Self::pick(&folders, *at) {
                    self.drive.delete_folder_as_user(&folder).unwrap();
                }
            }
            Step::RenameAccount(at) => {
                let account = AccountId::new(format!("acc-{}", at % 2));
                self.bank
                    .rename_account(&account, &format!("Renamed {at}"))
                    .unwrap();
            }
            Step::ExpireCursor => self.drive.expire_cursors(),
            Step::Indexes(_) | Step::StartDate(_) | Step::Quiet => {}
        }
    }

    fn syncer(&self, config: SyncConfig) -> Syncer {
        Syncer::new(
            Arc::new(self.bank.clone()),
            Arc::new(self.drive.clone()),
            self.store.clone(),
            config,
        )
    }

    /// The state, without the times of day that differ between two worlds.
    async fn state(&self) -> SyncState {
        let mut state = self.store.inner.load().await.unwrap().unwrap_or_default();
        for record in state.accounts.values_mut() {
            record.full_read_at = None;
        }
        for record in state.exported.values_mut() {
            record.at = chrono::DateTime::UNIX_EPOCH;
        }
        for record in state.tombstones.values_mut() {
            record.at = chrono::DateTime::UNIX_EPOCH;
        }
        for record in state.indexes.values_mut() {
            record.at = chrono::DateTime::UNIX_EPOCH;
        }
        for at in state.vanished.values_mut() {
            *at = chrono::DateTime::UNIX_EPOCH;
        }
        state.last_run = None;
        // Opaque, and each drive's own.
        state.scan_cursor = None;
        state
    }
}

/// What two reports of the same pass must share.
fn outcome(report: &SyncReport) -> String {
    format!(
        "read {} planned {:?} done {:?} bytes {} failures {} complete {}",
        report.receipts_read,
        report.planned,
        report.done,
        report.bytes_written,
        report.failures.len(),
        report.is_complete()
    )
}

async fn history(steps: Vec<Step>) {
    let (mut settled, mut full) = (World::new(false), World::new(true));
    let mut config = SyncConfig::default().with_full_read_every(None);
    let mut previous_complete = false;
    for (n, step) in steps.iter().enumerate() {
        settled.act(step);
        full.act(step);
        match step {
            Step::Indexes(on) => {
                config = config.with_index(if *on {
                    IndexSettings::with_separator(Separator::Comma)
                } else {
                    IndexSettings::disabled()
                });
            }
            Step::StartDate(month) => {
                let day = NaiveDate::from_ymd_opt(2025, u32::from(*month) + 1, 1).unwrap();
                config = config.with_start_date(Some(day));
            }
            _ => {}
        }
        let had_summary = settled.store.load_settled().await.unwrap().is_some();
        let loads = settled.store.loads.load(Ordering::SeqCst);
        let a = settled.syncer(config.clone()).run().await.unwrap();
        let b = full.syncer(config.clone()).run().await.unwrap();
        let quiet = matches!(step, Step::Quiet);
        assert_eq!(outcome(&a), outcome(&b), "step {n} {step:?}");
        assert_eq!(
            settled.drive.files(),
            full.drive.files(),
            "step {n} {step:?}"
        );
        assert_eq!(
            settled.state().await,
            full.state().await,
            "step {n} {step:?}"
        );
        if quiet && had_summary {
            assert_eq!(
                settled.store.loads.load(Ordering::SeqCst),
                loads,
                "step {n}: a quiet day after a settled one loads no state"
            );
        }
        if quiet && previous_complete {
            assert!(
                had_summary,
                "step {n}: a quiet day after a complete pass starts settled"
            );
        }
        previous_complete = b.is_complete();
    }
}

/// The file's inode (0 where there are none): a file replaced by rename gets a new one.
fn inode(path: &std::path::Path) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).map_or(0, |m| m.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        0
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48)
    ))]

    #[test]
    fn a_quiet_day_from_the_summary_ends_as_a_whole_pass_would(
        steps in proptest::collection::vec(step(), 1..30)
    ) {
        runtime().block_on(history(steps));
    }
}

/// The shortcut is taken the day after an export, although the change feed reports
/// the export's writes back then.
#[tokio::test]
async fn the_day_after_an_export_reads_no_state() {
    let mut world = World::with_receipts(20, 0, 2);
    let config = SyncConfig::default();
    let first = world.syncer(config.clone()).run().await.unwrap();
    assert_eq!(first.count("upload"), 20);
    let loads = world.store.loads.load(Ordering::SeqCst);
    let settled = world.store.load_settled().await.unwrap().expect("settled");
    assert_eq!(
        settled.echoes.len(),
        20 + 2,
        "the files and their two folders"
    );
    let second = world.syncer(config.clone()).run().await.unwrap();
    assert!(second.is_complete(), "{second:?}");
    assert_eq!(world.store.loads.load(Ordering::SeqCst), loads);
    let settled = world.store.load_settled().await.unwrap().expect("settled");
    assert!(settled.echoes.is_empty(), "reported back once");
    // A quiet day writes its journal lines and a small summary, nothing else: the base
    // file and the catalog are neither changed nor written again (a file replaced by
    // rename gets a new inode).
    let store = &world.store.inner;
    let file = |path: std::path::PathBuf| {
        let bytes = std::fs::read(&path).unwrap_or_default();
        (bytes, inode(&path))
    };
    let (base, catalog) = (file(store.state_path()), file(store.catalog_path()));
    let journal = file(store.journal_path()).0.len();
    world.syncer(config.clone()).run().await.unwrap();
    assert_eq!(world.store.loads.load(Ordering::SeqCst), loads);
    assert!(
        file(store.state_path()) == base,
        "the base file is left alone"
    );
    assert!(
        file(store.catalog_path()) == catalog,
        "the catalog is left alone"
    );
    let appended = file(store.journal_path()).0.len() - journal;
    let summary = file(store.settled_path()).0.len();
    assert!(
        appended < 2048 && summary < 4096,
        "{appended} B journaled, summary {summary} B"
    );
    assert!(
        world.store.load_settled().await.unwrap().is_some(),
        "and the next day too"
    );
    // A new receipt ends the shortcut's day, not its correctness.
    world.act(&Step::NewReceipt {
        account: 1,
        month: 3,
    });
    let fourth = world.syncer(config).run().await.unwrap();
    assert_eq!(fourth.count("upload"), 1);
    assert_eq!(world.store.loads.load(Ordering::SeqCst), loads + 1);
}

// The drives' other helpers serve other tests.
#[allow(dead_code)]
mod common;

/// On OneDrive (the fake Graph, its delta feed reporting folders with their files):
/// the day after an export is read from the summary; a file the user deletes is put
/// back by a whole pass, and the day after that is read from the summary again; a
/// folder the user deletes stays deleted.
#[tokio::test]
async fn on_onedrive_the_deletion_rules_hold_around_quiet_days() {
    use common::drives::{GraphDrive, TestDrive};
    let drive = GraphDrive::new().await;
    let world = World::new(false);
    for i in 0..12u8 {
        let day = NaiveDate::from_ymd_opt(2025, u32::from(1 + i % 2), 10).unwrap();
        let account = AccountId::new(format!("acc-{}", i % 2));
        let id = format!("g{i}");
        let receipt = InMemorySource::receipt(&id, &account, day, "Shop", -500);
        world.bank.add_receipt(receipt, format!("bytes of {id}"));
    }
    let syncer = || {
        Syncer::new(
            Arc::new(world.bank.clone()),
            drive.sink(),
            world.store.clone(),
            SyncConfig::default(),
        )
    };
    let loads = || world.store.loads.load(Ordering::SeqCst);
    assert_eq!(syncer().run().await.unwrap().count("upload"), 12);
    let after_export = loads();

    let quiet = syncer().run().await.unwrap();
    assert!(quiet.is_complete(), "{quiet:?}");
    assert_eq!(
        loads(),
        after_export,
        "the day after the export reads no state"
    );

    let files = drive.files();
    let (deleted, bytes) = files.first().unwrap().clone();
    drive.delete(&deleted);
    let put_back = syncer().run().await.unwrap();
    assert_eq!(
        put_back.planned.get("upload: put back"),
        Some(&1),
        "{put_back:?}"
    );
    assert_eq!(put_back.count("upload"), 1);
    assert_eq!(loads(), after_export + 1);
    assert!(drive.files().contains(&(deleted.clone(), bytes)));
    syncer().run().await.unwrap();
    assert_eq!(loads(), after_export + 1, "quiet again the day after");

    let folder = deleted.rsplit_once('/').unwrap().0.to_owned();
    let held = drive
        .files()
        .iter()
        .filter(|(path, _)| path.starts_with(&format!("{folder}/")))
        .count();
    drive.delete(&folder);
    let tombstoned = syncer().run().await.unwrap();
    assert_eq!(tombstoned.count("tombstone"), held, "{tombstoned:?}");
    for _ in 0..2 {
        let quiet = syncer().run().await.unwrap();
        assert!(
            quiet.is_complete() && quiet.count("upload") == 0,
            "{quiet:?}"
        );
    }
    assert_eq!(loads(), after_export + 2, "quiet days after the deletion");
    assert!(
        !drive
            .files()
            .iter()
            .any(|(path, _)| path.starts_with(&format!("{folder}/"))),
        "a folder the user deleted stays deleted"
    );
}

/// The summary is a cache: damaged, cut or gone, the pass loads the whole state and
/// ends as it would have; a later pass keeps a new summary.
#[tokio::test]
async fn a_damaged_or_missing_summary_is_no_summary() {
    let world = World::with_receipts(6, 1, 1);
    let config = SyncConfig::default();
    world.syncer(config.clone()).run().await.unwrap();
    let files = [
        world.store.inner.settled_path(),
        world.store.inner.catalog_path(),
    ];
    for file in &files {
        let whole = std::fs::read(file).unwrap();
        let damages: Vec<Vec<u8>> = vec![
            whole[..whole.len() / 2].to_vec(),
            {
                let mut flipped = whole.clone();
                let last = flipped.len() - 1;
                flipped[last] ^= 0x40;
                flipped
            },
            Vec::new(),
        ];
        for damaged in damages {
            std::fs::write(file, &damaged).unwrap();
            assert!(world.store.load_settled().await.unwrap().is_none());
            let loads = world.store.loads.load(Ordering::SeqCst);
            let report = world.syncer(config.clone()).run().await.unwrap();
            assert!(
                report.is_complete() && report.count("upload") == 0,
                "{report:?}"
            );
            assert_eq!(world.store.loads.load(Ordering::SeqCst), loads + 1);
            assert!(
                world.store.load_settled().await.unwrap().is_some(),
                "kept again after {} bytes of {}",
                damaged.len(),
                file.display()
            );
        }
        std::fs::remove_file(file).unwrap();
        assert!(world.store.load_settled().await.unwrap().is_none());
        world.syncer(config.clone()).run().await.unwrap();
        assert!(world.store.load_settled().await.unwrap().is_some());
    }
}
