//! Building a [`QontoSource`]: endpoints, credentials, clients and policies, validated once.

use super::auth::{Authenticator, QONTO_SANDBOX_TOKEN_URL, QONTO_TOKEN_URL, QontoAuth, QontoOAuth};
use super::client::{QontoClient, STAGING_HEADER};
use super::download::{DownloadDeadline, UrlCache};
use super::error::SERVICE;
use super::limiter::{QontoRateLimit, RateLimiter, SharedQontoRateLimiter};
use super::paginate::{Pager, PagingMode};
use super::{Inner, QontoSource};
use crate::auth::SecretString;
use crate::error::{Error, Result};
use crate::http::throttle::Throttle;
use crate::http::{PagingLimits, RetryConfig, is_secure_or_loopback};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::redirect::Policy;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

/// Qonto's production API (qonto.md §1.4).
pub const QONTO_BASE_URL: &str = "https://thirdparty.qonto.com";
/// Qonto's sandbox API (qonto.md §1.4); every call needs the staging token.
pub const QONTO_SANDBOX_BASE_URL: &str = "https://thirdparty-sandbox.staging.qonto.co";

/// Whose bucket a source's API requests are counted in.
#[derive(Clone, Debug)]
enum RateLimitChoice {
    /// Its own, with this limit.
    Own(QontoRateLimit),
    /// One shared with other sources.
    Shared(SharedQontoRateLimiter),
}

/// Redirects a download may follow (to the storage host's regional endpoint, say).
const MAX_DOWNLOAD_REDIRECTS: usize = 5;

/// Builds a [`QontoSource`]. Every setting has a default; [`build`](Self::build) validates.
///
/// Defaults: production base URL, 10 s connect and 30 s request timeouts (downloads:
/// 60 s without a byte, and 60 s plus 1 s per 32 KiB of waiting for the storage host in
/// all), [`RetryConfig::default`], a [`QontoRateLimit::default`] of 100 requests then 15
/// a second, a 5-minute overlap on the watermark, pre-signed URLs reused for 25 minutes,
/// [`PagingMode::Detect`], [`PagingLimits::default`].
///
/// `Debug` shows the settings, with the credentials redacted and the HTTP client left out.
#[derive(Clone)]
pub struct QontoSourceBuilder {
    auth: QontoAuth,
    base_url: String,
    staging_token: Option<SecretString>,
    sandbox: bool,
    http: Option<reqwest::Client>,
    connect_timeout: Duration,
    timeout: Duration,
    download_idle_timeout: Duration,
    download_deadline: DownloadDeadline,
    user_agent: String,
    retry: RetryConfig,
    rate_limit: RateLimitChoice,
    overlap: Duration,
    url_max_age: Duration,
    paging: PagingMode,
    paging_limits: PagingLimits,
}

/// Written by hand to leave out a client given with
/// [`with_http_client`](QontoSourceBuilder::with_http_client): reqwest's `Debug` prints a
/// client's default headers and proxies, where a caller may have put credentials. Only
/// whether one was given shows. The credentials are `SecretString`s (`[redacted]`).
impl fmt::Debug for QontoSourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QontoSourceBuilder")
            .field("auth", &self.auth)
            .field("base_url", &self.base_url)
            .field("staging_token", &self.staging_token)
            .field("sandbox", &self.sandbox)
            .field("custom_http_client", &self.http.is_some())
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("download_idle_timeout", &self.download_idle_timeout)
            .field("download_deadline", &self.download_deadline)
            .field("user_agent", &self.user_agent)
            .field("retry", &self.retry)
            .field("rate_limit", &self.rate_limit)
            .field("overlap", &self.overlap)
            .field("url_max_age", &self.url_max_age)
            .field("paging", &self.paging)
            .field("paging_limits", &self.paging_limits)
            .finish()
    }
}

impl QontoSourceBuilder {
    /// A source on Qonto's production API, authenticated with `auth`.
    pub fn new(auth: QontoAuth) -> Self {
        Self {
            auth,
            base_url: QONTO_BASE_URL.to_owned(),
            staging_token: None,
            sandbox: false,
            http: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            download_idle_timeout: Duration::from_secs(60),
            download_deadline: DownloadDeadline::default(),
            user_agent: concat!("receipt-sync/", env!("CARGO_PKG_VERSION")).to_owned(),
            retry: RetryConfig::default(),
            rate_limit: RateLimitChoice::Own(QontoRateLimit::default()),
            overlap: Duration::from_secs(300),
            url_max_age: Duration::from_secs(25 * 60),
            paging: PagingMode::default(),
            paging_limits: PagingLimits::default(),
        }
    }

    /// A source on Qonto's sandbox: its base URL and token endpoint, and
    /// `X-Qonto-Staging-Token` on every API and token request (qonto.md §1.4).
    /// The header is never sent to download URLs.
    pub fn sandbox(auth: QontoAuth, staging_token: impl Into<SecretString>) -> Self {
        let mut builder = Self::new(auth).with_staging_token(staging_token);
        builder.base_url = QONTO_SANDBOX_BASE_URL.to_owned();
        builder.sandbox = true;
        builder
    }

    /// Sets the API base URL (`https://`, or `http://` to a loopback host only).
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Sends `X-Qonto-Staging-Token` with every API and token request.
    pub fn with_staging_token(mut self, token: impl Into<SecretString>) -> Self {
        self.staging_token = Some(token.into());
        self
    }

    /// Uses `client` for API calls (not for downloads, which always use a client of
    /// their own that carries no credential).
    ///
    /// # Contract
    /// - Build it with `redirect(reqwest::redirect::Policy::none())`. A client that
    ///   follows redirects takes `X-Qonto-Staging-Token` to the redirect target (reqwest
    ///   strips only `Authorization` and cookies, and only on a change of host or port),
    ///   and, unless built with `referer(false)`, the API URL as `Referer`; the sandbox
    ///   redirects to its login page (qonto.md §1.4). An answer that comes from another
    ///   scheme, host or port than the base URL is refused unread with [`Error::Config`].
    /// - Give it no default `Authorization` or staging header: the source adds them to
    ///   each API request itself.
    /// - The request timeout of [`with_timeouts`](Self::with_timeouts) is set on every
    ///   request and replaces the client's own; its connect timeout is the client's.
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Sets the connect timeout and the whole-request timeout of API calls. The request
    /// timeout bounds every API request, also through a client given with
    /// [`with_http_client`](Self::with_http_client); a timeout is retried like any
    /// transport failure.
    pub fn with_timeouts(mut self, connect: Duration, request: Duration) -> Self {
        self.connect_timeout = connect;
        self.timeout = request;
        self
    }

    /// Fails a download after this long without receiving a byte.
    pub fn with_download_idle_timeout(mut self, idle: Duration) -> Self {
        self.download_idle_timeout = idle;
        self
    }

    /// Bounds the time a download may spend waiting for the storage host, scaled to the
    /// attachment's `file_size`: `base + file_size / min_bytes_per_second` (default 60 s
    /// plus 1 s per 32 KiB). A host that drips its bytes just fast enough to beat the
    /// idle timeout would otherwise hold the download, and an upload slot, forever.
    ///
    /// Only waiting for the host counts, not the time the archive takes to consume the
    /// bytes already received, so a slow archive never fails a download. When the
    /// budget is spent the download fails with [`Error::Transient`] (opened again later).
    pub fn with_download_deadline(mut self, base: Duration, min_bytes_per_second: u64) -> Self {
        self.download_deadline = DownloadDeadline {
            base,
            min_bytes_per_second,
        };
        self
    }

    /// Sets the `User-Agent`.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Sets the retry policy for 429, 5xx and transport failures. Its
    /// [`max_retry_after`](RetryConfig::max_retry_after) is the ceiling on Qonto's
    /// `Retry-After` (default one hour): waited in full below it, every API request
    /// paused meanwhile; above it the run stops with [`Error::ThrottledUntil`].
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the client-side rate limit of this source alone
    /// ([`QontoRateLimit::unlimited`] to disable it). Replaces a shared limiter given
    /// before.
    pub fn with_rate_limit(mut self, limit: QontoRateLimit) -> Self {
        self.rate_limit = RateLimitChoice::Own(limit);
        self
    }

    /// Counts this source's API requests in `limiter`, which other sources share
    /// (Qonto's limits are per client IP address, qonto.md §3): sources of many
    /// organisations in one process stay under the limit together, and a throttle met
    /// by one pauses them all (see [`SharedQontoRateLimiter`]). Replaces a
    /// [`with_rate_limit`](Self::with_rate_limit) given before.
    pub fn with_shared_rate_limiter(mut self, limiter: SharedQontoRateLimiter) -> Self {
        self.rate_limit = RateLimitChoice::Shared(limiter);
        self
    }

    /// Re-reads this much before the watermark, so that changes stamped slightly
    /// out of order are not missed.
    pub fn with_overlap(mut self, overlap: Duration) -> Self {
        self.overlap = overlap;
        self
    }

    /// Reuses a listed pre-signed URL for this long before fetching a fresh one.
    /// Qonto's URLs live 30 minutes (qonto.md §2.3).
    pub fn with_url_max_age(mut self, age: Duration) -> Self {
        self.url_max_age = age;
        self
    }

    /// Sets which parameter selects a page (qonto.md §2.6).
    pub fn with_paging(mut self, paging: PagingMode) -> Self {
        self.paging = paging;
        self
    }

    /// Bounds each listing (one account's transactions, the bank accounts): past them it
    /// fails with [`Error::Malformed`] instead of reading on (default
    /// [`PagingLimits::default`]).
    pub fn with_paging_limits(mut self, limits: PagingLimits) -> Self {
        self.paging_limits = limits;
        self
    }

    /// Validates the settings and builds the source.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad or non-`https` remote URL, an empty or
    /// unsendable credential, a download deadline with a zero rate, or a client that
    /// cannot be built.
    pub fn build(self) -> Result<QontoSource> {
        if self.download_deadline.min_bytes_per_second == 0 {
            return Err(Error::Config(
                "the Qonto download deadline needs a rate of at least 1 byte per second".to_owned(),
            ));
        }
        let base = checked_url("base URL", &self.base_url)?;
        let base = base.as_str().trim_end_matches('/').to_owned();
        let staging = match &self.staging_token {
            Some(token) => Some(sensitive(token.expose(), "staging token")?),
            None => None,
        };
        let http = match self.http.clone() {
            Some(client) => client,
            None => self
                .client_builder()
                .redirect(Policy::none())
                .timeout(self.timeout)
                .build()
                .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?,
        };
        let auth = self.authenticator(staging.as_ref())?;
        let download = self
            .client_builder()
            .read_timeout(self.download_idle_timeout)
            .redirect(download_redirects())
            .build()
            .map_err(|e| Error::Config(format!("cannot build the download client: {e}")))?;
        let (limiter, throttle) = match &self.rate_limit {
            RateLimitChoice::Own(limit) => (
                RateLimiter::new(*limit),
                Arc::new(Throttle::new(SERVICE, self.retry.max_retry_after)),
            ),
            RateLimitChoice::Shared(shared) => (shared.limiter.clone(), shared.pause.clone()),
        };
        let client = QontoClient {
            http,
            base,
            auth,
            staging,
            timeout: self.timeout,
            retry: self.retry,
            limiter,
            throttle,
        };
        Ok(QontoSource {
            inner: Arc::new(Inner {
                client,
                pager: Pager::new(self.paging, self.paging_limits),
                download,
                download_deadline: self.download_deadline,
                urls: UrlCache::default(),
                targets: Mutex::new(HashMap::new()),
                overlap: self.overlap,
                url_max_age: self.url_max_age,
            }),
        })
    }

    /// A client builder with this builder's timeouts and user agent, no default headers
    /// (credentials are added per request, only to the API host) and no `Referer`.
    fn client_builder(&self) -> reqwest::ClientBuilder {
        crate::http::client_builder()
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent.clone())
    }

    fn authenticator(&self, staging: Option<&HeaderValue>) -> Result<Authenticator> {
        match &self.auth {
            QontoAuth::ApiKey { login, secret } => {
                if login.expose().trim().is_empty() || secret.expose().trim().is_empty() {
                    return Err(Error::Config(
                        "the Qonto API key needs a login and a secret key".to_owned(),
                    ));
                }
                let value = format!("{}:{}", login.expose(), secret.expose());
                sensitive(&value, "API key")?;
                Ok(Authenticator::ApiKey(SecretString::new(value)))
            }
            QontoAuth::Bearer(provider) => Ok(Authenticator::Bearer(provider.clone())),
            QontoAuth::OAuth(oauth) => self.oauth(oauth.clone(), staging),
        }
    }

    fn oauth(&self, oauth: QontoOAuth, staging: Option<&HeaderValue>) -> Result<Authenticator> {
        let default = if self.sandbox {
            QONTO_SANDBOX_TOKEN_URL
        } else {
            QONTO_TOKEN_URL
        };
        let token_url = checked_url("token URL", oauth.token_url.as_deref().unwrap_or(default))?;
        // The token endpoint needs the staging header too (qonto.md §1.4); this client
        // talks to it alone, never follows a redirect (the oauth2 crate's advice).
        let mut headers = HeaderMap::new();
        if let Some(staging) = staging {
            headers.insert(STAGING_HEADER, staging.clone());
        }
        let http = self
            .client_builder()
            .default_headers(headers)
            .redirect(Policy::none())
            .timeout(self.timeout)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the token client: {e}")))?;
        Ok(Authenticator::Bearer(Arc::new(
            oauth.into_provider(token_url, http),
        )))
    }
}

fn sensitive(value: &str, what: &str) -> Result<HeaderValue> {
    let mut header = HeaderValue::from_str(value)
        .map_err(|_| Error::Config(format!("the {what} holds characters a header cannot carry")))?;
    header.set_sensitive(true);
    Ok(header)
}

fn checked_url(what: &str, text: &str) -> Result<Url> {
    let url = Url::parse(text).map_err(|e| Error::Config(format!("bad Qonto {what}: {e}")))?;
    if !is_secure_or_loopback(&url) {
        return Err(Error::Config(format!(
            "the Qonto {what} must use https (http is allowed only for 127.0.0.1, ::1 and localhost)"
        )));
    }
    Ok(url)
}

/// Downloads follow a few redirects, only to allowed URLs. The download client has no
/// credential to leak, whatever the target (qonto.md §2.3). A refused redirect is
/// permanent: the same URL redirects the same way when tried again.
fn download_redirects() -> Policy {
    Policy::custom(|attempt| {
        if attempt.previous().len() > MAX_DOWNLOAD_REDIRECTS {
            attempt.error("the storage host redirected more than 5 times")
        } else if !is_secure_or_loopback(attempt.url()) {
            attempt.error("the storage host redirected to a URL that is not https")
        } else {
            attempt.follow()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_with_a_key_in_its_headers() -> reqwest::Client {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-api-key",
            HeaderValue::from_static("key-in-a-default-header"),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    #[test]
    fn debug_leaves_out_the_callers_client_and_redacts_the_credentials() {
        let auth = QontoAuth::api_key("the-login", "the-secret-key");
        let builder = QontoSourceBuilder::sandbox(auth, "the-staging-token")
            .with_http_client(client_with_a_key_in_its_headers());
        let shown = format!("{builder:?}");
        for secret in [
            "key-in-a-default-header",
            "the-login",
            "the-secret-key",
            "the-staging-token",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("custom_http_client: true"), "{shown}");
        assert!(shown.contains(QONTO_SANDBOX_BASE_URL), "{shown}");
        let shown = format!(
            "{:?}",
            QontoSourceBuilder::new(QontoAuth::api_key("l", "s"))
        );
        assert!(shown.contains("custom_http_client: false"), "{shown}");
    }

    #[test]
    fn the_built_clients_debug_leaves_out_the_callers_client_too() {
        let auth = QontoAuth::api_key("the-login", "the-secret-key");
        let source = QontoSourceBuilder::sandbox(auth, "the-staging-token")
            .with_http_client(client_with_a_key_in_its_headers())
            .build()
            .unwrap();
        let shown = format!("{:?}", source.inner.client);
        for secret in [
            "key-in-a-default-header",
            "the-secret-key",
            "the-staging-token",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}
