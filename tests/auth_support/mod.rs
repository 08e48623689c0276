//! Shared set-up for the Microsoft sign-in tests: a fake identity provider on loopback and a
//! config pointing at it.
#![allow(dead_code)]

use receipt_sync::auth::SecretString;
use receipt_sync::auth::microsoft::{MicrosoftAuthConfig, MicrosoftTokens};
use receipt_sync::http::RetryConfig;
use receipt_sync::testkit::fake_identity::{FakeIdentity, FakeIdentityConfig};
use receipt_sync::testkit::server::FakeServer;
use std::sync::Arc;

pub const CLIENT_ID: &str = "fake-client-id";
pub const APP_FOLDER: [&str; 2] = ["Files.ReadWrite.AppFolder", "offline_access"];

pub struct Idp {
    pub fake: Arc<FakeIdentity>,
    pub server: FakeServer,
}

impl Idp {
    pub async fn start(config: FakeIdentityConfig) -> Self {
        let fake = FakeIdentity::new(config);
        let server = FakeServer::start(fake.clone()).await.unwrap();
        Self { fake, server }
    }

    pub async fn default() -> Self {
        Self::start(FakeIdentityConfig::default()).await
    }

    /// A config for this fake, with fast retries.
    pub fn config(&self) -> MicrosoftAuthConfig {
        self.config_for(CLIENT_ID)
    }

    pub fn config_for(&self, client_id: &str) -> MicrosoftAuthConfig {
        MicrosoftAuthConfig::builder(client_id)
            .with_login_base_url(self.server.url())
            .with_retry(RetryConfig::fast())
            .build()
            .unwrap()
    }

    /// Tokens the fake issued, with the access token already expired so the first use
    /// refreshes.
    pub fn expired_tokens(&self) -> MicrosoftTokens {
        let (access, refresh) = self.fake.issue_tokens(&APP_FOLDER);
        MicrosoftTokens {
            access_token: SecretString::new(access),
            refresh_token: SecretString::new(refresh),
            expires_at: chrono::Utc::now() - chrono::Duration::seconds(1),
            scopes: APP_FOLDER.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    pub fn token_requests(&self, grant: &str) -> u64 {
        self.fake.token_requests().get(grant).copied().unwrap_or(0)
    }
}
