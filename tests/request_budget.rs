//! The request budget of whole sync passes: the real `QontoSource` against the fake
//! Qonto and the real `OneDriveSink` against the fake Graph, driven by `Syncer`, counted
//! by the fakes' per-route counters and pinned exactly, so a regression (an extra
//! request per receipt, a lookup per folder, a page too many) fails here.
//!
//! The budget (dependencies.md §4): an initial export of N receipts over A accounts
//! into F period folders costs N downloads + N uploads + (A + F) folder creations + the
//! listing pages + 4 (the organisation, the app folder, the first delta page, the quota
//! check); a later run with nothing new costs A listing pages + 2 (the organisation and
//! one delta page).

#![cfg(feature = "testkit")]

use chrono::{TimeZone, Utc};
use receipt_sync::auth::StaticToken;
use receipt_sync::http::RetryConfig;
use receipt_sync::sink::OneDriveSink;
use receipt_sync::state::InMemoryStateStore;
use receipt_sync::sync::{SyncConfig, Syncer};
use receipt_sync::testkit::fake_graph::FakeGraph;
use receipt_sync::testkit::fake_qonto::{FakeQonto, NewTransaction};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Receipts in all.
const N: u64 = 200;
/// Bank accounts.
const A: u64 = 2;
/// Months the receipts are spread over, per account: A × MONTHS period folders.
const MONTHS: u64 = 6;
/// Transactions per listing page (qonto.md §2.6: `per_page` is at most 100).
const PER_PAGE: u64 = 100;
/// The simple-upload cutoff of both the sink and the fake (onedrive-graph.md §3).
const FOUR_MIB: usize = 4 * 1024 * 1024;

/// Every request both fakes served, per host and route.
fn requests(qonto: &FakeQonto, graph: &FakeGraph) -> BTreeMap<String, u64> {
    let hosts = [
        ("qonto", qonto.api_requests()),
        ("qonto-download", qonto.download_requests()),
        ("qonto-mirror", qonto.mirror_requests()),
        ("graph", graph.requests()),
    ];
    hosts
        .into_iter()
        .flat_map(|(host, log)| {
            log.per_route
                .into_iter()
                .map(move |(route, n)| (format!("{host} {route}"), n))
        })
        .collect()
}

fn pinned(routes: &[(&str, u64)]) -> BTreeMap<String, u64> {
    routes.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect()
}

/// N receipts over A accounts, each account's spread over MONTHS months. Sizes vary
/// from 1 KB to 64 KB; the first receipt is exactly 4 MiB, the largest file that still
/// goes up in one `PUT`.
fn seed(qonto: &FakeQonto) {
    let per_account = N / A;
    for a in 0..A {
        let account = qonto.add_account(&format!("Account {a}"));
        for i in 0..per_account {
            let month = 1 + (i % MONTHS) as u32;
            let day = 1 + (i / MONTHS) as u32;
            let at = Utc
                .with_ymd_and_hms(2025, month, day, 12, 0, 0)
                .single()
                .unwrap();
            let tx = qonto.add_transaction(
                &account.id,
                NewTransaction::debit(100 + i as i64, &format!("Shop {i}")).emitted_at(at),
            );
            let size = if a == 0 && i == 0 {
                FOUR_MIB
            } else {
                1_000 + (i as usize * 7_919) % 64_000
            };
            let bytes: Vec<u8> = (0..size).map(|j| (j as u64 ^ i ^ a) as u8).collect();
            qonto.add_attachment(&tx, &format!("receipt-{i}.pdf"), "application/pdf", bytes);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_and_the_quiet_days_after_it_stay_within_budget() {
    let qonto = FakeQonto::start().await.unwrap();
    let graph = FakeGraph::start().await.unwrap();
    seed(&qonto);
    let source = qonto.source_builder().build().unwrap();
    let sink = OneDriveSink::builder(Arc::new(StaticToken::new("token")))
        .with_base_url(graph.base_url())
        .with_retry(RetryConfig::fast())
        .build()
        .unwrap();
    let syncer = Syncer::new(
        Arc::new(source),
        Arc::new(sink),
        Arc::new(InMemoryStateStore::new()),
        SyncConfig::default().with_retry(RetryConfig::fast()),
    );

    // 1. The initial export.
    let report = syncer.run().await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.count("upload") as u64, N);
    let folders = A + A * MONTHS;
    let pages = A * N.div_ceil(A).div_ceil(PER_PAGE);
    let constant = 4;
    let export = requests(&qonto, &graph);
    assert_eq!(
        export,
        pinned(&[
            ("qonto GET /v2/organization", 1),
            ("qonto GET /v2/transactions", pages),
            ("qonto-download GET /s3/{id}", N),
            ("graph GET /special/approot", 1),
            ("graph GET /items/{id}/delta", 1),
            ("graph GET /drive", 1),
            ("graph POST /items/{id}/children", folders),
            ("graph PUT /items/{id}:/{path}:/content", N),
        ])
    );
    let total: u64 = export.values().sum();
    assert_eq!(total, N + N + folders + pages + constant);
    assert_eq!(total, 420);
    assert_eq!(qonto.credential_leaks(), 0);
    assert_eq!(graph.upload_auth_violations(), 0);
    let files = graph.files();
    assert_eq!(files.len() as u64, N);
    assert_eq!(files.values().map(|b| b.len()).max(), Some(FOUR_MIB));

    // 2. The next day, nothing new. The change feed still holds the export's own
    // A + F folders and N files (214 items): two delta pages of 200. Listing
    // restarts from each account's watermark: one page each.
    qonto.advance_clock(chrono::Duration::days(1));
    qonto.reset_requests();
    graph.reset_requests();
    let report = syncer.run().await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.count("upload"), 0);
    let next = requests(&qonto, &graph);
    assert_eq!(
        next,
        pinned(&[
            ("qonto GET /v2/organization", 1),
            ("qonto GET /v2/transactions", A),
            ("graph GET /items/{id}/delta", 2),
        ])
    );
    assert_eq!(next.values().sum::<u64>(), A + 3);

    // 3. Every quiet day after that: one page per account, the organisation, one
    // delta page with nothing in it.
    qonto.advance_clock(chrono::Duration::days(1));
    qonto.reset_requests();
    graph.reset_requests();
    let report = syncer.run().await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    let quiet = requests(&qonto, &graph);
    assert_eq!(
        quiet,
        pinned(&[
            ("qonto GET /v2/organization", 1),
            ("qonto GET /v2/transactions", A),
            ("graph GET /items/{id}/delta", 1),
        ])
    );
    assert_eq!(quiet.values().sum::<u64>(), A + 2);
}
