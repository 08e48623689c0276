//! What the fake's API host and download hosts share: data, settings, tokens, signed URLs.

use super::faults::Faults;
use super::state::Org;
use super::{FakePaging, FakeQontoConfig};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Everything behind one lock.
pub(super) struct Shared {
    state: Mutex<State>,
}

impl Shared {
    pub(super) fn new(config: FakeQontoConfig) -> Self {
        Self {
            state: Mutex::new(State {
                org: Org::new(config.start),
                others: Vec::new(),
                start: config.start,
                faults: Faults::new(),
                settings: Settings {
                    login: config.login,
                    secret_key: config.secret_key,
                    client_id: config.client_id,
                    client_secret: config.client_secret,
                    staging_token: config.staging_token,
                    paging: config.paging,
                    url_lifetime: config.url_lifetime,
                    access_token_lifetime: config.access_token_lifetime,
                    missing_scope: None,
                    redirect_downloads: false,
                },
                tokens: Tokens::default(),
                signer: Signer::default(),
                credential_leaks: 0,
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The fake's whole state.
pub(super) struct State {
    /// The first organisation, whose key is in the settings (and whose the OAuth tokens are).
    pub org: Org,
    /// The organisations added since, each with its own API key.
    pub others: Vec<OtherOrg>,
    /// When the logical clocks of organisations start.
    pub start: chrono::DateTime<chrono::Utc>,
    pub faults: Faults,
    pub settings: Settings,
    pub tokens: Tokens,
    pub signer: Signer,
    /// Download requests that carried `Authorization` or the staging header.
    pub credential_leaks: u64,
}

/// An organisation added to the fake, and its API key.
pub(super) struct OtherOrg {
    pub login: String,
    pub secret_key: String,
    pub org: Org,
}

/// Which organisation: 0 the first, `n` the `n`-th added.
pub(super) type OrgNumber = usize;

impl State {
    /// Organisation `number`, if there is one.
    pub(super) fn org_mut(&mut self, number: OrgNumber) -> Option<&mut Org> {
        match number {
            0 => Some(&mut self.org),
            n => self.others.get_mut(n - 1).map(|o| &mut o.org),
        }
    }

    /// The organisation whose API key is `header` (`{login}:{secret}`).
    pub(super) fn org_of_key(&self, header: &str) -> Option<OrgNumber> {
        if header == format!("{}:{}", self.settings.login, self.settings.secret_key) {
            return Some(0);
        }
        self.others
            .iter()
            .position(|o| header == format!("{}:{}", o.login, o.secret_key))
            .map(|i| i + 1)
    }

    /// Attachment `id`, whichever organisation has it (ids never collide across them).
    pub(super) fn attachment(&self, id: &str) -> Option<&super::state::Att> {
        std::iter::once(&self.org)
            .chain(self.others.iter().map(|o| &o.org))
            .find_map(|org| org.atts.get(id))
    }
}

/// Behaviour switches.
pub(super) struct Settings {
    pub login: String,
    pub secret_key: String,
    pub client_id: String,
    pub client_secret: String,
    pub staging_token: Option<String>,
    pub paging: FakePaging,
    pub url_lifetime: Duration,
    pub access_token_lifetime: Duration,
    /// Every API call answers 403 naming this scope.
    pub missing_scope: Option<String>,
    /// The download host answers with a redirect to the mirror host.
    pub redirect_downloads: bool,
}

/// OAuth tokens: access tokens with when they were issued and their lifetime, and the one
/// live refresh token.
#[derive(Default)]
pub(super) struct Tokens {
    /// Token → (issued at, lifetime). Checked by the time elapsed since it was issued, so
    /// that no lifetime, however large, is ever added to the clock.
    pub access: HashMap<String, (Instant, Duration)>,
    pub refresh: Option<String>,
    counter: u64,
}

impl Tokens {
    /// A new pair; the previous refresh token stops working (rotation, qonto.md §1.2).
    pub(super) fn issue(&mut self, lifetime: Duration) -> (String, String) {
        self.counter += 1;
        let access = format!("ory_at_fake{}", self.counter);
        let refresh = format!("ory_rt_fake{}", self.counter);
        self.access
            .insert(access.clone(), (Instant::now(), lifetime));
        self.refresh = Some(refresh.clone());
        (access, refresh)
    }

    pub(super) fn access_valid(&self, token: &str) -> bool {
        self.access
            .get(token)
            .is_some_and(|(issued, lifetime)| issued.elapsed() < *lifetime)
    }
}

/// Pre-signed download URLs: signature → (attachment id, issued at).
#[derive(Default)]
pub(super) struct Signer {
    pub base: String,
    signed: HashMap<String, (String, Instant)>,
    counter: u64,
}

impl Signer {
    /// A fresh URL for `attachment`, valid for `lifetime` from now.
    pub(super) fn sign(&mut self, attachment: &str, lifetime: Duration) -> String {
        self.counter += 1;
        // Not a real signature: unguessable enough for a test, unique per URL.
        let signature = format!(
            "{:016x}",
            self.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED
        );
        self.signed
            .insert(signature.clone(), (attachment.to_owned(), Instant::now()));
        format!(
            "{}/s3/{attachment}?X-Amz-Expires={}&X-Amz-Signature={signature}",
            self.base,
            lifetime.as_secs()
        )
    }

    /// Whether `signature` was issued for `attachment` less than `lifetime` ago.
    pub(super) fn check(&self, attachment: &str, signature: &str, lifetime: Duration) -> bool {
        self.signed
            .get(signature)
            .is_some_and(|(id, issued)| id == attachment && issued.elapsed() < lifetime)
    }
}
