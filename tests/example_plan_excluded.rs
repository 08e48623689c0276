//! `qonto-onedrive plan` names the receipts the settings exclude (declined
//! transactions, transactions before the start date) with their reason, counted in any
//! case and listed in full with `--show-excluded`.
#![cfg(feature = "testkit")]

mod cli_support;

use chrono::{TimeZone, Utc};
use cli_support::Env;
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

impl World {
    /// Two receipts to archive, one of a declined transaction, one from June 2025.
    async fn start() -> Self {
        let qonto = FakeQonto::start().await.unwrap();
        let account = qonto.add_account("Main");
        qonto.add_receipts(&account.id, 2, 1_000);
        let declined = qonto.add_transaction(
            &account.id,
            NewTransaction::debit(500, "Refused card").status("declined"),
        );
        qonto.add_attachment(&declined, "refused.pdf", "application/pdf", vec![b'd'; 700]);
        let early = qonto.add_transaction(
            &account.id,
            NewTransaction::debit(700, "Old dinner")
                .emitted_at(Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()),
        );
        qonto.add_attachment(&early, "old.pdf", "application/pdf", vec![b'o'; 900]);
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

    async fn run(&self, args: &[&str]) -> String {
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
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        println!("$ qonto-onedrive {}\n{stdout}", args.join(" "));
        stdout
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_counts_excluded_receipts_and_lists_them_on_request() {
    let w = World::start().await;

    let plain = w.run(&["plan", "--since", "2025-12-01"]).await;
    assert!(plain.contains("upload: 2"), "{plain}");
    let excluded = plain
        .lines()
        .find(|l| l.starts_with("Excluded:"))
        .unwrap_or_else(|| panic!("the count is always given:\n{plain}"));
    assert!(excluded.contains("--show-excluded"), "{excluded}");

    let shown = w
        .run(&["plan", "--since", "2025-12-01", "--show-excluded"])
        .await;
    assert!(
        shown
            .contains("Excluded:   2 receipts not archived (1 declined, 1 before the start date)."),
        "{shown}"
    );
    let refused = shown
        .lines()
        .find(|l| l.contains("Refused card"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(refused.ends_with("declined transaction"), "{refused}");
    let old = shown
        .lines()
        .find(|l| l.contains("Old dinner"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        old.contains("2025-06-01") && old.ends_with("emitted before the start date 2025-12-01"),
        "{old}"
    );
    assert!(
        shown.contains("upload: 2"),
        "the plan itself is unchanged:\n{shown}"
    );

    let json = w
        .run(&["plan", "--since", "2025-12-01", "--show-excluded", "--json"])
        .await;
    let doc: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(doc["command"], "plan");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["excluded"]["count"], 2);
    assert_eq!(doc["excluded"]["bank_read_in_full"], true);
    let reasons: Vec<&str> = doc["excluded"]["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"declined") && reasons.contains(&"before start date"),
        "{reasons:?}"
    );

    // Nothing was written by any of it.
    assert!(w.graph.files().is_empty());
}
