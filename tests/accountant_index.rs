//! The accountant's index (`index.csv`) end to end on the in-memory fakes: what it
//! lists, when it is written, and the deletion rules around it.

use chrono::NaiveDate;
use receipt_sync::index::{IndexSettings, Separator};
use receipt_sync::layout::{Layout, LayoutSettings, NameLimits};
use receipt_sync::model::{AccountId, BankAccount, CurrencyCode, Receipt, TransactionStatus};
use receipt_sync::sink::InMemorySink;
use receipt_sync::source::{BankTransaction, InMemorySource};
use receipt_sync::state::InMemoryStateStore;
use receipt_sync::sync::{SyncConfig, SyncReport, Syncer};
use std::sync::Arc;

/// The period folder of March 2026, named as the layout names the account's folder.
fn march(world: &World) -> String {
    let layout = Layout::new(LayoutSettings::default(), NameLimits::default());
    let account = BankAccount {
        id: world.account.clone(),
        name: "Main".into(),
        iban: None,
        currency: CurrencyCode::EUR,
    };
    format!("{}/2026-03", layout.account_folder(&account))
}

fn index(world: &World) -> String {
    format!("{}/index.csv", march(world))
}

fn beside(world: &World) -> String {
    format!("{}/index (receipt-sync).csv", march(world))
}

struct World {
    source: InMemorySource,
    sink: InMemorySink,
    store: InMemoryStateStore,
    account: AccountId,
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
}

fn receipt(world: &World, id: &str, d: u32, label: &str) -> Receipt {
    InMemorySource::receipt(id, &world.account, day(d), label, -1000)
}

/// March 2026: one paid receipt, one transaction without receipt.
fn world() -> World {
    let source = InMemorySource::new();
    let account = source.add_account_named("acc", "Main");
    let world = World {
        source,
        sink: InMemorySink::new(),
        store: InMemoryStateStore::new(),
        account,
    };
    world
        .source
        .add_receipt(receipt(&world, "paid", 10, "Office"), "%PDF-paid");
    let missing = receipt(&world, "missing", 12, "Garage").transaction;
    world.source.add_transaction(
        BankTransaction::new(missing).with_note(Some("ask for the invoice".into())),
    );
    world
}

fn syncer(world: &World) -> Syncer {
    let config = SyncConfig::default()
        .with_start_date(Some(day(1)))
        .with_index(IndexSettings::with_separator(Separator::Comma));
    Syncer::new(
        Arc::new(world.source.clone()),
        Arc::new(world.sink.clone()),
        Arc::new(world.store.clone()),
        config,
    )
}

async fn run(world: &World) -> SyncReport {
    let report = syncer(world).run().await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    report
}

fn index_text(world: &World, path: &str) -> String {
    let bytes = world.sink.read(path).expect("an index");
    String::from_utf8(bytes).unwrap()
}

fn rows(text: &str) -> Vec<&str> {
    text.trim_start_matches('\u{feff}')
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .collect()
}

#[tokio::test]
async fn an_export_writes_one_index_per_period_listing_transactions_with_or_without_receipts() {
    let world = world();
    let report = run(&world).await;
    assert_eq!(report.count("index"), 1);
    let text = index_text(&world, &index(&world));
    let rows = rows(&text);
    assert_eq!(
        rows[0],
        "date,label,amount,currency,vat_amount,vat_rate,category,status,note,receipt_files,transaction_id"
    );
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows[1].starts_with("2026-03-10,Office,-10.00,EUR,"),
        "{text}"
    );
    assert!(rows[1].ends_with(".pdf,tx-paid"), "{text}");
    assert_eq!(
        rows[2],
        "2026-03-12,Garage,-10.00,EUR,,,,completed,ask for the invoice,,tx-missing"
    );

    // A quiet day writes nothing, the index included.
    let writes = world.sink.writes();
    let quiet = run(&world).await;
    assert_eq!(quiet.count("index"), 0);
    assert_eq!(world.sink.writes(), writes);
}

#[tokio::test]
async fn a_receipt_for_a_receipt_less_transaction_rewrites_exactly_one_index() {
    let world = world();
    // Another period, which must not be touched.
    let april = InMemorySource::receipt(
        "april",
        &world.account,
        NaiveDate::from_ymd_opt(2026, 4, 2).unwrap(),
        "Rent",
        -5000,
    );
    world.source.add_receipt(april, "%PDF-april");
    run(&world).await;
    let april = index(&world).replace("2026-03", "2026-04");
    let april_id = world.sink.id_of(&april).unwrap();
    let writes = world.sink.writes();

    let mut arrived = receipt(&world, "late", 12, "Garage");
    arrived.transaction = world.source_transaction("tx-missing");
    world.source.add_receipt(arrived, "%PDF-late");
    let report = run(&world).await;
    assert_eq!(report.count("upload"), 1);
    assert_eq!(report.count("index"), 1, "one index write");
    assert_eq!(world.sink.writes(), writes + 2, "the receipt and its index");
    let text = index_text(&world, &index(&world));
    let garage = rows(&text)[2];
    assert!(garage.contains(".pdf,tx-missing"), "{garage}");
    assert_eq!(world.sink.id_of(&april), Some(april_id));
}

trait SourceExt {
    fn source_transaction(&self, id: &str) -> receipt_sync::model::Transaction;
}

impl SourceExt for World {
    fn source_transaction(&self, id: &str) -> receipt_sync::model::Transaction {
        let mut t = receipt(self, "missing", 12, "Garage").transaction;
        assert_eq!(t.id.as_str(), id);
        t.status = TransactionStatus::Completed;
        t
    }
}

#[tokio::test]
async fn an_index_deleted_by_the_user_is_written_again() {
    let world = world();
    run(&world).await;
    let before = index_text(&world, &index(&world));
    world.sink.delete_file_as_user(&index(&world)).unwrap();
    let report = run(&world).await;
    assert_eq!(report.count("index"), 1);
    assert_eq!(index_text(&world, &index(&world)), before);
}

#[tokio::test]
async fn an_index_edited_by_the_user_is_left_alone_and_the_new_one_goes_beside_it() {
    let world = world();
    run(&world).await;
    let edited = "my own notes\r\n";
    world
        .sink
        .edit_file_as_user(&index(&world), edited)
        .unwrap();
    // Nothing changed at the bank: nothing to write.
    let quiet = run(&world).await;
    assert_eq!(quiet.count("index"), 0);
    assert!(!world.sink.exists(&beside(&world)));

    world
        .source
        .add_receipt(receipt(&world, "new", 20, "Train"), "%PDF-new");
    let report = run(&world).await;
    assert_eq!(report.count("index"), 1);
    assert_eq!(
        index_text(&world, &index(&world)),
        edited,
        "never overwritten"
    );
    assert!(index_text(&world, &beside(&world)).contains("Train"));
    // The one beside is the sync's own from now on: replaced when it changes.
    world
        .source
        .add_receipt(receipt(&world, "more", 21, "Taxi"), "%PDF-more");
    run(&world).await;
    assert!(index_text(&world, &beside(&world)).contains("Taxi"));
    assert_eq!(index_text(&world, &index(&world)), edited);
}

#[tokio::test]
async fn a_users_own_index_in_a_folder_the_sync_did_not_create_is_never_touched() {
    let world = world();
    world
        .sink
        .add_user_file(&index(&world), "the user's own file")
        .unwrap();
    run(&world).await;
    assert_eq!(index_text(&world, &index(&world)), "the user's own file");
    assert!(index_text(&world, &beside(&world)).contains("Garage"));
}

#[tokio::test]
async fn a_period_folder_deleted_by_the_user_stays_deleted_until_a_reset() {
    let world = world();
    run(&world).await;
    world.sink.delete_folder_as_user(&march(&world)).unwrap();
    // Even a change in the period does not bring its folder back through the index.
    world
        .source
        .edit_bank_transaction(&"tx-missing".into(), |t| t.note = Some("paid cash".into()))
        .unwrap();
    let report = run(&world).await;
    assert_eq!(report.count("index"), 0);
    assert!(!world.sink.exists(&march(&world)), "{}", world.sink.tree());

    syncer(&world).reset().await.unwrap();
    let report = run(&world).await;
    assert_eq!(report.count("index"), 1);
    assert!(index_text(&world, &index(&world)).contains("paid cash"));
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn date(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 2, 1).unwrap() + chrono::Days::new(u64::from(n - 1))
    }

    proptest! {
        /// Every index lists exactly its period's eligible transactions, each once,
        /// naming exactly the receipts archived for it; a second sync writes nothing.
        #[test]
        /// Each generated transaction: its day in February or March 2026 (1..=56), its
        /// receipts, its status (0 completed, 1 pending, 2 declined).
        fn indexes_list_exactly_the_eligible_transactions(
            generated in prop::collection::vec((1u32..=56, 0usize..3, 0u8..3), 1..12),
        ) {
            let source = InMemorySource::new();
            let account = source.add_account_named("acc", "Main");
            let world = World { source, sink: InMemorySink::new(), store: InMemoryStateStore::new(), account };
            let start = date(5);
            let mut expected: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
            let mut archived_any = false;
            for (i, &(d, receipts, status)) in generated.iter().enumerate() {
                let day = date(d);
                let mut tx = InMemorySource::receipt(&format!("t{i}"), &world.account, day, "L", -100).transaction;
                tx.status = match status { 0 => TransactionStatus::Completed, 1 => TransactionStatus::Pending, _ => TransactionStatus::Declined };
                world.source.add_transaction(BankTransaction::new(tx.clone()));
                for r in 0..receipts {
                    let mut receipt = InMemorySource::receipt(&format!("t{i}r{r}"), &world.account, day, "L", -100);
                    receipt.transaction = tx.clone();
                    world.source.add_receipt(receipt, format!("%PDF-{i}-{r}"));
                }
                if status != 2 && day >= start {
                    archived_any |= receipts > 0;
                    let period = day.format("%Y-%m").to_string();
                    expected.entry(period).or_default().insert(tx.id.to_string(), receipts);
                }
            }
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let config = SyncConfig::default()
                .with_start_date(Some(start))
                .with_index(IndexSettings::with_separator(Separator::Semicolon));
            let syncer = Syncer::new(
                Arc::new(world.source.clone()),
                Arc::new(world.sink.clone()),
                Arc::new(world.store.clone()),
                config,
            );
            let first = runtime.block_on(syncer.run()).unwrap();
            prop_assert!(first.is_complete());
            let mut found: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
            for (path, bytes) in world.sink.files() {
                if path.file_name() != "index.csv" {
                    continue;
                }
                let period = path.parent().unwrap().file_name().to_owned();
                let text = String::from_utf8(bytes).unwrap();
                let mut seen = BTreeSet::new();
                for row in rows(&text).into_iter().skip(1) {
                    let fields: Vec<&str> = row.split(';').collect();
                    let id = fields[10].to_owned();
                    prop_assert!(seen.insert(id.clone()), "{id} listed twice");
                    let files = if fields[9].is_empty() { 0 } else { fields[9].split(" | ").count() };
                    found.entry(period.clone()).or_default().insert(id, files);
                }
            }
            // An account without any archived receipt has no folder, so no index.
            if !archived_any {
                expected.clear();
            }
            prop_assert_eq!(&found, &expected);
            let second = runtime.block_on(syncer.run()).unwrap();
            prop_assert_eq!(second.count("index"), 0);
        }
    }
}

/// On a local folder (ids are paths): the index is replaced in place when it changes,
/// and an index the user edited on disk is left alone.
#[tokio::test]
async fn on_a_local_folder_the_index_is_replaced_and_an_edited_one_left_alone() {
    use receipt_sync::sink::LocalDirSink;
    let dir = tempfile::tempdir().unwrap();
    let world = world();
    let sink = Arc::new(LocalDirSink::new(dir.path()).unwrap());
    let config = SyncConfig::default()
        .with_start_date(Some(day(1)))
        .with_index(IndexSettings::with_separator(Separator::Semicolon));
    let syncer = Syncer::new(
        Arc::new(world.source.clone()),
        sink,
        Arc::new(world.store.clone()),
        config,
    );
    let on_disk = |rel: &str| dir.path().join(index(&world).replace("index.csv", rel));
    assert_eq!(syncer.run().await.unwrap().count("index"), 1);
    let first = std::fs::read_to_string(on_disk("index.csv")).unwrap();
    assert!(first.contains("Garage;-10.00"), "{first}");

    let mut arrived = receipt(&world, "late", 12, "Garage");
    arrived.transaction = world.source_transaction("tx-missing");
    world.source.add_receipt(arrived, "%PDF-late");
    let report = syncer.run().await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.count("index"), 1);
    let replaced = std::fs::read_to_string(on_disk("index.csv")).unwrap();
    assert!(replaced.contains(".pdf;tx-missing"), "{replaced}");
    assert_eq!(syncer.run().await.unwrap().count("index"), 0);

    std::fs::write(on_disk("index.csv"), "edited by hand").unwrap();
    world
        .source
        .add_receipt(receipt(&world, "new", 20, "Train"), "%PDF-new");
    assert_eq!(syncer.run().await.unwrap().count("index"), 1);
    assert_eq!(
        std::fs::read_to_string(on_disk("index.csv")).unwrap(),
        "edited by hand"
    );
    let beside = std::fs::read_to_string(on_disk("index (receipt-sync).csv")).unwrap();
    assert!(beside.contains("Train"), "{beside}");
}
