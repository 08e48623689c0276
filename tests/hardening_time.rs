//! One poisoned value never stops a sync: a timestamp at the edge of chrono's calendar
//! or an absurd announced size fails its own receipt, at decoding, and a state that
//! already holds one still loads and plans, with the other receipts archived.
#![cfg(feature = "testkit")]

use chrono::{DateTime, NaiveDate, Utc};
use receipt_sync::model::{AccountId, ReceiptId};
use receipt_sync::plan::Action;
use receipt_sync::sink::InMemorySink;
use receipt_sync::source::InMemorySource;
use receipt_sync::state::{InMemoryStateStore, JsonFileStateStore, StateStore};
use receipt_sync::sync::{SyncConfig, SyncReport, Syncer};
use receipt_sync::testkit::fake_qonto::FakeQonto;
use serde_json::json;
use std::sync::Arc;

/// Parses and is the last second chrono represents: its local time east of UTC
/// does not exist.
const EDGE_OF_CALENDAR: &str = "+262142-12-31T23:59:59";

fn syncer(source: Arc<dyn receipt_sync::source::ReceiptSource>, sink: &InMemorySink) -> Syncer {
    Syncer::new(
        source,
        Arc::new(sink.clone()),
        Arc::new(InMemoryStateStore::new()),
        SyncConfig::default(),
    )
}

fn failed_receipts(report: &SyncReport) -> usize {
    report.failures.len()
}

#[tokio::test]
async fn a_timestamp_at_the_edge_of_the_calendar_fails_only_its_receipt() {
    let fake = FakeQonto::start().await.unwrap();
    let account = fake.add_account("Main");
    let ids = fake.add_receipts(&account.id, 3, 8);
    // The second transaction (ids are per attachment; find its transaction by order).
    let poisoned_tx = fake.add_transaction(
        &account.id,
        receipt_sync::testkit::fake_qonto::NewTransaction::debit(999, "Poisoned"),
    );
    fake.add_attachment(&poisoned_tx, "p.pdf", "application/pdf", b"poison".to_vec());
    fake.patch_transaction(&poisoned_tx, json!({ "emitted_at": EDGE_OF_CALENDAR }));

    let drive = InMemorySink::new();
    let syncer = syncer(Arc::new(fake.source_builder().build().unwrap()), &drive);
    let report = syncer.run().await.unwrap();
    assert_eq!(report.count("upload"), ids.len(), "{report}");
    assert_eq!(drive.files().len(), ids.len());
    assert_eq!(failed_receipts(&report), 1, "{report}");
    let failure = &report.failures[0].message;
    assert!(failure.contains("emitted_at"), "{failure}");

    // And again: the next run is not poisoned either.
    let again = syncer.run().await.unwrap();
    assert!(again.stopped.is_none(), "{again}");
    assert_eq!(drive.files().len(), ids.len());
}

#[tokio::test]
async fn an_absurd_announced_size_fails_only_its_receipt() {
    let fake = FakeQonto::start().await.unwrap();
    let account = fake.add_account("Main");
    let ids = fake.add_receipts(&account.id, 3, 8);
    fake.set_announced_file_size(&ids[1], json!(u64::MAX.to_string()));

    let drive = InMemorySink::new();
    let syncer = syncer(Arc::new(fake.source_builder().build().unwrap()), &drive);
    let report = syncer.run().await.unwrap();
    assert!(report.stopped.is_none(), "{report}");
    assert_eq!(report.count("upload"), 2, "{report}");
    assert_eq!(failed_receipts(&report), 1, "{report}");
    assert!(
        report.failures[0].message.contains("file_size"),
        "{}",
        report.failures[0].message
    );
}

/// A bank (an older version of the decoder, or another source) handed over receipts
/// with an impossible date and an impossible size: they sit in the state's catalog.
fn poisoned_bank() -> (InMemorySource, ReceiptId, ReceiptId) {
    let bank = InMemorySource::new();
    let account: AccountId = bank.add_account_named("acc", "Main");
    let day = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
    for (id, label) in [("good-1", "Shop"), ("good-2", "Bakery")] {
        bank.add_receipt(
            InMemorySource::receipt(id, &account, day, label, -100),
            &b"pdf"[..],
        );
    }
    let late = bank.add_receipt(
        InMemorySource::receipt("late", &account, day, "Late", -100),
        &b"pdf"[..],
    );
    let edge: DateTime<Utc> = format!("{EDGE_OF_CALENDAR}Z").parse().unwrap();
    bank.edit_transaction(&late.id, |t| t.emitted_at = edge)
        .unwrap();
    let huge = bank.add_receipt(
        InMemorySource::receipt("huge", &account, day, "Huge", -100),
        &b"pdf"[..],
    );
    bank.edit_receipt(&huge.id, |r| r.size = u64::MAX).unwrap();
    (bank, late.id, huge.id)
}

#[tokio::test]
async fn a_state_holding_impossible_values_loads_plans_and_archives_the_others() {
    let (bank, late, huge) = poisoned_bank();
    let bank = Arc::new(bank);
    let dir = tempfile::tempdir().unwrap();
    let drive = InMemorySink::new();
    let run = |config: SyncConfig| {
        Syncer::new(
            bank.clone(),
            Arc::new(drive.clone()),
            Arc::new(JsonFileStateStore::new(dir.path())),
            config,
        )
    };

    // A dry run shows what happens to each receipt.
    let dry = run(SyncConfig::default().with_dry_run(true))
        .run()
        .await
        .unwrap();
    let plan = dry.plan.expect("a dry run returns its plan");
    for poisoned in [&late, &huge] {
        let action = plan
            .actions
            .iter()
            .find(|a| a.receipt() == Some(poisoned))
            .expect("every receipt has an action");
        assert!(matches!(action, Action::Skip { .. }), "{action:?}");
    }
    assert_eq!(plan.bytes_to_write(), 6, "the two good receipts only");

    let report = run(SyncConfig::default()).run().await.unwrap();
    assert!(report.stopped.is_none(), "{report}");
    assert_eq!(report.count("upload"), 2, "{report}");
    assert_eq!(drive.files().len(), 2);

    // A new process loads the state (the catalog still holds both) and plans again.
    let store = JsonFileStateStore::new(dir.path());
    let state = store.load().await.unwrap().expect("a state was saved");
    assert!(state.receipts.contains_key(&late) && state.receipts.contains_key(&huge));
    let again = run(SyncConfig::default()).run().await.unwrap();
    assert!(again.stopped.is_none(), "{again}");
    assert_eq!(again.count("upload"), 0, "{again}");
}
