//! The periodic full read: a source that fails to show a change after the watermark
//! (Qonto is assumed to bump a transaction's `updated_at` when a receipt is attached,
//! api-notes-qonto.md; were it not to, an incremental read would miss the receipt)
//! loses nothing for longer than `SyncConfig::full_read_every`.
#![cfg(feature = "testkit")]

use async_trait::async_trait;
use chrono::{NaiveDate, TimeDelta, Utc};
use futures::StreamExt;
use receipt_sync::Result;
use receipt_sync::model::{AccountId, BankAccount, Body, Receipt, ReceiptId};
use receipt_sync::sink::InMemorySink;
use receipt_sync::source::{
    InMemorySource, ReceiptQuery, ReceiptSource, ReceiptStream, SourceEvent,
};
use receipt_sync::state::{InMemoryStateStore, StateStore};
use receipt_sync::sync::{SyncConfig, Syncer};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// A bank whose incremental reads miss some receipts, as if attaching them had not
/// moved their transaction's `updated_at`. Whole reads show everything.
#[derive(Clone, Debug, Default)]
struct ForgetfulBank {
    bank: InMemorySource,
    unannounced: Arc<Mutex<BTreeSet<ReceiptId>>>,
    whole_reads: Arc<Mutex<u32>>,
}

#[async_trait]
impl ReceiptSource for ForgetfulBank {
    async fn accounts(&self) -> Result<Vec<BankAccount>> {
        self.bank.accounts().await
    }

    fn receipts(&self, account: &AccountId, query: &ReceiptQuery) -> ReceiptStream {
        if query.since.is_none() {
            *self.whole_reads.lock().unwrap() += 1;
            return self.bank.receipts(account, query);
        }
        let hidden = self.unannounced.lock().unwrap().clone();
        self.bank
            .receipts(account, query)
            .filter(move |event| {
                let shown = !matches!(event, Ok(SourceEvent::Receipt(r)) if hidden.contains(&r.id));
                std::future::ready(shown)
            })
            .boxed()
    }

    async fn open(&self, receipt: &Receipt) -> Result<Body> {
        self.bank.open(receipt).await
    }
}

impl ForgetfulBank {
    fn new() -> Self {
        let bank = Self::default();
        bank.bank.add_account_named("acc", "Main");
        bank.add("r0", false);
        bank
    }

    /// A receipt; an `unannounced` one is missed by incremental reads.
    fn add(&self, id: &str, unannounced: bool) {
        let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let receipt = InMemorySource::receipt(id, &AccountId::new("acc"), day, "Shop", -100);
        self.bank.add_receipt(receipt, format!("bytes of {id}"));
        if unannounced {
            self.unannounced.lock().unwrap().insert(ReceiptId::new(id));
        }
    }

    fn whole_reads(&self) -> u32 {
        *self.whole_reads.lock().unwrap()
    }
}

struct World {
    bank: ForgetfulBank,
    drive: InMemorySink,
    store: InMemoryStateStore,
}

impl World {
    fn new() -> Self {
        Self {
            bank: ForgetfulBank::new(),
            drive: InMemorySink::new(),
            store: InMemoryStateStore::new(),
        }
    }

    async fn sync(&self, every: Option<TimeDelta>) -> receipt_sync::sync::SyncReport {
        let config = SyncConfig::default().with_full_read_every(every);
        Syncer::new(
            Arc::new(self.bank.clone()),
            Arc::new(self.drive.clone()),
            Arc::new(self.store.clone()),
            config,
        )
        .run()
        .await
        .unwrap()
    }

    fn archived(&self) -> usize {
        self.drive.files().len()
    }

    /// Pretends the last full read finished `ago`.
    async fn age_full_read(&self, ago: TimeDelta) {
        let mut state = self.store.load().await.unwrap().unwrap();
        for record in state.accounts.values_mut() {
            record.full_read_at = Some(Utc::now() - ago);
        }
        self.store.save(&state).await.unwrap();
    }
}

#[tokio::test]
async fn the_first_run_reads_whole_and_quiet_runs_do_not() {
    let world = World::new();
    let week = Some(TimeDelta::days(7));
    assert!(world.sync(week).await.is_complete());
    assert_eq!(world.bank.whole_reads(), 1);
    let state = world.store.snapshot().unwrap();
    assert!(state.accounts.values().all(|a| a.full_read_at.is_some()));

    world.sync(week).await;
    world.sync(week).await;
    assert_eq!(
        world.bank.whole_reads(),
        1,
        "quiet runs read from the watermark"
    );
}

#[tokio::test]
async fn a_receipt_an_incremental_read_misses_is_archived_by_the_next_full_read() {
    let world = World::new();
    let week = Some(TimeDelta::days(7));
    world.sync(week).await;
    world.bank.add("r1", true);

    world.sync(week).await;
    assert_eq!(world.archived(), 1, "an incremental read cannot see r1");

    world.age_full_read(TimeDelta::days(8)).await;
    let report = world.sync(week).await;
    assert!(report.is_complete());
    assert_eq!(world.bank.whole_reads(), 2);
    assert_eq!(world.archived(), 2, "the weekly full read finds r1");
    assert_eq!(report.count("upload"), 1, "r0 is not copied again");
}

#[tokio::test]
async fn without_periodic_full_reads_only_the_first_run_reads_whole() {
    let world = World::new();
    world.sync(None).await;
    world.bank.add("r1", true);
    world.age_full_read(TimeDelta::days(365)).await;
    world.sync(None).await;
    assert_eq!(world.bank.whole_reads(), 1);
    assert_eq!(world.archived(), 1);
}

#[tokio::test]
async fn a_failed_full_read_is_tried_again_next_run() {
    let world = World::new();
    world.sync(Some(TimeDelta::days(7))).await;
    world.age_full_read(TimeDelta::days(8)).await;
    let aged = world.store.snapshot().unwrap().accounts;

    // Every read fails: the full read does not count as done.
    let failing = receipt_sync::testkit::faults::FaultySource::new(
        world.bank.clone(),
        receipt_sync::testkit::faults::FaultPlan::seeded(1).transient(1.0),
    );
    let _ = Syncer::new(
        Arc::new(failing),
        Arc::new(world.drive.clone()),
        Arc::new(world.store.clone()),
        SyncConfig::default().with_retry(receipt_sync::http::RetryConfig::none()),
    )
    .run()
    .await;
    let after = world.store.snapshot().unwrap().accounts;
    assert_eq!(
        aged.values().map(|a| a.full_read_at).collect::<Vec<_>>(),
        after.values().map(|a| a.full_read_at).collect::<Vec<_>>(),
    );

    world.sync(Some(TimeDelta::days(7))).await;
    let done = world.store.snapshot().unwrap().accounts;
    assert!(
        done.values()
            .all(|a| a.full_read_at.unwrap() > Utc::now() - TimeDelta::minutes(1))
    );
}
