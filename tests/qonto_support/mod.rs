//! Helpers shared by the `qonto_*` integration tests.
#![allow(dead_code)]

use futures::StreamExt;
use receipt_sync::http::RetryConfig;
use receipt_sync::model::{AccountId, Receipt};
use receipt_sync::source::qonto::{QontoRateLimit, QontoSource, QontoSourceBuilder};
use receipt_sync::source::{QontoAuth, ReceiptQuery, ReceiptSource, SourceEvent};
use receipt_sync::{Error, Result};
use wiremock::matchers::any;
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

/// The API key the wiremock tests use.
pub const LOGIN: &str = "atelier-durand-4821";
/// Its secret.
pub const SECRET: &str = "62885d39f3a0ddedd3d3ee0432a43ccr";
/// The header Qonto expects for it: no scheme, no base64 (qonto.md §1.1).
pub const API_KEY_HEADER: &str = "atelier-durand-4821:62885d39f3a0ddedd3d3ee0432a43ccr";
/// The account of the fixtures.
pub const ACCOUNT: &str = "018f71db-c635-78b5-b90a-ea05de98c2bf";

/// A fixture from `tests/fixtures/qonto/`, with `{{DOWNLOAD}}` replaced by `download`.
pub fn fixture(name: &str, download: &str) -> String {
    let path = format!("{}/tests/fixtures/qonto/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .replace("{{DOWNLOAD}}", download)
}

/// A JSON response with a fixture body.
pub fn json(status: u16, name: &str, download: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(fixture(name, download), "application/json")
}

/// A mock server that fails the test (when dropped) on any request no other mock
/// expected: the catch-all has the lowest priority and expects zero hits.
pub async fn strict_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .with_priority(u8::MAX)
        .expect(0)
        .named("unexpected request")
        .mount(&server)
        .await;
    server
}

/// A builder on `server` with the test API key, fast retries, no rate limit.
pub fn builder(server: &MockServer) -> QontoSourceBuilder {
    QontoSource::builder(QontoAuth::api_key(LOGIN, SECRET))
        .with_base_url(server.uri())
        .with_retry(RetryConfig::fast())
        .with_rate_limit(QontoRateLimit::unlimited())
}

/// Like [`builder`], with at most `attempts` attempts per request.
pub fn source(server: &MockServer, attempts: u32) -> QontoSource {
    builder(server)
        .with_retry(RetryConfig::fast().with_max_attempts(attempts))
        .build()
        .expect("valid settings")
}

/// Every event of one account's stream.
pub async fn events(
    source: &dyn ReceiptSource,
    account: &str,
    query: &ReceiptQuery,
) -> Vec<Result<SourceEvent>> {
    source
        .receipts(&AccountId::new(account), query)
        .collect()
        .await
}

/// The receipts of `events`, in order.
pub fn receipts(events: &[Result<SourceEvent>]) -> Vec<Receipt> {
    events
        .iter()
        .filter_map(|e| match e {
            Ok(SourceEvent::Receipt(r)) => Some((**r).clone()),
            _ => None,
        })
        .collect()
}

/// The checkpoints of `events`, as strings.
pub fn checkpoints(events: &[Result<SourceEvent>]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Ok(SourceEvent::Checkpoint(w)) => Some(w.as_str().to_owned()),
            _ => None,
        })
        .collect()
}

/// The errors of `events`.
pub fn errors(events: &[Result<SourceEvent>]) -> Vec<&Error> {
    events.iter().filter_map(|e| e.as_ref().err()).collect()
}

/// A wiremock matcher: the request carries no `Authorization` and no staging header.
pub struct NoCredentials;

impl Match for NoCredentials {
    fn matches(&self, request: &Request) -> bool {
        !request.headers.contains_key("authorization")
            && !request.headers.contains_key("x-qonto-staging-token")
    }
}

/// Whether any request `server` received carried a credential.
pub async fn saw_credentials(server: &MockServer) -> bool {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .any(|r| !NoCredentials.matches(r))
}

/// One error response per case the endpoint tests go through, with the error kind
/// expected and how many requests it takes with 2 attempts allowed.
pub struct Case {
    /// A name for failure messages.
    pub name: &'static str,
    /// The answer.
    pub response: ResponseTemplate,
    /// What the caller must see.
    pub kind: receipt_sync::ErrorKind,
    /// Requests made (2 when retried once).
    pub hits: u64,
}

/// 401, 403, 404, 422, 429 with and without `Retry-After`, 500, HTML, truncated JSON.
pub fn error_cases() -> Vec<Case> {
    use receipt_sync::ErrorKind::*;
    let date = (chrono::Utc::now() + chrono::Duration::seconds(1))
        .to_rfc2822()
        .replace("+0000", "GMT");
    vec![
        Case {
            name: "401",
            response: json(401, "error_401.json", ""),
            kind: Unauthorized,
            hits: 1,
        },
        Case {
            name: "403",
            response: json(403, "error_403_scope.json", ""),
            kind: Forbidden,
            hits: 1,
        },
        Case {
            name: "404",
            response: json(404, "error_404.json", ""),
            kind: NotFound,
            hits: 1,
        },
        Case {
            name: "422",
            response: json(422, "error_422.json", ""),
            kind: Rejected,
            hits: 1,
        },
        Case {
            name: "429",
            response: ResponseTemplate::new(429),
            kind: RateLimited,
            hits: 2,
        },
        Case {
            name: "429 Retry-After seconds",
            response: ResponseTemplate::new(429).insert_header("retry-after", "1"),
            kind: RateLimited,
            hits: 2,
        },
        Case {
            name: "429 Retry-After date",
            response: ResponseTemplate::new(429).insert_header("retry-after", date.as_str()),
            kind: RateLimited,
            hits: 2,
        },
        Case {
            name: "500",
            response: ResponseTemplate::new(500),
            kind: Transient,
            hits: 2,
        },
        Case {
            name: "HTML",
            response: ResponseTemplate::new(200)
                .set_body_raw(fixture("login_page.html", ""), "text/html; charset=utf-8"),
            kind: Unauthorized,
            hits: 1,
        },
        Case {
            name: "truncated",
            response: ResponseTemplate::new(200).set_body_raw(
                r#"{"data": {"id": "cb47875a", "items": [{"#,
                "application/json",
            ),
            kind: Transient,
            hits: 2,
        },
    ]
}

/// Checks `error` against `case`: its kind, and the details each kind promises.
pub fn check_case(case: &Case, error: &Error) {
    assert_eq!(error.kind(), case.kind, "{}: {error}", case.name);
    let text = error.to_string();
    match case.name {
        "403" => assert!(text.contains("organization.read"), "{text}"),
        "HTML" => assert!(text.contains("X-Qonto-Staging-Token"), "{text}"),
        "401" => assert!(
            text.contains("login") && text.contains("secret key"),
            "{text}"
        ),
        "429 Retry-After seconds" => {
            assert_eq!(error.retry_after(), Some(std::time::Duration::from_secs(1)));
        }
        "429 Retry-After date" => {
            assert!(
                error
                    .retry_after()
                    .is_some_and(|d| d <= std::time::Duration::from_secs(1))
            );
        }
        "429" => assert_eq!(error.retry_after(), None),
        _ => {}
    }
}
