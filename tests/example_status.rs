//! `qonto-onedrive status` and `reset`, run as a process against the fakes: local
//! times to the minute in the chosen zone, the bound archive, and after a reset the
//! files in place counted as to adopt, not as pending uploads.
#![cfg(feature = "testkit")]

mod cli_support;

use cli_support::Env;
use receipt_sync::testkit::fake_graph::FakeGraph;
use receipt_sync::testkit::fake_identity::{FakeIdentity, FakeIdentityConfig};
use receipt_sync::testkit::fake_qonto::FakeQonto;
use receipt_sync::testkit::server::FakeServer;

struct World {
    qonto: FakeQonto,
    graph: FakeGraph,
    login: FakeServer,
    refresh_token: String,
    home: tempfile::TempDir,
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
            login,
            refresh_token,
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// Exit code and stdout; stderr must be empty.
    async fn run(&self, args: &[&str]) -> (i32, String) {
        let env = Env {
            qonto_url: self.qonto.url(),
            login_url: self.login.url(),
            graph_url: self.graph.base_url(),
            refresh_token: &self.refresh_token,
            home: self.home.path(),
        };
        let out = env.command(args).await.output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // A sync reports progress on stderr; the other commands say nothing there.
        assert!(args[0] == "sync" || stderr.is_empty(), "{stderr}");
        // Shown with `--nocapture`: what a person sees.
        println!("$ qonto-onedrive {}\n{stdout}", args.join(" "));
        (out.status.code().unwrap_or(-1), stdout)
    }
}

fn line<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{text}"))
}

/// `YYYY-MM-DD HH:MM ZONE`, nothing finer than the minute.
fn is_local_minute(text: &str, zone: &[&str]) -> bool {
    let mut parts = text.split(' ');
    let (Some(day), Some(time), Some(tz)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").is_ok()
        && chrono::NaiveTime::parse_from_str(time, "%H:%M").is_ok()
        && time.len() == 5
        && zone.contains(&tz)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_after_a_reset_counts_files_to_adopt_in_local_time() {
    let w = World::start().await;
    let (code, before) = w.run(&["status"]).await;
    assert_eq!(code, 0);
    assert!(
        line(&before, "Archive:").contains("not chosen yet"),
        "{before}"
    );
    assert!(line(&before, "Last run:").ends_with("never"), "{before}");

    assert_eq!(w.run(&["sync", "--since", "2020-01-01"]).await.0, 0);
    let (_, synced) = w.run(&["status"]).await;
    assert!(
        line(&synced, "Archive:").contains("the OneDrive app folder "),
        "{synced}"
    );
    assert_eq!(line(&synced, "Start date:"), "Start date: 2020-01-01");
    assert_eq!(line(&synced, "Archived:"), "Archived:   3");
    assert_eq!(
        line(&synced, "Pending:"),
        "Pending:    0 receipts to upload"
    );
    let last = line(&synced, "Last run:");
    let when = last["Last run:   ".len()..].split(" (").next().unwrap();
    assert!(is_local_minute(when, &["CET", "CEST"]), "{last}");
    assert!(last.ends_with("(3 uploaded, 0 failed)"), "{last}");
    assert!(line(&synced, "Space left:").len() > "Space left: ".len());

    let (_, utc) = w.run(&["status", "--tz", "UTC"]).await;
    let last = line(&utc, "Last run:");
    assert!(
        is_local_minute(
            last["Last run:   ".len()..].split(" (").next().unwrap(),
            &["UTC"]
        ),
        "{last}"
    );

    let (code, reset) = w.run(&["reset", "--yes"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        line(&reset, "Pending:"),
        "Pending:    3 files in the archive will be adopted at the next sync, 0 receipts to upload"
    );

    let (_, after) = w.run(&["status"]).await;
    assert_eq!(
        line(&after, "Pending:"),
        "Pending:    3 files in the archive will be adopted at the next sync, 0 receipts to upload",
        "{after}"
    );
    let (_, json) = w.run(&["status", "--json"]).await;
    let doc: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(doc["command"], "status");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["to_adopt"], 3);
    assert_eq!(doc["to_upload"], 0);
    assert_eq!(doc["start_date"], "2020-01-01");
    let (_, json) = w.run(&["reset", "--yes", "--json"]).await;
    let doc: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(doc["command"], "reset");
    assert_eq!(doc["to_adopt"], 3);

    // And the next sync does adopt them: nothing is written twice.
    let (code, synced) = w.run(&["sync"]).await;
    assert_eq!(code, 0);
    assert!(
        synced.contains("recorded 3 files already in place"),
        "{synced}"
    );
    assert!(!synced.contains("uploaded"), "{synced}");
}
