//! A renamed bank account renames its folder. When the rename lands but its record
//! does not (a crash right after it, or a journal append that fails), the next sync
//! settles it from the scan: nothing is tombstoned, nothing is uploaded twice, and the
//! records point at the new paths. Sinks with and without stable ids.
#![cfg(feature = "testkit")]

use async_trait::async_trait;
use chrono::NaiveDate;
use receipt_sync::model::AccountId;
use receipt_sync::sink::{ArchiveSink, InMemorySink, LocalDirSink};
use receipt_sync::source::InMemorySource;
use receipt_sync::state::{
    InMemoryStateStore, JsonFileStateStore, StateChange, StateLock, StateStore, SyncState,
};
use receipt_sync::sync::{SyncConfig, SyncReport, Syncer};
use receipt_sync::testkit::faults::{CrashMode, FaultPlan, FaultySink};
use receipt_sync::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A store that dies with its process at the first record of a finished rename: that
/// record and everything after it (the end-of-run save too) are lost, as when the
/// process is killed right after the sink renamed the folder.
#[derive(Debug)]
struct DiesAfterRename {
    inner: Arc<dyn StateStore>,
    dead: AtomicBool,
}

impl DiesAfterRename {
    fn died(&self) -> Error {
        Error::State {
            path: PathBuf::from("test-store"),
            detail: "the process died".into(),
        }
    }
}

#[async_trait]
impl StateStore for DiesAfterRename {
    async fn load(&self) -> Result<Option<SyncState>> {
        self.inner.load().await
    }

    async fn save(&self, state: &SyncState) -> Result<()> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(self.died());
        }
        self.inner.save(state).await
    }

    async fn record(&self, changes: &[StateChange]) -> Result<()> {
        let renamed = changes
            .iter()
            .any(|c| matches!(c, StateChange::FolderRenamed { .. }));
        if renamed {
            self.dead.store(true, Ordering::SeqCst);
        }
        if self.dead.load(Ordering::SeqCst) {
            return Err(self.died());
        }
        self.inner.record(changes).await
    }

    async fn lock(&self) -> Result<StateLock> {
        self.inner.lock().await
    }
}

#[derive(Clone, Copy, Debug)]
enum Drive {
    InMemory,
    InMemoryWithoutIds,
    LocalDir,
}

#[derive(Clone, Copy, Debug)]
enum Gap {
    /// The sink renames, then the process dies before hearing back.
    SinkCrash,
    /// The sink renames and answers; recording it fails, and nothing is written after.
    StoreDies,
}

struct World {
    bank: InMemorySource,
    account: AccountId,
    sink: Arc<dyn ArchiveSink>,
    store: Arc<dyn StateStore>,
    _dirs: tempfile::TempDir,
}

impl World {
    fn new(drive: Drive) -> Self {
        let dirs = tempfile::tempdir().unwrap();
        let bank = InMemorySource::new();
        let account = bank.add_account_named("acc", "Main");
        let day = NaiveDate::from_ymd_opt(2026, 2, 9).unwrap();
        for i in 0..3 {
            let receipt =
                InMemorySource::receipt(&format!("r{i}"), &account, day, "Shop", -100 - i);
            bank.add_receipt(receipt, format!("bytes of r{i}"));
        }
        let sink: Arc<dyn ArchiveSink> = match drive {
            Drive::InMemory => Arc::new(InMemorySink::new()),
            Drive::InMemoryWithoutIds => Arc::new(InMemorySink::new().without_ids()),
            Drive::LocalDir => Arc::new(LocalDirSink::new(dirs.path().join("archive")).unwrap()),
        };
        // The file store on disk, so the journal carries the new kinds of change.
        let store: Arc<dyn StateStore> = match drive {
            Drive::LocalDir => Arc::new(JsonFileStateStore::new(dirs.path().join("state"))),
            _ => Arc::new(InMemoryStateStore::new()),
        };
        World {
            bank,
            account,
            sink,
            store,
            _dirs: dirs,
        }
    }

    fn syncer(&self, sink: Arc<dyn ArchiveSink>, store: Arc<dyn StateStore>) -> Syncer {
        Syncer::new(
            Arc::new(self.bank.clone()),
            sink,
            store,
            SyncConfig::default(),
        )
    }

    async fn sync(&self) -> SyncReport {
        self.syncer(self.sink.clone(), self.store.clone())
            .run()
            .await
            .unwrap()
    }

    /// Renames the account at the bank and syncs through `gap`.
    async fn rename_with(&self, gap: Gap) {
        self.bank.rename_account(&self.account, "Business").unwrap();
        match gap {
            Gap::SinkCrash => {
                let faulty: Arc<dyn ArchiveSink> = Arc::new(FaultySink::new(
                    self.sink.clone(),
                    FaultPlan::none().crash_on("rename_folder", CrashMode::AfterEffect),
                ));
                let report = self.syncer(faulty, self.store.clone()).run().await.unwrap();
                assert!(report.stopped.is_some(), "{report}");
                assert_eq!(report.count("rename-folder"), 0, "{report}");
            }
            Gap::StoreDies => {
                let dying = Arc::new(DiesAfterRename {
                    inner: self.store.clone(),
                    dead: AtomicBool::new(false),
                });
                let result = self.syncer(self.sink.clone(), dying).run().await;
                assert!(result.is_err(), "the end-of-run save died too");
            }
        }
    }

    async fn state(&self) -> SyncState {
        self.store.load().await.unwrap().unwrap()
    }
}

#[tokio::test]
async fn a_rename_done_but_not_recorded_is_settled_by_the_next_scan() {
    for drive in [Drive::InMemory, Drive::InMemoryWithoutIds, Drive::LocalDir] {
        for gap in [Gap::SinkCrash, Gap::StoreDies] {
            let world = World::new(drive);
            let first = world.sync().await;
            assert!(first.is_complete(), "{drive:?} {gap:?}: {first}");
            assert_eq!(first.count("upload"), 3);

            world.rename_with(gap).await;
            let scan = world.sink.scan(None).await.unwrap();
            let renamed = match scan {
                receipt_sync::model::ScanUpdate::Full { entries, .. } => entries
                    .iter()
                    .any(|e| e.name.starts_with("Business") && e.is_folder()),
                receipt_sync::model::ScanUpdate::Changes { .. } => true,
            };
            assert!(renamed, "{drive:?} {gap:?}: the rename landed");

            let next = world.sync().await;
            assert!(next.is_complete(), "{drive:?} {gap:?}: {next}");
            assert_eq!(next.count("tombstone"), 0, "{drive:?} {gap:?}: {next}");
            assert_eq!(next.count("upload"), 0, "{drive:?} {gap:?}: {next}");
            assert_eq!(next.count("rename-folder"), 0, "{drive:?} {gap:?}: {next}");

            let state = world.state().await;
            assert!(state.tombstones.is_empty(), "{drive:?} {gap:?}");
            assert!(state.pending_renames.is_empty(), "{drive:?} {gap:?}");
            assert_eq!(state.exported.len(), 3, "{drive:?} {gap:?}");
            for (id, record) in &state.exported {
                assert!(
                    record.path.as_str().starts_with("Business"),
                    "{drive:?} {gap:?}: {id} recorded at {}",
                    record.path
                );
            }
            let account = &state.accounts[&world.account];
            let folder = account.folder_name.as_deref().unwrap_or_default();
            assert!(
                folder.starts_with("Business"),
                "{drive:?} {gap:?}: {folder}"
            );

            // And the sync after that has nothing to do.
            let quiet = world.sync().await;
            assert!(quiet.done.is_empty(), "{drive:?} {gap:?}: {quiet}");
        }
    }
}
