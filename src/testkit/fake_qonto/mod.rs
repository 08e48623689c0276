//! A stateful fake of the Qonto Business API v2, on loopback, for tests.
//!
//! Three [`FakeServer`]s: the API host, a separate download host serving expiring
//! pre-signed URLs (it refuses, and counts, any request carrying a credential), and
//! a mirror download host the first one can redirect to. The organisation's data
//! changes through helpers (new transactions and attachments, renamed accounts) on a
//! logical clock that moves one second per change, so `updated_at` watermarks are
//! deterministic. It serves one organisation, or several
//! ([`FakeQonto::add_organisation`]), each read with its own API key.
//!
//! ```
//! # async fn demo() -> std::io::Result<()> {
//! use receipt_sync::testkit::fake_qonto::{FakeQonto, NewTransaction};
//! let fake = FakeQonto::start().await?;
//! let account = fake.add_account("Main");
//! let tx = fake.add_transaction(&account.id, NewTransaction::debit(5240, "TotalEnergies"));
//! fake.add_attachment(&tx, "ticket.jpg", "image/jpeg", b"jpeg bytes".to_vec());
//! let source = fake.source_builder().build().expect("valid settings");
//! # let _ = source; Ok(()) }
//! ```

mod api;
mod config;
mod downloads;
mod faults;
mod organisation;
mod shared;
mod state;

pub use config::{FakeAccount, FakePaging, FakeQontoConfig, NewTransaction};
pub use faults::Fault;
pub use organisation::FakeOrganisation;

use crate::auth::SecretString;
use crate::http::RetryConfig;
use crate::source::qonto::{QontoAuth, QontoRateLimit, QontoSourceBuilder, QontoTokens};
use crate::testkit::server::{FakeServer, RequestLog};
use chrono::{DateTime, Utc};
use shared::Shared;
use state::Org;
use std::sync::Arc;
use std::time::Duration;

/// The fake Qonto: an API host and two download hosts sharing its organisations.
pub struct FakeQonto {
    api: FakeServer,
    downloads: FakeServer,
    mirror: FakeServer,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FakeQonto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeQonto")
            .field("api", &self.api.url())
            .field("downloads", &self.downloads.url())
            .finish_non_exhaustive()
    }
}

impl FakeQonto {
    /// Starts a fake with the default settings.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(FakeQontoConfig::default()).await
    }

    /// Starts a fake with `config`.
    pub async fn start_with(config: FakeQontoConfig) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::new(config));
        let api = FakeServer::start(Arc::new(api::ApiHost {
            shared: shared.clone(),
        }))
        .await?;
        let mirror = FakeServer::start(Arc::new(downloads::DownloadHost {
            shared: shared.clone(),
            mirror: None,
        }))
        .await?;
        // The mirror is named `localhost`, the others `127.0.0.1`: a redirect
        // between them crosses hosts, as a real one would.
        let mirror_url = format!("http://localhost:{}", mirror.addr().port());
        let downloads = FakeServer::start(Arc::new(downloads::DownloadHost {
            shared: shared.clone(),
            mirror: Some(mirror_url),
        }))
        .await?;
        shared.lock().signer.base = downloads.url();
        Ok(Self {
            api,
            downloads,
            mirror,
            shared,
        })
    }

    /// The API base URL.
    pub fn url(&self) -> String {
        self.api.url()
    }

    /// The download host's base URL (where pre-signed URLs point).
    pub fn download_url(&self) -> String {
        self.downloads.url()
    }

    /// The OAuth token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.api.url())
    }

    /// The API key this fake accepts.
    pub fn api_key(&self) -> QontoAuth {
        let state = self.shared.lock();
        QontoAuth::api_key(
            state.settings.login.as_str(),
            state.settings.secret_key.as_str(),
        )
    }

    /// A source builder pointed at this fake: its API key, fast retries, no rate limit.
    pub fn source_builder(&self) -> QontoSourceBuilder {
        QontoSourceBuilder::new(self.api_key())
            .with_base_url(self.url())
            .with_retry(RetryConfig::fast())
            .with_rate_limit(QontoRateLimit::unlimited())
    }

    /// A fresh token pair, as after a sign-in: `expires_at` follows the configured lifetime
    /// (the end of chrono's calendar for a lifetime that reaches past it).
    pub fn issue_tokens(&self) -> QontoTokens {
        let mut state = self.shared.lock();
        let lifetime = state.settings.access_token_lifetime;
        let (access, refresh) = state.tokens.issue(lifetime);
        let now = Utc::now();
        QontoTokens {
            access_token: SecretString::new(access),
            refresh_token: SecretString::new(refresh),
            expires_at: chrono::Duration::from_std(lifetime)
                .ok()
                .and_then(|lifetime| now.checked_add_signed(lifetime))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }

    /// The OAuth client id and secret this fake accepts.
    pub fn client_credentials(&self) -> (String, SecretString) {
        let state = self.shared.lock();
        (
            state.settings.client_id.clone(),
            SecretString::new(state.settings.client_secret.clone()),
        )
    }

    /// Makes every access token issued so far invalid (the server answers 401).
    pub fn expire_access_tokens(&self) {
        self.shared.lock().tokens.access.clear();
    }

    /// Revokes the live refresh token (a refresh answers `invalid_grant`).
    pub fn revoke_refresh_token(&self) {
        self.shared.lock().tokens.refresh = None;
    }

    /// The first organisation: the one this fake's own helpers change.
    pub fn organisation(&self) -> FakeOrganisation {
        FakeOrganisation {
            shared: self.shared.clone(),
            number: 0,
            api_url: self.api.url(),
        }
    }

    /// Adds an organisation served by the same hosts, with its own API key (`login`,
    /// and a secret of its own): several organisations, each read with its own key,
    /// as an owner of two companies or an accountant has. Its ids never collide with
    /// another organisation's, while its IBANs end like theirs (accounts added in
    /// the same order get the same last four digits), as real ones may. OAuth tokens stay the first one's.
    pub fn add_organisation(&self, login: &str) -> FakeOrganisation {
        let mut state = self.shared.lock();
        let number = state.others.len() + 1;
        let identity = state::OrgIdentity {
            id: format!("cb47875a-9b12-416e-aa9a-{number:012x}"),
            slug: login.to_owned(),
            legal_name: format!("Fake Organisation {number} SAS"),
        };
        let org = Org::numbered(
            state.start,
            u32::try_from(number).unwrap_or(u32::MAX),
            identity,
        );
        state.others.push(shared::OtherOrg {
            login: login.to_owned(),
            secret_key: format!("fake-secret-key-{number}"),
            org,
        });
        FakeOrganisation {
            shared: self.shared.clone(),
            number,
            api_url: self.api.url(),
        }
    }

    /// Adds an account that `/v2/organization` lists with its id.
    pub fn add_account(&self, name: &str) -> FakeAccount {
        self.organisation().add_account(name)
    }

    /// Adds an account that `/v2/organization` lists without its id (qonto.md §8.6);
    /// `/v2/bank_accounts` still has it.
    pub fn add_account_without_id(&self, name: &str) -> FakeAccount {
        self.organisation().add_account_without_id(name)
    }

    /// Renames account `id` (by id or IBAN). Returns whether it exists.
    pub fn rename_account(&self, id: &str, name: &str) -> bool {
        self.organisation().rename_account(id, name)
    }

    /// Adds a transaction to account `account` (by id or IBAN); returns its id, or an
    /// empty string when the account does not exist.
    pub fn add_transaction(&self, account: &str, tx: NewTransaction) -> String {
        self.organisation().add_transaction(account, tx)
    }

    /// Attaches a file to transaction `tx`, bumping its `updated_at` (qonto.md §8.8:
    /// assumed, as qonto-backup does). Returns the attachment id, or an empty string
    /// when the transaction does not exist.
    pub fn add_attachment(
        &self,
        tx: &str,
        file_name: &str,
        content_type: &str,
        bytes: impl Into<bytes::Bytes>,
    ) -> String {
        self.organisation()
            .add_attachment(tx, file_name, content_type, bytes)
    }

    /// Adds `count` transactions with one attachment of `size` bytes each to
    /// `account`; returns the attachment ids.
    pub fn add_receipts(&self, account: &str, count: usize, size: usize) -> Vec<String> {
        self.organisation().add_receipts(account, count, size)
    }

    /// Merges `fields` over transaction `tx`'s JSON from now on (to send odd shapes).
    pub fn patch_transaction(&self, tx: &str, fields: serde_json::Value) {
        let mut state = self.shared.lock();
        let Some(&index) = state.org.tx_index.get(tx) else {
            return;
        };
        if let (Some(tx), serde_json::Value::Object(fields)) =
            (state.org.txs.get_mut(index), fields)
        {
            tx.patch.extend(fields);
        }
    }

    /// Makes attachment `id` announce `file_size` instead of its real size.
    pub fn set_announced_file_size(&self, id: &str, file_size: serde_json::Value) {
        if let Some(att) = self.shared.lock().org.atts.get_mut(id) {
            att.announced_size = Some(file_size);
        }
    }

    /// The logical clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.lock().org.now()
    }

    /// Moves the logical clock on (or back, for a negative `by`); it stops at the ends of
    /// chrono's calendar.
    pub fn advance_clock(&self, by: chrono::Duration) {
        self.shared.lock().org.advance(by);
    }

    /// Sets the paging parameter honoured.
    pub fn set_paging(&self, paging: FakePaging) {
        self.shared.lock().settings.paging = paging;
    }

    /// Sets how long pre-signed URLs work, from now on (already issued ones included).
    pub fn set_url_lifetime(&self, lifetime: Duration) {
        self.shared.lock().settings.url_lifetime = lifetime;
    }

    /// Makes the download host answer every download with a redirect to the mirror host.
    pub fn set_redirect_downloads(&self, redirect: bool) {
        self.shared.lock().settings.redirect_downloads = redirect;
    }

    /// Makes every API call answer 403 naming `scope` (or stop doing so with `None`).
    pub fn set_missing_scope(&self, scope: Option<&str>) {
        self.shared.lock().settings.missing_scope = scope.map(str::to_owned);
    }

    /// Answers the next request whose route starts with `route_prefix` (for example
    /// `"GET /v2/transactions"` or `"GET /s3/"`) with `fault`.
    pub fn inject(&self, route_prefix: &str, fault: Fault) {
        self.inject_times(route_prefix, fault, 1);
    }

    /// Like [`inject`](Self::inject), for the next `times` matching requests.
    pub fn inject_times(&self, route_prefix: &str, fault: Fault, times: usize) {
        self.shared.lock().faults.queue(route_prefix, fault, times);
    }

    /// Throws a retryable fault (429 with and without `Retry-After`, 503, dropped
    /// connection, truncated body, in equal shares) at
    /// each request with `probability`, drawn from an RNG seeded with `seed`, so a
    /// failing run replays. A probability of 0 turns chaos off.
    pub fn set_chaos(&self, seed: u64, probability: f64) {
        self.shared.lock().faults.set_chaos(seed, probability);
    }

    /// Every fault thrown so far (queued or chaos), with the route it hit, in order: a
    /// test can check that the faults it queued met a request.
    pub fn fault_log(&self) -> Vec<(String, Fault)> {
        self.shared.lock().faults.fired.clone()
    }

    /// The chaos seed in use, to print when a test fails.
    pub fn chaos_seed(&self) -> Option<u64> {
        self.shared.lock().faults.chaos_seed()
    }

    /// Requests served by the API host, per route.
    pub fn api_requests(&self) -> RequestLog {
        self.api.requests()
    }

    /// Requests served by the download host, per route.
    pub fn download_requests(&self) -> RequestLog {
        self.downloads.requests()
    }

    /// Requests served by the mirror download host, per route.
    pub fn mirror_requests(&self) -> RequestLog {
        self.mirror.requests()
    }

    /// Delays every answer of every host (API and both download hosts) by `latency` from
    /// now on, as a distant server would: for benchmarks.
    pub fn set_latency(&self, latency: Duration) {
        self.api.set_latency(latency);
        self.downloads.set_latency(latency);
        self.mirror.set_latency(latency);
    }

    /// Forgets every host's request counts.
    pub fn reset_requests(&self) {
        self.api.reset_requests();
        self.downloads.reset_requests();
        self.mirror.reset_requests();
    }

    /// Download requests (on either download host) that carried an `Authorization`
    /// or `X-Qonto-Staging-Token` header. They are refused; this must stay 0.
    pub fn credential_leaks(&self) -> u64 {
        self.shared.lock().credential_leaks
    }
}
