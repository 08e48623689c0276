//! Opening receipts: pre-signed URLs downloaded without credentials, refreshed
//! through `GET /v2/attachments/{id}` (qonto.md §2.3, §6.3), length-checked.

mod qonto_support;

use qonto_support::*;
use receipt_sync::model::{Body, Receipt};
use receipt_sync::source::{QontoAuth, QontoSource, ReceiptQuery, ReceiptSource};
use receipt_sync::{ErrorKind, Result};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const FUEL: &str = "ea54f563-eaee-4dcb-b08e-688dc9937d23";
const FUEL_PATH: &str = "/production/uploads/attachment/ea54f563/ticket-total.jpg";
const FRESH_PATH: &str = "/production/uploads/attachment/ea54f563/fresh.jpg";

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

async fn read(body: Result<Body>) -> Result<Vec<u8>> {
    body?.collect("receipt").await
}

#[tokio::test]
async fn the_listed_url_is_downloaded_without_credentials() {
    let (api, storage) = (strict_server().await, strict_server().await);
    let source = source(&api, 2);
    let receipt = listed_fuel_receipt(&source, &api, &storage.uri()).await;
    Mock::given(method("GET"))
        .and(path(FUEL_PATH))
        .and(query_param("X-Amz-Signature", "SIGNATURE-1"))
        .and(NoCredentials)
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"hello world".to_vec()))
        .expect(1)
        .mount(&storage)
        .await;
    assert_eq!(
        read(source.open(&receipt).await).await.unwrap(),
        b"hello world"
    );
    assert!(!saw_credentials(&storage).await);
}

#[tokio::test]
async fn an_expired_url_is_refreshed_through_the_attachment_endpoint() {
    for expired in [403, 410] {
        let (api, storage) = (strict_server().await, strict_server().await);
        let source = source(&api, 2);
        let receipt = listed_fuel_receipt(&source, &api, &storage.uri()).await;
        Mock::given(path(FUEL_PATH))
            .respond_with(ResponseTemplate::new(expired))
            .expect(1)
            .mount(&storage)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/v2/attachments/{FUEL}")))
            .and(header("authorization", API_KEY_HEADER))
            .respond_with(json(200, "attachment.json", &storage.uri()))
            .expect(1)
            .mount(&api)
            .await;
        Mock::given(path(FRESH_PATH))
            .and(query_param("X-Amz-Signature", "FRESH"))
            .and(NoCredentials)
            .respond_with(ResponseTemplate::new(200).set_body_bytes(b"fresh bytes".to_vec()))
            .expect(1)
            .mount(&storage)
            .await;
        let bytes = read(source.open(&receipt).await).await.unwrap();
        assert_eq!(bytes, b"fresh bytes", "after a {expired}");
    }
}

#[tokio::test]
async fn a_receipt_never_listed_here_gets_its_url_from_the_attachment_endpoint() {
    let (api, storage) = (strict_server().await, strict_server().await);
    let lister = source(&api, 2);
    let receipt = listed_fuel_receipt(&lister, &api, &storage.uri()).await;
    Mock::given(path(format!("/v2/attachments/{FUEL}")))
        .respond_with(json(200, "attachment.json", &storage.uri()))
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(path(FRESH_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"fresh bytes".to_vec()))
        .expect(1)
        .mount(&storage)
        .await;
    // Another source (a later run): its URL cache is empty.
    let opener = source(&api, 2);
    assert_eq!(
        read(opener.open(&receipt).await).await.unwrap(),
        b"fresh bytes"
    );
}

#[tokio::test]
async fn a_length_other_than_file_size_is_an_integrity_error() {
    for body in [&b"short"[..], &b"much longer than eleven"[..]] {
        let (api, storage) = (strict_server().await, strict_server().await);
        let source = source(&api, 2);
        let receipt = listed_fuel_receipt(&source, &api, &storage.uri()).await;
        Mock::given(path(FUEL_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(body.to_vec()))
            .mount(&storage)
            .await;
        let opened = source.open(&receipt).await.unwrap();
        assert_eq!(opened.len(), 11, "the length announced is file_size");
        let mut stream = opened.into_stream();
        let mut last = None;
        while let Some(item) = futures::StreamExt::next(&mut stream).await {
            last = Some(item);
        }
        let error = last.unwrap().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Integrity, "{error}");
    }
}

#[tokio::test]
async fn redirects_are_followed_without_credentials() {
    let (api, storage, elsewhere) = (
        strict_server().await,
        strict_server().await,
        strict_server().await,
    );
    // The sandbox header is sent to the API, never to storage (qonto.md §1.4, §2.3).
    let source = QontoSource::sandbox(QontoAuth::api_key(LOGIN, SECRET), "staging-secret")
        .with_base_url(api.uri())
        .with_retry(receipt_sync::http::RetryConfig::fast())
        .with_rate_limit(receipt_sync::source::qonto::QontoRateLimit::unlimited())
        .build()
        .unwrap();
    let receipt = listed_fuel_receipt(&source, &api, &storage.uri()).await;
    let listing = &api.received_requests().await.unwrap()[0];
    assert_eq!(listing.headers["x-qonto-staging-token"], "staging-secret");
    // `localhost` vs `127.0.0.1`: another host, as a storage redirect would be.
    let target = elsewhere.uri().replace("127.0.0.1", "localhost");
    Mock::given(path(FUEL_PATH))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{target}/moved").as_str()),
        )
        .expect(1)
        .mount(&storage)
        .await;
    Mock::given(path("/moved"))
        .and(NoCredentials)
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"hello world".to_vec()))
        .expect(1)
        .mount(&elsewhere)
        .await;
    assert_eq!(
        read(source.open(&receipt).await).await.unwrap(),
        b"hello world"
    );
    assert!(!saw_credentials(&storage).await);
    assert!(!saw_credentials(&elsewhere).await);
}

#[tokio::test]
async fn download_failures_are_retried_then_classified() {
    let (api, storage) = (strict_server().await, strict_server().await);
    let source = source(&api, 2);
    let receipt = listed_fuel_receipt(&source, &api, &storage.uri()).await;
    Mock::given(path(FUEL_PATH))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&storage)
        .await;
    Mock::given(path(FUEL_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"hello world".to_vec()))
        .expect(1)
        .mount(&storage)
        .await;
    assert_eq!(
        read(source.open(&receipt).await).await.unwrap(),
        b"hello world"
    );
}

#[tokio::test]
async fn attachment_endpoint_errors_are_classified() {
    for case in error_cases() {
        let (api, storage) = (strict_server().await, strict_server().await);
        let lister = source(&api, 2);
        let receipt = listed_fuel_receipt(&lister, &api, &storage.uri()).await;
        Mock::given(path(format!("/v2/attachments/{FUEL}")))
            .respond_with(case.response.clone())
            .expect(case.hits)
            .named(case.name)
            .mount(&api)
            .await;
        let error = source(&api, 2).open(&receipt).await.unwrap_err();
        check_case(&case, &error);
    }
}

#[tokio::test]
async fn pre_signed_urls_never_show_in_errors_or_debug() {
    let api = strict_server().await;
    let source = source(&api, 2);
    // Nothing listens on port 1: a transport error, whose reqwest message would
    // carry the URL if it were not stripped. (A dropped wiremock server would not
    // do: wiremock pools and reuses them.)
    let receipt = listed_fuel_receipt(&source, &api, "http://127.0.0.1:1").await;
    let error = source.open(&receipt).await.unwrap_err();
    let shown = format!("{error} {error:?} {source:?} {receipt:?}");
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    for secret in [
        "SIGNATURE",
        "X-Amz",
        "ticket-total.jpg?",
        "127.0.0.1:1",
        SECRET,
    ] {
        assert!(!shown.contains(secret), "{secret} leaked in {shown}");
    }
}
