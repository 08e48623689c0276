//! Shared set-up for the Microsoft sign-in tests: a fake identity provider on loopback and a
//! config pointing at it.
#![allow(dead_code)]

use receipt_sync::auth::SecretString;
use receipt_sync::auth::microsoft::{MicrosoftAuthConfig, MicrosoftTokens};
use receipt_sync::http::RetryConfig;
use receipt_sync::testkit::fake_identity::{FakeIdentity, FakeIdentityConfig};
use receipt_sync::testkit::server::FakeServer;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

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

/// Everything this test binary logs: `tracing` events at every level, and the records of
/// the `log` facade (reqwest writes its own there, a `tracing` subscriber alone misses them),
/// in one text.
#[derive(Clone, Default)]
pub struct Captured {
    text: Arc<Mutex<Vec<u8>>>,
    /// `log` records per target.
    log_records: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lock(&self.text).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.text)).into_owned()
    }

    /// How many `log` records came from targets starting with `prefix` (`"reqwest"`).
    pub fn log_records(&self, prefix: &str) -> u64 {
        lock(&self.log_records)
            .iter()
            .filter(|(target, _)| target.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }
}

/// A poisoned lock still holds what was captured (a failing test must not hide it).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `log` facade's logger: each record goes into the capture, as a line of its own.
struct LogCapture(Captured);

impl log::Log for LogCapture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!(
            "{} {}: {}\n",
            record.level(),
            record.target(),
            record.args()
        );
        lock(&self.0.text).extend_from_slice(line.as_bytes());
        *lock(&self.0.log_records)
            .entry(record.target().to_owned())
            .or_default() += 1;
    }

    fn flush(&self) {}
}

static CAPTURE: OnceLock<Captured> = OnceLock::new();

/// Captures every `tracing` event and every `log` record of this test binary, at TRACE,
/// from the first call on. A process has one global subscriber and one logger, so every
/// test of the binary shares this capture: a test looks for its own secrets in it.
pub fn capture_trace() -> Captured {
    CAPTURE
        .get_or_init(|| {
            let logs = Captured::default();
            let writer = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
            log::set_logger(Box::leak(Box::new(LogCapture(logs.clone())))).unwrap();
            log::set_max_level(log::LevelFilter::Trace);
            logs
        })
        .clone()
}

/// The secrets that occur in `text`.
pub fn leaked<'a>(text: &str, secrets: &'a [String]) -> Vec<&'a str> {
    secrets
        .iter()
        .map(String::as_str)
        .filter(|secret| text.contains(secret))
        .collect()
}
