//! `PgStateStore` on a throwaway PostgreSQL cluster (or `DATABASE_URL`): criterion
//! timings of a full sync pass through the store, `InMemorySource` → `InMemorySink`:
//!
//! - `export/N`: the first sync of an organisation with N receipts (a new
//!   organisation each iteration): N receipts seen, N exports, N files, in batches;
//! - `quiet_day/N`: a sync pass with nothing new over an organisation with N receipts
//!   archived: load, lock, a few records of a handful of rows;
//! - `load/N`: reading the state of an organisation with N receipts archived.
//!
//! `cargo bench --features testkit,postgres --bench pg_state`. Without PostgreSQL it
//! says so and measures nothing. The round trips, statements and rows written of the
//! same passes are measured by `tests/pg_figures.rs` (see `docs/service.md`).

use chrono::NaiveDate;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use receipt_sync::sink::InMemorySink;
use receipt_sync::source::InMemorySource;
use receipt_sync::state::{PgDatabase, StateStore};
use receipt_sync::sync::{SyncConfig, Syncer};
use receipt_sync::testkit::postgres::{TestCluster, unique_name};
use std::sync::Arc;
use std::time::Duration;

fn bank(count: u32) -> InMemorySource {
    let bank = InMemorySource::new();
    let accounts = [
        bank.add_account_named("acc-0", "Main"),
        bank.add_account_named("acc-1", "Travel"),
    ];
    for n in 0..count {
        let day = NaiveDate::from_ymd_opt(2026, 1 + n % 12, 1 + n % 28).expect("a day");
        bank.add_receipt(
            InMemorySource::receipt(
                &format!("r{n}"),
                &accounts[(n % 2) as usize],
                day,
                "Shop",
                -100,
            ),
            format!("receipt {n}").into_bytes(),
        );
    }
    bank
}

async fn sync(database: &PgDatabase, org: &str, bank: &InMemorySource, drive: &InMemorySink) {
    let report = Syncer::new(
        Arc::new(bank.clone()),
        Arc::new(drive.clone()),
        Arc::new(database.store(org)),
        SyncConfig::default().with_concurrency(16),
    )
    .run()
    .await
    .expect("a sync");
    assert!(report.is_complete(), "{report}");
}

fn main() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let database = rt
        .block_on(PgDatabase::connect(cluster.url()))
        .expect("the database");
    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let mut group = c.benchmark_group("pg_state");
    group.sampling_mode(SamplingMode::Flat);
    for count in [200u32, 2000] {
        let bank = bank(count);
        group.throughput(Throughput::Elements(u64::from(count)));
        group.bench_with_input(BenchmarkId::new("export", count), &count, |b, _| {
            b.iter(|| {
                rt.block_on(sync(
                    &database,
                    &unique_name("org"),
                    &bank,
                    &InMemorySink::new(),
                ))
            })
        });

        let org = unique_name("org");
        let drive = InMemorySink::new();
        rt.block_on(sync(&database, &org, &bank, &drive));
        group.bench_with_input(BenchmarkId::new("quiet_day", count), &count, |b, _| {
            b.iter(|| rt.block_on(sync(&database, &org, &bank, &drive)))
        });
        let store = database.store(&org);
        group.bench_with_input(BenchmarkId::new("load", count), &count, |b, _| {
            b.iter(|| rt.block_on(store.load()).expect("a load"))
        });
    }
    group.finish();
    c.final_summary();
}
