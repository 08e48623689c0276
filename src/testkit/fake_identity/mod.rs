//! A stateful fake of the Microsoft identity platform v2 (onedrive-graph.md §1), served by
//! [`FakeServer`](super::server::FakeServer):
//!
//! - `GET /{tenant}/oauth2/v2.0/authorize`: "signs the user in" at once and redirects
//!   (302) to the `redirect_uri` with a `code` and the `state`, or with
//!   `error=access_denied` when the user is set to decline. It demands PKCE S256 and
//!   remembers the challenge.
//! - `POST /{tenant}/oauth2/v2.0/token`: grants `authorization_code` (the verifier is
//!   checked against the challenge; a code works once), `refresh_token` (rotation: each
//!   refresh returns a new refresh token and kills the old one), and the device code grant
//!   (answers follow a script of pending / slow_down / approve / decline / expire). Public
//!   client only: a `client_secret` or an `Authorization` header is refused.
//! - `POST /{tenant}/oauth2/v2.0/devicecode`.
//!
//! Tokens are random strings; [`FakeIdentity::is_valid_access_token`] tells a fake Graph
//! whether a bearer token is live. Errors look like Microsoft's (`error`,
//! `error_description` starting with an AADSTS code, `error_codes`, trace ids).

mod endpoints;

use rand::Rng;
use rand::distributions::Alphanumeric;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use url::Url;

/// One answer of the fake to a device code poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevicePoll {
    /// `authorization_pending`: the user has not finished yet.
    Pending,
    /// `slow_down`: poll less often.
    SlowDown,
    /// The user signed in: tokens are issued.
    Approve,
    /// `authorization_declined`: the user refused.
    Decline,
    /// `expired_token`: the code ran out (what personal accounts reportedly see on
    /// unapproved apps, §1).
    Expire,
}

/// The fake's settings.
#[derive(Clone, Debug)]
pub struct FakeIdentityConfig {
    /// The only client id accepted (others get `unauthorized_client`, AADSTS700016).
    pub client_id: String,
    /// The tenant path segment served.
    pub tenant: String,
    /// The lifetime of issued access tokens.
    pub access_token_lifetime: Duration,
    /// The `interval` (seconds) of device codes.
    pub device_interval_secs: u64,
    /// The `expires_in` (seconds) of device codes.
    pub device_expires_in_secs: u64,
    /// How device code polls are answered, in order; once it runs out, the poll is approved.
    pub device_script: Vec<DevicePoll>,
}

impl Default for FakeIdentityConfig {
    fn default() -> Self {
        Self {
            client_id: "fake-client-id".into(),
            tenant: "consumers".into(),
            access_token_lifetime: Duration::from_secs(3600),
            device_interval_secs: 5,
            device_expires_in_secs: 900,
            device_script: Vec::new(),
        }
    }
}

impl FakeIdentityConfig {
    /// Sets the accepted client id.
    pub fn with_client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    /// Sets the access-token lifetime.
    pub fn with_access_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.access_token_lifetime = lifetime;
        self
    }

    /// Sets the device code poll script and interval.
    pub fn with_device_script(mut self, interval_secs: u64, script: &[DevicePoll]) -> Self {
        self.device_interval_secs = interval_secs;
        self.device_script = script.to_vec();
        self
    }
}

/// What the simulated browser saw when it followed the redirect to the app.
#[derive(Clone, Debug)]
pub struct BrowserVisit {
    /// The status the app's loopback listener answered.
    pub status: u16,
    /// The page it answered.
    pub body: String,
}

struct PendingCode {
    redirect_uri: String,
    challenge: String,
    scopes: Vec<String>,
    issued: Instant,
}

struct DeviceSession {
    script: VecDeque<DevicePoll>,
    scopes: Vec<String>,
}

struct IdState {
    config: FakeIdentityConfig,
    user_declines: bool,
    codes: HashMap<String, PendingCode>,
    devices: HashMap<String, DeviceSession>,
    refresh_tokens: HashMap<String, Vec<String>>,
    /// Token → when it was issued, its lifetime and the scopes it carries. Checked by the
    /// time elapsed since it was issued, so that no lifetime, however large, is ever added
    /// to the clock.
    access_tokens: HashMap<String, AccessGrant>,
    failures: VecDeque<u16>,
    grants: BTreeMap<String, u64>,
}

/// One access token the fake issued.
struct AccessGrant {
    issued: Instant,
    lifetime: Duration,
    scopes: Vec<String>,
}

/// Looks up the scopes of a bearer token: `None` for a token the registry does not know.
/// [`FakeIdentity::token_scopes`] makes one, for
/// [`FakeGraph::refuse_app_folder_only_tokens`](super::fake_graph::FakeGraph::refuse_app_folder_only_tokens).
pub type TokenScopes = Arc<dyn Fn(&str) -> Option<Vec<String>> + Send + Sync>;

/// The fake identity provider; serve it with
/// [`FakeServer::start`](super::server::FakeServer::start) and point
/// `MicrosoftAuthConfig::with_login_base_url` at the server's URL.
pub struct FakeIdentity {
    state: Mutex<IdState>,
}

impl std::fmt::Debug for FakeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeIdentity").finish_non_exhaustive()
    }
}

impl FakeIdentity {
    /// A fake with `config`.
    pub fn new(config: FakeIdentityConfig) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(IdState {
                config,
                user_declines: false,
                codes: HashMap::new(),
                devices: HashMap::new(),
                refresh_tokens: HashMap::new(),
                access_tokens: HashMap::new(),
                failures: VecDeque::new(),
                grants: BTreeMap::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, IdState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `token` is an access token this fake issued and that has not expired or been
    /// revoked.
    pub fn is_valid_access_token(&self, token: &str) -> bool {
        self.lock()
            .access_tokens
            .get(token)
            .is_some_and(|grant| grant.issued.elapsed() < grant.lifetime)
    }

    /// The scopes the live access token `token` was issued with (as the sign-in or refresh
    /// asked for them); `None` for a token this fake did not issue, or one expired or revoked.
    pub fn access_token_scopes(&self, token: &str) -> Option<Vec<String>> {
        self.lock()
            .access_tokens
            .get(token)
            .filter(|grant| grant.issued.elapsed() < grant.lifetime)
            .map(|grant| grant.scopes.clone())
    }

    /// [`access_token_scopes`](Self::access_token_scopes) as a closure: the token registry a
    /// fake Graph shares with this fake to know what each bearer token may do.
    pub fn token_scopes(self: &Arc<Self>) -> TokenScopes {
        let this = self.clone();
        Arc::new(move |token| this.access_token_scopes(token))
    }

    /// [`is_valid_access_token`](Self::is_valid_access_token) as a closure, for a fake Graph
    /// that takes a token validator.
    pub fn access_token_validator(self: &Arc<Self>) -> Arc<dyn Fn(&str) -> bool + Send + Sync> {
        let this = self.clone();
        Arc::new(move |token| this.is_valid_access_token(token))
    }

    /// Whether `token` is a refresh token that still works.
    pub fn is_valid_refresh_token(&self, token: &str) -> bool {
        self.lock().refresh_tokens.contains_key(token)
    }

    /// Issues tokens as if the user had signed in with `scopes`: `(access, refresh)`.
    pub fn issue_tokens(&self, scopes: &[&str]) -> (String, String) {
        let mut state = self.lock();
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let access = state.new_access_token(&scopes);
        let refresh = random("fake-rt-", 40);
        state.refresh_tokens.insert(refresh.clone(), scopes);
        (access, refresh)
    }

    /// The user withdraws the app's consent: every refresh and access token stops working,
    /// and refreshing answers `invalid_grant` (onedrive-graph.md §1 "Refresh tokens").
    pub fn revoke_consent(&self) {
        let mut state = self.lock();
        state.refresh_tokens.clear();
        state.access_tokens.clear();
    }

    /// Expires one access token now (a Graph 401 follows).
    pub fn expire_access_token(&self, token: &str) {
        self.lock().access_tokens.remove(token);
    }

    /// Makes the simulated user decline consent on the next authorizations.
    pub fn set_user_declines(&self, declines: bool) {
        self.lock().user_declines = declines;
    }

    /// Changes the lifetime of access tokens issued from now on.
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        self.lock().config.access_token_lifetime = lifetime;
    }

    /// Answers the next token-endpoint requests with these HTTP statuses (a 503 carries
    /// `Retry-After: 1`), one each, before serving normally again.
    pub fn fail_next_token_requests(&self, statuses: &[u16]) {
        self.lock().failures.extend(statuses.iter().copied());
    }

    /// Token-endpoint requests seen, per `grant_type` (failed ones included).
    pub fn token_requests(&self) -> BTreeMap<String, u64> {
        self.lock().grants.clone()
    }

    /// Token-endpoint requests seen in all.
    pub fn token_request_count(&self) -> u64 {
        self.lock().grants.values().sum()
    }

    /// Plays the browser: opens `authorize_url` on this fake (which signs the user in, or
    /// declines), then follows its redirect to the app's loopback listener.
    ///
    /// # Errors
    /// A description when the authorize endpoint does not redirect or a request fails.
    pub async fn simulate_browser(&self, authorize_url: &Url) -> Result<BrowserVisit, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let answer = http
            .get(authorize_url.clone())
            .send()
            .await
            .map_err(|e| format!("authorize request failed: {e}"))?;
        let location = answer
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let Some(location) = location else {
            let status = answer.status().as_u16();
            let body = answer.text().await.unwrap_or_default();
            return Err(format!(
                "authorize answered {status} without a redirect: {body}"
            ));
        };
        let visit = http
            .get(&location)
            .send()
            .await
            .map_err(|e| format!("redirect to the app failed: {e}"))?;
        Ok(BrowserVisit {
            status: visit.status().as_u16(),
            body: visit.text().await.unwrap_or_default(),
        })
    }
}

impl IdState {
    fn new_access_token(&mut self, scopes: &[String]) -> String {
        let token = random("fake-at-", 40);
        let grant = AccessGrant {
            issued: Instant::now(),
            lifetime: self.config.access_token_lifetime,
            scopes: scopes.to_vec(),
        };
        self.access_tokens.insert(token.clone(), grant);
        token
    }
}

fn random(prefix: &str, len: usize) -> String {
    let tail: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    format!("{prefix}{tail}")
}
