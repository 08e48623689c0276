//! Every paged listing ends: a page link that goes round in a circle, a page that links to
//! itself, a next page that does not move forward, a page that repeats the one before, and a
//! server whose pages never end all stop the listing with a permanent `Malformed` error at
//! the link field, after a bounded number of requests. A listing is never cut short and
//! taken as complete, so a sync over a broken archive listing records no tombstone.
//!
//! Graph and Qonto are played by wiremock servers whose answers are computed from the page
//! asked for; the sync runs against the fake Qonto and the fake Graph.

#![cfg(feature = "testkit")]

mod onedrive_support;
mod qonto_support;

use receipt_sync::ErrorKind;
use receipt_sync::http::PagingLimits;
use receipt_sync::model::{ScanCursor, ScanUpdate};
use receipt_sync::sink::ArchiveSink;
use receipt_sync::source::qonto::PagingMode;
use receipt_sync::source::{ReceiptQuery, ReceiptSource};
use serde_json::{Value, json};
use std::future::Future;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

/// Fails the test instead of hanging when a listing does not end.
async fn ends<T>(listing: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), listing)
        .await
        .expect("the listing did not end")
}

/// The page a request asks for: its `p` query parameter, 1 when absent.
fn page_of(request: &Request, name: &str) -> u32 {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(1)
}

/// How many requests `server` received on `path`.
async fn hits(server: &wiremock::MockServer, path: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == path)
        .count()
}

fn assert_stopped_at(error: &receipt_sync::Error, field: &str) {
    assert_eq!(error.kind(), ErrorKind::Malformed, "{error}");
    assert!(!error.is_retryable(), "{error}");
    assert!(
        error.to_string().contains(&format!("at {field}:")),
        "{error}"
    );
}

mod graph {
    use super::onedrive_support::{D, Mocks, builder};
    use super::*;

    /// The app folder's listing path: delta or children.
    pub fn listing(kind: &str) -> String {
        format!("{D}/items/D!app/{kind}")
    }

    /// Pages of `per_page` new files each; page `p` links to page `next(p)`, or ends (a
    /// deltaLink) when `None`.
    pub fn pages(
        m: &Mocks,
        kind: &str,
        per_page: u32,
        next: impl Fn(u32) -> Option<u32> + Send + Sync + 'static,
    ) -> impl Fn(&Request) -> ResponseTemplate + Send + Sync + 'static {
        let link = format!("{}{}", m.api.uri(), listing(kind));
        move |request: &Request| {
            let p = page_of(request, "p");
            let value: Vec<Value> = (0..per_page)
                .map(|i| {
                    json!({"id": format!("D!f{p}-{i}"), "name": format!("f{p}-{i}.pdf"),
                       "size": 1, "file": {}, "parentReference": {"id": "D!app"}})
                })
                .collect();
            let mut body = json!({ "value": value });
            match next(p) {
                Some(n) => body["@odata.nextLink"] = json!(format!("{link}?p={n}")),
                None => body["@odata.deltaLink"] = json!(format!("{link}?token=end")),
            }
            ResponseTemplate::new(200).set_body_json(body)
        }
    }

    /// Page 1 leads to page 2, page 2 to page 3, and page 3 back to page 2.
    pub fn two_page_cycle(p: u32) -> Option<u32> {
        Some(if p == 3 { 2 } else { p + 1 })
    }

    /// Page 1 leads to page 2, which links to itself.
    pub fn stuck_on_two(_: u32) -> Option<u32> {
        Some(2)
    }

    pub async fn serve(
        m: &Mocks,
        kind: &str,
        per_page: u32,
        next: impl Fn(u32) -> Option<u32> + Send + Sync + 'static,
    ) {
        Mock::given(method("GET"))
            .and(path(listing(kind)))
            .respond_with(pages(m, kind, per_page, next))
            .mount(&m.api)
            .await;
    }

    #[tokio::test]
    async fn a_two_page_next_link_cycle_in_the_delta_feed_stops_at_once() {
        let m = Mocks::start().await;
        m.approot(1).await;
        serve(&m, "delta", 2, two_page_cycle).await;
        let error = ends(m.sink().scan(None)).await.unwrap_err();
        assert_stopped_at(&error, "@odata.nextLink");
        assert!(error.to_string().contains("leads back"), "{error}");
        // The first page, page 2, page 3: the link back to page 2 is not followed.
        assert_eq!(hits(&m.api, &listing("delta")).await, 3);
    }

    #[tokio::test]
    async fn a_cycle_in_the_changes_since_a_cursor_stops_at_once() {
        let m = Mocks::start().await;
        m.approot(1).await;
        // A full listing that ends at once, then changes that go round in a circle.
        serve(&m, "delta", 1, |p| match p {
            1 => None,
            p => two_page_cycle(p),
        })
        .await;
        let sink = m.sink();
        let ScanUpdate::Full {
            cursor: Some(cursor),
            ..
        } = sink.scan(None).await.unwrap()
        else {
            panic!("a full listing with a cursor")
        };
        // The deltaLink asks for page 1 again: rewrite it to start at page 2 instead.
        let cursor = ScanCursor::new(cursor.expose().replace("token=end", "p=2"));
        let error = ends(sink.scan(Some(&cursor))).await.unwrap_err();
        assert_stopped_at(&error, "@odata.nextLink");
        assert_eq!(hits(&m.api, &listing("delta")).await, 1 + 2);
    }

    #[tokio::test]
    async fn a_delta_page_that_links_to_itself_stops_at_once() {
        let m = Mocks::start().await;
        m.approot(1).await;
        serve(&m, "delta", 1, stuck_on_two).await;
        let error = ends(m.sink().scan(None)).await.unwrap_err();
        assert_stopped_at(&error, "@odata.nextLink");
        assert_eq!(hits(&m.api, &listing("delta")).await, 2);
    }

    #[tokio::test]
    async fn a_two_page_cycle_in_a_children_listing_is_an_error_not_a_long_listing() {
        let m = Mocks::start().await;
        m.approot(1).await;
        serve(&m, "children", 2, two_page_cycle).await;
        let sink = builder(&m.base()).with_delta(false).build().unwrap();
        let error = ends(sink.scan(None)).await.unwrap_err();
        assert_stopped_at(&error, "@odata.nextLink");
        assert_eq!(hits(&m.api, &listing("children")).await, 3);
    }

    #[tokio::test]
    async fn a_children_page_that_links_to_itself_is_an_error_not_the_end() {
        let m = Mocks::start().await;
        m.approot(1).await;
        serve(&m, "children", 1, stuck_on_two).await;
        let sink = builder(&m.base()).with_delta(false).build().unwrap();
        // Stopping at the page that links to itself would list 2 of the folder's files and
        // call that everything.
        let error = ends(sink.scan(None)).await.unwrap_err();
        assert_stopped_at(&error, "@odata.nextLink");
    }

    #[tokio::test]
    async fn a_feed_that_never_ends_stops_at_the_page_limit() {
        for kind in ["delta", "children"] {
            let m = Mocks::start().await;
            m.approot(1).await;
            serve(&m, kind, 1, |p| Some(p + 1)).await;
            let sink = builder(&m.base())
                .with_delta(kind == "delta")
                .with_paging_limits(PagingLimits::default().with_max_pages(20))
                .build()
                .unwrap();
            let error = ends(sink.scan(None)).await.unwrap_err();
            assert_stopped_at(&error, "@odata.nextLink");
            assert!(error.to_string().contains("more than 20 pages"), "{error}");
            assert_eq!(hits(&m.api, &listing(kind)).await, 20, "{kind}");
        }
    }

    #[tokio::test]
    async fn a_feed_past_the_item_limit_stops_there() {
        for kind in ["delta", "children"] {
            let m = Mocks::start().await;
            m.approot(1).await;
            serve(&m, kind, 3, |p| Some(p + 1)).await;
            let sink = builder(&m.base())
                .with_delta(kind == "delta")
                .with_paging_limits(PagingLimits::default().with_max_items(10))
                .build()
                .unwrap();
            let error = ends(sink.scan(None)).await.unwrap_err();
            assert!(error.to_string().contains("more than 10 items"), "{error}");
            // 3 + 3 + 3 + 3 = 12 > 10 on the fourth page.
            assert_eq!(hits(&m.api, &listing(kind)).await, 4, "{kind}");
        }
    }

    #[tokio::test]
    async fn listings_within_the_limits_are_read_to_their_end() {
        let m = Mocks::start().await;
        m.approot(1).await;
        serve(&m, "delta", 3, |p| (p < 4).then_some(p + 1)).await;
        let sink = builder(&m.base())
            .with_paging_limits(PagingLimits::default().with_max_pages(4).with_max_items(12))
            .build()
            .unwrap();
        let ScanUpdate::Full { entries, .. } = sink.scan(None).await.unwrap() else {
            panic!("a full listing")
        };
        assert_eq!(entries.len(), 12);
    }
}

mod qonto {
    use super::qonto_support::{ACCOUNT, builder, errors, events, receipts, strict_server};
    use super::*;

    /// The paging parameter a mode sends.
    fn param(mode: PagingMode) -> &'static str {
        match mode {
            PagingMode::CurrentPage => "current_page",
            _ => "page",
        }
    }

    /// A transaction with one attachment, unique to page `p` and index `i`.
    fn transaction(p: u32, i: u32, download: &str) -> Value {
        let id = format!("{p:08}-0000-4000-8000-{i:012}");
        let at = format!("2026-05-{:02}T08:00:00.000Z", 1 + (p % 28));
        json!({
            "id": id, "transaction_id": format!("tx-{p}-{i}"),
            "amount": 1.0, "amount_cents": 100, "currency": "EUR", "side": "debit",
            "operation_type": "card", "status": "completed", "label": format!("Shop {p}"),
            "settled_at": at, "emitted_at": at, "updated_at": at,
            "bank_account_id": ACCOUNT, "attachment_ids": [format!("att-{p}-{i}")],
            "attachments": [{
                "id": format!("att-{p}-{i}"), "created_at": at, "file_name": "r.pdf",
                "file_size": "3", "file_content_type": "application/pdf",
                "url": format!("{download}/r/{p}/{i}.pdf")
            }]
        })
    }

    /// Transactions pages: the page asked for with `mode`'s parameter, its items from
    /// `items(p)` (page numbers), and `meta.next_page` from `next(p)`.
    async fn serve(
        server: &wiremock::MockServer,
        mode: PagingMode,
        echo: bool,
        items: impl Fn(u32) -> u32 + Send + Sync + 'static,
        next: impl Fn(u32) -> Option<u32> + Send + Sync + 'static,
    ) {
        let download = server.uri();
        Mock::given(method("GET"))
            .and(path("/v2/transactions"))
            .respond_with(move |request: &Request| {
                let p = page_of(request, param(mode));
                let content = items(p);
                let list: Vec<Value> = (0..2).map(|i| transaction(content, i, &download)).collect();
                let mut meta = json!({ "next_page": next(p), "per_page": 100 });
                if echo {
                    meta["current_page"] = json!(p);
                }
                ResponseTemplate::new(200)
                    .set_body_json(json!({"transactions": list, "meta": meta}))
            })
            .mount(server)
            .await;
    }

    const MODES: [PagingMode; 2] = [PagingMode::Page, PagingMode::CurrentPage];

    #[tokio::test]
    async fn a_next_page_that_repeats_is_an_error_not_a_loop() {
        for mode in MODES {
            for (name, next) in [("same", 2), ("back", 1)] {
                let server = strict_server().await;
                serve(
                    &server,
                    mode,
                    true,
                    |p| p,
                    move |p| Some(if p == 1 { 2 } else { next }),
                )
                .await;
                let source = builder(&server).with_paging(mode).build().unwrap();
                let events = ends(events(&source, ACCOUNT, &ReceiptQuery::all())).await;
                let errors = errors(&events);
                assert_eq!(errors.len(), 1, "{mode:?} {name}: {errors:?}");
                assert_stopped_at(errors[0], "meta.next_page");
                assert_eq!(receipts(&events).len(), 4, "{mode:?} {name}");
                assert_eq!(
                    hits(&server, "/v2/transactions").await,
                    2,
                    "{mode:?} {name}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_server_that_serves_the_first_page_again_and_again_is_caught_on_the_second() {
        // It ignores the paging parameter and does not echo `meta.current_page`, so the
        // pager cannot tell, yet its `meta.next_page` runs on forever.
        for mode in MODES {
            let server = strict_server().await;
            serve(&server, mode, false, |_| 1, |p| Some(p + 1)).await;
            let source = builder(&server).with_paging(mode).build().unwrap();
            let events = ends(events(&source, ACCOUNT, &ReceiptQuery::all())).await;
            let errors = errors(&events);
            assert_eq!(errors.len(), 1, "{mode:?}: {errors:?}");
            assert_stopped_at(errors[0], "meta.next_page");
            assert!(
                errors[0].to_string().contains("repeats page 1"),
                "{}",
                errors[0]
            );
            assert_eq!(hits(&server, "/v2/transactions").await, 2, "{mode:?}");
        }
    }

    #[tokio::test]
    async fn a_pager_that_never_ends_stops_at_the_page_limit() {
        for mode in MODES {
            let server = strict_server().await;
            serve(&server, mode, true, |p| p, |p| Some(p + 1)).await;
            let source = builder(&server)
                .with_paging(mode)
                .with_paging_limits(PagingLimits::default().with_max_pages(25))
                .build()
                .unwrap();
            let events = ends(events(&source, ACCOUNT, &ReceiptQuery::all())).await;
            let errors = errors(&events);
            assert_eq!(errors.len(), 1, "{mode:?}: {errors:?}");
            assert_stopped_at(errors[0], "meta.next_page");
            assert!(errors[0].to_string().contains("more than 25 pages"));
            assert_eq!(receipts(&events).len(), 50, "{mode:?}");
            assert_eq!(hits(&server, "/v2/transactions").await, 25, "{mode:?}");
        }
    }

    #[tokio::test]
    async fn a_listing_past_the_item_limit_stops_there() {
        let server = strict_server().await;
        serve(&server, PagingMode::Page, true, |p| p, |p| Some(p + 1)).await;
        let source = builder(&server)
            .with_paging(PagingMode::Page)
            .with_paging_limits(PagingLimits::default().with_max_items(7))
            .build()
            .unwrap();
        let events = ends(events(&source, ACCOUNT, &ReceiptQuery::all())).await;
        let errors = errors(&events);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].to_string().contains("more than 7 items"));
        assert_eq!(hits(&server, "/v2/transactions").await, 4);
    }

    #[tokio::test]
    async fn the_bank_account_pager_has_the_same_limits() {
        let server = strict_server().await;
        // An organisation whose account lacks an id makes the source list the accounts.
        Mock::given(method("GET"))
            .and(path("/v2/organization"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"organization": {
                "slug": "org", "bank_accounts": [{"iban": "FR7616958000010123456789037",
                "name": "Main", "currency": "EUR"}]}})),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v2/bank_accounts"))
            .respond_with(|request: &Request| {
                let p = page_of(request, "page");
                ResponseTemplate::new(200).set_body_json(json!({
                    "bank_accounts": [{"id": format!("acc-{p}"), "iban": format!("FR76{p:023}")}],
                    "meta": {"current_page": p, "next_page": p + 1}
                }))
            })
            .mount(&server)
            .await;
        let source = builder(&server)
            .with_paging(PagingMode::Page)
            .with_paging_limits(PagingLimits::default().with_max_pages(30))
            .build()
            .unwrap();
        let error = ends(source.accounts()).await.unwrap_err();
        assert_stopped_at(&error, "meta.next_page");
        assert_eq!(hits(&server, "/v2/bank_accounts").await, 30);
    }
}

mod sync {
    use super::*;
    use chrono::{TimeZone, Utc};
    use receipt_sync::auth::StaticToken;
    use receipt_sync::http::RetryConfig;
    use receipt_sync::sink::OneDriveSink;
    use receipt_sync::state::InMemoryStateStore;
    use receipt_sync::sync::{SyncConfig, Syncer};
    use receipt_sync::testkit::fake_graph::{FakeGraph, FakeGraphConfig, PageLinks};
    use receipt_sync::testkit::fake_qonto::{FakeQonto, NewTransaction};
    use std::sync::Arc;

    /// Two accounts, three receipts each, every listing page one item long.
    async fn archive(use_delta: bool) -> (FakeQonto, FakeGraph, Syncer, Arc<InMemoryStateStore>) {
        let qonto = FakeQonto::start().await.unwrap();
        for a in 0..2 {
            let account = qonto.add_account(&format!("Account {a}"));
            for i in 0..3 {
                let at = Utc
                    .with_ymd_and_hms(2025, 3, 1 + i, 12, 0, 0)
                    .single()
                    .unwrap();
                let tx = qonto.add_transaction(
                    &account.id,
                    NewTransaction::debit(100 + i64::from(i), &format!("Shop {a}{i}"))
                        .emitted_at(at),
                );
                qonto.add_attachment(&tx, "r.pdf", "application/pdf", vec![a; 10 + i as usize]);
            }
        }
        let graph = FakeGraph::start_with(FakeGraphConfig::default().with_page_sizes(1, 1, 1))
            .await
            .unwrap();
        let sink = OneDriveSink::builder(Arc::new(StaticToken::new("token")))
            .with_base_url(graph.base_url())
            .with_retry(RetryConfig::fast())
            .with_delta(use_delta)
            .build()
            .unwrap();
        let state = Arc::new(InMemoryStateStore::new());
        let syncer = Syncer::new(
            Arc::new(qonto.source_builder().build().unwrap()),
            Arc::new(sink),
            state.clone(),
            SyncConfig::default().with_retry(RetryConfig::fast()),
        );
        (qonto, graph, syncer, state)
    }

    /// A first sync archives everything; a second one over a broken listing stops and says
    /// why, records no tombstone and touches nothing; once the listing is whole again, a third one has
    /// nothing to do.
    async fn a_broken_listing_tombstones_nothing(use_delta: bool, links: PageLinks) {
        let (_qonto, graph, syncer, state) = archive(use_delta).await;
        let first = syncer.run().await.unwrap();
        assert!(first.is_complete(), "{first:?}");
        assert_eq!(first.count("upload"), 6);
        let files = graph.files();
        let exported = state.snapshot().unwrap().exported.len();
        assert_eq!(exported, 6);

        if use_delta {
            // The next scan is a full enumeration of the feed.
            graph.require_resync();
        }
        graph.set_page_links(links);
        graph.reset_requests();
        let report = ends(syncer.run()).await.unwrap();
        let after = state.snapshot().unwrap();
        assert!(after.tombstones.is_empty(), "{:?}", after.tombstones);
        assert_eq!(after.exported.len(), exported);
        assert_eq!(graph.files(), files);
        assert!(!report.is_complete(), "{report:?}");
        assert_eq!(report.count("upload"), 0, "{report:?}");
        let error = report
            .stopped
            .as_ref()
            .expect("the run says why it stopped");
        assert_stopped_at(error, "@odata.nextLink");
        // Caught when the first link comes back: about one request per item listed.
        let requests: u64 = graph.requests().per_route.values().sum();
        assert!(requests < 40, "{requests} requests");

        graph.set_page_links(PageLinks::Forward);
        let third = syncer.run().await.unwrap();
        assert!(third.is_complete(), "{third:?}");
        assert_eq!(third.count("upload"), 0, "{third:?}");
        assert!(state.snapshot().unwrap().tombstones.is_empty());
        assert_eq!(graph.files(), files);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_folder_walk_stuck_on_its_first_page_tombstones_nothing() {
        a_broken_listing_tombstones_nothing(false, PageLinks::Stuck).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_folder_walk_that_goes_round_in_a_circle_tombstones_nothing() {
        a_broken_listing_tombstones_nothing(false, PageLinks::BackToFirst).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_delta_enumeration_that_goes_round_in_a_circle_tombstones_nothing() {
        a_broken_listing_tombstones_nothing(true, PageLinks::BackToFirst).await;
    }
}

mod session {
    use super::onedrive_support::{
        D, Mocks, UNIT, builder, chunked, path as archive_path, pattern,
    };
    use super::*;

    #[tokio::test]
    async fn an_upload_session_that_creeps_forward_a_byte_at_a_time_gives_up() {
        let m = Mocks::start().await;
        m.approot(1).await;
        Mock::given(method("POST"))
            .and(path(format!(
                "{D}/items/D!app:/big.bin:/createUploadSession"
            )))
            .respond_with(m.json(200, "upload_session"))
            .expect(1)
            .mount(&m.api)
            .await;
        // Each fragment is acknowledged one byte further than the last one started.
        Mock::given(method("PUT"))
            .and(path("/rup/d/session-1"))
            .respond_with(|request: &Request| {
                let start: u64 = request
                    .headers
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                ResponseTemplate::new(202)
                    .set_body_json(json!({"nextExpectedRanges": [format!("{}-", start + 1)]}))
            })
            .mount(&m.upload)
            .await;
        Mock::given(method("DELETE"))
            .and(path("/rup/d/session-1"))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&m.upload)
            .await;
        let sink = builder(&m.base())
            .with_simple_upload_cutoff(1000)
            .with_fragment_size(UNIT as u64)
            .build()
            .unwrap();
        let data = pattern(2 * UNIT, 7);
        let error = ends(sink.write_file(&archive_path("big.bin"), chunked(&data, 65_536)))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Malformed, "{error}");
        // Bounded by the retry policy's attempts (6), not by the file's size in bytes.
        let puts = hits(&m.upload, "/rup/d/session-1").await - 1;
        assert!(puts <= 7, "{puts} fragments sent");
    }
}
