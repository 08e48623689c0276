//! A rotated Qonto refresh token survives a failed save: the failure is returned, the
//! new pair stays in memory, and the next token use saves it before anything else.
//! A token endpoint's `expires_in` too large for the clock is capped, not a panic.

mod qonto_support;

use async_trait::async_trait;
use chrono::Utc;
use qonto_support::json;
use receipt_sync::auth::SecretString;
use receipt_sync::source::qonto::{
    QontoOAuth, QontoRateLimit, QontoSourceBuilder, QontoTokenStore, QontoTokens,
};
use receipt_sync::source::{QontoAuth, QontoSource, ReceiptSource};
use receipt_sync::{Error, ErrorKind};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::matchers::{body_string_contains, header, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A store whose first `failures` saves fail as a full disk would.
#[derive(Debug)]
struct FlakyStore {
    failures: Mutex<u32>,
    saved: Mutex<Vec<QontoTokens>>,
}

impl FlakyStore {
    fn failing(failures: u32) -> Arc<Self> {
        Arc::new(Self {
            failures: Mutex::new(failures),
            saved: Mutex::new(Vec::new()),
        })
    }

    fn saved_refresh_tokens(&self) -> Vec<String> {
        let saved = self.saved.lock().unwrap();
        saved
            .iter()
            .map(|t| t.refresh_token.expose().to_owned())
            .collect()
    }
}

#[async_trait]
impl QontoTokenStore for FlakyStore {
    async fn save(&self, tokens: &QontoTokens) -> receipt_sync::Result<()> {
        let mut failures = self.failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err(Error::DiskFull {
                operation: "save the Qonto tokens",
                path: "tokens.json".into(),
            });
        }
        self.saved.lock().unwrap().push(tokens.clone());
        Ok(())
    }
}

fn expired_tokens() -> QontoTokens {
    QontoTokens {
        access_token: SecretString::new("AT-old"),
        refresh_token: SecretString::new("RT-old"),
        expires_at: Utc::now() - chrono::Duration::minutes(1),
    }
}

fn source(server: &MockServer, store: Arc<dyn QontoTokenStore>) -> QontoSource {
    let oauth = QontoOAuth::new("client-1", "client-secret-1", expired_tokens(), store)
        .with_token_url(format!("{}/oauth2/token", server.uri()));
    QontoSourceBuilder::new(QontoAuth::OAuth(oauth))
        .with_base_url(server.uri())
        .with_retry(receipt_sync::http::RetryConfig::fast())
        .with_rate_limit(QontoRateLimit::unlimited())
        .build()
        .unwrap()
}

/// The token endpoint rotates `RT-old` into `RT-new` once; `RT-old` is refused after.
async fn mount_one_rotation(server: &MockServer, expires_in: u64) {
    Mock::given(path("/oauth2/token"))
        .and(body_string_contains("refresh_token=RT-old"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "AT-new", "token_type": "bearer", "expires_in": expires_in,
            "refresh_token": "RT-new", "scope": "offline_access organization.read"
        })))
        .up_to_n_times(1)
        .expect(1)
        .mount(server)
        .await;
    Mock::given(path("/oauth2/token"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": "invalid_grant"})),
        )
        .with_priority(10)
        .mount(server)
        .await;
    Mock::given(path("/v2/organization"))
        .and(header("authorization", "Bearer AT-new"))
        .respond_with(json(200, "organization.json", ""))
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_failed_save_is_reported_and_retried_at_the_next_use() {
    let server = MockServer::start().await;
    mount_one_rotation(&server, 3600).await;
    let store = FlakyStore::failing(2);
    let source = source(&server, store.clone());

    // The refresh rotated the token, and saving it failed: that failure is the answer.
    let first = source.accounts().await.unwrap_err();
    assert_eq!(first.kind(), ErrorKind::DiskFull, "{first}");
    assert!(store.saved_refresh_tokens().is_empty());

    // The store is still failing: the next use tries again, reports again, and does
    // not refresh a second time (the old refresh token is dead on the server).
    let second = source.accounts().await.unwrap_err();
    assert_eq!(second.kind(), ErrorKind::DiskFull, "{second}");

    // The store works again: the rotated pair is saved first, then used.
    let accounts = source.accounts().await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(store.saved_refresh_tokens(), ["RT-new"]);

    // Saved once: nothing is saved again while nothing rotates.
    source.accounts().await.unwrap();
    assert_eq!(store.saved_refresh_tokens(), ["RT-new"]);
}

#[tokio::test]
async fn an_expires_in_too_large_for_the_clock_is_capped_to_a_day() {
    // Representable as a `TimeDelta` (~285 million years), but not once added to now.
    let expires_in = 9_000_000_000_000_000;
    let server = MockServer::start().await;
    mount_one_rotation(&server, expires_in).await;
    let store = FlakyStore::failing(0);
    let source = source(&server, store.clone());

    source.accounts().await.unwrap();
    let saved = store.saved.lock().unwrap().clone();
    assert_eq!(saved.len(), 1, "the rotated pair is saved");
    assert_eq!(saved[0].refresh_token.expose(), "RT-new");
    let left = saved[0].expires_at - Utc::now();
    assert!(
        left <= chrono::Duration::hours(24) && left > chrono::Duration::hours(23),
        "{left}"
    );
}

#[tokio::test]
async fn a_refresh_margin_too_large_for_the_clock_refreshes_instead_of_panicking() {
    let server = MockServer::start().await;
    mount_one_rotation(&server, 3600).await;
    let store = FlakyStore::failing(0);
    let oauth = QontoOAuth::new(
        "client-1",
        "client-secret-1",
        expired_tokens(),
        store.clone(),
    )
    .with_token_url(format!("{}/oauth2/token", server.uri()))
    .with_refresh_margin(Duration::from_secs(9_000_000_000_000_000));
    let source = QontoSourceBuilder::new(QontoAuth::OAuth(oauth))
        .with_base_url(server.uri())
        .with_retry(receipt_sync::http::RetryConfig::fast())
        .with_rate_limit(QontoRateLimit::unlimited())
        .build()
        .unwrap();
    source.accounts().await.unwrap();
    assert_eq!(store.saved_refresh_tokens(), ["RT-new"]);
}
