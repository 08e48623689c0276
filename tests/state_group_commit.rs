//! Group commit of the state journal: records that finish together share one durable
//! write, each `record` still returns only once its own changes are durable, and a
//! process killed with uploads landed but their batch not yet written loses nothing:
//! the next run finds those files in place and adopts them, uploading none twice.
#![cfg(all(unix, feature = "testkit"))]

use chrono::NaiveDate;
use receipt_sync::model::AccountId;
use receipt_sync::sink::{InMemorySink, LocalDirSink};
use receipt_sync::source::{InMemorySource, Watermark};
use receipt_sync::state::{JsonFileStateStore, StateChange, StateStore};
use receipt_sync::sync::{SyncConfig, Syncer};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Set in the child: the folder to sync in.
const CHILD: &str = "STATE_GROUP_COMMIT_CHILD";
/// Receipts of the bank the child archives.
const RECEIPTS: usize = 600;

/// The same bank in every process, over three accounts.
fn bank(count: usize) -> InMemorySource {
    let bank = InMemorySource::new();
    for a in 0..3 {
        bank.add_account_named(&format!("acc-{a}"), &format!("Account {a}"));
    }
    for i in 0..count {
        let account = AccountId::new(format!("acc-{}", i % 3));
        let day = NaiveDate::from_ymd_opt(2026, 1 + (i % 12) as u32, 1 + (i % 28) as u32).unwrap();
        let receipt =
            InMemorySource::receipt(&format!("r{i}"), &account, day, &format!("Shop {i}"), -990);
        bank.add_receipt(receipt, format!("receipt {i};").into_bytes());
    }
    bank
}

fn syncer(dir: &Path, store: JsonFileStateStore) -> Syncer {
    Syncer::new(
        Arc::new(bank(RECEIPTS)),
        Arc::new(LocalDirSink::new(dir.join("archive")).unwrap()),
        Arc::new(store),
        SyncConfig::default().with_concurrency(16),
    )
}

/// The receipts' files in the archive (a partial upload is not one).
fn archived_files(dir: &Path) -> Vec<String> {
    fn walk(path: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "pdf") {
                out.push(path.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("archive"), &mut out);
    out.sort();
    out
}

/// The child's part (a no-op unless this binary was started as the child).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_syncs_until_killed() {
    let Some(dir) = std::env::var_os(CHILD) else {
        return;
    };
    let dir = Path::new(&dir);
    let _ = syncer(dir, JsonFileStateStore::new(dir.join("state")))
        .run()
        .await;
}

/// Starts the child and kills it (SIGKILL) once `files` receipts are in the archive.
async fn run_child_and_kill(dir: &Path, files: usize) {
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_syncs_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while archived_files(dir).len() < files
        && child.try_wait().unwrap().is_none()
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let _ = child.start_kill();
    child.wait().await.unwrap();
}

/// Killed while uploads had landed whose batch was not yet durable: the next run adopts
/// those files, uploads only what is missing, and every receipt is archived once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_batch_the_next_run_adopts_and_uploads_nothing_twice() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let mut mid_batch = 0;
    for attempt in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        run_child_and_kill(dir.path(), 60 + attempt * 70).await;
        let present = archived_files(dir.path()).len();
        let store = JsonFileStateStore::new(dir.path().join("state"));
        let journaled = store
            .load()
            .await
            .expect("the state loads after a kill")
            .map_or(0, |state| state.exported.len());
        assert!(
            journaled <= present,
            "{journaled} journaled, {present} present"
        );
        if journaled < present {
            mid_batch += 1;
        }

        let report = syncer(dir.path(), store.clone()).run().await.unwrap();
        assert!(report.is_complete(), "{report}");
        assert_eq!(
            report.count("upload"),
            RECEIPTS - present,
            "only what was missing is uploaded ({present} present, {journaled} journaled): {report}"
        );
        assert_eq!(report.count("adopt"), present - journaled, "{report}");
        let files = archived_files(dir.path());
        assert_eq!(files.len(), RECEIPTS, "every receipt once");
        let again = syncer(dir.path(), store).run().await.unwrap();
        assert_eq!(again.count("upload"), 0, "{again}");
        assert_eq!(archived_files(dir.path()), files);
    }
    eprintln!("{mid_batch} of 6 kills landed between uploads and their durable record");
    assert!(
        mid_batch > 0,
        "no kill landed between an upload and its durable record"
    );
}

/// Overlapping `record` calls share durable writes, and every one of them is durable
/// once it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_records_share_a_flush_and_each_is_durable_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    let _lock = store.lock().await.unwrap();
    let calls: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let change = StateChange::WatermarkAdvanced {
                    account: AccountId::new(format!("acc-{i}")),
                    watermark: Watermark::new(format!("w{i}")),
                };
                store.record(std::slice::from_ref(&change)).await.unwrap();
                // Durable on return: a fresh store (another process) reads it.
                let state = JsonFileStateStore::new(store.state_path().parent().unwrap())
                    .load()
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    state.watermarks.get(&AccountId::new(format!("acc-{i}"))),
                    Some(&Watermark::new(format!("w{i}")))
                );
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    let flushes = store.journal_flushes();
    assert!(flushes < 64, "{flushes} flushes for 64 overlapping records");
    let state = store.load().await.unwrap().unwrap();
    assert_eq!(state.watermarks.len(), 64);
}

/// A first export makes far fewer durable writes than it archives receipts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_export_shares_its_durable_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    let report = Syncer::new(
        Arc::new(bank(2000)),
        Arc::new(InMemorySink::new().without_quota()),
        Arc::new(store.clone()),
        SyncConfig::default().with_concurrency(16),
    )
    .run()
    .await
    .unwrap();
    assert_eq!(report.count("upload"), 2000, "{report}");
    let flushes = store.journal_flushes();
    eprintln!("{flushes} durable writes for 2000 uploads");
    assert!(
        flushes <= 2000 / 8,
        "{flushes} durable writes for 2000 uploads"
    );
    let state = JsonFileStateStore::new(dir.path())
        .load()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.exported.len(), 2000);
}

/// A store whose durable writes are slow (a disk where `fdatasync` takes 20 ms): it
/// counts the records that hold exports.
#[derive(Debug)]
struct SlowDisk {
    inner: receipt_sync::state::InMemoryStateStore,
    export_records: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl StateStore for SlowDisk {
    async fn load(&self) -> receipt_sync::Result<Option<receipt_sync::state::SyncState>> {
        self.inner.load().await
    }
    async fn save(&self, state: &receipt_sync::state::SyncState) -> receipt_sync::Result<()> {
        self.inner.save(state).await
    }
    async fn record(&self, changes: &[StateChange]) -> receipt_sync::Result<()> {
        if changes
            .iter()
            .any(|c| matches!(c, StateChange::Exported { .. }))
        {
            self.export_records
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.inner.record(changes).await
    }
    async fn lock(&self) -> receipt_sync::Result<receipt_sync::state::StateLock> {
        self.inner.lock().await
    }
}

/// While one batch of uploads is made durable, the uploads go on: the next batch holds
/// everything that finished meanwhile (up to 256), not only a few uploads' worth, so a
/// first export runs at the pace of its uploads rather than of the disk's flushes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_go_on_while_a_batch_is_made_durable() {
    let store = Arc::new(SlowDisk {
        inner: receipt_sync::state::InMemoryStateStore::new(),
        export_records: Default::default(),
    });
    let report = Syncer::new(
        Arc::new(bank(1000)),
        Arc::new(InMemorySink::new().without_quota()),
        store.clone(),
        SyncConfig::default().with_concurrency(16),
    )
    .run()
    .await
    .unwrap();
    assert_eq!(report.count("upload"), 1000, "{report}");
    let records = store
        .export_records
        .load(std::sync::atomic::Ordering::SeqCst);
    // 1,000 uploads in batches of up to 256: about five records, a few more if the
    // uploads fall behind; batches of a few dozen would take twenty or more.
    assert!(records <= 12, "{records} records for 1000 uploads");
}
