//! Every implementation of the three edge traits runs its conformance suite, and
//! the fault wrappers, with no fault planned, must pass them too.
#![cfg(feature = "testkit")]

use chrono::NaiveDate;
use receipt_sync::model::TransactionStatus;
use receipt_sync::sink::{ArchiveSink, InMemorySink, LocalDirSink};
use receipt_sync::source::InMemorySource;
use receipt_sync::state::{InMemoryStateStore, JsonFileStateStore};
use receipt_sync::testkit::{self, SuiteReport};

/// Two accounts, receipts over a fortnight, one declined, checkpoints every two.
fn source() -> InMemorySource {
    let source = InMemorySource::new();
    let main = source.add_account_named("acc-main", "Main");
    let other = source.add_account_named("acc-other", "Other");
    for day in 1..=14u32 {
        let account = if day % 3 == 0 { &other } else { &main };
        let date = NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
        let id = format!("r{day:02}");
        let bytes = vec![day as u8; 1000 * day as usize];
        source.add_receipt(
            InMemorySource::receipt(&id, account, date, "Shop", -100 * i64::from(day)),
            bytes,
        );
    }
    source
        .edit_transaction(&"r05".into(), |t| t.status = TransactionStatus::Declined)
        .unwrap();
    source.set_checkpoint_every(Some(2));
    source
}

fn expect_ran(report: &SuiteReport, checks: &[&str]) {
    for check in checks {
        assert!(report.ran(check), "expected {check} to run: {report}");
    }
}

#[tokio::test]
async fn in_memory_source() {
    let report = testkit::source::run_all(&source()).await;
    expect_ran(&report, &["checkpoints_resume", "start_date", "open"]);
    assert!(report.skipped.is_empty(), "{report}");
}

#[tokio::test]
async fn in_memory_sink() {
    let report = testkit::sink::run_all(&InMemorySink::new()).await;
    expect_ran(
        &report,
        &["delta", "quota", "case_insensitive", "longest_name"],
    );
    assert!(report.skipped.is_empty(), "{report}");
}

#[tokio::test]
async fn in_memory_sink_without_ids_delta_or_quota() {
    let sink = InMemorySink::new().without_ids().without_quota();
    let caps = sink.capabilities();
    assert!(!caps.stable_ids && !caps.delta && !caps.quota);
    let report = testkit::sink::run_all(&sink).await;
    expect_ran(&report, &["no_delta", "rename_folder", "case_insensitive"]);
}

#[tokio::test]
async fn local_dir_sink() {
    let dir = tempfile::tempdir().unwrap();
    let sink = LocalDirSink::new(dir.path().join("archive")).unwrap();
    let report = testkit::sink::run_all(&sink).await;
    expect_ran(&report, &["no_delta", "rename_folder", "longest_name"]);
    // Free space comes from statvfs, which only Unix has.
    let mut skipped = vec!["case_insensitive", "delta"];
    if cfg!(unix) {
        expect_ran(&report, &["quota"]);
    } else {
        skipped.push("quota");
    }
    assert_eq!(
        report.skipped.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        skipped
    );
}

#[tokio::test]
async fn in_memory_state_store() {
    let report = testkit::state::run_all(&InMemoryStateStore::new()).await;
    expect_ran(
        &report,
        &[
            "lock",
            "save_supersedes_journal",
            "checkpoint_keeps_the_state",
        ],
    );
}

#[tokio::test]
async fn json_file_state_store() {
    let dir = tempfile::tempdir().unwrap();
    let report = testkit::state::run_all(&JsonFileStateStore::new(dir.path().join("state"))).await;
    expect_ran(
        &report,
        &[
            "lock",
            "save_supersedes_journal",
            "checkpoint_keeps_the_state",
        ],
    );
}

/// The file store once more, folding its journal in at every checkpoint.
#[tokio::test]
async fn json_file_state_store_compacting_at_every_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path().join("state")).with_compaction_bytes(0);
    let report = testkit::state::run_all(&store).await;
    expect_ran(
        &report,
        &[
            "lock",
            "save_supersedes_journal",
            "checkpoint_keeps_the_state",
        ],
    );
    assert!(!store.journal_path().exists(), "folded into the state");
}

#[tokio::test]
async fn fault_wrappers_without_faults_are_transparent() {
    use receipt_sync::testkit::faults::{FaultPlan, FaultySink, FaultySource};
    let source = FaultySource::new(source(), FaultPlan::seeded(1));
    let report = testkit::source::run_all(&source).await;
    expect_ran(&report, &["checkpoints_resume", "concurrent_opens"]);
    assert_eq!(source.faults(), 0);
    assert!(source.operations() > 20, "{}", source.operations());

    let sink = FaultySink::new(InMemorySink::new(), FaultPlan::none());
    let report = testkit::sink::run_all(&sink).await;
    expect_ran(&report, &["delta", "quota", "case_insensitive"]);
    assert_eq!(sink.faults(), 0);

    let dir = tempfile::tempdir().unwrap();
    let local = LocalDirSink::new(dir.path()).unwrap();
    let report = testkit::sink::run_all(&FaultySink::new(local, FaultPlan::seeded(2))).await;
    expect_ran(&report, &["no_delta", "rename_folder"]);
}

#[tokio::test]
async fn qonto_source_over_the_fake_qonto() {
    use receipt_sync::http::RetryConfig;
    use receipt_sync::testkit::fake_qonto::FakeQonto;
    let qonto = FakeQonto::start().await.unwrap();
    let main = qonto.add_account("Main");
    let travel = qonto.add_account("Travel");
    qonto.add_receipts(&main.id, 6, 2_000);
    qonto.add_receipts(&travel.id, 3, 500);
    let source = qonto
        .source_builder()
        .with_retry(RetryConfig::fast())
        .build()
        .unwrap();
    let report = testkit::source::run_all(&source).await;
    expect_ran(&report, &["checkpoints_resume", "open", "concurrent_opens"]);
}

#[tokio::test]
async fn onedrive_sink_over_the_fake_graph() {
    use receipt_sync::auth::StaticToken;
    use receipt_sync::http::RetryConfig;
    use receipt_sync::sink::OneDriveSink;
    use receipt_sync::testkit::fake_graph::FakeGraph;
    use std::sync::Arc;
    let graph = FakeGraph::start().await.unwrap();
    let sink = OneDriveSink::builder(Arc::new(StaticToken::new("test-token")))
        .with_base_url(graph.base_url())
        .with_retry(RetryConfig::fast())
        .build()
        .unwrap();
    let report = testkit::sink::run_all(&sink).await;
    expect_ran(
        &report,
        &[
            "delta",
            "quota",
            "case_insensitive",
            "longest_name",
            "rename_folder",
        ],
    );
    assert!(report.skipped.is_empty(), "{report}");
}
