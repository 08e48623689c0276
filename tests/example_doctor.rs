//! `qonto-onedrive doctor`: a healthy setup passes every check; each broken one fails at
//! its own check, says what to do, skips what depends on it, and exits with its code.
//! Run as a process against the fakes on loopback.
#![cfg(feature = "testkit")]

mod cli_support;

use cli_support::Env;
use receipt_sync::state::{JsonFileStateStore, StateStore};
use receipt_sync::testkit::fake_graph::{FakeGraph, FakeGraphConfig};
use receipt_sync::testkit::fake_identity::{FakeIdentity, FakeIdentityConfig};
use receipt_sync::testkit::fake_qonto::FakeQonto;
use receipt_sync::testkit::server::FakeServer;
use std::sync::Arc;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

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

impl Run {
    /// The line of a check.
    fn line(&self, check: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| {
                l.split_once(':')
                    .is_some_and(|(head, _)| head.ends_with(check))
            })
            .unwrap_or_else(|| panic!("no line for {check}:\n{}", self.stdout))
    }
}

impl World {
    async fn start(graph: FakeGraphConfig) -> Self {
        let qonto = FakeQonto::start().await.unwrap();
        for name in ["Main", "Travel"] {
            let account = qonto.add_account(name);
            qonto.add_receipts(&account.id, 2, 1_000);
        }
        let graph = FakeGraph::start_with(graph).await.unwrap();
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
            home: tempfile::tempdir().unwrap(),
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
        for secret in ["fake-secret-key", self.refresh_token.as_str()] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "a secret was printed"
            );
        }
        run
    }

    async fn synced(graph: FakeGraphConfig) -> Self {
        let w = World::start(graph).await;
        let sync = w.run(&["sync"], &[]).await;
        assert_eq!(sync.code, 0, "{}\n{}", sync.stdout, sync.stderr);
        w
    }
}

/// The check names, in order.
const CHECKS: [&str; 8] = [
    "Qonto credentials",
    "bank account Main",
    "bank account Travel",
    "Microsoft sign-in",
    "OneDrive app folder",
    "OneDrive space",
    "state",
    "schedule",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_setup_passes_every_check() {
    let w = World::synced(FakeGraphConfig::default()).await;
    let run = w
        .run(&["doctor", "--at", "23:30", "--tz", "Europe/Paris"], &[])
        .await;
    println!("{}", run.stdout);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), CHECKS.len(), "{}", run.stdout);
    for (line, check) in lines.iter().zip(CHECKS) {
        assert!(line.starts_with("ok "), "{line}");
        assert!(line.contains(&format!(" {check}: ")), "{line}");
    }
    assert!(run.line("state").contains("4 uploaded, 0 failed"));
    assert!(run.line("schedule").contains(" 23:30 CE"), "{}", run.stdout);

    let json = w.run(&["doctor", "--json"], &[]).await;
    assert_eq!(json.code, 0);
    let doc: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(doc["command"], "doctor");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["ok"], true);
    let checks = doc["checks"].as_array().unwrap();
    assert_eq!(checks.len(), CHECKS.len());
    assert!(checks.iter().all(|c| c["status"] == "ok"), "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_qonto_key_fails_the_first_check_and_skips_the_accounts() {
    let w = World::start(FakeGraphConfig::default()).await;
    let run = w
        .run(&["doctor"], &[("QONTO_SECRET_KEY", "not-the-key")])
        .await;
    println!("{}", run.stdout);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let qonto = run.line("Qonto credentials");
    assert!(qonto.starts_with("FAIL "), "{qonto}");
    assert!(qonto.contains("QONTO_SECRET_KEY="), "the fix: {qonto}");
    assert!(run.line("bank accounts").starts_with("skipped "));
    // The other side is still checked.
    assert!(run.line("Microsoft sign-in").starts_with("ok "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_consent_fails_the_sign_in_and_skips_the_drive_checks() {
    let w = World::synced(FakeGraphConfig::default()).await;
    w.identity.revoke_consent();
    let run = w.run(&["doctor"], &[]).await;
    println!("{}", run.stdout);
    assert_eq!(run.code, 4, "{}\n{}", run.stdout, run.stderr);
    let sign_in = run.line("Microsoft sign-in");
    assert!(sign_in.starts_with("FAIL "), "{sign_in}");
    assert!(sign_in.contains("`qonto-onedrive login`"), "{sign_in}");
    assert!(run.line("OneDrive app folder").starts_with("skipped "));
    assert!(run.line("OneDrive space").starts_with("skipped "));
    assert!(run.line("Qonto credentials").starts_with("ok "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_folder_refusal_fails_its_check_with_the_known_fault_explained() {
    let w = World::start(FakeGraphConfig::default()).await;
    // Graph refusing the app folder with 403 accessDenied, as it does for tokens consented
    // with Files.ReadWrite.AppFolder only (onedrive-graph.md §9); the drive itself answers.
    let graph = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive/special/approot"))
        .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({
            "error": { "code": "accessDenied", "message": "Access denied" }
        })))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "drive-1", "driveType": "personal",
            "quota": { "total": 5_368_709_120u64, "used": 1_000, "remaining": 5_368_708_120u64, "state": "normal" }
        })))
        .mount(&graph)
        .await;
    let base = format!("{}/v1.0", graph.uri());
    let run = w.run(&["doctor"], &[("GRAPH_API_BASE", &base)]).await;
    println!("{}", run.stdout);
    // Mended by signing in again with one more permission: the sign-in's code.
    assert_eq!(run.code, 4, "{}\n{}", run.stdout, run.stderr);
    let folder = run.line("OneDrive app folder");
    assert!(folder.starts_with("FAIL "), "{folder}");
    assert!(folder.contains("Files.ReadWrite.AppFolder"), "{folder}");
    assert!(
        folder.contains("`qonto-onedrive login --grant-files-readwrite`"),
        "{folder}"
    );
    assert!(
        run.line("OneDrive space").starts_with("ok "),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_drive_fails_the_space_check() {
    let w = World::start(FakeGraphConfig::default().with_quota_total(0)).await;
    let run = w.run(&["doctor"], &[]).await;
    assert_eq!(run.code, 5, "{}\n{}", run.stdout, run.stderr);
    let space = run.line("OneDrive space");
    assert!(space.starts_with("FAIL "), "{space}");
    assert!(space.contains("full"), "{space}");
    assert!(space.contains("free up or buy OneDrive space"), "{space}");
    assert!(run.line("OneDrive app folder").starts_with("ok "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_locked_by_another_sync_fails_the_state_check() {
    let w = World::synced(FakeGraphConfig::default()).await;
    let store = JsonFileStateStore::new(w.home.path().join("state"));
    let lock = store.lock().await.expect("the lock is free");
    let run = w.run(&["doctor"], &[]).await;
    assert_eq!(run.code, 6, "{}\n{}", run.stdout, run.stderr);
    let state = run.line("state");
    assert!(state.starts_with("FAIL "), "{state}");
    assert!(state.contains("another sync is running"), "{state}");
    drop(lock);
    let again = w.run(&["doctor"], &[]).await;
    assert_eq!(again.code, 0, "{}", again.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_folder_replaces_the_microsoft_checks() {
    let w = World::start(FakeGraphConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let archive = archive.to_str().unwrap();
    let run = w
        .run(&["doctor", "--local", archive], &[("MS_CLIENT_ID", "")])
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("Microsoft"), "{}", run.stdout);
    assert!(
        run.line("local folder").starts_with("ok "),
        "{}",
        run.stdout
    );
    assert!(!run.line("local disk space").starts_with("FAIL"));
    // No sync yet: a warning, which passes.
    assert!(run.line("state").starts_with("warn "), "{}", run.stdout);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let locked = dir.path().join("read-only");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
        // Root writes anywhere: the check only means something for a plain user.
        if std::fs::write(locked.join("probe"), b"x").is_err() {
            let run = w
                .run(&["doctor", "--local", locked.to_str().unwrap()], &[])
                .await;
            assert_ne!(run.code, 0);
            assert!(
                run.line("local folder").starts_with("FAIL "),
                "{}",
                run.stdout
            );
            assert!(run.line("local disk space").starts_with("skipped "));
        }
    }
}
