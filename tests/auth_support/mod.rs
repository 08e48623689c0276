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

/// Everything `tracing` writes, at every level.
#[derive(Clone, Default)]
pub struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Captures every `tracing` event of this test binary, at TRACE, from now on.
pub fn capture_trace() -> Captured {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    logs
}
