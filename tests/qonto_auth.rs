//! Builder validation, API key and OAuth 2.0 (qonto.md §1): proactive refresh,
//! rotation saved at once, one refresh per 401 at most, never a retry for an API key.

mod qonto_support;

use chrono::Utc;
use qonto_support::*;
use receipt_sync::ErrorKind;
use receipt_sync::auth::{SecretString, StaticToken};
use receipt_sync::source::qonto::{
    InMemoryTokenStore, QontoOAuth, QontoRateLimit, QontoSourceBuilder, QontoTokens,
};
use receipt_sync::source::{QontoAuth, QontoSource, ReceiptSource};
use std::sync::Arc;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn tokens(access: &str, refresh: &str, expires_in_secs: i64) -> QontoTokens {
    QontoTokens {
        access_token: SecretString::new(access),
        refresh_token: SecretString::new(refresh),
        expires_at: Utc::now() + chrono::Duration::seconds(expires_in_secs),
    }
}

fn oauth_source(
    server: &MockServer,
    tokens: QontoTokens,
    store: Arc<InMemoryTokenStore>,
) -> QontoSource {
    let oauth = QontoOAuth::new("client-1", "client-secret-1", tokens, store)
        .with_token_url(format!("{}/oauth2/token", server.uri()));
    QontoSourceBuilder::new(QontoAuth::OAuth(oauth))
        .with_base_url(server.uri())
        .with_retry(receipt_sync::http::RetryConfig::fast())
        .with_rate_limit(QontoRateLimit::unlimited())
        .build()
        .unwrap()
}

async fn mount_organization(server: &MockServer, bearer: &str, hits: u64) {
    Mock::given(path("/v2/organization"))
        .and(header("authorization", format!("Bearer {bearer}").as_str()))
        .respond_with(json(200, "organization.json", ""))
        .expect(hits)
        .mount(server)
        .await;
}

fn token_response(access: &str, refresh: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "access_token": access, "token_type": "bearer", "expires_in": 3600,
        "refresh_token": refresh, "scope": "offline_access organization.read"
    }))
}

#[test]
fn urls_must_be_https_except_on_loopback() {
    let build = |url: &str| {
        QontoSource::builder(QontoAuth::api_key("l", "s"))
            .with_base_url(url)
            .build()
            .map(|_| ())
            .map_err(|e| e.kind())
    };
    for ok in [
        "https://thirdparty.qonto.com",
        "http://127.0.0.1:8080",
        "http://[::1]:8080/",
        "http://localhost:1",
    ] {
        assert_eq!(build(ok), Ok(()), "{ok}");
    }
    for bad in [
        "http://thirdparty.qonto.com",
        "ftp://x",
        "not a url",
        "http://10.0.0.1",
    ] {
        assert_eq!(build(bad), Err(ErrorKind::Config), "{bad}");
    }
    let bad_token_url = QontoOAuth::new(
        "c",
        "s",
        tokens("a", "r", 3600),
        Arc::new(InMemoryTokenStore::new()),
    )
    .with_token_url("http://oauth.example.com/oauth2/token");
    let error = QontoSource::builder(QontoAuth::OAuth(bad_token_url))
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    for (login, secret) in [("", "s"), ("l", " "), ("l\n", "s")] {
        let error = QontoSource::builder(QontoAuth::api_key(login, secret))
            .build()
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{login:?}");
    }
}

#[test]
fn secrets_never_show_in_debug() {
    let store = Arc::new(InMemoryTokenStore::new());
    let oauth = QontoOAuth::new(
        "client-1",
        "client-secret-1",
        tokens("at-123", "rt-456", 60),
        store,
    );
    let shown = format!(
        "{:?} {:?} {:?}",
        QontoAuth::api_key(LOGIN, SECRET),
        QontoAuth::OAuth(oauth.clone()),
        QontoSource::builder(QontoAuth::OAuth(oauth))
            .build()
            .unwrap(),
    );
    for secret in [SECRET, "client-secret-1", "at-123", "rt-456", LOGIN] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

#[tokio::test]
async fn a_token_near_expiry_is_refreshed_first_and_the_rotation_saved() {
    let server = strict_server().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=rt-old"))
        .and(body_string_contains("client_id=client-1"))
        .and(body_string_contains("client_secret=client-secret-1"))
        .respond_with(token_response("at-new", "rt-new"))
        .expect(1)
        .mount(&server)
        .await;
    mount_organization(&server, "at-new", 2).await;
    let store = Arc::new(InMemoryTokenStore::new());
    // Expires in 2 minutes: inside the 5-minute margin, so refreshed before use.
    let source = oauth_source(&server, tokens("at-old", "rt-old", 120), store.clone());
    source.accounts().await.unwrap();
    source.accounts().await.unwrap();
    let saved = store.latest().expect("saved at once");
    assert_eq!(saved.refresh_token.expose(), "rt-new");
    assert_eq!(saved.access_token.expose(), "at-new");
    assert!(saved.expires_at > Utc::now() + chrono::Duration::minutes(59));
    assert_eq!(store.saves(), 1);
}

#[tokio::test]
async fn a_401_costs_one_refresh_and_one_retry_at_most() {
    let server = strict_server().await;
    Mock::given(path("/oauth2/token"))
        .respond_with(token_response("at-new", "rt-new"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/organization"))
        .and(header("authorization", "Bearer at-old"))
        .respond_with(json(401, "error_401.json", ""))
        .expect(1)
        .mount(&server)
        .await;
    mount_organization(&server, "at-new", 1).await;
    let store = Arc::new(InMemoryTokenStore::new());
    let source = oauth_source(&server, tokens("at-old", "rt-old", 3600), store);
    source.accounts().await.unwrap();
}

#[tokio::test]
async fn a_second_401_after_a_refresh_is_unauthorized() {
    let server = strict_server().await;
    Mock::given(path("/oauth2/token"))
        .respond_with(token_response("at-new", "rt-new"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/organization"))
        .respond_with(json(401, "error_401.json", ""))
        .expect(2)
        .mount(&server)
        .await;
    let store = Arc::new(InMemoryTokenStore::new());
    let source = oauth_source(&server, tokens("at-old", "rt-old", 3600), store);
    let error = source.accounts().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
}

#[tokio::test]
async fn api_key_and_static_tokens_are_never_retried_on_401() {
    for auth in [
        QontoAuth::api_key(LOGIN, SECRET),
        QontoAuth::Bearer(Arc::new(StaticToken::new("fixed"))),
    ] {
        let server = strict_server().await;
        Mock::given(path("/v2/organization"))
            .respond_with(json(401, "error_401.json", ""))
            .expect(1)
            .mount(&server)
            .await;
        let source = QontoSourceBuilder::new(auth)
            .with_base_url(server.uri())
            .with_retry(receipt_sync::http::RetryConfig::fast())
            .build()
            .unwrap();
        let error = source.accounts().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unauthorized);
    }
}

#[tokio::test]
async fn a_refused_refresh_token_means_sign_in_again() {
    let server = strict_server().await;
    Mock::given(path("/oauth2/token"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": "invalid_grant"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let store = Arc::new(InMemoryTokenStore::new());
    let source = oauth_source(&server, tokens("at-old", "rt-old", 10), store.clone());
    let error = source.accounts().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConsentRevoked, "{error}");
    assert!(store.latest().is_none());
}

#[tokio::test]
async fn the_sandbox_sends_its_staging_token_to_the_api_and_the_token_endpoint() {
    let server = strict_server().await;
    Mock::given(path("/oauth2/token"))
        .and(header("x-qonto-staging-token", "stage-1"))
        .respond_with(token_response("at-new", "rt-new"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/organization"))
        .and(header("x-qonto-staging-token", "stage-1"))
        .and(header("authorization", "Bearer at-new"))
        .respond_with(json(200, "organization.json", ""))
        .expect(1)
        .mount(&server)
        .await;
    let oauth = QontoOAuth::new(
        "client-1",
        "client-secret-1",
        tokens("at-old", "rt-old", 0),
        Arc::new(InMemoryTokenStore::new()),
    )
    .with_token_url(format!("{}/oauth2/token", server.uri()));
    let source = QontoSource::sandbox(QontoAuth::OAuth(oauth), "stage-1")
        .with_base_url(server.uri())
        .with_rate_limit(QontoRateLimit::unlimited())
        .build()
        .unwrap();
    source.accounts().await.unwrap();
}

#[tokio::test]
async fn a_redirect_to_the_sandbox_login_is_not_followed() {
    let server = strict_server().await;
    Mock::given(path("/v2/organization"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", "https://qonto.onelogin.com/login"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let error = source(&server, 2).accounts().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert!(error.to_string().contains("X-Qonto-Staging-Token"));
}
