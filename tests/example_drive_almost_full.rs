//! `qonto-onedrive sync` on a drive that is almost full, run as a process against the
//! fakes: it archives what fits, the oldest receipts first, exits 5, and its stderr line
//! and its report give the same numbers in the same units.
#![cfg(feature = "testkit")]

mod cli_support;

use chrono::{TimeZone, Utc};
use cli_support::Env;
use receipt_sync::testkit::fake_graph::{FakeGraph, FakeGraphConfig};
use receipt_sync::testkit::fake_identity::{FakeIdentity, FakeIdentityConfig};
use receipt_sync::testkit::fake_qonto::{FakeQonto, NewTransaction};
use receipt_sync::testkit::server::FakeServer;

const RECEIPT: usize = 300_000;
const FREE: u64 = 350_000;

struct World {
    qonto: FakeQonto,
    graph: FakeGraph,
    login: FakeServer,
    refresh_token: String,
    home: tempfile::TempDir,
    /// The receipts, the oldest first, by the byte that fills each.
    oldest_first: Vec<u8>,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl World {
    /// Three receipts of 300,000 bytes, added newest first, and 350,000 bytes free.
    async fn start() -> Self {
        let qonto = FakeQonto::start().await.unwrap();
        let account = qonto.add_account("Main");
        let mut oldest_first = Vec::new();
        for (i, day) in [(0u8, 20), (1, 5), (2, 12)] {
            let at = Utc.with_ymd_and_hms(2026, 3, day, 10, 0, 0).unwrap();
            let tx = qonto.add_transaction(
                &account.id,
                NewTransaction::debit(100, &format!("Shop {i}")).emitted_at(at),
            );
            let bytes = vec![b'a' + i; RECEIPT];
            qonto.add_attachment(&tx, &format!("r{i}.pdf"), "application/pdf", bytes);
            oldest_first.push((day, b'a' + i));
        }
        oldest_first.sort();
        let graph = FakeGraph::start_with(FakeGraphConfig::default().with_quota_total(FREE))
            .await
            .unwrap();
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
            oldest_first: oldest_first.into_iter().map(|(_, b)| b).collect(),
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
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!(
            "$ qonto-onedrive {}\n--- stdout\n{}--- stderr\n{}--- exit {}",
            args.join(" "),
            run.stdout,
            run.stderr,
            run.code
        );
        run
    }

    /// The archived receipts, by the byte that fills each, sorted; every file is
    /// checked whole first.
    fn archived(&self) -> Vec<u8> {
        let mut files: Vec<u8> = self
            .graph
            .files()
            .into_values()
            .map(|bytes| {
                assert_eq!(bytes.len(), RECEIPT);
                assert!(
                    bytes.iter().all(|b| *b == bytes[0]),
                    "a receipt's own bytes"
                );
                bytes[0]
            })
            .collect();
        files.sort();
        files
    }
}

/// The size in `text` right after `before` and up to `after`, e.g. `537.2 KiB`.
fn size_between<'t>(text: &'t str, before: &str, after: &str) -> &'t str {
    let start = text
        .find(before)
        .unwrap_or_else(|| panic!("no {before:?} in {text}"))
        + before.len();
    let len = text[start..]
        .find(after)
        .unwrap_or_else(|| panic!("no {after:?} after {before:?} in {text}"));
    &text[start..start + len]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_almost_full_drive_takes_the_oldest_receipt_then_stops_with_exit_5() {
    let w = World::start().await;
    let run = w.run(&["sync"]).await;
    assert_eq!(run.code, 5, "{}\n{}", run.stdout, run.stderr);
    // The oldest receipt, and only it, is archived.
    assert_eq!(w.archived(), vec![w.oldest_first[0]]);

    // 900,000 bytes to write, 350,000 free: 550,000 more (537.1 KiB, shown rounded up
    // so that freeing that much is enough); 50,000 bytes are left (48.8 KiB).
    let needed = size_between(&run.stderr, "need ", " more");
    let left = size_between(&run.stderr, "more, ", " are left");
    assert_eq!((needed, left), ("537.2 KiB", "48.8 KiB"), "{}", run.stderr);
    // The report on stdout says the same numbers, in the same units.
    assert_eq!(
        size_between(&run.stdout, "need ", " more"),
        needed,
        "{}",
        run.stdout
    );
    assert_eq!(
        size_between(&run.stdout, "more, ", " are left"),
        left,
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("; uploaded 1,"), "{}", run.stdout);
    assert!(run.stdout.contains("293.0 KiB written"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("waiting for space: 2 receipt(s), 585.9 KiB"),
        "{}",
        run.stdout
    );

    // The machine-readable report agrees, and nothing failed: the rest waits.
    let json = w.run(&["sync", "--json"]).await;
    assert_eq!(json.code, 5, "{}", json.stderr);
    let doc: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(doc["exit_code"], 5, "{doc}");
    assert_eq!(doc["failures"].as_array().map(Vec::len), Some(0), "{doc}");
    let reason = doc["reason"].as_str().unwrap_or_default();
    assert_eq!(size_between(reason, "need ", " more"), needed, "{reason}");
    assert_eq!(
        size_between(reason, "more, ", " are left"),
        left,
        "{reason}"
    );
    assert_eq!(w.archived().len(), 1, "the second run had no more room");

    // Room again: the next sync archives the other two, each once.
    w.graph.set_quota_total(10 * FREE);
    let run = w.run(&["sync"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("; uploaded 2"), "{}", run.stdout);
    let mut expected = w.oldest_first.clone();
    expected.sort();
    assert_eq!(w.archived(), expected);
    let again = w.run(&["sync"]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(w.archived(), expected, "no duplicates");
}
