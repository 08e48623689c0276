//! The `qonto-onedrive` example, run as a process against the fake Qonto, the fake
//! Microsoft identity platform and the fake Graph, all on loopback in this process.
#![cfg(feature = "testkit")]

mod cli_support;

use cli_support::Env;
use receipt_sync::state::{JsonFileStateStore, StateStore};
use receipt_sync::testkit::fake_graph::FakeGraph;
use receipt_sync::testkit::fake_identity::{FakeIdentity, FakeIdentityConfig};
use receipt_sync::testkit::fake_qonto::FakeQonto;
use receipt_sync::testkit::server::FakeServer;
use std::path::Path;
use std::sync::Arc;

struct World {
    qonto: FakeQonto,
    graph: FakeGraph,
    identity: Arc<FakeIdentity>,
    login: FakeServer,
    refresh_token: String,
    home: tempfile::TempDir,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl World {
    async fn start() -> Self {
        let qonto = FakeQonto::start().await.unwrap();
        let account = qonto.add_account("Main");
        qonto.add_receipts(&account.id, 3, 2_000);
        let graph = FakeGraph::start().await.unwrap();
        let identity = FakeIdentity::new(FakeIdentityConfig::default());
        let login = FakeServer::start(identity.clone()).await.unwrap();
        let (_, refresh_token) =
            identity.issue_tokens(&["Files.ReadWrite.AppFolder", "offline_access"]);
        World {
            qonto,
            graph,
            identity,
            login,
            refresh_token,
            home: cli_support::indexcmd::home_without_indexes(),
        }
    }

    async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let fakes = Env {
            qonto_url: self.qonto.url(),
            login_url: self.login.url(),
            graph_url: self.graph.base_url(),
            refresh_token: &self.refresh_token,
            home: self.home.path(),
        };
        let mut cmd = fakes.command(args).await;
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().await.unwrap();
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        // Never a secret, whatever the outcome.
        for secret in ["fake-secret-key", self.refresh_token.as_str()] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "a secret was printed: {}\n{}",
                run.stdout,
                run.stderr
            );
        }
        run
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

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_again_plan_status_reset() {
    let w = World::start().await;

    let first = w.run(&["sync", "--json"], &[]).await;
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let report = json(&first.stdout);
    assert_eq!(report["complete"], true);
    assert_eq!(report["done"]["upload"], 3);
    assert_eq!(w.archived_files(), 3);

    let second = w.run(&["sync", "--json"], &[]).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(json(&second.stdout)["done"], serde_json::json!({}));

    let plan = w.run(&["plan", "--json"], &[]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let plan = json(&plan.stdout);
    assert_eq!(plan["counts"]["skip: already archived"], 3);
    assert_eq!(plan["bytes"], 0);

    let text_plan = w.run(&["plan"], &[]).await;
    assert!(
        text_plan.stdout.contains("Nothing to do."),
        "{}",
        text_plan.stdout
    );

    let status = w.run(&["status", "--json"], &[]).await;
    assert_eq!(status.code, 0, "{}", status.stderr);
    let status = json(&status.stdout);
    assert_eq!(status["archived"], 3);
    assert_eq!(status["tombstoned"], 0);
    assert_eq!(status["pending"], 0);
    assert!(status["space_left"].as_u64().unwrap() > 0);

    // The user deletes the month's folder: its receipts are tombstoned, then a reset
    // brings them back.
    let tree = w.graph.tree();
    let month = tree
        .iter()
        .find(|p| p.matches('/').count() == 4 && p.ends_with('/'))
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    assert!(w.graph.delete_as_user(&month));
    assert_eq!(w.run(&["sync"], &[]).await.code, 0);
    let status = json(&w.run(&["status", "--json"], &[]).await.stdout);
    assert_eq!(status["tombstoned"], 3);

    let unconfirmed = w.run(&["reset"], &[]).await;
    assert_eq!(unconfirmed.code, 2);
    assert!(unconfirmed.stderr.contains("reset --yes"));
    assert_eq!(w.run(&["reset", "--yes"], &[]).await.code, 0);
    let back = w.run(&["sync", "--json"], &[]).await;
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert_eq!(json(&back.stdout)["done"]["upload"], 3);
    assert_eq!(w.archived_files(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_qonto_key_exits_3() {
    let w = World::start().await;
    let run = w.run(&["sync"], &[("QONTO_SECRET_KEY", "wrong-key")]).await;
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("QONTO_SECRET_KEY"), "{}", run.stderr);
    assert!(!run.stderr.contains("wrong-key"));
    let plan = w.run(&["plan"], &[("QONTO_SECRET_KEY", "wrong-key")]).await;
    assert_eq!(plan.code, 3, "{}", plan.stderr);
    assert_eq!(w.archived_files(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_consent_exits_4_and_says_login() {
    let w = World::start().await;
    w.identity.revoke_consent();
    let run = w.run(&["sync"], &[]).await;
    assert_eq!(run.code, 4, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("login"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_drive_exits_5_and_says_how_much_is_needed() {
    let w = World::start().await;
    w.graph.set_quota_total(1_000);
    let run = w.run(&["sync"], &[]).await;
    assert_eq!(run.code, 5, "{}\n{}", run.stdout, run.stderr);
    // Three receipts of 2,000 bytes, 1,000 free: 5,000 bytes more (4.9 KiB, rounded up).
    assert!(
        run.stderr.contains("need 4.9 KiB more, 1000 B are left"),
        "{}",
        run.stderr
    );
    assert_eq!(w.archived_files(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_while_one_runs_exits_6() {
    let w = World::start().await;
    let store = JsonFileStateStore::new(w.home.path().join("state"));
    let _held = store.lock().await.unwrap();
    let run = w.run(&["sync"], &[]).await;
    assert_eq!(run.code, 6, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("another sync is running"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_folder_and_disconnect() {
    let w = World::start().await;
    let dir = w.home.path().join("archive");
    let dir_arg = dir.to_str().unwrap();
    let run = w.run(&["sync", "--local", dir_arg], &[]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with("Sync complete"), "{}", run.stdout);
    let files = walk(&dir);
    assert_eq!(files, 3, "{dir:?}");
    assert_eq!(w.archived_files(), 0);

    let bye = w.run(&["disconnect"], &[]).await;
    assert_eq!(bye.code, 0, "{}", bye.stderr);
    assert!(!w.home.path().join("onedrive-tokens.json").exists());
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { walk(&p) } else { 1 })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_is_refused_for_a_remote_host() {
    let w = World::start().await;
    let run = w
        .run(&["sync"], &[("GRAPH_API_BASE", "http://example.com/v1.0")])
        .await;
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
}
