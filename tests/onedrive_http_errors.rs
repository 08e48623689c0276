//! Error paths against wiremock fixtures: throttling, 5xx, 401, 403, 409, 410 (see
//! onedrive_http.rs), 416, 404 on a session, 507, invalid names, hash mismatches, links to
//! other hosts. Every server has a catch-all that fails on an unexpected request.

mod onedrive_support;

use onedrive_support::*;
use receipt_sync::http::RetryConfig;
use receipt_sync::model::{Body, ScanCursor};
use receipt_sync::sink::ArchiveSink;
use receipt_sync::sink::onedrive::OneDriveSink;
use receipt_sync::{Error, ErrorKind};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use wiremock::matchers::{body_bytes, header, method, path as url_path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn put_content(name: &str) -> wiremock::MockBuilder {
    Mock::given(method("PUT")).and(url_path(format!("{D}/items/D!app:/{name}:/content")))
}

#[tokio::test]
async fn a_429_waits_its_retry_after_then_succeeds() {
    let m = Mocks::start().await;
    m.approot(1).await;
    let data = b"receipt".to_vec();
    put_content("r.pdf")
        .respond_with(m.json(429, "error_429").insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&m.api)
        .await;
    put_content("r.pdf")
        .and(body_bytes(data.clone()))
        .respond_with(ResponseTemplate::new(201).set_body_json(uploaded_item(&m, &data)))
        .expect(1)
        .mount(&m.api)
        .await;
    // Waited in full (the ceiling is above it), never cut short.
    let asked = Duration::from_secs(1);
    let sink = builder(&m.base())
        .with_retry(RetryConfig::fast().with_max_retry_after(Duration::from_secs(5)))
        .build()
        .unwrap();
    let started = Instant::now();
    sink.write_file(&path("r.pdf"), chunked(&data, 2))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= asked,
        "waited only {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_503_is_retried_with_backoff_and_gives_up_in_the_end() {
    let m = Mocks::start().await;
    Mock::given(method("GET"))
        .and(url_path(D))
        .respond_with(m.json(503, "error_503"))
        .up_to_n_times(2)
        .expect(2)
        .with_priority(1)
        .mount(&m.api)
        .await;
    Mock::given(method("GET"))
        .and(url_path(D))
        .respond_with(m.json(200, "drive"))
        .expect(1)
        .mount(&m.api)
        .await;
    assert!(m.sink().quota().await.unwrap().is_some());

    let m = Mocks::start().await;
    Mock::given(method("GET"))
        .and(url_path(D))
        .respond_with(m.json(503, "error_503").insert_header("retry-after", "0"))
        .expect(3)
        .mount(&m.api)
        .await;
    let sink = builder(&m.base())
        .with_retry(RetryConfig::fast().with_max_attempts(3))
        .build()
        .unwrap();
    let err = sink.quota().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_401_invalidates_the_token_and_retries_once() {
    let m = Mocks::start().await;
    Mock::given(method("GET"))
        .and(url_path(D))
        .and(header("authorization", "Bearer t1"))
        .respond_with(m.json(401, "error_401"))
        .expect(3)
        .mount(&m.api)
        .await;
    Mock::given(method("GET"))
        .and(url_path(D))
        .and(header("authorization", "Bearer t2"))
        .respond_with(m.json(200, "drive"))
        .expect(1)
        .mount(&m.api)
        .await;
    let refreshed = RotatingToken::new(vec!["t1", "t2"]);
    let sink = OneDriveSink::builder(refreshed.clone())
        .with_base_url(m.base())
        .build()
        .unwrap();
    sink.quota().await.unwrap();
    assert_eq!(refreshed.invalidated.load(Ordering::SeqCst), 1);

    let stuck = RotatingToken::new(vec!["t1"]);
    let sink = OneDriveSink::builder(stuck.clone())
        .with_base_url(m.base())
        .build()
        .unwrap();
    let err = sink.quota().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert_eq!(
        stuck.invalidated.load(Ordering::SeqCst),
        1,
        "once, then it gives up"
    );
    assert!(!err.to_string().contains("t1"));
}

#[tokio::test]
async fn the_appfolder_403_says_how_to_repair_consent() {
    let m = Mocks::start().await;
    Mock::given(method("GET"))
        .and(url_path(format!("{D}/special/approot")))
        .respond_with(m.json(403, "error_403_appfolder"))
        .expect(1)
        .mount(&m.api)
        .await;
    let err = m.sink().create_folder(&path("Main")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert!(err.stops_sync());
    let text = err.to_string();
    assert!(
        text.contains("Files.ReadWrite.AppFolder") && text.contains("granting Files.ReadWrite"),
        "{text}"
    );
}

#[tokio::test]
async fn a_taken_name_is_already_exists_and_never_overwritten() {
    let m = Mocks::start().await;
    m.approot(1).await;
    put_content("taken.pdf")
        .respond_with(m.json(409, "error_409_name"))
        .expect(1)
        .mount(&m.api)
        .await;
    let err = m
        .sink()
        .write_file(&path("taken.pdf"), Body::from_bytes(&b"x"[..]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
}

#[tokio::test]
async fn invalid_names_and_long_paths_are_rejected_for_good() {
    let m = Mocks::start().await;
    m.approot(1).await;
    put_content("a%3Ab.pdf")
        .respond_with(m.json(400, "error_400_invalid_name"))
        .expect(1)
        .mount(&m.api)
        .await;
    put_content("long.pdf")
        .respond_with(m.json(400, "error_400_path_too_long"))
        .expect(1)
        .mount(&m.api)
        .await;
    let sink = m.sink();
    let err = sink
        .write_file(&path("a:b.pdf"), Body::from_bytes(&b"x"[..]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(!err.is_retryable());
    let err = sink
        .write_file(&path("long.pdf"), Body::from_bytes(&b"x"[..]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(
        err.to_string().contains("pathistoolong"),
        "innererror spelled in lower case: {err}"
    );
}

#[tokio::test]
async fn a_full_drive_is_quota_exceeded_with_the_space_left() {
    let m = Mocks::start().await;
    m.approot(1).await;
    put_content("f.pdf")
        .respond_with(m.json(507, "error_507"))
        .expect(1)
        .mount(&m.api)
        .await;
    Mock::given(method("GET"))
        .and(url_path(D))
        .respond_with(m.json(200, "drive"))
        .expect(1)
        .mount(&m.api)
        .await;
    let err = m
        .sink()
        .write_file(&path("f.pdf"), Body::from_bytes(vec![0u8; 10]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            // The drive says 5,183,401,472 bytes are free yet refused 10: its figure is
            // contradicted, so nothing is taken as free and all 10 bytes are needed.
            Error::QuotaExceeded {
                needed: 10,
                remaining: 0
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_hash_mismatch_deletes_the_new_item_and_is_retryable() {
    let m = Mocks::start().await;
    m.approot(1).await;
    let mut item = uploaded_item(&m, b"something else");
    item["size"] = json!(3);
    put_content("h.pdf")
        .respond_with(ResponseTemplate::new(201).set_body_json(item))
        .expect(1)
        .mount(&m.api)
        .await;
    Mock::given(method("DELETE"))
        .and(url_path(format!("{D}/items/D!file-a")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&m.api)
        .await;
    let err = m
        .sink()
        .write_file(&path("h.pdf"), Body::from_bytes(&b"abc"[..]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    assert!(err.is_retryable());
}

/// Mounts `createUploadSession` for `name`, answered `times` times.
async fn session(m: &Mocks, name: &str, times: u64) {
    Mock::given(method("POST"))
        .and(url_path(format!(
            "{D}/items/D!app:/{name}:/createUploadSession"
        )))
        .respond_with(m.json(200, "upload_session"))
        .expect(times)
        .mount(&m.api)
        .await;
}

fn fragment(range: &str) -> wiremock::MockBuilder {
    Mock::given(method("PUT"))
        .and(url_path("/rup/d/session-1"))
        .and(header("content-range", range))
}

fn session_sink(m: &Mocks) -> OneDriveSink {
    builder(&m.base())
        .with_simple_upload_cutoff(1000)
        .with_fragment_size(UNIT as u64)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_416_asks_the_session_where_to_resume() {
    let m = Mocks::start().await;
    m.approot(1).await;
    session(&m, "s.bin", 1).await;
    let data = pattern(UNIT + 10, 1);
    let total = data.len();
    fragment(&format!("bytes 0-{}/{total}", UNIT - 1))
        .respond_with(m.json(416, "error_416"))
        .expect(1)
        .mount(&m.upload)
        .await;
    Mock::given(method("GET"))
        .and(url_path("/rup/d/session-1"))
        .respond_with(m.json(200, "fragment_accepted"))
        .expect(1)
        .mount(&m.upload)
        .await;
    fragment(&format!("bytes {UNIT}-{}/{total}", total - 1))
        .respond_with(ResponseTemplate::new(201).set_body_json(uploaded_item(&m, &data)))
        .expect(1)
        .mount(&m.upload)
        .await;
    session_sink(&m)
        .write_file(&path("s.bin"), chunked(&data, 4096))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_5xx_on_a_fragment_is_resumed_from_the_session_status() {
    let m = Mocks::start().await;
    m.approot(1).await;
    session(&m, "s.bin", 1).await;
    let data = pattern(UNIT + 10, 1);
    let total = data.len();
    let first = format!("bytes 0-{}/{total}", UNIT - 1);
    fragment(&first)
        .respond_with(m.json(500, "error_500"))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(2)
        .mount(&m.upload)
        .await;
    Mock::given(method("GET"))
        .and(url_path("/rup/d/session-1"))
        .respond_with(m.json(200, "upload_session"))
        .expect(1)
        .mount(&m.upload)
        .await;
    fragment(&first)
        .respond_with(m.json(202, "fragment_accepted"))
        .expect(1)
        .with_priority(3)
        .mount(&m.upload)
        .await;
    fragment(&format!("bytes {UNIT}-{}/{total}", total - 1))
        .respond_with(ResponseTemplate::new(201).set_body_json(uploaded_item(&m, &data)))
        .expect(1)
        .mount(&m.upload)
        .await;
    session_sink(&m)
        .write_file(&path("s.bin"), chunked(&data, 4096))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_404_on_the_session_restarts_or_hands_the_upload_back() {
    // On the first fragment: every byte is still held, so a new session starts over.
    let m = Mocks::start().await;
    m.approot(1).await;
    session(&m, "s.bin", 2).await;
    let data = pattern(UNIT + 10, 1);
    let total = data.len();
    let first = format!("bytes 0-{}/{total}", UNIT - 1);
    fragment(&first)
        .respond_with(m.json(404, "error_404_session"))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(2)
        .mount(&m.upload)
        .await;
    fragment(&first)
        .respond_with(m.json(202, "fragment_accepted"))
        .expect(1)
        .with_priority(3)
        .mount(&m.upload)
        .await;
    fragment(&format!("bytes {UNIT}-{}/{total}", total - 1))
        .respond_with(ResponseTemplate::new(201).set_body_json(uploaded_item(&m, &data)))
        .expect(1)
        .mount(&m.upload)
        .await;
    session_sink(&m)
        .write_file(&path("s.bin"), chunked(&data, 4096))
        .await
        .unwrap();

    // After an acknowledged fragment: the bytes are gone, the caller must start over.
    let m = Mocks::start().await;
    m.approot(1).await;
    session(&m, "s.bin", 1).await;
    fragment(&first)
        .respond_with(m.json(202, "fragment_accepted"))
        .expect(1)
        .mount(&m.upload)
        .await;
    fragment(&format!("bytes {UNIT}-{}/{total}", total - 1))
        .respond_with(m.json(404, "error_404_session"))
        .expect(1)
        .mount(&m.upload)
        .await;
    let err = session_sink(&m)
        .write_file(&path("s.bin"), chunked(&data, 4096))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(err.is_retryable());
    assert!(
        !err.to_string().contains("/rup/"),
        "no upload URL in errors: {err}"
    );
}

#[tokio::test]
async fn a_507_or_409_at_commit_cancels_the_session() {
    for (status, fixture) in [(507, "error_507"), (409, "error_409_name")] {
        let m = Mocks::start().await;
        m.approot(1).await;
        session(&m, "s.bin", 1).await;
        let data = pattern(UNIT + 10, 1);
        let total = data.len();
        fragment(&format!("bytes 0-{}/{total}", UNIT - 1))
            .respond_with(m.json(202, "fragment_accepted"))
            .expect(1)
            .mount(&m.upload)
            .await;
        fragment(&format!("bytes {UNIT}-{}/{total}", total - 1))
            .respond_with(m.json(status, fixture))
            .expect(1)
            .mount(&m.upload)
            .await;
        Mock::given(method("DELETE"))
            .and(url_path("/rup/d/session-1"))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&m.upload)
            .await;
        if status == 507 {
            Mock::given(method("GET"))
                .and(url_path(D))
                .respond_with(m.json(200, "drive"))
                .expect(1)
                .mount(&m.api)
                .await;
        }
        let err = session_sink(&m)
            .write_file(&path("s.bin"), chunked(&data, 4096))
            .await
            .unwrap_err();
        match status {
            507 => assert!(
                matches!(err, Error::QuotaExceeded { needed, remaining: 0 } if needed == total as u64),
                "{err}"
            ),
            _ => assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}"),
        }
    }
}

#[tokio::test]
async fn links_to_another_host_are_not_followed_with_the_token() {
    let m = Mocks::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let cursor = ScanCursor::new(
        json!({"v": 1, "root": "D!app", "link": format!("{}/v1.0/me/drive/items/D!app/delta?token=x", elsewhere.uri())})
            .to_string(),
    );
    let err = m.sink().scan(Some(&cursor)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed, "{err}");
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    // Nothing listens on port 9 of loopback (discard), so the connection is refused.
    let sink = builder("http://127.0.0.1:9/v1.0")
        .with_retry(RetryConfig::fast().with_max_attempts(2))
        .build()
        .unwrap();
    let err = sink.quota().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
}

/// A server that accepts connections and never answers: every request gives up with a
/// transient error after the idle timeout; nothing waits forever.
#[tokio::test]
async fn a_server_that_never_answers_times_out_as_a_transient_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let sink = builder(&format!("http://{address}/v1.0"))
        .with_retry(RetryConfig::none())
        .with_timeouts(
            Duration::from_millis(500),
            Duration::from_millis(200),
            Duration::from_secs(2),
        )
        .build()
        .unwrap();
    let started = Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(10), sink.quota())
        .await
        .expect("the request is bounded by its timeouts")
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    assert!(error.to_string().contains("timed out"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the idle timeout fired first"
    );
    held.abort();
}
