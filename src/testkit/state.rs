//! The [`StateStore`] conformance suite: every state store runs it.

use super::suite::{SuiteReport, eq, err, ok};
use crate::error::ErrorKind;
use crate::layout::LayoutSettings;
use crate::model::{
    AccountId, ArchivePath, BankAccount, CurrencyCode, EntryKind, ReceiptId, ScanCursor, SinkEntry,
    SinkItemId,
};
use crate::source::{BankTransaction, InMemorySource, Watermark};
use crate::state::{
    AccountRecord, CatalogDigest, EchoDigest, ExportRecord, IndexRecord, IndexedRow, PendingRename,
    Settled, SettledKey, StateChange, StateHead, StateSettings, StateStore, SyncState, Tombstone,
    TombstoneReason,
};
use chrono::{DateTime, NaiveDate, Utc};

/// Runs every check on `store`, and says which ran.
///
/// # Preconditions
/// The store is empty (nothing saved or recorded) and not locked.
///
/// # Panics
/// At the first failed check, with a message saying what was expected and found.
pub async fn run_all(store: &dyn StateStore) -> SuiteReport {
    let mut report = SuiteReport::default();

    let c = "load_empty";
    eq(
        c,
        "load() of an empty store",
        None,
        ok(c, "load()", store.load().await),
    );
    report.pass(c);

    let c = "lock";
    let held = ok(c, "the first lock()", store.lock().await);
    err(
        c,
        "a second lock() while the first is held",
        store.lock().await,
        ErrorKind::AlreadyRunning,
    );
    drop(held);
    let held = ok(c, "lock() after the first was dropped", store.lock().await);
    report.pass(c);

    let c = "save_load";
    let state = sample_state();
    ok(c, "save()", store.save(&state).await);
    eq(
        c,
        "load() after save()",
        Some(&state),
        ok(c, "load()", store.load().await).as_ref(),
    );
    report.pass(c);

    let c = "record_load";
    let changes = sample_changes();
    ok(c, "record()", store.record(&changes).await);
    ok(c, "record() of nothing", store.record(&[]).await);
    let mut expected = state.clone();
    for change in &changes {
        expected.apply(change);
    }
    eq(
        c,
        "load() after record()",
        Some(&expected),
        ok(c, "load()", store.load().await).as_ref(),
    );
    report.pass(c);

    let c = "save_supersedes_journal";
    let mut replacement = state.clone();
    replacement.watermarks.clear();
    replacement.tombstones.clear();
    ok(c, "save()", store.save(&replacement).await);
    eq(
        c,
        "load() after record() then save() (no change applied twice)",
        Some(&replacement),
        ok(c, "load()", store.load().await).as_ref(),
    );
    ok(
        c,
        "record() after save()",
        store.record(&changes[..1]).await,
    );
    let mut expected = replacement;
    expected.apply(&changes[0]);
    eq(
        c,
        "load() after save() then record()",
        Some(&expected),
        ok(c, "load()", store.load().await).as_ref(),
    );
    report.pass(c);

    let c = "checkpoint_keeps_the_state";
    ok(c, "record()", store.record(&changes[1..]).await);
    for change in &changes[1..] {
        expected.apply(change);
    }
    ok(c, "checkpoint()", store.checkpoint(&expected).await);
    eq(
        c,
        "load() after record() then checkpoint() (folded in or not, the same state)",
        Some(&expected),
        ok(c, "load()", store.load().await).as_ref(),
    );
    report.pass(c);

    let c = "settled_summary_only_while_current";
    let settled = Settled {
        head: StateHead::of(&expected),
        key: SettledKey::of(&"conformance"),
        skipped: [("skip: declined".to_owned(), 1)].into(),
        catalog: CatalogDigest::of(&expected),
        echoes: EchoDigest::of(&expected.snapshot.entries()),
    };
    ok(c, "save_settled()", store.save_settled(&settled).await);
    // A store may keep none; one that keeps it gives it back whole, and only while it
    // describes the stored state.
    if let Some(kept) = ok(c, "load_settled()", store.load_settled().await) {
        eq(c, "load_settled() after save_settled()", &settled, &kept);
        eq(
            c,
            "load() after save_settled() (the state is not changed)",
            Some(&expected),
            ok(c, "load()", store.load().await).as_ref(),
        );
        ok(c, "record()", store.record(&changes[..1]).await);
        expected.apply(&changes[0]);
        eq(
            c,
            "load_settled() after record()",
            None,
            ok(c, "load_settled()", store.load_settled().await),
        );
        ok(c, "save_settled()", store.save_settled(&settled).await);
        ok(c, "save()", store.save(&expected).await);
        eq(
            c,
            "load_settled() after save()",
            None,
            ok(c, "load_settled()", store.load_settled().await),
        );
    }
    report.pass(c);

    drop(held);
    report
}

fn at() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2026, 11, 3)
        .and_then(|d| d.and_hms_opt(23, 30, 0))
        .map(|d| d.and_utc())
        .unwrap_or_default()
}

fn p(path: &str) -> ArchivePath {
    ArchivePath::parse(path).unwrap_or_else(|e| panic!("the suite built a bad path: {e}"))
}

/// A state with something in every field that matters.
fn sample_state() -> SyncState {
    let account = AccountId::new("acc-conformance");
    let receipt = InMemorySource::receipt(
        "r-conformance",
        &account,
        at().date_naive(),
        "Office",
        -1234,
    );
    let mut state = SyncState::new(StateSettings {
        start_date: NaiveDate::from_ymd_opt(2026, 1, 1),
        layout: LayoutSettings::default(),
    });
    state.accounts.insert(
        account.clone(),
        AccountRecord {
            account: BankAccount {
                id: account.clone(),
                name: "Main".into(),
                iban: Some("FR76 0000".into()),
                currency: CurrencyCode::EUR,
            },
            folder_name: Some("Main".into()),
            folder_id: Some(SinkItemId::new("f1")),
            full_read_at: None,
        },
    );
    state.exported.insert(
        receipt.id.clone(),
        ExportRecord {
            path: p("Main/2026-11/r.pdf"),
            file_id: SinkItemId::new("x1"),
            folder_ids: vec![SinkItemId::new("f1"), SinkItemId::new("f2")],
            size: 42,
            at: at(),
        },
    );
    // A transaction without a receipt, as the accountant's index lists it.
    let mut without_receipt = receipt.transaction.clone();
    without_receipt.id = crate::model::TransactionId::new("t-without-receipt");
    state.transactions.insert(
        without_receipt.id.clone(),
        BankTransaction::new(without_receipt).with_note(Some("to find".into())),
    );
    state.receipts.insert(receipt.id.clone(), receipt);
    state
        .watermarks
        .insert(account, Watermark::new("00000000000000000007"));
    state.snapshot.upsert(SinkEntry {
        id: SinkItemId::new("f1"),
        parent: None,
        name: "Main".into(),
        kind: EntryKind::Folder,
    });
    state.scan_cursor = Some(ScanCursor::new("cursor-1"));
    state
}

/// Changes that each leave a visible trace.
fn sample_changes() -> Vec<StateChange> {
    vec![
        StateChange::WatermarkAdvanced {
            account: AccountId::new("acc-conformance"),
            watermark: Watermark::new("00000000000000000009"),
        },
        StateChange::Tombstoned {
            receipt: ReceiptId::new("r-conformance"),
            tombstone: Tombstone {
                reason: TombstoneReason::FolderDeleted {
                    folder: p("Main/2026-11"),
                },
                path: p("Main/2026-11/r.pdf"),
                at: at(),
            },
        },
        StateChange::ItemWritten(SinkEntry {
            id: SinkItemId::new("f2"),
            parent: Some(SinkItemId::new("f1")),
            name: "2026-12".into(),
            kind: EntryKind::Folder,
        }),
        StateChange::IndexWritten {
            key: "acc-conformance/2026-11".into(),
            record: IndexRecord {
                path: p("Main/2026-11/index.csv"),
                file_id: SinkItemId::new("i1"),
                folder_id: Some(SinkItemId::new("f2")),
                size: 310,
                hash: "0123456789abcdef".into(),
                rows: vec![IndexedRow {
                    transaction: crate::model::TransactionId::new("t-without-receipt"),
                    receipts: 0,
                    status: crate::model::TransactionStatus::Completed,
                }],
                at: at(),
            },
        },
        // A rename moves what was recorded below the folder: exports and indexes.
        StateChange::FolderRenamed {
            from: p("Main"),
            to: p("Business"),
            entry: SinkEntry {
                id: SinkItemId::new("f1"),
                parent: None,
                name: "Business".into(),
                kind: EntryKind::Folder,
            },
            ids_are_paths: false,
        },
        StateChange::FolderRenameStarted(PendingRename {
            folder: SinkItemId::new("f1"),
            from: p("Business"),
            to: p("Company"),
            ids_are_paths: false,
        }),
    ]
}
