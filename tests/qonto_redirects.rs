//! Redirects met by the Qonto source: what a redirect target may receive (no `Referer`,
//! no credential), answers from another host than the API's, redirects a download must
//! not follow, and the request timeout of a caller's own client.

mod qonto_support;

use qonto_support::*;
use receipt_sync::ErrorKind;
use receipt_sync::http::RetryConfig;
use receipt_sync::model::Receipt;
use receipt_sync::source::qonto::QontoRateLimit;
use receipt_sync::source::{QontoAuth, QontoSource, ReceiptQuery, ReceiptSource};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const FUEL: &str = "ea54f563-eaee-4dcb-b08e-688dc9937d23";
const FUEL_PATH: &str = "/production/uploads/attachment/ea54f563/ticket-total.jpg";
const STAGING: &str = "staging-secret-7f3a";

/// A sandbox source on `api`: API key and staging token, fast retries.
fn sandbox(api: &MockServer) -> receipt_sync::source::qonto::QontoSourceBuilder {
    QontoSource::sandbox(QontoAuth::api_key(LOGIN, SECRET), STAGING)
        .with_base_url(api.uri())
        .with_retry(RetryConfig::fast())
        .with_rate_limit(QontoRateLimit::unlimited())
}

/// `server`'s address as `localhost`: another host than `127.0.0.1` to reqwest, as a
/// real redirect target would be.
fn other_host(server: &MockServer) -> String {
    server.uri().replace("127.0.0.1", "localhost")
}

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

/// Every request `server` received.
async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

/// Whether `request` carries anything secret: a credential header, or a `Referer` that
/// holds a signature, the API key or the staging token.
fn carries_a_secret(request: &Request) -> bool {
    let referer_leaks = request.headers.get("referer").is_some_and(|value| {
        let value = value.to_str().unwrap_or("?");
        ["Signature", "SIGNATURE", LOGIN, SECRET, STAGING]
            .iter()
            .any(|secret| value.contains(secret))
    });
    request.headers.contains_key("authorization") || referer_leaks
}

#[tokio::test]
async fn a_download_redirect_target_receives_no_referer_and_no_credential() {
    let (api, storage, elsewhere) = (
        strict_server().await,
        strict_server().await,
        strict_server().await,
    );
    let source = sandbox(&api).build().unwrap();
    let receipt = listed_fuel_receipt(&source, &api, &storage.uri()).await;
    Mock::given(path(FUEL_PATH))
        .respond_with(ResponseTemplate::new(302).insert_header(
            "location",
            format!("{}/moved", other_host(&elsewhere)).as_str(),
        ))
        .expect(1)
        .mount(&storage)
        .await;
    Mock::given(path("/moved"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"hello world".to_vec()))
        .expect(1)
        .mount(&elsewhere)
        .await;
    let bytes = source
        .open(&receipt)
        .await
        .unwrap()
        .collect("receipt")
        .await
        .unwrap();
    assert_eq!(bytes, b"hello world");
    let target = &received(&elsewhere).await[0];
    // reqwest's default would send the pre-signed URL, signature included, as `Referer`.
    assert!(
        !target.headers.contains_key("referer"),
        "Referer sent to the redirect target: {:?}",
        target.headers.get("referer")
    );
    assert!(!saw_credentials(&elsewhere).await);
    assert!(!saw_credentials(&storage).await);
}

#[tokio::test]
async fn the_default_api_client_takes_nothing_to_a_redirect_target() {
    for status in [301, 302, 303, 307, 308] {
        let (api, elsewhere) = (strict_server().await, strict_server().await);
        Mock::given(path("/v2/organization"))
            .respond_with(ResponseTemplate::new(status).insert_header(
                "location",
                format!("{}/v2/organization", other_host(&elsewhere)).as_str(),
            ))
            .expect(1)
            .mount(&api)
            .await;
        let error = sandbox(&api).build().unwrap().accounts().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unauthorized, "{status}: {error}");
        assert!(
            received(&elsewhere).await.is_empty(),
            "{status} was followed"
        );
    }
}

#[tokio::test]
async fn an_answer_from_another_host_is_refused_unread() {
    // A caller's client that follows redirects: the answer it brings back is not Qonto's.
    let (api, elsewhere) = (strict_server().await, strict_server().await);
    Mock::given(path("/v2/organization"))
        .respond_with(ResponseTemplate::new(302).insert_header(
            "location",
            format!("{}/v2/organization", other_host(&elsewhere)).as_str(),
        ))
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(path("/v2/organization"))
        .respond_with(json(200, "organization.json", ""))
        .expect(1)
        .mount(&elsewhere)
        .await;
    let source = sandbox(&api)
        .with_http_client(reqwest::Client::new())
        .build()
        .unwrap();
    let error = source.accounts().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    assert!(!error.is_retryable() && error.stops_sync());
    let text = error.to_string();
    assert!(
        text.contains("with_http_client") && text.contains("Policy::none()"),
        "{text}"
    );
    assert!(!text.contains(SECRET) && !text.contains(STAGING), "{text}");
    // reqwest strips `Authorization` on a change of host, and the API URL in a
    // `Referer` holds no secret. (A following client does forward the staging header:
    // hence the documented `Policy::none()`, and the refusal above.)
    let target = &received(&elsewhere).await[0];
    assert!(!carries_a_secret(target), "{:?}", target.headers);
}

#[tokio::test]
async fn a_caller_client_built_as_documented_takes_nothing_to_a_redirect_target() {
    let (api, elsewhere) = (strict_server().await, strict_server().await);
    Mock::given(path("/v2/organization"))
        .respond_with(ResponseTemplate::new(307).insert_header(
            "location",
            format!("{}/v2/organization", other_host(&elsewhere)).as_str(),
        ))
        .expect(1)
        .mount(&api)
        .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .build()
        .unwrap();
    let source = sandbox(&api).with_http_client(client).build().unwrap();
    assert!(source.accounts().await.is_err());
    assert!(received(&elsewhere).await.is_empty());
}

#[tokio::test]
async fn a_caller_client_keeps_the_request_timeout() {
    let api = strict_server().await;
    Mock::given(method("GET"))
        .and(path("/v2/organization"))
        .respond_with(json(200, "organization.json", "").set_delay(Duration::from_secs(30)))
        .expect(1)
        .mount(&api)
        .await;
    // A client with no timeout of its own: only `with_timeouts` can bound the call.
    let source = builder(&api)
        .with_http_client(reqwest::Client::new())
        .with_timeouts(Duration::from_secs(1), Duration::from_millis(300))
        .with_retry(RetryConfig::none())
        .build()
        .unwrap();
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(10), source.accounts()).await;
    let error = outcome
        .expect("a stalled API must not hang the caller")
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_download_redirected_to_plain_http_is_permanent_and_tried_once() {
    let (api, storage) = (strict_server().await, strict_server().await);
    let source = source(&api, 3);
    let receipt = listed_fuel_receipt(&source, &api, &storage.uri()).await;
    Mock::given(path(FUEL_PATH))
        .respond_with(ResponseTemplate::new(302).insert_header(
            "location",
            "http://storage.example.com/ticket-total.jpg?X-Amz-Signature=SIGNATURE-1",
        ))
        .expect(1)
        .mount(&storage)
        .await;
    let error = source.open(&receipt).await.expect_err("refused");
    assert_eq!(error.kind(), ErrorKind::Permanent, "{error}");
    assert!(!error.is_retryable());
    let text = error.to_string();
    assert!(text.contains("not https"), "{text}");
    assert!(!text.contains("SIGNATURE"), "{text}");
}

#[tokio::test]
async fn a_download_redirect_loop_is_permanent() {
    let (api, storage) = (strict_server().await, strict_server().await);
    let source = source(&api, 3);
    let receipt = listed_fuel_receipt(&source, &api, &storage.uri()).await;
    Mock::given(path(FUEL_PATH))
        .respond_with(ResponseTemplate::new(302).insert_header(
            "location",
            format!("{}{FUEL_PATH}?X-Amz-Signature=SIGNATURE-1", storage.uri()).as_str(),
        ))
        .mount(&storage)
        .await;
    let error = source.open(&receipt).await.expect_err("refused");
    assert_eq!(error.kind(), ErrorKind::Permanent, "{error}");
    assert!(!error.to_string().contains("SIGNATURE"), "{error}");
    // One attempt: the first request and the 5 redirects followed.
    assert_eq!(received(&storage).await.len(), 6);
}
