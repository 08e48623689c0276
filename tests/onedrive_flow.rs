//! Flows against the stateful fake Graph: folders, simple and session uploads, faults.
#![cfg(feature = "testkit")]

mod onedrive_support;

use bytes::Bytes;
use onedrive_support::*;
use receipt_sync::ErrorKind;
use receipt_sync::model::{Body, EntryKind};
use receipt_sync::sink::ArchiveSink;
use receipt_sync::testkit::fake_graph::{FakeGraph, Fault, FaultRule};

#[tokio::test]
async fn folders_and_small_files_land_where_expected() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = sink(&graph);
    let main = sink.create_folder(&path("Main 1234")).await.unwrap();
    assert_eq!(main.parent, None);
    assert!(main.is_folder());
    let month = sink
        .create_folder(&path("Main 1234/2026-11"))
        .await
        .unwrap();
    assert_eq!(month.parent.as_ref(), Some(&main.id));
    let again = sink
        .create_folder(&path("main 1234/2026-11"))
        .await
        .unwrap();
    assert_eq!(again.id, month.id, "create_folder is idempotent");
    let file = sink
        .write_file(
            &path("Main 1234/2026-11/a+b #1 %.pdf"),
            Body::from_bytes(&b"%PDF-1.7"[..]),
        )
        .await
        .unwrap();
    assert_eq!(file.kind, EntryKind::File { size: 8 });
    assert_eq!(file.parent.as_ref(), Some(&month.id));
    assert_eq!(file.name, "a+b #1 %.pdf");
    let stored = graph
        .file(&graph.app_path("Main 1234/2026-11/a+b #1 %.pdf"))
        .unwrap();
    assert_eq!(&stored[..], b"%PDF-1.7");
    let empty = sink
        .write_file(&path("Main 1234/empty.txt"), Body::from_bytes(Bytes::new()))
        .await
        .unwrap();
    assert_eq!(empty.kind, EntryKind::File { size: 0 });
    assert_eq!(
        graph
            .requests()
            .matching("POST /items/{id}:/{path}:/createUploadSession"),
        0
    );
    assert_eq!(graph.upload_auth_violations(), 0);
}

#[tokio::test]
async fn writes_never_overwrite_and_collide_case_insensitively() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = sink(&graph);
    sink.write_file(&path("Invoice.pdf"), Body::from_bytes(&b"first"[..]))
        .await
        .unwrap();
    let err = sink
        .write_file(&path("INVOICE.PDF"), Body::from_bytes(&b"second"[..]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(
        &graph.file(&graph.app_path("Invoice.pdf")).unwrap()[..],
        b"first"
    );
    let err = sink.create_folder(&path("invoice.pdf")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let err = sink.create_folder(&path("Nope/Child")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = sink
        .write_file(&path("Nope/f.pdf"), Body::from_bytes(&b"x"[..]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn invalid_names_and_long_paths_are_rejected() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = sink(&graph);
    for bad in ["a:b.pdf", "CON", "trailing.", "q?.pdf"] {
        let err = sink
            .write_file(&path(bad), Body::from_bytes(&b"x"[..]))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Rejected, "{bad}: {err}");
        let err = sink.create_folder(&path(bad)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Rejected, "{bad}: {err}");
    }
    let long = "x".repeat(200);
    sink.create_folder(&path(&long)).await.unwrap();
    let err = sink
        .write_file(
            &path(&format!("{long}/{long}.pdf")),
            Body::from_bytes(&b"x"[..]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(err.to_string().contains("pathistoolong"), "{err}");
    assert!(graph.files().is_empty());
}

#[tokio::test]
async fn a_large_file_resumes_after_a_dropped_fragment() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = small_fragment_sink(&graph);
    let data = pattern(3 * UNIT + 1234, 7);
    // The second fragment is lost on the way; the third is received but its answer is lost.
    graph.inject(FaultRule::new("PUT /upload/", Fault::Drop).after(1));
    graph.inject(FaultRule::new("PUT /upload/", Fault::DropAfter).after(2));
    let entry = sink
        .write_file(&path("big.pdf"), chunked(&data, 10_000))
        .await
        .unwrap();
    assert_eq!(
        entry.kind,
        EntryKind::File {
            size: data.len() as u64
        }
    );
    assert_eq!(
        &graph.file(&graph.app_path("big.pdf")).unwrap()[..],
        &data[..]
    );
    assert_eq!(graph.fault_log().len(), 2);
    assert!(
        graph.requests().matching("GET /upload/") >= 2,
        "{:?}",
        graph.requests()
    );
    assert_eq!(graph.upload_auth_violations(), 0);
    assert_eq!(graph.open_upload_sessions(), 0);
}

#[tokio::test]
async fn fragments_are_multiples_of_320_kib_after_a_partial_acceptance_and_5xx() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = builder(&graph.base_url())
        .with_simple_upload_cutoff(1024)
        .with_fragment_size(2 * UNIT as u64)
        .build()
        .unwrap();
    let data = pattern(5 * UNIT + 99, 3);
    // The service keeps 1000 bytes of the second fragment: every later fragment starts
    // mid-unit, and must still be a multiple of 320 KiB (the fake refuses any other).
    graph.inject(FaultRule::new("PUT /upload/", Fault::AcceptPartly(1000)).after(1));
    graph.inject(FaultRule::new("PUT /upload/", Fault::ServerError).after(2));
    graph.inject(FaultRule::new("PUT /upload/", Fault::Unavailable(Some(0))).after(3));
    sink.write_file(&path("five.bin"), chunked(&data, 64 * 1024))
        .await
        .unwrap();
    assert_eq!(
        &graph.file(&graph.app_path("five.bin")).unwrap()[..],
        &data[..]
    );
    assert_eq!(graph.fault_log().len(), 3);
}

#[tokio::test]
async fn an_expired_session_restarts_in_place_only_while_every_byte_is_held() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = small_fragment_sink(&graph);
    let data = pattern(2 * UNIT + 5, 1);
    // Expires on the first fragment: nothing was dropped yet, so the sink starts over.
    graph.inject(FaultRule::new("PUT /upload/", Fault::ExpireSession));
    sink.write_file(&path("a.bin"), chunked(&data, 50_000))
        .await
        .unwrap();
    assert_eq!(
        &graph.file(&graph.app_path("a.bin")).unwrap()[..],
        &data[..]
    );
    assert_eq!(
        graph
            .requests()
            .matching("POST /items/{id}:/{path}:/createUploadSession"),
        2
    );
    // Expires after a fragment was acknowledged: the caller must re-open the source.
    graph.inject(FaultRule::new("PUT /upload/", Fault::ExpireSession).after(1));
    let err = sink
        .write_file(&path("b.bin"), chunked(&data, 50_000))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(err.is_retryable());
    assert!(graph.file(&graph.app_path("b.bin")).is_none());
    sink.write_file(&path("b.bin"), chunked(&data, 50_000))
        .await
        .unwrap();
}

#[tokio::test]
async fn fragment_memory_is_bounded_by_one_fragment() {
    let graph = std::sync::Arc::new(FakeGraph::start().await.unwrap());
    let sink = small_fragment_sink(&graph);
    let total = 12 * UNIT + 17;
    let chunk = 16 * 1024;
    let max_ahead = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (g, m) = (graph.clone(), max_ahead.clone());
    let stream = futures::stream::unfold(0usize, move |sent| {
        let (g, m) = (g.clone(), m.clone());
        async move {
            if sent >= total {
                return None;
            }
            let n = chunk.min(total - sent);
            // Bytes read by the sink but not yet received by the service.
            let ahead = (sent + n) as u64 - g.session_bytes_received();
            m.fetch_max(ahead, std::sync::atomic::Ordering::SeqCst);
            Some((Ok(Bytes::from(pattern(n, sent as u8))), sent + n))
        }
    });
    let body = Body::new(total as u64, futures::StreamExt::boxed(stream));
    sink.write_file(&path("stream.bin"), body).await.unwrap();
    let ahead = max_ahead.load(std::sync::atomic::Ordering::SeqCst);
    println!("read-ahead peak: {ahead} bytes with {UNIT}-byte fragments and {chunk}-byte chunks");
    assert!(
        ahead <= (UNIT + chunk) as u64,
        "read {ahead} bytes ahead of the service"
    );
    assert!(ahead >= UNIT as u64, "the measure is meaningful: {ahead}");
}

#[tokio::test]
async fn upload_urls_never_get_the_bearer_and_the_fake_refuses_it() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = small_fragment_sink(&graph);
    sink.write_file(&path("x.bin"), chunked(&pattern(UNIT + 1, 0), 4096))
        .await
        .unwrap();
    assert_eq!(graph.upload_auth_violations(), 0);
    // The fake does refuse one, so the count above means something.
    let answer = reqwest::Client::new()
        .put(format!("{}/upload/s000001", graph.upload_server().url()))
        .bearer_auth("leak")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    assert_eq!(graph.upload_auth_violations(), 1);
}

#[tokio::test]
async fn corrupted_or_mis_sized_uploads_are_integrity_errors_and_leave_nothing() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = small_fragment_sink(&graph);
    graph.corrupt_next_upload();
    let err = sink
        .write_file(&path("c.pdf"), Body::from_bytes(&b"hello"[..]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    assert!(
        graph.file(&graph.app_path("c.pdf")).is_none(),
        "the bad item was deleted"
    );
    sink.write_file(&path("c.pdf"), Body::from_bytes(&b"hello"[..]))
        .await
        .unwrap();
    graph.corrupt_next_upload();
    let big = pattern(UNIT + 10, 9);
    let err = sink
        .write_file(&path("d.bin"), chunked(&big, 4096))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    assert!(graph.file(&graph.app_path("d.bin")).is_none());
    // A body shorter or longer than announced.
    for (announced, actual) in [
        (10u64, 5usize),
        (5, 10),
        (UNIT as u64 * 2, UNIT + 3),
        (UNIT as u64 + 3, UNIT * 2),
    ] {
        let data = pattern(actual, 1);
        let stream = futures::stream::iter([Ok(Bytes::from(data))]);
        let body = Body::new(announced, futures::StreamExt::boxed(stream));
        let err = sink.write_file(&path("short.bin"), body).await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Integrity,
            "{announced}/{actual}: {err}"
        );
        assert!(graph.file(&graph.app_path("short.bin")).is_none());
    }
    assert_eq!(graph.open_upload_sessions(), 0);
}
