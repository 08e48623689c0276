//! Bad input from a server or a file never panics: the Qonto and Graph decoders and the
//! state loader, on arbitrary bytes, arbitrary JSON and mutations of real documents
//! (the fixtures, and a state file a sync wrote). The same entry points are the fuzz
//! targets under `fuzz/`; this runs them in CI as property tests.
#![cfg(feature = "testkit")]

use proptest::prelude::*;
use receipt_sync::model::AccountId;
use receipt_sync::sink::InMemorySink;
use receipt_sync::source::InMemorySource;
use receipt_sync::state::{JsonFileStateStore, RunSummary, StateChange, StateStore};
use receipt_sync::sync::{SyncConfig, Syncer};
use receipt_sync::testkit::decode;
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, OnceLock};

fn fixture(path: &str) -> Vec<u8> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

const QONTO: &[(&str, u8)] = &[
    ("qonto/organization.json", 0),
    ("qonto/organization_missing_id.json", 0),
    ("qonto/transactions_page1.json", 1),
    ("qonto/transactions_page2.json", 1),
    ("qonto/attachment.json", 2),
    ("qonto/error_403_scope.json", 3),
];

const GRAPH: &[(&str, u8)] = &[
    ("graph/file_uploaded.json", 0),
    ("graph/folder_created.json", 0),
    ("graph/delta_page1.json", 1),
    ("graph/delta_changes.json", 1),
    ("graph/children_page1.json", 1),
    ("graph/upload_session.json", 2),
    ("graph/fragment_accepted.json", 2),
    ("graph/drive.json", 3),
    ("graph/error_429.json", 4),
    ("graph/error_403_appfolder.json", 4),
];

fn qonto(which: u8, body: &[u8]) {
    decode::any_qonto_answer(which, body);
}

fn graph(which: u8, body: &[u8]) {
    decode::any_graph_answer(which, body);
}

/// Arbitrary JSON, nested a few levels, with the keys the APIs use so that the
/// decoders get past their first checks.
fn any_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("id".to_owned()),
        Just("name".to_owned()),
        Just("value".to_owned()),
        Just("transactions".to_owned()),
        Just("attachments".to_owned()),
        Just("organization".to_owned()),
        Just("bank_accounts".to_owned()),
        Just("meta".to_owned()),
        Just("file_size".to_owned()),
        Just("updated_at".to_owned()),
        Just("parentReference".to_owned()),
        Just("deleted".to_owned()),
        Just("folder".to_owned()),
        Just("file".to_owned()),
        Just("nextExpectedRanges".to_owned()),
        Just("quota".to_owned()),
        Just("error".to_owned()),
        "[a-z_@.]{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
        "[0-9]{1,25}(\\.[0-9]{0,4})?".prop_map(Value::String),
        Just(Value::String("2026-11-28T23:30:00.000Z".into())),
        Just(Value::String("-5".into())),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// A mutation of `bytes`: flipped, removed, inserted bytes, or a cut.
fn mutated(bytes: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = bytes.len().max(1);
    prop::collection::vec((0..len, any::<u8>(), 0u8..4), 1..8).prop_map(move |edits| {
        let mut out = bytes.clone();
        for (at, byte, kind) in edits {
            let at = at.min(out.len());
            match kind {
                0 if at < out.len() => out[at] = byte,
                1 if at < out.len() => drop(out.remove(at)),
                2 => out.insert(at, byte),
                _ => out.truncate(at),
            }
        }
        out
    })
}

/// A document from `docs` (with its decoder), mutated.
fn mutated_fixture(docs: &'static [(&'static str, u8)]) -> impl Strategy<Value = (u8, Vec<u8>)> {
    (0..docs.len()).prop_flat_map(move |i| {
        let (path, which) = docs[i];
        mutated(fixture(path)).prop_map(move |body| (which, body))
    })
}

/// The run summary of the journal in [`written_state`], unlike any a run writes: loading
/// the files gives it only when the journal line was replayed.
fn journal_summary() -> RunSummary {
    RunSummary {
        uploaded: 4242,
        stopped: Some("recorded in the journal".to_owned()),
        ..RunSummary::default()
    }
}

/// `state.json` and `state.journal` as a sync wrote them: two accounts, archived
/// receipts, a journal of the run's changes.
fn written_state() -> &'static (Vec<u8>, Vec<u8>) {
    static WRITTEN: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    WRITTEN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let bank = InMemorySource::new();
            for (account, name) in [("acc-0", "Main"), ("acc-1", "Travel")] {
                bank.add_account_named(account, name);
                let account = AccountId::new(account);
                for i in 0..3 {
                    let id = format!("{account}-r{i}");
                    let day = chrono::NaiveDate::from_ymd_opt(2026, 1 + i, 3).unwrap();
                    let receipt = InMemorySource::receipt(&id, &account, day, "Shop", -250);
                    bank.add_receipt(receipt, id.clone().into_bytes());
                }
            }
            let store = JsonFileStateStore::new(dir.path());
            let syncer = Syncer::new(
                Arc::new(bank),
                Arc::new(InMemorySink::new()),
                Arc::new(store.clone()),
                SyncConfig::default(),
            );
            syncer.run().await.unwrap();
            let state = std::fs::read(store.state_path()).unwrap();
            // A journal as a run leaves it before its final save, written by the store
            // itself: whole lines, each ending with its newline.
            store
                .record(&[StateChange::RunFinished(journal_summary())])
                .await
                .unwrap();
            let journal = std::fs::read(store.journal_path()).unwrap();
            if let Ok(dir) = std::env::var("FUZZ_STATE_SEED") {
                let mut seed = state.clone();
                seed.push(0xFF);
                seed.extend_from_slice(&journal);
                std::fs::write(Path::new(&dir).join("written"), seed).unwrap();
            }
            (state, journal)
        })
    })
}

#[test]
fn the_written_state_loads() {
    let (state, journal) = written_state();
    let loaded = decode::state_files(Some(state), Some(journal))
        .unwrap()
        .unwrap();
    assert_eq!(loaded.exported.len(), 6);
    assert!(journal.ends_with(b"\n"), "a whole journal line");
    assert_eq!(
        loaded.last_run,
        Some(journal_summary()),
        "the journal line was replayed over the saved state"
    );
}

#[test]
fn the_fixtures_decode() {
    assert_eq!(
        decode::qonto_organization(&fixture("qonto/organization.json")).ok(),
        Some(1)
    );
    let (page, _) =
        decode::qonto_transactions_page(&fixture("qonto/transactions_page1.json")).expect("a page");
    assert!(page.iter().any(|t| matches!(t, Ok(n) if *n > 0)));
    assert!(decode::graph_delta_page(&fixture("graph/delta_page1.json")).is_ok());
    assert!(
        decode::graph_drive(&fixture("graph/drive.json"))
            .unwrap()
            .is_some()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn qonto_decoders_take_any_bytes(which in any::<u8>(), body in prop::collection::vec(any::<u8>(), 0..512)) {
        qonto(which, &body);
    }

    #[test]
    fn qonto_decoders_take_any_json(which in any::<u8>(), value in any_json()) {
        qonto(which, &serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn qonto_decoders_take_mutated_answers((which, body) in mutated_fixture(QONTO)) {
        qonto(which, &body);
    }

    #[test]
    fn graph_decoders_take_any_bytes(which in any::<u8>(), body in prop::collection::vec(any::<u8>(), 0..512)) {
        graph(which, &body);
    }

    #[test]
    fn graph_decoders_take_any_json(which in any::<u8>(), value in any_json()) {
        graph(which, &serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn graph_decoders_take_mutated_answers((which, body) in mutated_fixture(GRAPH)) {
        graph(which, &body);
    }
}

proptest! {
    // Each case writes two files and reads them back.
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn the_state_loader_takes_mutated_files(
        state in mutated(written_state().0.clone()),
        journal in prop::option::of(mutated(written_state().1.clone())),
    ) {
        if let Err(receipt_sync::Error::State { detail, .. }) = decode::state_files(Some(&state), journal.as_deref()) {
            prop_assert_ne!(detail, "loading changed the file");
        }
    }

    #[test]
    fn the_state_loader_takes_any_json(value in any_json(), journal in prop::option::of(any_json())) {
        let state = serde_json::to_vec(&value).unwrap();
        let journal = journal.map(|j| serde_json::to_vec(&j).unwrap());
        let _ = decode::state_files(Some(&state), journal.as_deref());
    }
}
