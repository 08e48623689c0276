//! A state written by the previous format (1: `state.json` plus a journal, see
//! `tests/fixtures/state-v1/README.md`) loads, is converted once to `state.bin`, and the
//! next sync against the same archive uploads nothing.

use chrono::NaiveDate;
use receipt_sync::model::AccountId;
use receipt_sync::sink::InMemorySink;
use receipt_sync::source::InMemorySource;
use receipt_sync::state::{JsonFileStateStore, STATE_VERSION, StateStore};
use receipt_sync::sync::{SyncConfig, Syncer};
use std::path::Path;
use std::sync::Arc;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/state-v1");
const RECEIPTS: usize = 34;

/// The bank the fixture was made from (its README says how).
fn bank() -> InMemorySource {
    let bank = InMemorySource::new();
    bank.add_account_named("acc-0", "Main");
    bank.add_account_named("acc-1", "Savings");
    let accounts = [AccountId::new("acc-0"), AccountId::new("acc-1")];
    for i in 0..RECEIPTS {
        let day = NaiveDate::from_ymd_opt(2025, 1 + (i % 12) as u32, 1 + (i % 28) as u32).unwrap();
        let receipt = InMemorySource::receipt(
            &format!("r{i}"),
            &accounts[i % 2],
            day,
            &format!("Shop {i}"),
            -100 - i as i64,
        );
        bank.add_receipt(receipt, format!("receipt {i}").into_bytes());
    }
    bank
}

/// The drive the fixture's syncs left: its files, as listed in `drive.tsv`.
fn drive() -> InMemorySink {
    let sink = InMemorySink::new().without_ids();
    let listing = std::fs::read_to_string(Path::new(FIXTURE).join("drive.tsv")).unwrap();
    for line in listing.lines() {
        let (path, contents) = line.split_once('\t').expect("path, tab, contents");
        sink.add_user_file(path, contents.as_bytes().to_vec())
            .unwrap();
    }
    sink
}

/// A copy of the fixture's state folder.
fn state_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["state.json", "state.journal"] {
        std::fs::copy(Path::new(FIXTURE).join(name), dir.path().join(name)).unwrap();
    }
    dir
}

#[tokio::test]
async fn a_format_1_state_loads_converts_once_and_the_next_sync_uploads_nothing() {
    let dir = state_folder();
    let store = JsonFileStateStore::new(dir.path());
    assert_eq!(store.legacy_state_path(), dir.path().join("state.json"));

    // It loads as it is, the journal on top, and loading changes no file.
    let loaded = store.load().await.unwrap().expect("a state");
    assert_eq!(loaded.exported.len(), RECEIPTS, "the journal's exports too");
    assert_eq!(loaded.receipts.len(), RECEIPTS);
    assert_eq!(loaded.version, STATE_VERSION);
    assert!(!store.state_path().exists(), "loading converts nothing");

    let sink = Arc::new(drive());
    let syncer = Syncer::new(
        Arc::new(bank()),
        sink.clone(),
        Arc::new(store.clone()),
        SyncConfig::default(),
    );
    let report = syncer.run().await.unwrap();
    assert!(report.is_complete(), "{report}");
    assert_eq!(report.count("upload"), 0, "{report}");
    assert_eq!(sink.writes(), 0, "nothing written to the archive");

    // Converted: the new base file holds it all; the journal is folded in, and
    // `state.json` is only a marker that the previous release refuses as newer (it reads
    // the version first, and refuses any above 1) rather than starting over without it.
    assert!(store.state_path().exists());
    assert!(!store.journal_path().exists());
    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.legacy_state_path()).unwrap()).unwrap();
    assert!(marker["version"].as_u64().unwrap() > 1, "{marker}");
    assert_eq!(marker.as_object().unwrap().len(), 1, "{marker}");
    let converted = store.load().await.unwrap().expect("a state");
    assert_eq!(converted.exported, loaded.exported);
    assert_eq!(converted.receipts, loaded.receipts);
    assert_eq!(converted.tombstones.len(), 0);

    // Once: the next run appends to the journal and leaves the base file alone.
    let base = std::fs::read(store.state_path()).unwrap();
    let again = syncer.run().await.unwrap();
    assert_eq!(again.count("upload"), 0, "{again}");
    assert_eq!(std::fs::read(store.state_path()).unwrap(), base);
    assert!(store.journal_path().exists());
}

/// A crash after `state.bin` was written but before `state.json` was removed leaves
/// both: the new one wins, and a later save removes the old one.
#[tokio::test]
async fn after_a_crash_mid_conversion_the_new_base_file_wins() {
    let dir = state_folder();
    let store = JsonFileStateStore::new(dir.path());
    let mut state = store.load().await.unwrap().unwrap();
    store.save(&state).await.unwrap();
    // Put the old file back, as the crash would have left it, and change the new one.
    std::fs::copy(
        Path::new(FIXTURE).join("state.json"),
        store.legacy_state_path(),
    )
    .unwrap();
    state.exported.clear();
    store.save(&state).await.unwrap();
    std::fs::copy(
        Path::new(FIXTURE).join("state.json"),
        store.legacy_state_path(),
    )
    .unwrap();
    let loaded = store.load().await.unwrap().unwrap();
    assert!(loaded.exported.is_empty(), "state.bin, not state.json");
}

/// The marker alone (the base file lost) is an error that says what happened, never an
/// empty state that would start over.
#[tokio::test]
async fn the_marker_without_the_base_file_is_an_error() {
    let dir = state_folder();
    let store = JsonFileStateStore::new(dir.path());
    let state = store.load().await.unwrap().unwrap();
    store.save(&state).await.unwrap();
    std::fs::remove_file(store.state_path()).unwrap();
    let err = store.load().await.unwrap_err();
    assert_eq!(err.kind(), receipt_sync::ErrorKind::State);
    assert!(err.to_string().contains("state.bin"), "{err}");
}
