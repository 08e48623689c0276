//! Clients given to the OneDrive sink by the caller keep the request timeout of
//! `with_timeouts`: a stalled Graph API or upload host cannot hang the sync.

mod onedrive_support;

use onedrive_support::*;
use receipt_sync::ErrorKind;
use receipt_sync::http::RetryConfig;
use receipt_sync::sink::ArchiveSink;
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path as url_path};
use wiremock::{Mock, ResponseTemplate};

/// Bounds the whole call, so that a missing timeout fails the test instead of hanging it.
async fn within_seconds<T>(seconds: u64, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(seconds), call)
        .await
        .expect("the request timeout must end a stalled request")
}

/// A client with no timeout of its own: only the sink can bound its requests.
fn untimed_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .build()
        .unwrap()
}

fn short_timeouts() -> (Duration, Duration, Duration) {
    (
        Duration::from_secs(1),
        Duration::from_secs(1),
        Duration::from_millis(300),
    )
}

#[tokio::test]
async fn a_caller_api_client_keeps_the_request_timeout() {
    let m = Mocks::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .expect(1)
        .mount(&m.api)
        .await;
    let (connect, idle, request) = short_timeouts();
    let sink = builder(&m.base())
        .with_http_client(untimed_client())
        .with_timeouts(connect, idle, request)
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    let started = Instant::now();
    let error = within_seconds(10, sink.quota()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_caller_upload_client_keeps_the_request_timeout() {
    let m = Mocks::start().await;
    m.approot(1).await;
    Mock::given(method("POST"))
        .and(url_path(format!(
            "{D}/items/D!app:/big.bin:/createUploadSession"
        )))
        .respond_with(m.json(200, "upload_session"))
        .expect(1)
        .mount(&m.api)
        .await;
    Mock::given(method("PUT"))
        .and(url_path("/rup/d/session-1"))
        .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_secs(30)))
        .expect(1)
        .mount(&m.upload)
        .await;
    Mock::given(method("DELETE"))
        .and(url_path("/rup/d/session-1"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&m.upload)
        .await;
    let (connect, idle, request) = short_timeouts();
    let sink = builder(&m.base())
        .with_upload_http_client(untimed_client())
        .with_timeouts(connect, idle, request)
        .with_retry(RetryConfig::none())
        .with_simple_upload_cutoff(1000)
        .with_fragment_size(UNIT as u64)
        .build()
        .unwrap();
    let data = pattern(UNIT + 10, 7);
    let started = Instant::now();
    let error = within_seconds(
        10,
        sink.write_file(&path("big.bin"), chunked(&data, 10_000)),
    )
    .await
    .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
