//! Device code sign-in for machines without a browser (onedrive-graph.md §1 "Device code
//! flow"; RFC 8628).
//!
//! 1. `POST {tenant}/oauth2/v2.0/devicecode` with the client id and scopes.
//! 2. Show the user code and the verification URI to the user (a caller callback).
//! 3. Poll the token endpoint every `interval` seconds: `authorization_pending` keeps the
//!    interval, `slow_down` adds 5 s (RFC 8628 §3.5), `expired_token`,
//!    `authorization_declined`/`access_denied` and anything else end the wait.
//!
//! The answer's `interval` and `expires_in` are brought within bounds before polling
//! ([`MIN_POLL_INTERVAL`]..=[`MAX_POLL_INTERVAL`], at most [`MAX_CODE_LIFETIME`]):
//! Microsoft sends 5 s and 900 s by default (onedrive-graph.md §1 "Device code flow"), and
//! a value far off would otherwise poll in a tight loop, wait for ever, or overflow the
//! `interval + 5 s` of a `slow_down`.
//!
//! UNCERTAIN (§1, §12.3): Microsoft documents the flow for `/consumers`, but personal
//! accounts on apps Microsoft has not approved are reported to always end with "The code you
//! entered has expired". The expiry error therefore suggests the browser sign-in.

use super::config::{MicrosoftAuthConfig, SERVICE};
use super::error::{Grant, map_request_error, map_transport};
use super::oauth::{Transport, TransportError};
use super::tokens::MicrosoftTokens;
use crate::error::{Error, Result};
use chrono::Utc;
use futures::future::BoxFuture;
use oauth2::{DeviceAuthorizationResponse, ExtraDeviceAuthorizationFields, Scope};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// The shortest wait between polls: an `interval` of 0 would poll the token endpoint in a
/// tight loop for as long as the code lives.
const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The longest wait between polls believed from the device code answer (Microsoft sends
/// 5 s): a user who has just typed the code should not wait minutes for the next poll.
/// `slow_down` may still add 5 s at a time to it.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(60);
/// The longest code lifetime believed from the device code answer, four times Microsoft's
/// default of 900 s: past it the flow ends with an expired code, so that a bad answer cannot
/// keep it polling for days. A timeout given in [`DeviceCodeOptions`] still replaces it.
const MAX_CODE_LIFETIME: Duration = Duration::from_secs(3600);

/// Microsoft's extra field in the device code answer: a ready-made instruction.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct MicrosoftDeviceFields {
    #[serde(default)]
    message: Option<String>,
}

impl ExtraDeviceAuthorizationFields for MicrosoftDeviceFields {}

/// The device code answer, as oauth2 reads it.
type DeviceDetails = DeviceAuthorizationResponse<MicrosoftDeviceFields>;

/// What to show the user: where to go and which code to type. `Debug` hides the code.
#[derive(Clone)]
pub struct DeviceCodePrompt {
    user_code: String,
    verification_uri: Url,
    expires_in: Duration,
    message: Option<String>,
}

impl fmt::Debug for DeviceCodePrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCodePrompt")
            .field("user_code", &"[redacted]")
            .field("verification_uri", &self.verification_uri.as_str())
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

impl DeviceCodePrompt {
    /// The code the user types at [`verification_uri`](Self::verification_uri).
    pub fn user_code(&self) -> &str {
        &self.user_code
    }

    /// Where the user signs in (e.g. `https://microsoft.com/devicelogin`).
    pub fn verification_uri(&self) -> &Url {
        &self.verification_uri
    }

    /// How long the code stays usable (Microsoft: 900 s by default).
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }

    /// Microsoft's own instruction, or one built from the code and the URI.
    pub fn instructions(&self) -> String {
        match &self.message {
            Some(m) if !m.trim().is_empty() => m.clone(),
            _ => format!(
                "To sign in, open {} and enter the code {}",
                self.verification_uri, self.user_code
            ),
        }
    }
}

/// How the device flow waits between polls.
pub type SleepFn = Arc<dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync>;

/// Options of [`sign_in_with_device_code`].
#[derive(Clone)]
pub struct DeviceCodeOptions {
    timeout: Option<Duration>,
    sleep: SleepFn,
}

impl fmt::Debug for DeviceCodeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCodeOptions")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Default for DeviceCodeOptions {
    fn default() -> Self {
        Self {
            timeout: None,
            sleep: Arc::new(|d| Box::pin(tokio::time::sleep(d))),
        }
    }
}

impl DeviceCodeOptions {
    /// Gives up after `timeout` (default: the code's own `expires_in`).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Replaces the wait between polls (default `tokio::time::sleep`); tests record the
    /// requested intervals instead of sleeping through them.
    pub fn with_sleep(mut self, sleep: SleepFn) -> Self {
        self.sleep = sleep;
        self
    }
}

/// Signs in with a device code: `show` receives what to tell the user, then the token
/// endpoint is polled until the user finishes, declines, or the code expires.
///
/// The answer's poll interval is held between 1 s and 60 s, and its code lifetime to at
/// most an hour (Microsoft sends 5 s and 900 s), so that a bad answer can neither make the
/// flow poll in a tight loop nor keep it waiting for days.
///
/// # Errors
/// - [`Error::Permanent`](crate::Error::Permanent) on `expired_token`, with a hint that
///   personal accounts may be blocked from this flow and the browser sign-in works.
/// - [`Error::ConsentRevoked`](crate::Error::ConsentRevoked): the user declined.
/// - [`Error::Config`](crate::Error::Config): the app is refused (for example "Allow public
///   client flows" is off: AADSTS7000218, §1).
/// - Transient errors when the device code itself cannot be obtained.
pub async fn sign_in_with_device_code(
    config: &MicrosoftAuthConfig,
    options: &DeviceCodeOptions,
    show: impl FnOnce(&DeviceCodePrompt) + Send,
) -> Result<MicrosoftTokens> {
    let client = config.oauth_client();
    let http = Transport::new(config.http());
    let scopes = config.scopes();
    let details: DeviceDetails = config
        .retry()
        .retry(|_| {
            let request = client
                .exchange_device_code()
                .add_scopes(scopes.iter().cloned().map(Scope::new));
            let http = &http;
            async move {
                request
                    .request_async(http)
                    .await
                    .map_err(|e| map_request_error(Grant::Device, config.client_id(), e))
            }
        })
        .await?;
    let details = within_bounds(details)?;
    let prompt = DeviceCodePrompt {
        user_code: details.user_code().secret().clone(),
        verification_uri: details.verification_uri().url().clone(),
        expires_in: details.expires_in(),
        message: details.extra_fields().message.clone(),
    };
    tracing::info!(
        interval_s = details.interval().as_secs(),
        expires_in_s = details.expires_in().as_secs(),
        "waiting for the device code sign-in"
    );
    show(&prompt);
    // oauth2 polls as RFC 8628 says: same interval on authorization_pending, +5 s on
    // slow_down, and backs off (at most 10 s) while the endpoint cannot be reached. It takes
    // a redirect for such a failure and would poll on until the code expires, but a redirect
    // means a wrong endpoint: once one is seen, the next wait never ends and the select
    // below ends the flow with it, before another poll is sent. (The device code itself
    // never follows the redirect, see `oauth`.)
    let poll_http = Transport::new(config.http());
    let wait = |interval| {
        let sleep = (!poll_http.was_redirected()).then(|| (options.sleep)(interval));
        async move {
            match sleep {
                Some(sleep) => sleep.await,
                None => std::future::pending().await,
            }
        }
    };
    let poll = client.exchange_device_access_token(&details).request_async(
        &poll_http,
        wait,
        options.timeout,
    );
    let response = tokio::select! {
        polled = poll => polled.map_err(|e| map_request_error(Grant::Device, config.client_id(), e))?,
        () = poll_http.redirected() => {
            return Err(map_transport(Grant::Device, TransportError::Redirected));
        }
    };
    MicrosoftTokens::from_response(&response, None, &scopes, Utc::now())
}

/// The device code answer, its `interval` and `expires_in` brought within bounds (see the
/// module docs). oauth2 polls with the answer's own fields and offers no setter for them,
/// so an answer out of bounds is rebuilt through its serde form.
fn within_bounds(details: DeviceDetails) -> Result<DeviceDetails> {
    let interval = details
        .interval()
        .clamp(MIN_POLL_INTERVAL, MAX_POLL_INTERVAL);
    let expires_in = details.expires_in().min(MAX_CODE_LIFETIME);
    if interval == details.interval() && expires_in == details.expires_in() {
        return Ok(details);
    }
    tracing::warn!(
        interval_s = details.interval().as_secs(),
        expires_in_s = details.expires_in().as_secs(),
        used_interval_s = interval.as_secs(),
        used_expires_in_s = expires_in.as_secs(),
        "the device code answer's timing is out of bounds; polling within bounds"
    );
    // serde's messages could quote a value (the device code): say only what failed.
    let unreadable = |_| Error::Malformed {
        service: SERVICE,
        field: "interval".into(),
        detail: "the device code answer could not be rebuilt with its timing in bounds".into(),
    };
    let mut fields = serde_json::to_value(&details).map_err(unreadable)?;
    if let Some(fields) = fields.as_object_mut() {
        fields.insert("interval".into(), interval.as_secs().into());
        fields.insert("expires_in".into(), expires_in.as_secs().into());
    }
    serde_json::from_value(fields).map_err(unreadable)
}
