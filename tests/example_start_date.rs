//! The `qonto-onedrive` example keeps the start date of the first sync: later commands
//! without `--since` (after the weekly full read too) export nothing older, and an
//! earlier `--since` adds exactly the receipts in between.
#![cfg(feature = "testkit")]

mod cli_support;

use chrono::{TimeDelta, TimeZone, Utc};
use cli_support::Env;
use receipt_sync::state::{JsonFileStateStore, StateStore};
use receipt_sync::testkit::fake_graph::FakeGraph;
use receipt_sync::testkit::fake_identity::{FakeIdentity, FakeIdentityConfig};
use receipt_sync::testkit::fake_qonto::{FakeQonto, NewTransaction};
use receipt_sync::testkit::server::FakeServer;

struct World {
    qonto: FakeQonto,
    graph: FakeGraph,
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
    /// One receipt on the 10th of every other month of 2024 and 2025.
    async fn start() -> Self {
        let qonto = FakeQonto::start().await.unwrap();
        let account = qonto.add_account("Main");
        for year in [2024, 2025] {
            for month in [1, 3, 5, 7, 9, 11] {
                let at = Utc.with_ymd_and_hms(year, month, 10, 12, 0, 0).unwrap();
                let label = format!("Shop {year}-{month}");
                let tx = qonto.add_transaction(
                    &account.id,
                    NewTransaction::debit(1_000, &label).emitted_at(at),
                );
                let bytes = format!("receipt of {year}-{month}").into_bytes();
                qonto.add_attachment(&tx, "receipt.pdf", "application/pdf", bytes);
            }
        }
        let graph = FakeGraph::start().await.unwrap();
        let identity = FakeIdentity::new(FakeIdentityConfig::default());
        let login = FakeServer::start(identity.clone()).await.unwrap();
        let (_, refresh_token) =
            identity.issue_tokens(&["Files.ReadWrite.AppFolder", "offline_access"]);
        World {
            qonto,
            graph,
            login,
            refresh_token,
            home: cli_support::indexcmd::home_without_indexes(),
        }
    }

    async fn run(&self, args: &[&str]) -> Run {
        let fakes = Env {
            qonto_url: self.qonto.url(),
            login_url: self.login.url(),
            graph_url: self.graph.base_url(),
            refresh_token: &self.refresh_token,
            home: self.home.path(),
        };
        let out = fakes.command(args).await.output().await.unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs `sync --json` with `extra` arguments; returns the receipts it exported.
    async fn sync(&self, extra: &[&str]) -> (u64, serde_json::Value) {
        let mut args = vec!["sync", "--json"];
        args.extend_from_slice(extra);
        let run = self.run(&args).await;
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
        (report["done"]["upload"].as_u64().unwrap_or(0), report)
    }

    /// Moves the clock past the weekly full read: the last one is made 8 days old.
    async fn a_week_passes(&self) {
        let store = JsonFileStateStore::new(self.home.path().join("state"));
        let mut state = store.load().await.unwrap().unwrap();
        for record in state.accounts.values_mut() {
            record.full_read_at = Some(Utc::now() - TimeDelta::days(8));
        }
        store.save(&state).await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_date_of_the_first_sync_holds_until_changed() {
    let w = World::start().await;

    let (first, report) = w.sync(&["--since", "2025-01-01"]).await;
    assert_eq!(first, 6, "2025 only");
    assert_eq!(report["start_date"], "2025-01-01");

    // After the weekly full read, without `--since`: nothing older.
    w.a_week_passes().await;
    let (later, report) = w.sync(&[]).await;
    assert_eq!(later, 0, "{report}");
    assert_eq!(report["start_date"], "2025-01-01");
    assert!(report["settings_change"].is_null());
    assert_eq!(w.archived_files(), 6);

    let status = w.run(&["status"]).await;
    assert!(
        status.stdout.contains("Start date: 2025-01-01"),
        "{}",
        status.stdout
    );
    let plan = w.run(&["plan"]).await;
    assert!(
        plan.stdout.contains("Start date: 2025-01-01"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("Nothing to do."), "{}", plan.stdout);

    // The plan of an earlier start date says what it adds, and writes nothing.
    let dry = w.run(&["plan", "--since", "2024-06-01"]).await;
    assert!(
        dry.stdout
            .contains("Added by the earlier start date: 3 receipt(s)"),
        "{}\n{}",
        dry.stdout,
        dry.stderr
    );
    assert_eq!(w.archived_files(), 6);

    // An earlier `--since` adds exactly July, September and November 2024.
    let (wider, report) = w.sync(&["--since", "2024-06-01"]).await;
    assert_eq!(wider, 3, "{report}");
    assert_eq!(report["settings_change"]["start_date_before"], "2025-01-01");
    assert_eq!(report["settings_change"]["start_date_after"], "2024-06-01");
    assert_eq!(w.archived_files(), 9);
    let text = w.run(&["sync"]).await;
    assert_eq!(text.code, 0, "{}", text.stderr);

    // `reset` keeps the stored date: the next sync adopts what is there.
    let reset = w.run(&["reset", "--yes"]).await;
    assert!(
        reset.stdout.contains("Start date: 2024-06-01"),
        "{}",
        reset.stdout
    );
    let (after_reset, _) = w.sync(&[]).await;
    assert_eq!(after_reset, 0);
    assert_eq!(w.archived_files(), 9);
    eprintln!("exported per run: {first}, {later}, {wider}, {after_reset}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_place_of_the_first_sync_holds_too() {
    let w = World::start().await;
    let (first, _) = w.sync(&["--since", "2025-01-01"]).await;
    assert_eq!(first, 6);
    let dir = w.home.path().join("elsewhere");
    let moved = w.run(&["sync", "--local", dir.to_str().unwrap()]).await;
    assert_eq!(moved.code, 2, "{}\n{}", moved.stdout, moved.stderr);
    assert!(
        moved.stderr.contains("this state archives into"),
        "{}",
        moved.stderr
    );
    assert!(!dir.exists(), "nothing was written there");
    let state = JsonFileStateStore::new(w.home.path().join("state"));
    assert!(state.load().await.unwrap().unwrap().tombstones.is_empty());
}
