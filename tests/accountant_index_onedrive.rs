//! The accountant's index over the fakes: Qonto's listing gives the receipt-less
//! transactions, OneDrive gets the index in one request, and the request counts of a
//! quiet day and of a day with one new receipt.
#![cfg(feature = "testkit")]

use chrono::{TimeZone, Utc};
use receipt_sync::auth::StaticToken;
use receipt_sync::http::RetryConfig;
use receipt_sync::index::{IndexSettings, Separator};
use receipt_sync::sink::OneDriveSink;
use receipt_sync::state::InMemoryStateStore;
use receipt_sync::sync::{SyncConfig, Syncer};
use receipt_sync::testkit::fake_graph::FakeGraph;
use receipt_sync::testkit::fake_qonto::{FakeQonto, NewTransaction};
use std::sync::Arc;

fn index_of(graph: &FakeGraph) -> String {
    let (_, bytes) = graph
        .files()
        .into_iter()
        .find(|(p, _)| p.ends_with("/2026-03/index.csv"))
        .expect("the March index");
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn a_new_receipt_costs_its_download_its_upload_and_one_index_write() {
    let qonto = FakeQonto::start().await.unwrap();
    let graph = FakeGraph::start().await.unwrap();
    let account = qonto.add_account("Main").id;
    let at = |d| Utc.with_ymd_and_hms(2026, 3, d, 10, 0, 0).single().unwrap();
    let paid = qonto.add_transaction(
        &account,
        NewTransaction::debit(1250, "Office").emitted_at(at(4)),
    );
    qonto.add_attachment(
        &paid,
        "office.pdf",
        "application/pdf",
        b"%PDF-office".to_vec(),
    );
    let missing = qonto.add_transaction(
        &account,
        NewTransaction::debit(4200, "Garage").emitted_at(at(9)),
    );

    let source = Arc::new(qonto.source_builder().build().unwrap());
    let sink = Arc::new(
        OneDriveSink::builder(Arc::new(StaticToken::new("t")))
            .with_base_url(graph.base_url())
            .with_retry(RetryConfig::fast())
            .build()
            .unwrap(),
    );
    let config = SyncConfig::default()
        .with_start_date(chrono::NaiveDate::from_ymd_opt(2026, 1, 1))
        .with_retry(RetryConfig::fast())
        .with_index(IndexSettings::with_separator(Separator::Comma));
    let syncer = Syncer::new(source, sink, Arc::new(InMemoryStateStore::new()), config);

    let first = syncer.run().await.unwrap();
    assert!(first.is_complete(), "{first:?}");
    assert_eq!(first.count("index"), 1);
    let text = index_of(&graph);
    assert!(text.contains("Garage,-42.00,EUR,,,,completed,,,"), "{text}");

    // A quiet day: the same requests as without indexes, none for an index.
    graph.reset_requests();
    qonto.reset_requests();
    let quiet = syncer.run().await.unwrap();
    assert_eq!(quiet.count("index"), 0);
    let quiet_graph = graph.requests();
    let quiet_qonto = qonto.api_requests().total();
    assert!(
        quiet_graph
            .per_route
            .keys()
            .all(|r| !r.ends_with("/content")),
        "{quiet_graph:?}"
    );

    // The garage's invoice arrives.
    qonto.add_attachment(
        &missing,
        "garage.pdf",
        "application/pdf",
        b"%PDF-garage".to_vec(),
    );
    graph.reset_requests();
    qonto.reset_requests();
    let day = syncer.run().await.unwrap();
    assert!(day.is_complete(), "{day:?}");
    assert_eq!((day.count("upload"), day.count("index")), (1, 1));
    let log = graph.requests();
    let writes: u64 = log
        .per_route
        .iter()
        .filter(|(r, _)| r.ends_with("/content"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        writes, 2,
        "the receipt's upload and one index write: {log:?}"
    );
    let text = index_of(&graph);
    let garage = text.lines().find(|l| l.contains("Garage")).unwrap();
    assert!(
        garage.ends_with(&format!(".pdf,{missing}\r"))
            || garage.ends_with(&format!(".pdf,{missing}")),
        "{garage}"
    );
    println!(
        "quiet day: {} Graph requests, {} Qonto; a new receipt: {} Graph, {} Qonto ({:?})",
        quiet_graph.total(),
        quiet_qonto,
        log.total(),
        qonto.api_requests().total(),
        log.per_route
    );
}
