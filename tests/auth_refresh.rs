//! MicrosoftTokenProvider against the fake identity provider: rotation saved at once,
//! single-flight refresh, revoked consent, refused client, transient failures, invalidate,
//! the 2-minute margin, bare refresh tokens, sign-out.
#![cfg(feature = "testkit")]

mod auth_support;

use async_trait::async_trait;
use auth_support::{APP_FOLDER, Idp};
use receipt_sync::auth::microsoft::{
    InMemoryTokenStore, MicrosoftTokenProvider, MicrosoftTokens, TokenStore,
};
use receipt_sync::auth::{AccessTokenProvider, SecretString};
use receipt_sync::{Error, ErrorKind, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const REFRESH: &str = "refresh_token";

fn provider(idp: &Idp, store: Arc<InMemoryTokenStore>) -> MicrosoftTokenProvider {
    MicrosoftTokenProvider::new(idp.config(), store)
}

#[tokio::test]
async fn a_refresh_rotates_and_saves_the_new_refresh_token_at_once() {
    let idp = Idp::default().await;
    let old = idp.expired_tokens();
    let store = Arc::new(InMemoryTokenStore::with_tokens(old.clone()));
    let provider = provider(&idp, store.clone());

    let access = provider.access_token().await.unwrap();
    assert!(idp.fake.is_valid_access_token(access.expose()));
    let saved = store.snapshot().unwrap();
    assert_eq!(store.saves(), 1);
    assert_eq!(saved.access_token, access);
    assert_ne!(saved.refresh_token, old.refresh_token);
    assert!(
        idp.fake
            .is_valid_refresh_token(saved.refresh_token.expose())
    );
    assert!(
        !idp.fake.is_valid_refresh_token(old.refresh_token.expose()),
        "the fake kills the used one"
    );
    assert_eq!(saved.scopes, APP_FOLDER);

    // Valid for an hour: the next calls are served from the cache.
    assert_eq!(provider.access_token().await.unwrap(), access);
    assert_eq!(idp.token_requests(REFRESH), 1);
}

/// Fails its first `save`, then works.
#[derive(Debug, Default)]
struct FlakyStore {
    inner: InMemoryTokenStore,
    calls: AtomicU32,
}

#[async_trait]
impl TokenStore for FlakyStore {
    async fn load(&self) -> Result<Option<MicrosoftTokens>> {
        self.inner.load().await
    }
    async fn save(&self, tokens: &MicrosoftTokens) -> Result<()> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(Error::io(
                "write",
                "tokens.json",
                std::io::Error::other("disk full"),
            ));
        }
        self.inner.save(tokens).await
    }
    async fn clear(&self) -> Result<()> {
        self.inner.clear().await
    }
}

#[tokio::test]
async fn no_access_token_is_handed_out_before_the_rotated_tokens_are_saved() {
    let idp = Idp::default().await;
    let store = Arc::new(FlakyStore::default());
    store.inner.save(&idp.expired_tokens()).await.unwrap();
    let provider = MicrosoftTokenProvider::new(idp.config(), store.clone());

    let err = provider.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    // The next call saves the tokens it kept in memory, then hands out their access token
    // without a second refresh (the first one already killed the old refresh token).
    let access = provider.access_token().await.unwrap();
    let saved = store.inner.snapshot().unwrap();
    assert_eq!(saved.access_token, access);
    assert!(
        idp.fake
            .is_valid_refresh_token(saved.refresh_token.expose())
    );
    assert_eq!(idp.token_requests(REFRESH), 1);
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let idp = Idp::default().await;
    idp.server.set_latency(Duration::from_millis(100));
    let store = Arc::new(InMemoryTokenStore::with_tokens(idp.expired_tokens()));
    let provider = Arc::new(provider(&idp, store.clone()));

    let calls = (0..16).map(|_| {
        let provider = provider.clone();
        tokio::spawn(async move { provider.access_token().await })
    });
    let tokens: Vec<SecretString> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().unwrap())
        .collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    assert_eq!(idp.fake.token_request_count(), 1);
    assert_eq!(store.saves(), 1);
}

#[tokio::test]
async fn revoked_consent_is_consent_revoked_after_exactly_one_request() {
    let idp = Idp::default().await;
    let store = Arc::new(InMemoryTokenStore::with_tokens(idp.expired_tokens()));
    let provider = provider(&idp, store.clone());
    idp.fake.revoke_consent();

    for _ in 0..3 {
        let err = provider.access_token().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConsentRevoked);
        assert!(!err.is_retryable() && err.stops_sync());
        let message = err.to_string();
        assert!(
            message.contains("sign in to the Microsoft account again"),
            "{message}"
        );
        assert!(message.contains("AADSTS700082"), "{message}");
    }
    // Default-sized retry policy, three calls: still one request.
    assert_eq!(idp.fake.token_request_count(), 1);
    assert!(
        store.snapshot().is_some(),
        "the saved tokens are left for the user to replace"
    );
}

#[tokio::test]
async fn a_refused_client_is_a_config_error_naming_the_registration() {
    let idp = Idp::default().await;
    let store = Arc::new(InMemoryTokenStore::with_tokens(idp.expired_tokens()));
    let provider = MicrosoftTokenProvider::new(idp.config_for("not-registered"), store);
    let err = provider.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let message = err.to_string();
    assert!(
        message.contains("not-registered") && message.contains("app registration"),
        "{message}"
    );
    assert!(message.contains("unauthorized_client"), "{message}");
    assert_eq!(idp.fake.token_request_count(), 1);
}

#[tokio::test]
async fn server_errors_and_throttling_are_retried() {
    let idp = Idp::default().await;
    idp.fake.fail_next_token_requests(&[503, 500, 429]);
    let store = Arc::new(InMemoryTokenStore::with_tokens(idp.expired_tokens()));
    let access = provider(&idp, store).access_token().await.unwrap();
    assert!(idp.fake.is_valid_access_token(access.expose()));
    assert_eq!(idp.token_requests(REFRESH), 4);

    // More failures than attempts: a retryable error comes back.
    idp.fake.fail_next_token_requests(&[503; 10]);
    let store = Arc::new(InMemoryTokenStore::with_tokens(idp.expired_tokens()));
    let err = provider(&idp, store).access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn invalidate_forces_one_refresh_for_the_refused_token_only() {
    let idp = Idp::default().await;
    let store = Arc::new(InMemoryTokenStore::with_tokens(idp.expired_tokens()));
    let provider = provider(&idp, store);
    let first = provider.access_token().await.unwrap();
    provider.invalidate(&first).await;
    let second = provider.access_token().await.unwrap();
    assert_ne!(first, second);
    assert_eq!(idp.token_requests(REFRESH), 2);
    // A late 401 for the replaced token does not refresh again.
    provider.invalidate(&first).await;
    assert_eq!(provider.access_token().await.unwrap(), second);
    assert_eq!(idp.token_requests(REFRESH), 2);
}

#[tokio::test]
async fn tokens_with_less_than_two_minutes_left_are_refreshed() {
    let idp = Idp::default().await;
    idp.fake.set_access_token_lifetime(Duration::from_secs(119));
    let store = Arc::new(InMemoryTokenStore::with_tokens(idp.expired_tokens()));
    let provider = provider(&idp, store);
    let a = provider.access_token().await.unwrap();
    let b = provider.access_token().await.unwrap();
    assert_ne!(a, b);
    assert_eq!(idp.token_requests(REFRESH), 2);
    idp.fake.set_access_token_lifetime(Duration::from_secs(125));
    let c = provider.access_token().await.unwrap();
    assert_eq!(provider.access_token().await.unwrap(), c);
    assert_eq!(idp.token_requests(REFRESH), 3);
}

#[tokio::test]
async fn a_bare_refresh_token_starts_an_empty_store_but_never_overrides_a_saved_one() {
    let idp = Idp::default().await;
    let (_, bare) = idp.fake.issue_tokens(&APP_FOLDER);
    let store = Arc::new(InMemoryTokenStore::new());
    let provider = MicrosoftTokenProvider::from_refresh_token(
        idp.config(),
        store.clone(),
        SecretString::new(bare.clone()),
    );
    let access = provider.access_token().await.unwrap();
    assert!(idp.fake.is_valid_access_token(access.expose()));
    let saved = store.snapshot().unwrap();
    assert_ne!(saved.refresh_token.expose(), bare);
    assert_eq!(provider.granted_scopes().await.unwrap(), APP_FOLDER);

    // The store now holds the rotated token; a provider given the (dead) bare one again uses
    // the store's.
    let again = MicrosoftTokenProvider::from_refresh_token(
        idp.config(),
        store.clone(),
        SecretString::new(bare),
    );
    assert_eq!(again.access_token().await.unwrap(), access);
}

#[tokio::test]
async fn disconnect_forgets_the_tokens() {
    let idp = Idp::default().await;
    let store = Arc::new(InMemoryTokenStore::with_tokens(idp.expired_tokens()));
    let provider = provider(&idp, store.clone());
    provider.access_token().await.unwrap();
    provider.disconnect().await.unwrap();
    assert!(store.snapshot().is_none());
    let err = provider.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(err.to_string().contains("not signed in"), "{err}");

    let fresh = MicrosoftTokenProvider::new(idp.config(), Arc::new(InMemoryTokenStore::new()));
    assert_eq!(
        fresh.access_token().await.unwrap_err().kind(),
        ErrorKind::Unauthorized
    );
}
