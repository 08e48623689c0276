//! `qonto-onedrive daemon` as a service: a pass now, one at the daily time, a clean stop
//! on SIGTERM, an exit with the documented code when a person has to act, early retries
//! of passing failures. Run as a process against the fakes on loopback.
#![cfg(all(feature = "testkit", unix))]

mod cli_support;

use chrono::{DateTime, Duration as TimeDelta, Utc};
use cli_support::Env;
use receipt_sync::testkit::fake_graph::{FakeGraph, Fault, FaultRule};
use receipt_sync::testkit::fake_identity::{FakeIdentity, FakeIdentityConfig};
use receipt_sync::testkit::fake_qonto::{FakeAccount, FakeQonto};
use receipt_sync::testkit::server::FakeServer;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

const PARIS: chrono_tz::Tz = chrono_tz::Europe::Paris;

struct World {
    qonto: FakeQonto,
    account: FakeAccount,
    graph: FakeGraph,
    identity: Arc<FakeIdentity>,
    login: FakeServer,
    refresh_token: String,
    home: tempfile::TempDir,
}

impl World {
    async fn start(receipts: usize) -> Self {
        let qonto = FakeQonto::start().await.unwrap();
        let account = qonto.add_account("Main");
        qonto.add_receipts(&account.id, receipts, 1_500);
        let graph = FakeGraph::start().await.unwrap();
        let identity = FakeIdentity::new(FakeIdentityConfig::default());
        let login = FakeServer::start(identity.clone()).await.unwrap();
        let (_, refresh_token) =
            identity.issue_tokens(&["Files.ReadWrite.AppFolder", "offline_access"]);
        World {
            qonto,
            account,
            graph,
            identity,
            login,
            refresh_token,
            home: cli_support::indexcmd::home_without_indexes(),
        }
    }

    fn env(&self) -> Env<'_> {
        Env {
            qonto_url: self.qonto.url(),
            login_url: self.login.url(),
            graph_url: self.graph.base_url(),
            refresh_token: &self.refresh_token,
            home: self.home.path(),
        }
    }

    async fn daemon(&self, extra: &[&str]) -> Daemon {
        let mut args = vec!["daemon", "--json"];
        args.extend_from_slice(extra);
        let mut child = self
            .env()
            .command(&args)
            .await
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the daemon starts");
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Daemon { child, stdout }
    }

    fn archived_files(&self) -> usize {
        let root = format!("{}/", self.graph.app_path(""));
        self.graph
            .files()
            .keys()
            .filter(|p| p.starts_with(&root))
            .count()
    }
}

struct Daemon {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Daemon {
    /// The next pass's document.
    async fn pass(&mut self, within: Duration) -> serde_json::Value {
        let line = tokio::time::timeout(within, self.stdout.next_line())
            .await
            .expect("a pass reports in time")
            .unwrap()
            .expect("a document, not the end of the output");
        let doc: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(doc["command"], "daemon", "{doc}");
        doc
    }

    /// Sends `signal` (`TERM`, `INT`), as a service manager or Ctrl-C would.
    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), pid.as_str()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit: its code, the rest of stdout, and stderr.
    async fn exit(mut self, within: Duration) -> (i32, String, String) {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .expect("the daemon exits in time")
            .unwrap();
        let mut rest = String::new();
        while let Ok(Some(line)) = self.stdout.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            err.read_to_string(&mut stderr).await.unwrap();
        }
        (status.code().unwrap_or(-1), rest, stderr)
    }
}

fn instant(doc: &serde_json::Value, field: &str) -> DateTime<Utc> {
    let text = doc[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field}: {doc}"));
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// An instant as the daemon's lines show it.
fn local(instant: DateTime<Utc>) -> String {
    instant
        .with_timezone(&PARIS)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_now_another_at_the_daily_time_one_plain_line_each_and_exit_0_on_sigint() {
    let w = World::start(3).await;
    cli_support::binary().await;
    // The daily time a few seconds ahead, on Paris's clock: the real path, no fake clock.
    let daily = Utc::now() + TimeDelta::seconds(10);
    let at = daily.with_timezone(&PARIS).format("%H:%M:%S").to_string();
    let mut daemon = w.daemon(&["--at", &at, "--tz", "Europe/Paris"]).await;

    let first = daemon.pass(Duration::from_secs(60)).await;
    assert_eq!(first["exit_code"], 0, "{first}");
    assert_eq!(first["done"]["upload"], 3, "{first}");
    let next = instant(&first, "next_run");
    assert_eq!(next.timestamp(), daily.timestamp(), "{first}");
    assert_eq!(first["retry"], serde_json::Value::Null);
    w.qonto.add_receipts(&w.account.id, 2, 900);

    let second = daemon.pass(Duration::from_secs(60)).await;
    assert!(
        instant(&second, "started_at") >= next - TimeDelta::seconds(1),
        "{second}"
    );
    assert_eq!(second["exit_code"], 0, "{second}");
    assert_eq!(second["done"]["upload"], 2, "{second}");
    let tomorrow = instant(&second, "next_run");
    assert_eq!(
        tomorrow.timestamp(),
        (daily + TimeDelta::days(1)).timestamp()
    );
    assert_eq!(w.archived_files(), 5);

    // Between passes: Ctrl-C stops it at once.
    daemon.signal("INT");
    let (code, rest, stderr) = daemon.exit(Duration::from_secs(10)).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(rest, "", "no pass was running");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "one line per pass: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "no colour codes off a terminal");
    assert!(
        lines[0].contains("read 3, uploaded 3, failed 0") && lines[0].contains("; complete;"),
        "{stderr}"
    );
    assert!(
        lines[0].ends_with(&format!("next pass: {}", local(next))),
        "{stderr}"
    );
    assert!(
        lines[1].ends_with(&format!("next pass: {}", local(tomorrow))),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_pass_records_the_uploads_in_flight_and_the_next_sync_adds_no_duplicate() {
    const RECEIPTS: usize = 40;
    let w = World::start(RECEIPTS).await;
    cli_support::binary().await;
    // Slow uploads (small files go through the API server), two at a time.
    w.graph.api_server().set_latency(Duration::from_millis(150));
    let mut daemon = w.daemon(&["--concurrency", "2"]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while w.archived_files() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "uploads never began"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    daemon.signal("TERM");
    let last = daemon.pass(Duration::from_secs(30)).await;
    let (code, rest, stderr) = daemon.exit(Duration::from_secs(30)).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(rest, "");
    assert_eq!(last["exit_code"], 0, "{last}");
    assert_eq!(last["next_run"], serde_json::Value::Null, "{last}");
    assert!(stderr.contains("stopped on request"), "{stderr}");
    let landed = w.archived_files();
    assert!(landed < RECEIPTS, "the pass was cut short");
    assert_eq!(
        last["done"]["upload"], landed,
        "every file that landed was recorded: {last}"
    );

    w.graph.api_server().set_latency(Duration::ZERO);
    let out = w
        .env()
        .command(&["sync", "--json"])
        .await
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["done"]["upload"], RECEIPTS - landed, "{report}");
    assert_eq!(
        report["done"].get("adopt"),
        None,
        "nothing was left unrecorded"
    );
    assert_eq!(w.archived_files(), RECEIPTS, "each receipt once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_consent_ends_the_daemon_with_its_exit_code() {
    let w = World::start(2).await;
    w.identity.revoke_consent();
    let daemon = w.daemon(&[]).await;
    let (code, stdout, stderr) = daemon.exit(Duration::from_secs(60)).await;
    assert_eq!(code, 4, "{stdout}\n{stderr}");
    let doc: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(doc["command"], "daemon");
    assert_eq!(doc["exit_code"], 4);
    assert!(stderr.contains("`qonto-onedrive login`"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_503_is_retried_within_minutes_and_the_daemon_keeps_running() {
    let w = World::start(2).await;
    cli_support::binary().await;
    w.graph
        .inject(FaultRule::new("GET", Fault::Unavailable(Some(0))).times(100_000));
    // The daily time is hours away whatever the hour: an early retry comes first.
    let at = (Utc::now() - TimeDelta::hours(3))
        .with_timezone(&PARIS)
        .format("%H:%M")
        .to_string();
    let started = Utc::now();
    let mut daemon = w.daemon(&["--at", &at, "--tz", "Europe/Paris"]).await;
    let first = daemon.pass(Duration::from_secs(120)).await;
    assert_eq!(first["retry"], 1, "{first}");
    let retry = instant(&first, "next_run");
    assert!(
        retry >= started + TimeDelta::minutes(5) && retry <= Utc::now() + TimeDelta::minutes(5),
        "five minutes after the pass: {first}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "a passing failure does not end the daemon"
    );
    daemon.signal("TERM");
    let (code, _, stderr) = daemon.exit(Duration::from_secs(10)).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("(early retry 1)"), "{stderr}");
}
