//! Quota, throttling, credentials, request budgets, sharing and seeded faults against the
//! stateful fake Graph.
#![cfg(feature = "testkit")]

mod onedrive_support;

use bytes::Bytes;
use futures::StreamExt;
use onedrive_support::*;
use receipt_sync::ErrorKind;
use receipt_sync::http::RetryConfig;
use receipt_sync::model::{Body, ScanUpdate};
use receipt_sync::sink::ArchiveSink;
use receipt_sync::sink::onedrive::{OneDriveSink, ShareKind};
use receipt_sync::testkit::fake_graph::{FakeGraph, Fault, FaultRule, RandomFaults};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn quota_is_reported_and_a_full_drive_is_quota_exceeded() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = small_fragment_sink(&graph);
    sink.write_file(&path("a.bin"), Body::from_bytes(vec![1u8; 1000]))
        .await
        .unwrap();
    graph.set_quota_total(10_000);
    let quota = sink.quota().await.unwrap().unwrap();
    assert_eq!(
        (quota.total, quota.used, quota.remaining),
        (10_000, 1000, 9000)
    );

    // A simple upload that does not fit.
    let err = sink
        .write_file(&path("b.bin"), Body::from_bytes(vec![2u8; 9001]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            receipt_sync::Error::QuotaExceeded {
                needed: 1,
                remaining: 9000
            }
        ),
        "{err}"
    );
    assert!(err.stops_sync());

    // A session refused up front (fileSize) leaves no session behind.
    let big = pattern(2 * UNIT, 4);
    let err = sink
        .write_file(&path("c.bin"), chunked(&big, 65_536))
        .await
        .unwrap_err();
    assert!(
        matches!(err, receipt_sync::Error::QuotaExceeded { needed, remaining } if needed + remaining == big.len() as u64),
        "{err}"
    );
    assert_eq!(graph.open_upload_sessions(), 0);

    // The drive fills up in the middle of a session: 507 at commit, nothing half-written.
    graph.set_quota_total(100 * 1024 * 1024);
    let g = Arc::new(graph);
    let filler = g.clone();
    let data = pattern(2 * UNIT + 1, 5);
    let chunks: Vec<Bytes> = data.chunks(UNIT).map(Bytes::copy_from_slice).collect();
    let stream = futures::stream::iter(chunks.into_iter().enumerate()).map(move |(i, c)| {
        if i == 1 {
            filler.set_quota_total(5000);
        }
        Ok(c)
    });
    let body = Body::new(data.len() as u64, stream.boxed());
    let err = sink.write_file(&path("d.bin"), body).await.unwrap_err();
    assert!(
        matches!(err, receipt_sync::Error::QuotaExceeded { needed, remaining: 4000 } if needed == data.len() as u64 - 4000),
        "{err}"
    );
    assert_eq!(g.open_upload_sessions(), 0);
    assert!(g.file(&g.app_path("d.bin")).is_none());
}

#[tokio::test]
async fn a_429_pauses_every_request_of_the_sink() {
    let graph = FakeGraph::start().await.unwrap();
    // `Retry-After: 1` is waited in full (the ceiling of `fast` is above it).
    let pause = Duration::from_secs(1);
    let sink = builder(&graph.base_url())
        .with_retry(RetryConfig::fast())
        .build()
        .unwrap();
    sink.create_folder(&path("F")).await.unwrap();
    graph.inject(FaultRule::new(
        "PUT /items/{id}:/{path}:/content",
        Fault::Throttle(Some(1)),
    ));
    graph.reset_requests();
    let first = {
        let sink = sink.clone();
        tokio::spawn(async move {
            sink.write_file(&path("F/one.pdf"), Body::from_bytes(&b"1"[..]))
                .await
        })
    };
    // Wait until the first upload has been throttled, then start a second one.
    while graph.fault_log().is_empty() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Leave the first task time to read the 429 (and set the pause).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let throttled_at = graph.arrivals("PUT")[0];
    sink.write_file(&path("F/two.pdf"), Body::from_bytes(&b"2"[..]))
        .await
        .unwrap();
    first.await.unwrap().unwrap();
    let puts = graph.arrivals("PUT");
    assert_eq!(
        puts.len(),
        3,
        "the throttled one, its retry, and the second upload"
    );
    for later in &puts[1..] {
        let waited = later.duration_since(throttled_at);
        assert!(
            waited >= pause - Duration::from_millis(20),
            "a request went out after {waited:?}"
        );
    }
}

#[tokio::test]
async fn a_refused_token_is_refreshed_once_then_unauthorized() {
    let graph = FakeGraph::start().await.unwrap();
    graph.set_accepted_tokens(&["fresh"]);
    let tokens = RotatingToken::new(vec!["stale", "fresh", "fresher"]);
    let sink = OneDriveSink::builder(tokens.clone())
        .with_base_url(graph.base_url())
        .with_retry(RetryConfig::fast())
        .build()
        .unwrap();
    sink.create_folder(&path("ok")).await.unwrap();
    assert_eq!(
        tokens.invalidated.load(std::sync::atomic::Ordering::SeqCst),
        1
    );

    let bad = RotatingToken::new(vec!["stale", "older"]);
    let sink = OneDriveSink::builder(bad.clone())
        .with_base_url(graph.base_url())
        .with_retry(RetryConfig::fast())
        .build()
        .unwrap();
    let err = sink.quota().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert_eq!(bad.invalidated.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// The request budget of an initial export and of a scan with nothing new.
#[tokio::test]
async fn request_budget_of_an_export_and_of_an_idle_scan() {
    const FILES: usize = 1000;
    const FOLDERS: [&str; 4] = ["Main", "Main/2026-10", "Main/2026-11", "Main/2026-12"];
    let graph = FakeGraph::start().await.unwrap();
    let sink = sink(&graph);
    let ScanUpdate::Full { entries, cursor } = sink.scan(None).await.unwrap() else {
        panic!("a first scan is full");
    };
    assert!(entries.is_empty());
    for folder in FOLDERS {
        sink.create_folder(&path(folder)).await.unwrap();
    }
    let uploads = futures::stream::iter(0..FILES).map(|i| {
        let sink = sink.clone();
        async move {
            let folder = FOLDERS[1 + i % 3];
            let p = path(&format!("{folder}/receipt {i:04}.pdf"));
            sink.write_file(&p, Body::from_bytes(format!("receipt {i}").into_bytes()))
                .await
        }
    });
    let results: Vec<_> = uploads.buffer_unordered(8).collect().await;
    assert!(results.iter().all(Result::is_ok));
    let log = graph.requests();
    println!(
        "initial export of {FILES} files into {} folders: {log:#?}",
        FOLDERS.len()
    );
    assert_eq!(
        log.matching("PUT /items/{id}:/{path}:/content"),
        FILES as u64
    );
    assert_eq!(
        log.matching("POST /items/{id}/children"),
        FOLDERS.len() as u64
    );
    // The constant: resolving the app folder and the first delta page.
    assert_eq!(log.total(), (FILES + FOLDERS.len() + 2) as u64);

    // A new process, a scan with the stored cursor and nothing new: one request.
    let cursor = match sink.scan(cursor.as_ref()).await.unwrap() {
        ScanUpdate::Changes { cursor, .. } => cursor,
        other => panic!("{other:?}"),
    };
    let fresh = onedrive_support::sink(&graph);
    graph.reset_requests();
    let ScanUpdate::Changes { changes, .. } = fresh.scan(Some(&cursor)).await.unwrap() else {
        panic!("changes expected");
    };
    assert!(changes.is_empty());
    assert_eq!(graph.requests().total(), 1, "{:?}", graph.requests());
}

#[tokio::test]
async fn folders_are_shared_by_link_and_invitation() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = sink(&graph);
    let folder = sink.create_folder(&path("Main")).await.unwrap();
    let link = sink.share_link(&folder.id).await.unwrap();
    let ShareKind::Link {
        link_type,
        scope,
        url,
    } = &link.kind
    else {
        panic!("{link:?}")
    };
    assert_eq!((link_type.as_str(), scope.as_str()), ("view", "anonymous"));
    assert!(
        url.as_ref()
            .is_some_and(|u| u.expose().starts_with("https://"))
    );
    assert!(
        !format!("{link:?}").contains("https://"),
        "the link is a secret"
    );
    let again = sink.share_link(&folder.id).await.unwrap();
    assert_eq!(again.id, link.id);
    let invited = sink
        .invite(&folder.id, "accountant@example.com")
        .await
        .unwrap();
    assert_eq!(invited.len(), 1);
    assert_eq!(invited[0].roles, ["read"]);
    assert_eq!(
        sink.shares(&folder.id).await.unwrap().len(),
        3,
        "owner, link, invitation"
    );
    sink.remove_share(&folder.id, &link.id).await.unwrap();
    let left = sink.shares(&folder.id).await.unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().any(|s| matches!(&s.kind, ShareKind::Person { email: Some(e), .. } if e == "accountant@example.com")));
    let err = sink.remove_share(&folder.id, &link.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = sink.invite(&folder.id, "not-an-address").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
}

#[tokio::test]
async fn the_sharepoint_style_prefix_addresses_the_same_drive() {
    let graph = FakeGraph::start().await.unwrap();
    let api = graph.api_server().url();
    let sink = builder(&format!("{api}/_api/v2.0"))
        .with_drive_id(graph.drive_id())
        .build()
        .unwrap();
    sink.create_folder(&path("Main")).await.unwrap();
    sink.write_file(&path("Main/x.pdf"), Body::from_bytes(&b"x"[..]))
        .await
        .unwrap();
    assert!(graph.file(&graph.app_path("Main/x.pdf")).is_some());
    let ScanUpdate::Full { entries, .. } = sink.scan(None).await.unwrap() else {
        panic!()
    };
    assert_eq!(entries.len(), 2);
}

#[tokio::test]
async fn a_folder_root_is_created_and_its_prefix_counted() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = builder(&graph.base_url())
        .with_root(receipt_sync::sink::onedrive::OneDriveRoot::Folder(
            "Documents/Receipts".into(),
        ))
        .build()
        .unwrap();
    assert_eq!(
        sink.capabilities().root_prefix_len,
        "Documents/Receipts/".len()
    );
    sink.write_file(&path("x.pdf"), Body::from_bytes(&b"x"[..]))
        .await
        .unwrap();
    assert!(graph.file("Documents/Receipts/x.pdf").is_some());
    assert_eq!(
        graph.id_of("Apps"),
        None,
        "the app folder was never touched"
    );
    let app = onedrive_support::sink(&graph);
    assert_eq!(
        app.capabilities().root_prefix_len,
        "Apps/receipt-sync/".len()
    );
}

/// Random faults from a seed: every file still ends up stored exactly once, intact.
#[tokio::test]
async fn seeded_random_faults_converge() {
    for seed in [1u64, 2, 3] {
        let graph = FakeGraph::start().await.unwrap();
        let sink = builder(&graph.base_url())
            .with_simple_upload_cutoff(64 * 1024)
            .with_fragment_size(UNIT as u64)
            .with_retry(RetryConfig::fast().with_max_attempts(4))
            .build()
            .unwrap();
        sink.create_folder(&path("F")).await.unwrap();
        graph.set_random_faults(Some(RandomFaults {
            seed,
            probability: 0.25,
            kinds: vec![
                Fault::Throttle(Some(0)),
                Fault::Unavailable(None),
                Fault::ServerError,
                Fault::Drop,
                Fault::DropAfter,
                Fault::Truncate,
            ],
            route_prefix: "PUT".into(),
        }));
        let mut expected = Vec::new();
        for i in 0..12usize {
            let size = if i % 3 == 0 { UNIT * 2 + i } else { 100 + i };
            let data = pattern(size, i as u8);
            let p = path(&format!("F/{i}.bin"));
            let mut attempts = 0;
            loop {
                attempts += 1;
                match sink.write_file(&p, chunked(&data, 30_000)).await {
                    Ok(_) => break,
                    // Stored, but the answer was lost: the caller adopts it (same size).
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => break,
                    Err(e) if e.is_retryable() && attempts < 20 => continue,
                    Err(e) => panic!("seed {seed}, file {i}: {e}"),
                }
            }
            expected.push((graph.app_path(&format!("F/{i}.bin")), data));
        }
        let files = graph.files();
        assert_eq!(
            files.len(),
            expected.len(),
            "seed {seed}: {:?}",
            files.keys()
        );
        for (p, data) in expected {
            assert_eq!(&files[&p][..], &data[..], "seed {seed}: {p}");
        }
        assert!(!graph.fault_log().is_empty());
        assert_eq!(graph.upload_auth_violations(), 0);
    }
}

#[tokio::test]
async fn cut_answers_and_dropped_connections_are_retried() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = sink(&graph);
    graph.inject(FaultRule::new("GET /drive", Fault::Truncate));
    graph.inject(FaultRule::new("GET /items/{id}/delta", Fault::Drop));
    graph.inject(FaultRule::new("GET /items/{id}/delta", Fault::Truncate).after(1));
    assert!(sink.quota().await.unwrap().is_some());
    assert!(matches!(
        sink.scan(None).await.unwrap(),
        ScanUpdate::Full { .. }
    ));
    let log = graph.requests();
    assert_eq!(log.matching("GET /drive"), 2, "{log:?}");
    assert_eq!(log.matching("GET /items/{id}/delta"), 3, "{log:?}");
    assert_eq!(graph.fault_log().len(), 3);
}
