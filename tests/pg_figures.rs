//! What the PostgreSQL store costs the database, measured with `pg_stat_statements`
//! on a real sync: an export of N receipts, then a quiet day (nothing new). A quiet
//! day writes a handful of rows; an export writes about one row per receipt and per
//! file, in few transactions. The figures printed here are those of `docs/service.md`.
#![cfg(all(feature = "testkit", feature = "postgres"))]

use chrono::NaiveDate;
use receipt_sync::sink::InMemorySink;
use receipt_sync::source::InMemorySource;
use receipt_sync::state::PgDatabase;
use receipt_sync::sync::{SyncConfig, Syncer};
use receipt_sync::testkit::postgres::{TestCluster, counting_relay, unique_name};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Cost {
    round_trips: u64,
    transactions: i64,
    statements: i64,
    rows_written: i64,
}

async fn cost(admin: &tokio_postgres::Client, trips: &AtomicU64) -> Cost {
    let row = admin
        .query_one(
            "SELECT coalesce(sum(calls) FILTER (WHERE query = 'COMMIT'), 0)::bigint, \
                    coalesce(sum(calls) FILTER (WHERE query NOT IN ('BEGIN', 'COMMIT') \
                        AND query NOT LIKE 'BEGIN%'), 0)::bigint, \
                    coalesce(sum(rows) FILTER (WHERE query ~* '^\\s*(insert|update|delete)'), 0)::bigint \
             FROM pg_stat_statements \
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND query NOT ILIKE '%pg_stat_statements%'",
            &[],
        )
        .await
        .expect("pg_stat_statements");
    Cost {
        round_trips: trips.swap(0, Ordering::SeqCst),
        transactions: row.get(0),
        statements: row.get(1),
        rows_written: row.get(2),
    }
}

async fn reset(admin: &tokio_postgres::Client, trips: &AtomicU64) {
    trips.store(0, Ordering::SeqCst);
    admin
        .execute("SELECT pg_stat_statements_reset()", &[])
        .await
        .expect("reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_writes_a_row_per_record_and_a_quiet_day_a_handful() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    // A database of its own: the other tests' statements are not counted.
    let url = cluster.fresh_database().await;
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    if let Err(e) = admin
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await
    {
        eprintln!("pg_stat_statements unavailable ({e}): the figures were not measured");
        return;
    }
    // The store reaches the server through the relay, which counts its round trips.
    let mut relayed = url::Url::parse(&url).unwrap();
    let server = std::net::ToSocketAddrs::to_socket_addrs(&(
        relayed.host_str().unwrap(),
        relayed.port().unwrap_or(5432),
    ))
    .unwrap()
    .next()
    .unwrap();
    let (port, trips) = counting_relay(server).await.expect("a relay");
    relayed.set_port(Some(port)).unwrap();
    let database = PgDatabase::connect(relayed.as_str()).await.unwrap();
    let store = Arc::new(database.store(unique_name("org")));

    const RECEIPTS: u32 = 200;
    let bank = InMemorySource::new();
    let main = bank.add_account_named("acc-main", "Main");
    let other = bank.add_account_named("acc-other", "Travel");
    for n in 0..RECEIPTS {
        let account = if n % 2 == 0 { &main } else { &other };
        let day = NaiveDate::from_ymd_opt(2026, 1 + n % 3, 1 + n % 28).unwrap();
        bank.add_receipt(
            InMemorySource::receipt(&format!("r{n:04}"), account, day, "Shop", -100),
            format!("receipt {n}").into_bytes(),
        );
    }
    let drive = InMemorySink::new();
    let sync = || {
        Syncer::new(
            Arc::new(bank.clone()),
            Arc::new(drive.clone()),
            store.clone(),
            SyncConfig::default(),
        )
    };

    reset(&admin, &trips).await;
    let report = sync().run().await.unwrap();
    assert!(report.is_complete(), "{report}");
    let export = cost(&admin, &trips).await;

    reset(&admin, &trips).await;
    let report = sync().run().await.unwrap();
    assert!(report.is_complete(), "{report}");
    let quiet = cost(&admin, &trips).await;

    eprintln!("export of {RECEIPTS} receipts: {export:?}");
    eprintln!("quiet day: {quiet:?}");
    // One row per receipt seen, per export record and per file and folder written,
    // and a few more: never a rewrite of the whole state per change.
    let per_export = i64::from(RECEIPTS) * 3 + 40;
    assert!(
        export.rows_written <= per_export,
        "{export:?} (at most {per_export} rows)"
    );
    assert!(
        quiet.rows_written <= 12,
        "a quiet day writes a handful of rows: {quiet:?}"
    );
    assert!(quiet.transactions <= 12, "{quiet:?}");
    assert!(quiet.statements <= 40, "{quiet:?}");
}
