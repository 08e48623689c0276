//! A redirect never carries a credential to another host: the Graph API, the Qonto API
//! and the Microsoft token endpoint each answer with a redirect to a second server,
//! which must receive nothing at all (the clients follow no redirect where a
//! credential rides along; downloads, which carry none, are covered in
//! `qonto_flows.rs` and `qonto_attachments.rs`).

use chrono::Utc;
use receipt_sync::auth::microsoft::{
    InMemoryTokenStore, MicrosoftAuthConfig, MicrosoftTokenProvider, MicrosoftTokens,
};
use receipt_sync::auth::{AccessTokenProvider, SecretString, StaticToken};
use receipt_sync::http::RetryConfig;
use receipt_sync::sink::ArchiveSink;
use receipt_sync::sink::onedrive::OneDriveSink;
use receipt_sync::source::ReceiptSource;
use receipt_sync::source::qonto::{QontoAuth, QontoSourceBuilder};
use std::sync::Arc;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

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
    for status in [301, 302, 303, 307, 308] {
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
    for status in [301, 302, 303, 307, 308] {
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
    for status in [301, 302, 303, 307, 308] {
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
