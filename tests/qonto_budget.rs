//! The request budget of an initial export: 10,000 receipts over 3 accounts, counted
//! by the fake's per-route counters and pinned, so a regression (an extra request per
//! receipt, a page too many) fails here.

mod qonto_support;

use futures::{StreamExt, TryStreamExt};
use receipt_sync::model::Receipt;
use receipt_sync::source::qonto::QontoSource;
use receipt_sync::source::{ReceiptQuery, ReceiptSource, SourceEvent, Watermark};
use receipt_sync::testkit::fake_qonto::FakeQonto;
use std::time::{Duration, Instant};

const SPLIT: [usize; 3] = [3334, 3333, 3333];

async fn seeded() -> FakeQonto {
    let fake = FakeQonto::start().await.unwrap();
    for (i, count) in SPLIT.iter().enumerate() {
        let account = fake.add_account(&format!("Account {i}"));
        fake.add_receipts(&account.id, *count, 16);
    }
    fake
}

/// Lists every account from its watermark.
async fn list(
    source: &QontoSource,
    since: &[Option<Watermark>],
) -> (Vec<Receipt>, Vec<Option<Watermark>>) {
    let mut receipts: Vec<Receipt> = Vec::new();
    let mut watermarks = Vec::new();
    for (i, account) in source.accounts().await.unwrap().into_iter().enumerate() {
        let query = ReceiptQuery::all().since(since.get(i).cloned().flatten());
        let events: Vec<SourceEvent> = source
            .receipts(&account.id, &query)
            .try_collect()
            .await
            .unwrap();
        let mut last = None;
        for event in events {
            match event {
                SourceEvent::Receipt(r) => receipts.push(*r),
                SourceEvent::Checkpoint(w) => last = Some(w),
                _ => {}
            }
        }
        watermarks.push(last);
    }
    (receipts, watermarks)
}

/// Lists every account, then opens every receipt, 16 at a time.
/// Returns the receipts opened and the watermarks.
async fn export(source: &QontoSource) -> (usize, Vec<Option<Watermark>>) {
    let (receipts, watermarks) = list(source, &[]).await;
    let opened = futures::stream::iter(receipts.iter())
        .map(|r| async move { source.open(r).await?.collect("receipt").await })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert!(opened.iter().all(|b| b.len() == 16));
    (opened.len(), watermarks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_receipts_over_three_accounts() {
    let fake = seeded().await;

    // URLs used while fresh: one page per 100 transactions, one download per receipt.
    let source = fake.source_builder().build().unwrap();
    let started = Instant::now();
    let (opened, watermarks) = export(&source).await;
    assert_eq!(opened, 10_000);
    let fresh = started.elapsed();
    let api = fake.api_requests();
    let pages = api.matching("GET /v2/transactions");
    assert_eq!(api.matching("GET /v2/organization"), 1);
    assert_eq!(pages, 102, "34 pages for each account");
    assert_eq!(api.matching("GET /v2/attachments/{id}"), 0);
    assert_eq!(api.total(), 103);
    assert_eq!(fake.download_requests().total(), 10_000);
    assert_eq!(fake.credential_leaks(), 0);

    // A consumer slower than a URL's life: every URL is refreshed before use (one
    // request more per receipt, never a 403 round trip on top).
    fake.reset_requests();
    let slow = fake
        .source_builder()
        .with_url_max_age(Duration::ZERO)
        .build()
        .unwrap();
    let started = Instant::now();
    assert_eq!(export(&slow).await.0, 10_000);
    let stale = started.elapsed();
    let api = fake.api_requests();
    assert_eq!(api.matching("GET /v2/transactions"), 102);
    assert_eq!(api.matching("GET /v2/attachments/{id}"), 10_000);
    assert_eq!(api.total(), 10_103);
    assert_eq!(fake.download_requests().total(), 10_000);
    let stale_total = api.total() + fake.download_requests().total();

    // The next run, nothing new: one page per account, nothing else. Only what lies
    // in the 5-minute overlap before each watermark is listed again (the caller
    // dedupes; nothing is downloaded again).
    fake.reset_requests();
    let (again, next) = list(&source, &watermarks).await;
    assert!(again.len() < 500, "{} listed again", again.len());
    assert_eq!(next, watermarks);
    // The fake stamps a change a second, so each account's last 5 minutes hold ~150
    // receipts: two pages. With changes spread over a day it would be one.
    assert_eq!(
        fake.api_requests().total(),
        7,
        "organization + 2 pages per account"
    );
    assert_eq!(fake.download_requests().total(), 0);
    println!(
        "10,000 receipts / 3 accounts: fresh URLs 103 API + 10,000 downloads = 10,103 requests \
         in {fresh:?}; stale URLs 10,103 API + 10,000 downloads = {stale_total} requests in \
         {stale:?}; a run with nothing new: 7 requests ({} receipts in the overlap listed again)",
        again.len()
    );
}
