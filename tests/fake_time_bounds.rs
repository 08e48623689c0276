//! The fakes take any time a test configures without overflowing the clock: token
//! lifetimes up to `Duration::MAX` (tokens are checked by the time elapsed since they were
//! issued, and an `expires_at` past the end of chrono's calendar is the calendar's end),
//! and a fake Qonto's logical clock started or moved to the ends of the calendar.
#![cfg(feature = "testkit")]

use chrono::{DateTime, Utc};
use receipt_sync::http::RetryConfig;
use receipt_sync::source::ReceiptSource;
use receipt_sync::source::qonto::{
    InMemoryTokenStore, QontoAuth, QontoOAuth, QontoRateLimit, QontoSource, QontoSourceBuilder,
    QontoTokens,
};
use receipt_sync::testkit::fake_identity::{FakeIdentity, FakeIdentityConfig};
use receipt_sync::testkit::fake_qonto::{FakeQonto, FakeQontoConfig, NewTransaction};
use std::sync::Arc;
use std::time::Duration;

async fn fake_qonto_with_token_lifetime(lifetime: Duration) -> FakeQonto {
    let mut config = FakeQontoConfig::default();
    config.access_token_lifetime = lifetime;
    let fake = FakeQonto::start_with(config).await.unwrap();
    fake.add_account("Main");
    fake
}

fn oauth_source(fake: &FakeQonto, tokens: QontoTokens) -> QontoSource {
    let (client_id, client_secret) = fake.client_credentials();
    let store = Arc::new(InMemoryTokenStore::new());
    let oauth =
        QontoOAuth::new(client_id, client_secret, tokens, store).with_token_url(fake.token_url());
    QontoSourceBuilder::new(QontoAuth::OAuth(oauth))
        .with_base_url(fake.url())
        .with_retry(RetryConfig::fast())
        .with_rate_limit(QontoRateLimit::unlimited())
        .build()
        .unwrap()
}

#[tokio::test]
async fn fake_qonto_issues_tokens_that_never_expire() {
    let fake = fake_qonto_with_token_lifetime(Duration::MAX).await;
    let tokens = fake.issue_tokens();
    assert_eq!(tokens.expires_at, DateTime::<Utc>::MAX_UTC);
    let source = oauth_source(&fake, tokens);
    assert_eq!(source.accounts().await.unwrap().len(), 1);
}

#[tokio::test]
async fn fake_qonto_refreshes_to_tokens_that_never_expire() {
    let fake = fake_qonto_with_token_lifetime(Duration::MAX).await;
    let mut tokens = fake.issue_tokens();
    // Seen as expired: the first call refreshes through the fake's token endpoint.
    tokens.expires_at = Utc::now() - chrono::Duration::seconds(1);
    fake.expire_access_tokens();
    let source = oauth_source(&fake, tokens);
    assert_eq!(source.accounts().await.unwrap().len(), 1);
    assert_eq!(source.accounts().await.unwrap().len(), 1);
}

#[test]
fn fake_identity_issues_tokens_that_never_expire() {
    for lifetime in [Duration::MAX, Duration::from_secs(u64::MAX / 2)] {
        let fake =
            FakeIdentity::new(FakeIdentityConfig::default().with_access_token_lifetime(lifetime));
        let (access, refresh) = fake.issue_tokens(&["Files.ReadWrite.AppFolder"]);
        assert!(fake.is_valid_access_token(&access));
        assert!(fake.is_valid_refresh_token(&refresh));
    }
    let fake =
        FakeIdentity::new(FakeIdentityConfig::default().with_access_token_lifetime(Duration::ZERO));
    let (access, _) = fake.issue_tokens(&["Files.ReadWrite.AppFolder"]);
    assert!(
        !fake.is_valid_access_token(&access),
        "a zero lifetime is expired at once"
    );
}

#[tokio::test]
async fn fake_qontos_clock_stops_at_the_ends_of_the_calendar() {
    let mut config = FakeQontoConfig::default();
    config.start = DateTime::<Utc>::MAX_UTC;
    let fake = FakeQonto::start_with(config).await.unwrap();
    let account = fake.add_account("Main");
    let tx = fake.add_transaction(&account.id, NewTransaction::debit(100, "Shop"));
    assert!(
        !fake
            .add_attachment(&tx, "r.pdf", "application/pdf", b"pdf".to_vec())
            .is_empty()
    );
    assert_eq!(fake.now(), DateTime::<Utc>::MAX_UTC);
    fake.advance_clock(chrono::Duration::MIN);
    assert_eq!(fake.now(), DateTime::<Utc>::MIN_UTC);
    fake.advance_clock(chrono::Duration::days(1));
    assert_eq!(
        fake.now(),
        DateTime::<Utc>::MIN_UTC + chrono::Duration::days(1)
    );
    fake.advance_clock(chrono::Duration::MAX);
    assert_eq!(fake.now(), DateTime::<Utc>::MAX_UTC);
}
