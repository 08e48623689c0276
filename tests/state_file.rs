//! The embedded state store: a JSON file written atomically, a journal, a lock.

use chrono::{TimeZone, Utc};
use receipt_sync::ErrorKind;
use receipt_sync::model::{
    AccountId, CurrencyCode, Money, Receipt, ReceiptId, Transaction, TransactionId,
    TransactionStatus,
};
use receipt_sync::source::Watermark;
use receipt_sync::state::{
    JsonFileStateStore, STATE_VERSION, StateChange, StateSettings, StateStore, SyncState,
};
use std::io::Write;

fn receipt(id: &str) -> Receipt {
    Receipt {
        id: ReceiptId::new(id),
        file_name: "a.pdf".into(),
        content_type: None,
        size: 3,
        created_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        transaction: Transaction {
            id: TransactionId::new("t"),
            account_id: AccountId::new("acc"),
            emitted_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            settled_at: None,
            amount: Money::new(-300, CurrencyCode::EUR),
            label: "Shop".into(),
            status: TransactionStatus::Completed,
        },
    }
}

fn state_with(id: &str) -> SyncState {
    let mut state = SyncState::new(StateSettings {
        start_date: None,
        layout: Default::default(),
    });
    state.apply(&StateChange::ReceiptsSeen(vec![receipt(id)]));
    state
}

#[tokio::test]
async fn round_trip_and_journal_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    assert!(store.load().await.unwrap().is_none());
    let state = state_with("r1");
    store.save(&state).await.unwrap();
    assert_eq!(store.load().await.unwrap().unwrap(), state);

    let change = StateChange::WatermarkAdvanced {
        account: AccountId::new("acc"),
        watermark: Watermark::new("w1"),
    };
    store.record(std::slice::from_ref(&change)).await.unwrap();
    let mut expected = state.clone();
    expected.apply(&change);
    assert_eq!(store.load().await.unwrap().unwrap(), expected);

    // A save supersedes the journal.
    store.save(&expected).await.unwrap();
    assert!(!store.journal_path().exists());
    assert_eq!(store.load().await.unwrap().unwrap(), expected);
}

#[tokio::test]
async fn a_kill_before_the_rename_leaves_the_old_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    let old = state_with("old");
    store.save(&old).await.unwrap();
    // What a kill between writing the temporary file and renaming it leaves behind.
    std::fs::write(
        dir.path().join(".state.json.abc123.tmp"),
        b"{\"version\":1,\"receipts\":{\"new",
    )
    .unwrap();
    assert_eq!(store.load().await.unwrap().unwrap(), old);
    // And the next save still works.
    let new = state_with("new");
    store.save(&new).await.unwrap();
    assert_eq!(store.load().await.unwrap().unwrap(), new);
}

#[tokio::test]
async fn a_torn_last_journal_line_is_ignored_but_a_torn_middle_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    store.save(&state_with("r")).await.unwrap();
    let change = StateChange::WatermarkAdvanced {
        account: AccountId::new("acc"),
        watermark: Watermark::new("w"),
    };
    store.record(&[change]).await.unwrap();
    let mut journal = std::fs::OpenOptions::new()
        .append(true)
        .open(store.journal_path())
        .unwrap();
    journal.write_all(b"{\"watermark_adv").unwrap();
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(
        loaded.watermarks[&AccountId::new("acc")],
        Watermark::new("w")
    );

    journal.write_all(b"\n{\"vanished\":null}\n").unwrap();
    let err = store.load().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::State);
    assert!(err.to_string().contains("state.journal"), "{err}");
}

/// A crash mid-append leaves a torn last line; the next run appends before it saves. The
/// torn line is cut off first, so a second crash still leaves a readable state.
#[tokio::test]
async fn an_append_after_a_torn_line_cuts_it_off_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    store.save(&state_with("r")).await.unwrap();
    let advance = |w: &str| StateChange::WatermarkAdvanced {
        account: AccountId::new("acc"),
        watermark: Watermark::new(w),
    };
    store.record(&[advance("w1")]).await.unwrap();
    let mut journal = std::fs::OpenOptions::new()
        .append(true)
        .open(store.journal_path())
        .unwrap();
    journal.write_all(b"{\"watermark_adv").unwrap();

    store.record(&[advance("w2")]).await.unwrap();
    let loaded = store
        .load()
        .await
        .expect("no torn line in the middle")
        .unwrap();
    assert_eq!(
        loaded.watermarks[&AccountId::new("acc")],
        Watermark::new("w2")
    );
}

#[tokio::test]
async fn a_second_lock_fails_until_the_first_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    let other = JsonFileStateStore::new(dir.path());
    let lock = store.lock().await.unwrap();
    let err = other.lock().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyRunning);
    assert!(err.to_string().contains("already running"), "{err}");
    drop(lock);
    other.lock().await.unwrap();
}

#[tokio::test]
async fn a_corrupt_state_is_an_error_that_names_the_file_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    std::fs::write(store.state_path(), b"{not json").unwrap();
    let err = store.load().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::State);
    assert!(err.to_string().contains("state.json"), "{err}");
    assert_eq!(std::fs::read(store.state_path()).unwrap(), b"{not json");
}

#[tokio::test]
async fn a_state_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    let future = format!("{{\"version\":{}}}", STATE_VERSION + 1);
    std::fs::write(store.state_path(), &future).unwrap();
    let err = store.load().await.unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
    assert_eq!(std::fs::read_to_string(store.state_path()).unwrap(), future);
}

#[cfg(unix)]
#[tokio::test]
async fn files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    store.save(&state_with("r")).await.unwrap();
    store
        .record(&[StateChange::ReceiptsSeen(vec![receipt("s")])])
        .await
        .unwrap();
    let _lock = store.lock().await.unwrap();
    for path in [store.state_path(), store.journal_path(), store.lock_path()] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
}
