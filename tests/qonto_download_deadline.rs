//! The download deadline: a storage host may be waited for `base + file_size / rate` in
//! all, so one that drips its bytes (or never answers) cannot hold a download forever,
//! while a consumer that is slow to take the bytes never spends that time.

mod qonto_support;

use qonto_support::*;
use receipt_sync::ErrorKind;
use receipt_sync::http::RetryConfig;
use receipt_sync::model::Receipt;
use receipt_sync::source::qonto::QontoSourceBuilder;
use receipt_sync::source::{QontoSource, ReceiptQuery, ReceiptSource};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

const FUEL: &str = "ea54f563-eaee-4dcb-b08e-688dc9937d23";
const FUEL_PATH: &str = "/production/uploads/attachment/ea54f563/ticket-total.jpg";
/// The fuel receipt's `file_size` in the fixtures.
const FUEL_SIZE: usize = 11;

/// Lists page 1 of the fixtures (URLs on `download`) and returns the fuel receipt.
async fn listed_fuel_receipt(source: &QontoSource, api: &MockServer, download: &str) -> Receipt {
    let single_page = fixture("transactions_page1.json", download)
        .replace("\"next_page\": 2", "\"next_page\": null");
    Mock::given(path("/v2/transactions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(single_page, "application/json"))
        .expect(1)
        .mount(api)
        .await;
    let events = events(source, ACCOUNT, &ReceiptQuery::all()).await;
    receipts(&events)
        .into_iter()
        .find(|r| r.id.as_str() == FUEL)
        .expect("the fuel receipt is listed")
}

/// How the fake storage host misbehaves.
#[derive(Clone, Copy)]
enum Storage {
    /// Headers at once, then one byte every `0`.
    Drips(Duration),
    /// Reads the request and never answers.
    Silent,
}

/// A storage host on loopback that behaves as `how`; its base URL.
async fn storage(how: Storage) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, how));
        }
    });
    format!("http://{address}")
}

async fn serve(mut stream: TcpStream, how: Storage) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    match how {
        Storage::Silent => {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        Storage::Drips(every) => {
            let headers = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {FUEL_SIZE}\r\n\r\n"
            );
            if stream.write_all(headers.as_bytes()).await.is_err() {
                return;
            }
            for byte in b"hello world" {
                tokio::time::sleep(every).await;
                if stream.write_all(&[*byte]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A source whose downloads may wait `base` plus a millisecond per 1,000 bytes.
fn with_deadline(api: &MockServer, base: Duration) -> QontoSourceBuilder {
    builder(api)
        .with_retry(RetryConfig::fast().with_max_attempts(2))
        .with_download_deadline(base, 1_000_000)
}

#[tokio::test]
async fn a_dripping_storage_host_hits_the_deadline() {
    let api = strict_server().await;
    let download = storage(Storage::Drips(Duration::from_millis(200))).await;
    let source = with_deadline(&api, Duration::from_millis(300))
        .build()
        .unwrap();
    let receipt = listed_fuel_receipt(&source, &api, &download).await;
    let started = Instant::now();
    // Without a deadline the 11 bytes arrive after 2.2 s, each within the idle timeout.
    let read = async { source.open(&receipt).await?.collect("receipt").await };
    let outcome = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the deadline ends the download");
    let error = outcome.expect_err("a dripping host must not complete the download");
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    assert!(error.is_retryable());
    assert!(
        error.to_string().contains("with_download_deadline"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_storage_host_that_never_answers_hits_the_deadline() {
    let api = strict_server().await;
    let download = storage(Storage::Silent).await;
    let source = with_deadline(&api, Duration::from_millis(300))
        .build()
        .unwrap();
    let receipt = listed_fuel_receipt(&source, &api, &download).await;
    let outcome = tokio::time::timeout(Duration::from_secs(10), source.open(&receipt))
        .await
        .expect("the deadline ends the wait for the headers (the idle timeout is 60 s)");
    let error = outcome.expect_err("no answer");
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
}

#[tokio::test]
async fn a_slow_consumer_does_not_spend_the_deadline() {
    let (api, storage) = (strict_server().await, strict_server().await);
    let source = with_deadline(&api, Duration::from_millis(200))
        .build()
        .unwrap();
    let receipt = listed_fuel_receipt(&source, &api, &storage.uri()).await;
    Mock::given(path(FUEL_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"hello world".to_vec()))
        .expect(1)
        .mount(&storage)
        .await;
    let body = source.open(&receipt).await.unwrap();
    // An archive busy with an earlier fragment: the bytes wait, the host does not.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(body.collect("receipt").await.unwrap(), b"hello world");
}

#[tokio::test]
async fn a_zero_rate_is_refused() {
    let api = strict_server().await;
    let error = builder(&api)
        .with_download_deadline(Duration::from_secs(60), 0)
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
}
