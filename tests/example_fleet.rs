//! The `fleet` example as processes, on a real PostgreSQL (a throwaway cluster, or
//! `DATABASE_URL`): the zero-setup demo; two and three worker processes on one database;
//! a worker killed with SIGKILL mid-run; the database restarted mid-run. The fakes of
//! every organisation are served by one `fleet fakes` process, so every worker sees the
//! same drives. Each test prints its numbers (organisations completed, duplicated
//! uploads). Also the factory in-process: tokens rotated during a pass are saved.
//! Without PostgreSQL they say they did not run, unless `RECEIPT_SYNC_REQUIRE_POSTGRES=1`.
#![cfg(all(feature = "testkit", feature = "fleet"))]

use chrono::{DateTime, NaiveTime, Utc};
use receipt_sync::auth::SecretString;
use receipt_sync::auth::microsoft::MicrosoftAuthConfig;
use receipt_sync::fleet::{
    Fleet, Keyring, NewOrganization, QontoCredentials, QontoOneDriveFactory, Worker,
};
use receipt_sync::http::RetryConfig;
use receipt_sync::source::qonto::{QontoRateLimit, QontoTokens, SharedQontoRateLimiter};
use receipt_sync::state::PgDatabase;
use receipt_sync::sync::UploadBudget;
use receipt_sync::testkit::fake_graph::FakeGraph;
use receipt_sync::testkit::fake_identity::{FakeIdentity, FakeIdentityConfig};
use receipt_sync::testkit::fake_qonto::{FakeQonto, NewTransaction};
use receipt_sync::testkit::postgres::TestCluster;
use receipt_sync::testkit::server::FakeServer;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Mutex, OnceCell};

/// The machine is small: one scenario of processes at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());
static BINARY: OnceCell<PathBuf> = OnceCell::const_new();

/// Builds the example (a no-op when it is fresh) and returns its path.
async fn binary() -> &'static Path {
    BINARY
        .get_or_init(|| async {
            let status = Command::new(env!("CARGO"))
                .args(["build", "--quiet", "--example", "fleet"])
                .args(["--features", "fleet,testkit"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .await
                .expect("cargo runs");
            assert!(status.success(), "building the example failed");
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
            target
                .join("debug/examples/fleet")
                .with_extension(std::env::consts::EXE_EXTENSION)
        })
        .await
}

/// One sealing key for every process of a test, as a service's workers share it.
fn sealing_keys() -> &'static str {
    static KEYS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| format!("k1:{}", Keyring::generate_key_text().expose()))
}

/// The example with a clean environment pointing at `url`.
async fn fleet_command(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(binary().await);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", url)
        .env("RECEIPT_SYNC_SEALING_KEYS", sealing_keys())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    command
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("admin connection");
    tokio::spawn(connection);
    client
}

/// What one organisation's drive shows, as `fleet fakes` reports it.
#[derive(Debug, serde::Deserialize)]
struct DriveReport {
    receipts: usize,
    files: usize,
    missing: usize,
    duplicates: usize,
    uploads: u64,
}

/// A `fleet fakes` process serving N organisations, registered in the fleet.
struct Fakes {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Fakes {
    async fn start(url: &str, organisations: usize, receipts: usize, latency_ms: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fakes.json");
        let (n, r, l) = (
            organisations.to_string(),
            receipts.to_string(),
            latency_ms.to_string(),
        );
        let mut child = fleet_command(url, &[])
            .await
            .args([
                "fakes",
                "--register",
                "--organisations",
                &n,
                "--receipts",
                &r,
            ])
            .args(["--latency-ms", &l, "--out"])
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(60), stdout.next_line())
            .await
            .expect("the fakes start")
            .unwrap()
            .expect("the fakes say they are ready");
        assert_eq!(ready, r#"{"ready":true}"#);
        Self {
            child,
            stdin,
            stdout,
            path,
            _dir: dir,
        }
    }

    async fn report(&mut self) -> BTreeMap<String, DriveReport> {
        self.stdin.write_all(b"report\n").await.unwrap();
        let line = self.stdout.next_line().await.unwrap().unwrap();
        let value: Value = serde_json::from_str(&line).unwrap();
        serde_json::from_value(value["drives"].clone()).unwrap()
    }

    async fn stop(mut self) {
        let _ = self.stdin.write_all(b"quit\n").await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// A `fleet workers` process on the fakes.
async fn spawn_worker(url: &str, fakes: &Fakes, id: &str, lease_secs: u64) -> Child {
    fleet_command(url, &["workers", "--id", id, "--concurrency", "2"])
        .await
        .args(["--poll-ms", "100", "--lease-secs", &lease_secs.to_string()])
        .arg("--fakes")
        .arg(&fakes.path)
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

/// Sends SIGTERM and expects a clean stop.
async fn stop_worker(mut child: Child) {
    let pid = child.id().expect("still running").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("a worker stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "the worker's exit: {status}");
}

/// Organisations whose last run completed.
async fn completed(admin: &tokio_postgres::Client) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM organizations WHERE last_result = 'complete'",
            &[],
        )
        .await
        .map(|row| row.get(0))
        .unwrap_or(0)
}

/// Waits until `count` organisations completed; panics with the status after `limit`.
async fn wait_completed(url: &str, count: i64, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        // A connection per look: the server may be restarting.
        if let Ok(Ok((client, connection))) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_postgres::connect(url, tokio_postgres::NoTls),
        )
        .await
        {
            let connection = tokio::spawn(connection);
            let done = completed(&client).await;
            drop(client);
            let _ = connection.await;
            if done >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{done} of {count} organisations completed"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Pairs of finished runs of one organisation whose times overlap.
async fn overlapping_runs(admin: &tokio_postgres::Client) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM fleet_runs a JOIN fleet_runs b
               ON a.org_id = b.org_id AND a.run_id < b.run_id
             WHERE a.finished_at IS NOT NULL AND b.finished_at IS NOT NULL
               AND a.started_at < b.finished_at AND b.started_at < a.finished_at",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Checks every drive holds each receipt once; returns (duplicated, re-sent) uploads.
fn check_drives(drives: &BTreeMap<String, DriveReport>, organisations: usize) -> (usize, u64) {
    assert_eq!(drives.len(), organisations);
    let mut duplicated = 0;
    let mut resent = 0;
    for (id, drive) in drives {
        assert_eq!(drive.missing, 0, "{id}: {drive:?}");
        assert_eq!(drive.files, drive.receipts, "{id}: {drive:?}");
        duplicated += drive.duplicates;
        resent += drive.uploads.saturating_sub(drive.receipts as u64);
    }
    (duplicated, resent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zero_setup_demo_runs_every_organisation() {
    let _serial = SERIAL.lock().await;
    // The demo starts its own cluster; this only asks whether PostgreSQL is here.
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let mut command = fleet_command(cluster.url(), &["--json"]).await;
    if std::env::var_os("DATABASE_URL").is_none() {
        command.env_remove("DATABASE_URL");
    }
    command.env_remove("RECEIPT_SYNC_SEALING_KEYS");
    let out = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("the demo ends")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("throwaway key"), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (doc["command"].as_str(), doc["exit_code"].as_u64()),
        (Some("demo"), Some(0))
    );
    let runs = doc["status"]["next_runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "{doc}");
    for org in runs {
        assert_eq!(org["last_result"], "complete", "{org}");
    }
    let drives: BTreeMap<String, DriveReport> =
        serde_json::from_value(doc["drives"].clone()).unwrap();
    let (duplicated, resent) = check_drives(&drives, 4);
    println!(
        "demo: 4 of 4 organisations completed; duplicated uploads {duplicated}, re-sent {resent}"
    );
    assert_eq!((duplicated, resent), (0, 0));
}

/// `workers` processes on one database until each of `organisations` completed.
async fn many_workers(workers: usize, organisations: usize) {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let url = cluster.fresh_database().await;
    let mut fakes = Fakes::start(&url, organisations, 10, 3).await;
    let mut children = Vec::new();
    for n in 0..workers {
        children.push(spawn_worker(&url, &fakes, &format!("w{n}"), 600).await);
    }
    wait_completed(&url, organisations as i64, Duration::from_secs(180)).await;
    for child in children {
        stop_worker(child).await;
    }
    let admin = admin(&url).await;
    let overlaps = overlapping_runs(&admin).await;
    let per_worker = admin
        .query(
            "SELECT worker_id, count(*) FROM fleet_runs GROUP BY worker_id ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let shares: Vec<(String, i64)> = per_worker.iter().map(|r| (r.get(0), r.get(1))).collect();
    let runs: i64 = admin
        .query_one("SELECT count(*) FROM fleet_runs", &[])
        .await
        .unwrap()
        .get(0);
    let (duplicated, resent) = check_drives(&fakes.report().await, organisations);
    println!(
        "{workers} workers: {} of {organisations} organisations completed in {runs} runs \
         ({shares:?}); overlapping runs {overlaps}; duplicated uploads {duplicated}, re-sent {resent}",
        completed(&admin).await
    );
    assert_eq!(overlaps, 0, "an organisation was synced twice at once");
    assert_eq!(runs, organisations as i64, "each organisation ran once");
    assert_eq!((duplicated, resent), (0, 0));
    fakes.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_share_the_fleet_without_syncing_anything_twice() {
    let _serial = SERIAL.lock().await;
    many_workers(2, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_worker_processes_share_the_fleet_without_syncing_anything_twice() {
    let _serial = SERIAL.lock().await;
    many_workers(3, 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_run_leaves_its_organisations_to_another_within_the_lease() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let url = cluster.fresh_database().await;
    let (organisations, lease) = (6, 6);
    let mut fakes = Fakes::start(&url, organisations, 20, 15).await;
    let admin = admin(&url).await;
    let mut doomed = spawn_worker(&url, &fakes, "doomed", lease).await;
    // Mid-run: some of its passes started and have been uploading for a while.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let running: i64 = admin
            .query_one(
                "SELECT count(*) FROM fleet_runs WHERE worker_id = 'doomed' AND finished_at IS NULL",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if running > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the worker never started a run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    doomed.start_kill().unwrap();
    doomed.wait().await.unwrap();
    let killed_at = Instant::now();
    let cut_short: i64 = admin
        .query_one(
            "SELECT count(*) FROM fleet_runs WHERE worker_id = 'doomed' AND finished_at IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(cut_short > 0, "the worker was killed between runs");
    // What the drives held when it died (an upload already received is let finish).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let at_kill = fakes.report().await;
    let rescuer = spawn_worker(&url, &fakes, "rescuer", lease).await;
    wait_completed(&url, organisations as i64, Duration::from_secs(lease + 90)).await;
    let took = killed_at.elapsed();
    stop_worker(rescuer).await;
    let overlaps = overlapping_runs(&admin).await;
    let after = fakes.report().await;
    let (duplicated, resent) = check_drives(&after, organisations);
    // The rescuer uploaded only what the drives lacked: nothing archived before the kill
    // was sent again.
    for (id, drive) in &after {
        let before = &at_kill[id];
        let lacking = (drive.receipts - before.files) as u64;
        assert!(
            drive.uploads - before.uploads <= lacking,
            "{id}: {lacking} receipts lacking at the kill, {} uploaded after it",
            drive.uploads - before.uploads
        );
    }
    let rescued: i64 = admin
        .query_one(
            "SELECT count(*) FROM fleet_runs cut JOIN fleet_runs later
               ON later.org_id = cut.org_id AND later.run_id > cut.run_id
             WHERE cut.worker_id = 'doomed' AND cut.finished_at IS NULL
               AND later.worker_id = 'rescuer' AND later.outcome = 'complete'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        rescued, cut_short,
        "each cut run completed on the other worker"
    );
    println!(
        "SIGKILL: {} of {organisations} organisations completed, {cut_short} runs cut short, \
         taken up within {took:?} (lease {lease} s); overlapping runs {overlaps}; duplicated \
         uploads {duplicated}, re-sent {resent} (all in flight at the kill)",
        completed(&admin).await
    );
    assert!(
        took < Duration::from_secs(lease + 20),
        "the killed worker's organisations waited {took:?}"
    );
    assert_eq!(overlaps, 0);
    assert_eq!(duplicated, 0);
    fakes.stop().await;
}

/// Restarts the server `admin` is connected to (fast shutdown, then start), as the
/// `postgres` user when running as root.
async fn restart_server(admin: &tokio_postgres::Client) {
    let data: String = admin
        .query_one("SHOW data_directory", &[])
        .await
        .unwrap()
        .get(0);
    let bin: String = admin
        .query_one("SELECT setting FROM pg_config WHERE name = 'BINDIR'", &[])
        .await
        .unwrap()
        .get(0);
    let pg_ctl = Path::new(&bin).join("pg_ctl");
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut command = if root {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
        c
    } else {
        std::process::Command::new(&pg_ctl)
    };
    // No pipes: the new server keeps its inherited descriptors open.
    let status = command
        .args(["restart", "-m", "fast", "-w", "-t", "60", "-D", &data])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "pg_ctl restart: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_reconnect_and_converge_after_the_database_restarts_mid_run() {
    let _serial = SERIAL.lock().await;
    if std::env::var_os("DATABASE_URL").is_some() {
        eprintln!("the restart test did not run: it restarts a server of its own only");
        return;
    }
    // A server of its own: the others' would restart too.
    let Some(cluster) = TestCluster::start() else {
        return;
    };
    let url = cluster.url().to_owned();
    let organisations = 8;
    let mut fakes = Fakes::start(&url, organisations, 20, 10).await;
    let mut workers = Vec::new();
    for id in ["r1", "r2"] {
        workers.push(spawn_worker(&url, &fakes, id, 20).await);
    }
    {
        let admin = admin(&url).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        // Mid-run: one organisation done, others' passes in progress.
        loop {
            let in_flight: i64 = admin
                .query_one(
                    "SELECT count(*) FROM fleet_runs WHERE finished_at IS NULL",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if completed(&admin).await >= 1 && in_flight > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "no organisation completed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        restart_server(&admin).await;
    }
    let restarted_at = Instant::now();
    wait_completed(&url, organisations as i64, Duration::from_secs(240)).await;
    let took = restarted_at.elapsed();
    for worker in workers {
        stop_worker(worker).await;
    }
    let admin = admin(&url).await;
    let overlaps = overlapping_runs(&admin).await;
    let outcomes = admin
        .query(
            "SELECT coalesce(outcome, 'unfinished'), count(*) FROM fleet_runs GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let outcomes: Vec<(String, i64)> = outcomes.iter().map(|r| (r.get(0), r.get(1))).collect();
    let (duplicated, resent) = check_drives(&fakes.report().await, organisations);
    println!(
        "restart: {} of {organisations} organisations completed {took:?} after the restart; \
         runs {outcomes:?}; overlapping runs {overlaps}; duplicated uploads {duplicated}, \
         re-sent {resent}",
        completed(&admin).await
    );
    assert_eq!(overlaps, 0);
    assert_eq!(duplicated, 0);
    fakes.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_factory_saves_the_tokens_rotated_during_a_pass() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let url = cluster.fresh_database().await;
    let keyring = Keyring::parse(sealing_keys()).unwrap();
    let fleet = Fleet::new(PgDatabase::connect(&url).await.unwrap(), keyring);
    let qonto = FakeQonto::start().await.unwrap();
    let account = qonto.add_account("Main");
    for n in 0..3 {
        let tx = qonto.add_transaction(&account.id, NewTransaction::debit(100 + n, "Supplier"));
        let bytes = format!("%PDF receipt {n}").into_bytes();
        qonto.add_attachment(&tx, &format!("r{n}.pdf"), "application/pdf", bytes);
    }
    let identity = FakeIdentity::new(FakeIdentityConfig::default());
    let login = FakeServer::start(identity.clone()).await.unwrap();
    let graph = FakeGraph::start().await.unwrap();
    let (_, first_refresh) =
        identity.issue_tokens(&["Files.ReadWrite.AppFolder", "offline_access"]);
    // An access token already expired: the pass refreshes, and Qonto rotates.
    let first_qonto = QontoTokens {
        expires_at: DateTime::<Utc>::UNIX_EPOCH,
        ..qonto.issue_tokens()
    };
    let org = "org-oauth";
    fleet
        .register(
            &NewOrganization {
                id: org.to_owned(),
                display_name: "OAuth SAS".to_owned(),
                time_zone: chrono_tz::Europe::Paris,
                daily_time: NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
                start_date: None,
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let encoded = QontoCredentials::OAuth(first_qonto.clone())
        .encode()
        .unwrap();
    fleet.save_qonto_credentials(org, &encoded).await.unwrap();
    fleet
        .save_microsoft_refresh_token(org, &SecretString::new(&*first_refresh))
        .await
        .unwrap();
    let (client_id, client_secret) = qonto.client_credentials();
    let microsoft = MicrosoftAuthConfig::builder("fake-client-id")
        .with_login_base_url(login.url())
        .with_retry(RetryConfig::fast())
        .build()
        .unwrap();
    let factory = QontoOneDriveFactory::new(microsoft)
        .with_qonto_base_url(qonto.url())
        .with_qonto_oauth_app(client_id, client_secret.clone(), Some(qonto.token_url()))
        .with_graph_base_url(graph.base_url())
        .with_retry(RetryConfig::fast());
    let shown = format!("{factory:?}");
    assert!(!shown.contains(client_secret.expose()), "{shown}");
    let worker = Worker::new(
        fleet.clone(),
        Arc::new(factory),
        "w",
        1,
        SharedQontoRateLimiter::new(QontoRateLimit::unlimited()),
        UploadBudget::new(4),
    );
    let mut refresh_tokens = vec![first_refresh.clone()];
    for pass in 0..2 {
        fleet.run_now(org).await.unwrap();
        assert_eq!(worker.run_once().await.unwrap(), 1);
        let status = fleet.status(5).await.unwrap();
        let last = &status.next_runs[0];
        assert_eq!(
            last.last_result.as_deref(),
            Some("complete"),
            "pass {pass}: {last:?}"
        );
        let saved = fleet.credentials(org).await.unwrap();
        // Microsoft rotates at every refresh: the one saved is the live one.
        let microsoft = saved.microsoft_refresh_token.unwrap().expose().to_owned();
        assert!(
            !refresh_tokens.contains(&microsoft),
            "pass {pass}: not rotated"
        );
        assert!(identity.is_valid_refresh_token(&microsoft));
        for old in &refresh_tokens {
            assert!(!identity.is_valid_refresh_token(old));
        }
        refresh_tokens.push(microsoft);
        let QontoCredentials::OAuth(tokens) =
            QontoCredentials::parse(org, &saved.qonto.unwrap()).unwrap()
        else {
            panic!("the Qonto credentials are still OAuth tokens");
        };
        assert_ne!(tokens.refresh_token, first_qonto.refresh_token);
    }
    assert_eq!(graph.files().len(), 3, "{:?}", graph.tree());
}

/// Runs the example to its end: exit code, stdout, stderr.
async fn run_example(url: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = fleet_command(url, args).await;
    for (name, value) in env {
        command.env(name, value);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the command ends")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_administrative_subcommands_change_the_fleet_and_never_print_a_secret() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let url = cluster.fresh_database().await;
    let secrets = [
        ("QONTO_CREDENTIALS", "acme-4411:qonto-secret-9d2f"),
        ("ONEDRIVE_REFRESH_TOKEN", "M.R3_BAY.refresh-secret-1c7a"),
    ];
    let mut printed = String::new();
    let mut run = async |args: &[&str]| {
        let (code, out, err) = run_example(&url, args, &secrets).await;
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        printed.push_str(&out);
        printed.push_str(&err);
        out
    };
    run(&["add", "acme", "--name", "ACME SAS", "--at", "03:15"]).await;
    run(&["add", "beta", "--name", "Beta SARL", "--run-now"]).await;
    let status = |out: &str| -> Value { serde_json::from_str(out).unwrap() };
    let doc = status(&run(&["status", "--json"]).await);
    assert_eq!(doc["command"], "status");
    assert_eq!(
        (
            doc["status"]["organizations"].as_u64(),
            doc["status"]["due"].as_u64()
        ),
        (Some(2), Some(1))
    );
    run(&["disable", "beta"]).await;
    let doc = status(&run(&["status", "--json"]).await);
    assert_eq!(
        (
            doc["status"]["enabled"].as_u64(),
            doc["status"]["due"].as_u64()
        ),
        (Some(1), Some(0))
    );
    run(&["enable", "beta"]).await;
    run(&["run-now", "acme"]).await;
    let doc = status(&run(&["status", "--json"]).await);
    assert_eq!(
        (
            doc["status"]["enabled"].as_u64(),
            doc["status"]["due"].as_u64()
        ),
        (Some(2), Some(2))
    );
    let text = run(&["status"]).await;
    assert!(
        text.contains("ACME SAS") && text.contains("Beta SARL"),
        "{text}"
    );
    // Sealed, and opened with the same keys.
    let keyring = Keyring::parse(sealing_keys()).unwrap();
    let fleet = Fleet::new(PgDatabase::connect(&url).await.unwrap(), keyring);
    let opened = fleet.credentials("acme").await.unwrap();
    assert_eq!(opened.qonto.unwrap().expose(), secrets[0].1);
    assert_eq!(
        opened.microsoft_refresh_token.unwrap().expose(),
        secrets[1].1
    );
    for secret in ["qonto-secret-9d2f", "refresh-secret-1c7a"] {
        assert!(!printed.contains(secret), "{printed}");
    }
    // An unknown organisation is a configuration error, exit 2, with a JSON failure.
    let (code, out, _) = run_example(&url, &["disable", "nobody", "--json"], &[]).await;
    assert_eq!(code, 2, "{out}");
    assert_eq!(status(&out)["error"]["kind"], "Config");
}
