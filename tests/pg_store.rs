//! `PgStateStore` against a real PostgreSQL (a throwaway cluster, or `DATABASE_URL`):
//! the state conformance suite, locking across connections and processes, schema
//! versions, rows this release cannot read, organisations kept apart, no secret shown.
//! Without PostgreSQL they say they did not run, unless `RECEIPT_SYNC_REQUIRE_POSTGRES=1`.
#![cfg(all(feature = "testkit", feature = "postgres"))]

use receipt_sync::error::{Error, ErrorKind};
use receipt_sync::model::{AccountId, ReceiptId};
use receipt_sync::source::Watermark;
use receipt_sync::state::{
    PgDatabase, PgStateStore, SCHEMA_VERSION, StateChange, StateSettings, StateStore, SyncState,
};
use receipt_sync::testkit::postgres::{TestCluster, unique_name};
use std::time::{Duration, Instant};

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("admin connection");
    tokio::spawn(connection);
    client
}

fn settings() -> StateSettings {
    StateSettings {
        start_date: chrono::NaiveDate::from_ymd_opt(2026, 1, 1),
        layout: Default::default(),
    }
}

fn watermark_change(account: &str, position: &str) -> StateChange {
    StateChange::WatermarkAdvanced {
        account: AccountId::new(account),
        watermark: Watermark::new(position),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_passes_the_state_conformance_suite() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let database = PgDatabase::connect(cluster.url()).await.unwrap();
    let store = database.store(unique_name("org"));
    let report = receipt_sync::testkit::state::run_all(&store).await;
    for check in [
        "load_empty",
        "lock",
        "save_load",
        "record_load",
        "save_supersedes_journal",
        "checkpoint_keeps_the_state",
        "settled_summary_only_while_current",
    ] {
        assert!(report.ran(check), "{check} did not run: {report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_excludes_a_second_holder_on_another_connection() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let org = unique_name("org");
    let first = PgDatabase::connect(cluster.url())
        .await
        .unwrap()
        .store(&org);
    let elsewhere = PgDatabase::connect(cluster.url()).await.unwrap();
    let second = elsewhere.store(&org);
    let held = first.lock().await.unwrap();
    let refused = second.lock().await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::AlreadyRunning, "{refused}");
    assert!(refused.to_string().contains(&org), "{refused}");
    // Another organisation is not held up.
    let other = elsewhere.store(unique_name("org")).lock().await;
    assert!(other.is_ok(), "{other:?}");
    drop(held);
    let taken = wait_for_lock(&second, Duration::from_secs(5)).await;
    assert!(taken.is_ok(), "{taken:?}");
}

async fn wait_for_lock(
    store: &PgStateStore,
    within: Duration,
) -> Result<receipt_sync::state::StateLock, Error> {
    let deadline = Instant::now() + within;
    loop {
        match store.lock().await {
            Err(e) if e.kind() == ErrorKind::AlreadyRunning && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_connection_dies_releases_the_lock() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let org = unique_name("org");
    let holder = PgDatabase::connect(cluster.url())
        .await
        .unwrap()
        .store(&org);
    let waiter = PgDatabase::connect(cluster.url())
        .await
        .unwrap()
        .store(&org);
    let held = holder.lock().await.unwrap();
    assert_eq!(
        waiter.lock().await.unwrap_err().kind(),
        ErrorKind::AlreadyRunning
    );
    // The holder's server process dies (as when its worker's machine is lost).
    let admin = admin(cluster.url()).await;
    let killed: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks \
             WHERE locktype = 'advisory' AND granted AND objsubid = 1 \
             AND ((classid::bigint << 32) | objid::bigint) = \
                 hashtextextended('receipt-sync state ' || $1, 0)",
            &[&org],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1, "the holder's connection was found");
    let taken = wait_for_lock(&waiter, Duration::from_secs(10)).await;
    assert!(taken.is_ok(), "{taken:?}");
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_process_killed_with_sigkill_releases_the_lock() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let Some(psql) = psql() else {
        eprintln!("psql not found: the SIGKILL check did not run");
        return;
    };
    let org = unique_name("org");
    let waiter = PgDatabase::connect(cluster.url())
        .await
        .unwrap()
        .store(&org);
    // Another process takes the very lock the store takes, then waits for more input
    // with its connection idle, as a worker's lock connection is.
    let mut child = std::process::Command::new(psql)
        .arg(cluster.url())
        .args(["-v", "ON_ERROR_STOP=1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("psql");
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().expect("psql's stdin");
        writeln!(
            stdin,
            "SELECT pg_advisory_lock(hashtextextended('receipt-sync state ' || '{org}', 0));"
        )
        .expect("to psql");
        stdin.flush().expect("to psql");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match waiter.lock().await {
            Err(e) if e.kind() == ErrorKind::AlreadyRunning => break,
            Ok(lock) => {
                drop(lock);
                assert!(Instant::now() < deadline, "the child never took the lock");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let taken = wait_for_lock(&waiter, Duration::from_secs(10)).await;
    assert!(taken.is_ok(), "{taken:?}");
}

fn psql() -> Option<std::path::PathBuf> {
    let mut dirs: Vec<std::path::PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(
        std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin")),
    );
    dirs.into_iter()
        .map(|d| d.join("psql"))
        .find(|p| p.is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_this_release_is_refused() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let url = cluster.fresh_database().await;
    // Two workers starting together both migrate, one after the other.
    let (a, b) = tokio::join!(PgDatabase::connect(&url), PgDatabase::connect(&url));
    a.unwrap();
    b.unwrap();
    let admin = admin(&url).await;
    admin
        .execute(
            "UPDATE receipt_sync_schema SET version = $1",
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();
    let refused = PgDatabase::connect(&url).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::State, "{refused}");
    assert!(refused.to_string().contains("newer"), "{refused}");
    let version: i32 = admin
        .query_one("SELECT version FROM receipt_sync_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, SCHEMA_VERSION + 1, "left as it was");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_this_release_cannot_read_are_errors_naming_the_organisation_and_table() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let database = PgDatabase::connect(cluster.url()).await.unwrap();
    let admin = admin(cluster.url()).await;

    let org = unique_name("org");
    let store = database.store(&org);
    store.save(&SyncState::new(settings())).await.unwrap();
    store
        .record(&[watermark_change("acc", "w1")])
        .await
        .unwrap();
    admin
        .execute(
            "UPDATE sync_watermarks SET body = '{\"not\": \"a watermark\"}' WHERE org_id = $1",
            &[&org],
        )
        .await
        .unwrap();
    let bad = store.load().await.unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::State, "{bad}");
    let message = bad.to_string();
    assert!(message.contains(&org), "{message}");
    assert!(message.contains("sync_watermarks"), "{message}");
    assert!(
        !message.contains("not a watermark"),
        "no row content: {message}"
    );

    // A state written by a newer release is refused, not read as this one's.
    let newer = unique_name("org");
    let store = database.store(&newer);
    store.save(&SyncState::new(settings())).await.unwrap();
    admin
        .execute(
            "UPDATE sync_state SET format = 99 WHERE org_id = $1",
            &[&newer],
        )
        .await
        .unwrap();
    let refused = store.load().await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::State, "{refused}");
    assert!(refused.to_string().contains("newer release"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_organisations_in_one_database_never_see_each_others_rows() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let database = PgDatabase::connect(cluster.url()).await.unwrap();
    let (a, b) = (
        database.store(unique_name("org")),
        database.store(unique_name("org")),
    );
    let mut state = SyncState::new(settings());
    state
        .watermarks
        .insert(AccountId::new("acc"), Watermark::new("a-1"));
    a.save(&state).await.unwrap();
    assert_eq!(b.load().await.unwrap(), None);

    b.record(&[
        watermark_change("acc", "b-1"),
        StateChange::Vanished {
            receipt: ReceiptId::new("r1"),
            at: chrono::Utc::now(),
        },
    ])
    .await
    .unwrap();
    assert_eq!(a.load().await.unwrap(), Some(state.clone()));

    // A save replaces one organisation's rows only.
    a.save(&SyncState::new(settings())).await.unwrap();
    let seen = b.load().await.unwrap().expect("b's state");
    assert_eq!(
        seen.watermarks[&AccountId::new("acc")],
        Watermark::new("b-1")
    );
    assert_eq!(seen.vanished.len(), 1);
    // Each holds its own lock.
    let _a = a.lock().await.unwrap();
    let _b = b.lock().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_error_or_debug() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let password = cluster.password();
    assert!(!password.is_empty(), "the test server has a password");
    let database = PgDatabase::connect(cluster.url()).await.unwrap();
    let store = database.store(unique_name("org"));
    for shown in [format!("{database:?}"), format!("{store:?}")] {
        assert!(!shown.contains(password), "{shown}");
    }

    // A wrong password: refused credentials, and neither password in the message.
    let wrong = "Wr0ng-Passw0rd-Never-Shown";
    let url = cluster.url().replacen(password, wrong, 1);
    let refused = PgDatabase::connect(&url).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unauthorized, "{refused}");
    for shown in [refused.to_string(), format!("{refused:?}")] {
        assert!(
            !shown.contains(wrong) && !shown.contains(password),
            "{shown}"
        );
    }

    // Nobody listening: retryable, and the password is not in the message.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgresql://postgres:{password}@127.0.0.1:{closed_port}/postgres");
    let down = PgDatabase::connect(&url).await.unwrap_err();
    assert!(down.is_retryable(), "{down}");
    for shown in [down.to_string(), format!("{down:?}")] {
        assert!(!shown.contains(password), "{shown}");
    }

    // A connection string that cannot be read is not quoted back.
    let garbled = format!("postgresql://postgres:{password}@127.0.0.1:notaport/db");
    let bad = PgDatabase::connect(&garbled).await.unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::Config, "{bad}");
    assert!(!format!("{bad} {bad:?}").contains(password), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_dropped_midway_commits_nothing() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    // One connection, so the next call gets the one the dropped call used, if pooled.
    let database = PgDatabase::connect_with_pool_size(cluster.url(), 1)
        .await
        .unwrap();
    let rename = StateChange::FolderRenameStarted(receipt_sync::state::PendingRename {
        folder: receipt_sync::model::SinkItemId::new("f1"),
        from: receipt_sync::model::ArchivePath::parse("Main").unwrap(),
        to: receipt_sync::model::ArchivePath::parse("Business").unwrap(),
        ids_are_paths: false,
    });
    // A call is dropped after its first poll, which sends `BEGIN` and the watermark and
    // then waits for the server (a rename reads the state before writing): a cancelled
    // sync. On a busy machine the first poll can rarely find the answers already there
    // and finish; that attempt proves nothing, so it is made again on a new organisation.
    let mut dropped_midway = None;
    for _ in 0..20 {
        let org = unique_name("org");
        let store = database.store(&org);
        store.save(&SyncState::new(settings())).await.unwrap();
        // Once through, so that every statement is prepared on the connection.
        store
            .record(&[watermark_change("acc", "w1"), rename.clone()])
            .await
            .unwrap();
        let changes = [watermark_change("acc", "w2"), rename.clone()];
        let mut midway = Box::pin(store.record(&changes));
        if futures::poll!(midway.as_mut()).is_pending() {
            drop(midway);
            dropped_midway = Some((org, store));
            break;
        }
    }
    let (org, store) = dropped_midway.expect("a call still waiting after its first poll");
    store
        .record(&[watermark_change("other", "x1")])
        .await
        .unwrap();

    let seen = PgDatabase::connect(cluster.url())
        .await
        .unwrap()
        .store(&org)
        .load()
        .await
        .unwrap()
        .expect("a state");
    assert_eq!(
        seen.watermarks[&AccountId::new("acc")],
        Watermark::new("w1"),
        "the dropped call's write was rolled back, not committed by the next call"
    );
    assert_eq!(
        seen.watermarks[&AccountId::new("other")],
        Watermark::new("x1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_dropped_can_be_taken_again_at_once_by_any_store_of_the_database() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let database = PgDatabase::connect(cluster.url()).await.unwrap();
    let org = unique_name("org");
    // A service makes a new store per run: back-to-back runs must not find the
    // previous run's lock still held.
    for run in 0..50 {
        let lock = database.store(&org).lock().await;
        assert!(lock.is_ok(), "run {run}: {lock:?}");
    }
}

/// Counts whole loads of the store it wraps.
#[derive(Debug)]
struct CountingLoads {
    inner: PgStateStore,
    loads: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl StateStore for CountingLoads {
    async fn load(&self) -> receipt_sync::Result<Option<SyncState>> {
        self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.load().await
    }
    async fn save(&self, state: &SyncState) -> receipt_sync::Result<()> {
        self.inner.save(state).await
    }
    async fn record(&self, changes: &[StateChange]) -> receipt_sync::Result<()> {
        self.inner.record(changes).await
    }
    async fn load_settled(&self) -> receipt_sync::Result<Option<receipt_sync::state::Settled>> {
        self.inner.load_settled().await
    }
    async fn save_settled(
        &self,
        settled: &receipt_sync::state::Settled,
    ) -> receipt_sync::Result<()> {
        self.inner.save_settled(settled).await
    }
    async fn lock(&self) -> receipt_sync::Result<receipt_sync::state::StateLock> {
        self.inner.lock().await
    }
}

/// A quiet day of an organisation reads its settled summary, not its rows; a new
/// receipt makes the next day a whole pass, which archives it, and the day after is
/// quiet again with a summary of the new rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_day_reads_the_organisations_summary_not_its_rows() {
    use receipt_sync::sink::InMemorySink;
    use receipt_sync::source::InMemorySource;
    use receipt_sync::sync::{SyncConfig, Syncer};
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let database = PgDatabase::connect(cluster.url()).await.unwrap();
    let store = Arc::new(CountingLoads {
        inner: database.store(unique_name("org")),
        loads: Default::default(),
    });
    let bank = InMemorySource::new();
    let account = bank.add_account_named("acc", "Main");
    let add = |id: &str| {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 2, 3).unwrap();
        bank.add_receipt(
            InMemorySource::receipt(id, &account, day, "Shop", -700),
            format!("bytes of {id}"),
        );
    };
    for i in 0..5 {
        add(&format!("r{i}"));
    }
    let drive = InMemorySink::new();
    let syncer = || {
        Syncer::new(
            Arc::new(bank.clone()),
            Arc::new(drive.clone()),
            store.clone(),
            SyncConfig::default(),
        )
    };
    assert_eq!(syncer().run().await.unwrap().count("upload"), 5);
    let loads = store.loads.load(Ordering::SeqCst);
    let quiet = syncer().run().await.unwrap();
    assert!(quiet.is_complete(), "{quiet:?}");
    assert_eq!(store.loads.load(Ordering::SeqCst), loads, "no rows loaded");

    add("r5");
    assert_eq!(syncer().run().await.unwrap().count("upload"), 1);
    assert_eq!(store.loads.load(Ordering::SeqCst), loads + 1);
    let quiet = syncer().run().await.unwrap();
    assert!(
        quiet.is_complete() && quiet.count("upload") == 0,
        "{quiet:?}"
    );
    assert_eq!(store.loads.load(Ordering::SeqCst), loads + 1, "quiet again");
    // What the quiet days recorded is in the rows.
    let state = store.inner.load().await.unwrap().unwrap();
    assert_eq!(state.exported.len(), 6);
    assert!(state.last_run.unwrap().finished_at.is_some());
}
