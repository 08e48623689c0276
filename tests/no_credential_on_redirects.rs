//! A redirect never carries a credential to another host: the Graph API, the Qonto API
//! and the Microsoft token endpoint each answer with a redirect to a second server,
//! which must receive nothing at all (the clients follow no redirect where a
//! credential rides along; downloads, which carry none, are covered in
//! `qonto_flows.rs` and `qonto_attachments.rs`).
//!
//! The token requests are also tried with a caller's HTTP client that follows redirects
//! (`Policy::limited(10)`, reqwest's default): the refresh token, the authorization code
//! with its PKCE verifier, and the device code must still never reach the second server.

use chrono::Utc;
use receipt_sync::auth::microsoft::{
    BrowserSignInOptions, DeviceCodeOptions, InMemoryTokenStore, MicrosoftAuthConfig,
    MicrosoftTokenProvider, MicrosoftTokens, sign_in_with_browser, sign_in_with_device_code,
};
use receipt_sync::auth::{AccessTokenProvider, SecretString, StaticToken};
use receipt_sync::http::RetryConfig;
use receipt_sync::sink::ArchiveSink;
use receipt_sync::sink::onedrive::OneDriveSink;
use receipt_sync::source::ReceiptSource;
use receipt_sync::source::qonto::{QontoAuth, QontoSourceBuilder};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{any, method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];

/// An API that redirects everything to `elsewhere`, for each redirect status.
async fn redirecting_to(elsewhere: &MockServer, status: u16) -> MockServer {
    let api = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(status)
                .insert_header("location", format!("{}/collect", elsewhere.uri()).as_str()),
        )
        .mount(&api)
        .await;
    api
}

async fn nothing_reached(elsewhere: &MockServer) {
    let received = elsewhere.received_requests().await.unwrap_or_default();
    assert!(
        received.is_empty(),
        "a redirect was followed to another host: {:?}",
        received
            .iter()
            .map(|r| (r.method.to_string(), r.url.to_string()))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn graph_calls_do_not_follow_redirects() {
    for status in REDIRECTS {
        let elsewhere = MockServer::start().await;
        let api = redirecting_to(&elsewhere, status).await;
        let sink = OneDriveSink::builder(Arc::new(StaticToken::new("graph-bearer-token")))
            .with_base_url(format!("{}/v1.0", api.uri()))
            .with_retry(RetryConfig::none())
            .build()
            .unwrap();
        assert!(sink.quota().await.is_err(), "{status} is not a drive");
        assert!(sink.scan(None).await.is_err(), "{status} is not a listing");
        nothing_reached(&elsewhere).await;
    }
}

#[tokio::test]
async fn qonto_calls_do_not_follow_redirects() {
    for status in REDIRECTS {
        let elsewhere = MockServer::start().await;
        let api = redirecting_to(&elsewhere, status).await;
        let source = QontoSourceBuilder::new(QontoAuth::api_key("org-login", "secret-key"))
            .with_base_url(api.uri())
            .with_staging_token("staging-token")
            .with_retry(RetryConfig::none())
            .build()
            .unwrap();
        assert!(
            source.accounts().await.is_err(),
            "{status} is not an organization"
        );
        nothing_reached(&elsewhere).await;
    }
}

#[tokio::test]
async fn token_refreshes_do_not_follow_redirects() {
    for status in REDIRECTS {
        let elsewhere = MockServer::start().await;
        let login = redirecting_to(&elsewhere, status).await;
        let config = MicrosoftAuthConfig::builder("client-id")
            .with_login_base_url(login.uri())
            .with_retry(RetryConfig::none())
            .build()
            .unwrap();
        let expired = MicrosoftTokens {
            access_token: SecretString::new("old-access-token"),
            refresh_token: SecretString::new("refresh-token-to-keep"),
            expires_at: Utc::now() - chrono::Duration::minutes(5),
            scopes: vec!["Files.ReadWrite.AppFolder".into(), "offline_access".into()],
        };
        let store = Arc::new(InMemoryTokenStore::with_tokens(expired));
        let provider = MicrosoftTokenProvider::new(config, store);
        assert!(
            provider.access_token().await.is_err(),
            "{status} is no token"
        );
        nothing_reached(&elsewhere).await;
    }
}

/// A caller's client that follows redirects, as `reqwest::Client::new()` does.
fn following_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(10))
        .build()
        .unwrap()
}

/// A login host whose token endpoint answers `status` towards `elsewhere`, and whose
/// device-code endpoint hands out `device_code`.
async fn login_redirecting_tokens(elsewhere: &MockServer, status: u16) -> MockServer {
    let login = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("/oauth2/v2.0/token$"))
        .respond_with(
            ResponseTemplate::new(status)
                .insert_header("location", format!("{}/collect", elsewhere.uri()).as_str()),
        )
        .mount(&login)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("/oauth2/v2.0/devicecode$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "device_code": DEVICE_CODE,
            "user_code": "WDJB-MJHT",
            "verification_uri": "https://microsoft.com/devicelogin",
            "expires_in": 900,
            "interval": 1,
        })))
        .mount(&login)
        .await;
    login
}

/// A second server that would gladly hand out tokens for whatever it is sent.
async fn collector() -> MockServer {
    let elsewhere = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "token-from-elsewhere",
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": "refresh-from-elsewhere",
        })))
        .mount(&elsewhere)
        .await;
    elsewhere
}

fn following_config(login: &MockServer) -> MicrosoftAuthConfig {
    MicrosoftAuthConfig::builder("client-id")
        .with_login_base_url(login.uri())
        .with_http_client(following_client())
        .with_retry(RetryConfig::none())
        .build()
        .unwrap()
}

/// No request that reached `elsewhere` carries a grant: 307 and 308 would replay the
/// body, so after them nothing at all may arrive; after 301, 302 and 303 a client may
/// turn the POST into a bodiless GET, which must carry none of `secrets`.
async fn no_grant_reached(elsewhere: &MockServer, status: u16, secrets: &[&str]) {
    let received = elsewhere.received_requests().await.unwrap_or_default();
    for request in &received {
        let seen = format!(
            "{} {} {:?} {}",
            request.method,
            request.url,
            request.headers,
            String::from_utf8_lossy(&request.body)
        );
        for secret in secrets {
            assert!(
                !seen.contains(secret),
                "{status}: {secret:?} reached another host: {seen}"
            );
        }
        assert!(
            request.body.is_empty(),
            "{status}: a token request body reached another host: {seen}"
        );
    }
    if matches!(status, 307 | 308) {
        nothing_reached(elsewhere).await;
    }
}

const REFRESH_TOKEN: &str = "refresh-token-to-keep-3f9a";
const AUTH_CODE: &str = "authorization-code-7c21e";
const DEVICE_CODE: &str = "device-code-secret-55d0b";

#[tokio::test]
async fn a_following_client_does_not_carry_a_refresh_token_away() {
    for status in REDIRECTS {
        let elsewhere = collector().await;
        let login = login_redirecting_tokens(&elsewhere, status).await;
        let expired = MicrosoftTokens {
            access_token: SecretString::new("old-access-token"),
            refresh_token: SecretString::new(REFRESH_TOKEN),
            expires_at: Utc::now() - chrono::Duration::minutes(5),
            scopes: vec!["Files.ReadWrite.AppFolder".into(), "offline_access".into()],
        };
        let store = Arc::new(InMemoryTokenStore::with_tokens(expired));
        let provider = MicrosoftTokenProvider::new(following_config(&login), store);
        let refused = provider.access_token().await;
        assert!(refused.is_err(), "{status} is no token: {refused:?}");
        no_grant_reached(&elsewhere, status, &[REFRESH_TOKEN, "refresh_token"]).await;
    }
}

#[tokio::test]
async fn a_following_client_does_not_carry_a_code_or_verifier_away() {
    for status in REDIRECTS {
        let elsewhere = collector().await;
        let login = login_redirecting_tokens(&elsewhere, status).await;
        let config = following_config(&login);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let flow = tokio::spawn(async move {
            let options = BrowserSignInOptions::default().with_timeout(Duration::from_secs(20));
            sign_in_with_browser(&config, &options, move |url| {
                let _ = tx.send(url.clone());
            })
            .await
        });
        let url = rx.await.unwrap();
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap()
        };
        // Play the browser coming back from the sign-in page with a code.
        let back = format!(
            "{}?code={AUTH_CODE}&state={}",
            param("redirect_uri"),
            param("state")
        );
        reqwest::get(back).await.unwrap();
        let refused = flow.await.unwrap();
        assert!(refused.is_err(), "{status} is no token: {refused:?}");
        no_grant_reached(&elsewhere, status, &[AUTH_CODE, "code_verifier"]).await;
    }
}

#[tokio::test]
async fn a_following_client_does_not_carry_a_device_code_away() {
    for status in REDIRECTS {
        let elsewhere = collector().await;
        let login = login_redirecting_tokens(&elsewhere, status).await;
        let options = DeviceCodeOptions::default()
            .with_timeout(Duration::from_secs(5))
            .with_sleep(Arc::new(|_| Box::pin(async {})));
        let started = std::time::Instant::now();
        let refused = sign_in_with_device_code(&following_config(&login), &options, |_| {}).await;
        assert!(
            matches!(refused, Err(receipt_sync::Error::Config(_))),
            "{status} is a wrong endpoint: {refused:?}"
        );
        no_grant_reached(&elsewhere, status, &[DEVICE_CODE, "device_code"]).await;
        // A redirect ends the polling at once instead of polling until the code expires.
        let polls = login
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path().ends_with("/token"))
            .count();
        assert_eq!(polls, 1, "{status}: polled on after a redirect");
        assert!(started.elapsed() < Duration::from_secs(4), "{status}");
    }
}
