//! Construction and validation of an [`OneDriveSink`].

use super::OneDriveSink;
use super::request::GraphClient;
use crate::auth::AccessTokenProvider;
use crate::error::{Error, Result};
use crate::http::{PagingLimits, RetryConfig};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Graph's production endpoint.
pub const DEFAULT_BASE_URL: &str = "https://graph.microsoft.com/v1.0";
/// The app name the app folder is created with by default (`Apps/receipt-sync`).
pub const DEFAULT_APP_NAME: &str = "receipt-sync";
/// Files up to this size go in one request (onedrive-graph.md §3: 4 MB in the OneDrive docs,
/// 250 MB in the Graph page; every peer cuts over at about 4 MiB, §12.1).
pub const DEFAULT_SIMPLE_UPLOAD_CUTOFF: u64 = 4 * 1024 * 1024;
/// The default upload-session fragment (onedrive-graph.md §3: 5–10 MiB recommended).
pub const DEFAULT_FRAGMENT_SIZE: u64 = 32 * FRAGMENT_UNIT;
/// Every fragment but the last must be a multiple of 320 KiB (onedrive-graph.md §3).
pub const FRAGMENT_UNIT: u64 = 327_680;
/// Each fragment request must stay under 60 MiB (onedrive-graph.md §3).
pub const MAX_FRAGMENT_SIZE: u64 = 60 * 1024 * 1024;
/// The largest simple upload accepted by the current Graph documentation (onedrive-graph.md §3).
const MAX_SIMPLE_UPLOAD_CUTOFF: u64 = 250 * 1000 * 1000;

/// The default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default longest silence while a response is awaited or read.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The default bound on one whole request, body included: a 60 MiB fragment at 100 KB/s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Where the archive lives in the drive.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OneDriveRoot {
    /// The app folder, `/me/drive/special/approot` (`Apps/<app name>/` for the user;
    /// the `Apps` part is localized, so it is only ever addressed by its alias,
    /// onedrive-graph.md §2).
    AppFolder,
    /// A folder path from the drive root, such as `Documents/Receipts`; created if missing.
    Folder(String),
}

/// Builds an [`OneDriveSink`]; [`build`](Self::build) validates every setting.
pub struct OneDriveSinkBuilder {
    pub(crate) tokens: Arc<dyn AccessTokenProvider>,
    pub(crate) base_url: String,
    pub(crate) drive_id: Option<String>,
    pub(crate) http: Option<reqwest::Client>,
    pub(crate) upload_http: Option<reqwest::Client>,
    pub(crate) retry: RetryConfig,
    pub(crate) user_agent: String,
    pub(crate) root: OneDriveRoot,
    pub(crate) app_name: String,
    pub(crate) simple_upload_cutoff: u64,
    pub(crate) fragment_size: u64,
    pub(crate) use_delta: bool,
    pub(crate) timeouts: Timeouts,
    pub(crate) paging: PagingLimits,
}

/// The bounds on every request of the default clients: nothing waits forever.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    connect: Duration,
    idle: Duration,
    request: Duration,
}

/// Written by hand to leave out the clients given with
/// [`with_http_client`](OneDriveSinkBuilder::with_http_client) and
/// [`with_upload_http_client`](OneDriveSinkBuilder::with_upload_http_client): reqwest's
/// `Debug` prints a client's default headers and proxies, where a caller may have put
/// credentials. Only whether one was given shows; the token provider stays out too.
impl fmt::Debug for OneDriveSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneDriveSinkBuilder")
            .field("base_url", &self.base_url)
            .field("drive_id", &self.drive_id)
            .field("custom_http_client", &self.http.is_some())
            .field("custom_upload_http_client", &self.upload_http.is_some())
            .field("retry", &self.retry)
            .field("user_agent", &self.user_agent)
            .field("root", &self.root)
            .field("app_name", &self.app_name)
            .field("simple_upload_cutoff", &self.simple_upload_cutoff)
            .field("fragment_size", &self.fragment_size)
            .field("use_delta", &self.use_delta)
            .field("timeouts", &self.timeouts)
            .field("paging", &self.paging)
            .finish_non_exhaustive()
    }
}

impl OneDriveSinkBuilder {
    pub(crate) fn new(tokens: Arc<dyn AccessTokenProvider>) -> Self {
        Self {
            tokens,
            base_url: DEFAULT_BASE_URL.to_owned(),
            drive_id: None,
            http: None,
            upload_http: None,
            retry: RetryConfig::default(),
            user_agent: format!(
                "ISV|receipt-sync|receipt-sync/{}",
                env!("CARGO_PKG_VERSION")
            ),
            root: OneDriveRoot::AppFolder,
            app_name: DEFAULT_APP_NAME.to_owned(),
            simple_upload_cutoff: DEFAULT_SIMPLE_UPLOAD_CUTOFF,
            fragment_size: DEFAULT_FRAGMENT_SIZE,
            use_delta: true,
            timeouts: Timeouts {
                connect: DEFAULT_CONNECT_TIMEOUT,
                idle: DEFAULT_IDLE_TIMEOUT,
                request: DEFAULT_REQUEST_TIMEOUT,
            },
            paging: PagingLimits::default(),
        }
    }

    /// The timeouts: to connect, of silence while a response is awaited or read, and of
    /// one whole request, body included (defaults [`DEFAULT_CONNECT_TIMEOUT`],
    /// [`DEFAULT_IDLE_TIMEOUT`], [`DEFAULT_REQUEST_TIMEOUT`]). The request timeout is set
    /// on every request, so it also bounds clients given with
    /// [`with_http_client`](Self::with_http_client) and
    /// [`with_upload_http_client`](Self::with_upload_http_client) (replacing their own);
    /// the connect and idle timeouts are those of the default clients only (reqwest sets
    /// them per client). A timeout is a transient error, retried with the retry policy.
    pub fn with_timeouts(mut self, connect: Duration, idle: Duration, request: Duration) -> Self {
        self.timeouts = Timeouts {
            connect,
            idle,
            request,
        };
        self
    }

    /// The Graph endpoint (default [`DEFAULT_BASE_URL`]). `http://` is accepted only
    /// for loopback hosts. The bearer token is sent to this scheme, host and port only.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Addresses the drive as `/drives/{id}` instead of `/me/drive`.
    pub fn with_drive_id(mut self, drive_id: impl Into<String>) -> Self {
        self.drive_id = Some(drive_id.into());
        self
    }

    /// The client for Graph API requests (default: a new one that follows no redirect
    /// and sends no `Referer`). Give it no default `Authorization` header: the sink adds
    /// the bearer itself, and only for the Graph host. Build it with
    /// `redirect(reqwest::redirect::Policy::none())` and `referer(false)`: a client that
    /// follows redirects hands the request to whatever host a redirect names.
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The client for upload-session URLs, which never carries a bearer token
    /// (default: a new one, separate from the API client, that follows no redirect and
    /// sends no `Referer`). An upload URL is itself a credential (onedrive-graph.md §3):
    /// build this client with `redirect(reqwest::redirect::Policy::none())` and
    /// `referer(false)`, or a redirect would carry the URL to another host as `Referer`
    /// (reqwest sets that header while following, after any per-request header).
    pub fn with_upload_http_client(mut self, client: reqwest::Client) -> Self {
        self.upload_http = Some(client);
        self
    }

    /// The retry policy (default [`RetryConfig::default`]). Its
    /// [`max_retry_after`](RetryConfig::max_retry_after) is the ceiling on Graph's
    /// `Retry-After` (default one hour): waited in full below it, every request of the
    /// sink paused meanwhile; above it the run stops with
    /// [`Error::ThrottledUntil`](crate::Error::ThrottledUntil).
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// The `User-Agent` (default `ISV|receipt-sync|receipt-sync/<version>`, the form Graph's
    /// throttling guidance asks for).
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Where the archive lives (default [`OneDriveRoot::AppFolder`]).
    pub fn with_root(mut self, root: OneDriveRoot) -> Self {
        self.root = root;
        self
    }

    /// The app registration's name, which names the app folder `Apps/<name>`; used to
    /// compute [`SinkCapabilities::root_prefix_len`](crate::sink::SinkCapabilities)
    /// (default [`DEFAULT_APP_NAME`]).
    pub fn with_app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = name.into();
        self
    }

    /// Files up to this many bytes are uploaded in one request (default 4 MiB).
    /// The bytes of such a file are kept in memory until it is acknowledged.
    pub fn with_simple_upload_cutoff(mut self, bytes: u64) -> Self {
        self.simple_upload_cutoff = bytes;
        self
    }

    /// The upload-session fragment size (default 10 MiB): a multiple of 327,680 bytes
    /// and under 60 MiB. It bounds the memory of one large upload.
    pub fn with_fragment_size(mut self, bytes: u64) -> Self {
        self.fragment_size = bytes;
        self
    }

    /// Whether scans use the delta feed (default `true`); without it every scan lists
    /// every folder's children and is answered in full.
    pub fn with_delta(mut self, use_delta: bool) -> Self {
        self.use_delta = use_delta;
        self
    }

    /// Bounds each scan's listing (a delta enumeration, or the folder-by-folder walk without
    /// delta): past them the scan fails with [`Error::Malformed`] instead of reading on, and
    /// nothing is taken as deleted (default [`PagingLimits::default`]).
    pub fn with_paging_limits(mut self, limits: PagingLimits) -> Self {
        self.paging = limits;
        self
    }

    /// Checks the settings and builds the sink.
    ///
    /// # Errors
    /// [`Error::Config`] for an unparsable or remote `http://` base URL, a fragment size
    /// that is not a multiple of 327,680 bytes or not under 60 MiB, a zero or oversized
    /// simple-upload cutoff, an empty app name or folder path, or an invalid user agent.
    pub fn build(self) -> Result<OneDriveSink> {
        let base = check_url(&self.base_url)?;
        if self.fragment_size == 0
            || !self.fragment_size.is_multiple_of(FRAGMENT_UNIT)
            || self.fragment_size >= MAX_FRAGMENT_SIZE
        {
            return Err(Error::Config(format!(
                "OneDrive fragment size {} must be a positive multiple of {FRAGMENT_UNIT} bytes \
                 (320 KiB) under 60 MiB",
                self.fragment_size
            )));
        }
        if self.simple_upload_cutoff == 0 || self.simple_upload_cutoff > MAX_SIMPLE_UPLOAD_CUTOFF {
            return Err(Error::Config(format!(
                "OneDrive simple-upload cutoff {} must be between 1 and {MAX_SIMPLE_UPLOAD_CUTOFF} bytes",
                self.simple_upload_cutoff
            )));
        }
        let root_prefix_len = match &self.root {
            OneDriveRoot::AppFolder => {
                if self.app_name.trim().is_empty() {
                    return Err(Error::Config("the OneDrive app name is empty".into()));
                }
                "Apps/".len() + self.app_name.encode_utf16().count() + 1
            }
            OneDriveRoot::Folder(path) => {
                let trimmed = path.trim_matches('/');
                if trimmed.is_empty() || trimmed.split('/').any(str::is_empty) {
                    return Err(Error::Config(format!(
                        "the OneDrive root folder {path:?} is not a folder path such as \"Documents/Receipts\""
                    )));
                }
                trimmed.encode_utf16().count() + 1
            }
        };
        let user_agent = reqwest::header::HeaderValue::from_str(&self.user_agent)
            .map_err(|_| Error::Config("the user agent is not a valid header value".into()))?;
        let drive_path = match &self.drive_id {
            Some(id) => format!("/drives/{}", super::request::encode_segment(id)),
            None => "/me/drive".to_owned(),
        };
        let client = GraphClient::new(super::request::ClientParts {
            api: match self.http {
                Some(client) => client,
                None => default_client(self.timeouts)?,
            },
            upload: match self.upload_http {
                Some(client) => client,
                None => default_client(self.timeouts)?,
            },
            base,
            drive_path,
            request_timeout: self.timeouts.request,
            tokens: self.tokens,
            retry: self.retry,
            user_agent,
            app_folder: self.root == OneDriveRoot::AppFolder,
        });
        let root = match self.root {
            OneDriveRoot::AppFolder => OneDriveRoot::AppFolder,
            OneDriveRoot::Folder(path) => OneDriveRoot::Folder(path.trim_matches('/').to_owned()),
        };
        Ok(OneDriveSink::from_parts(super::Settings {
            client,
            root,
            root_prefix_len,
            simple_upload_cutoff: self.simple_upload_cutoff,
            fragment_size: self.fragment_size,
            use_delta: self.use_delta,
            paging: self.paging,
        }))
    }
}

fn default_client(timeouts: Timeouts) -> Result<reqwest::Client> {
    // No redirects: a redirect target must never receive the bearer token. (Falling
    // back to `Client::default()` on failure would follow redirects: refuse instead.)
    crate::http::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeouts.connect)
        .read_timeout(timeouts.idle)
        .timeout(timeouts.request)
        .build()
        .map_err(|e| Error::Config(format!("the HTTP client could not be built: {e}")))
}

/// Parses a base URL: `https://`, or `http://` to a loopback host only.
pub(crate) fn check_url(raw: &str) -> Result<Url> {
    let url = Url::parse(raw.trim_end_matches('/'))
        .map_err(|e| Error::Config(format!("the Graph base URL {raw:?} is not a URL: {e}")))?;
    check_scheme(&url).map_err(Error::Config)?;
    Ok(url)
}

/// `https`, or `http` to a loopback host.
pub(crate) fn check_scheme(url: &Url) -> std::result::Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "http:// is only allowed for loopback hosts, not {}",
            url.host_str().unwrap_or("?")
        )),
        other => Err(format!("unsupported URL scheme {other:?}")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::StaticToken;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn client_with_a_key_in_its_headers(key: &'static str) -> reqwest::Client {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static(key));
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    #[test]
    fn debug_leaves_out_the_callers_clients_and_the_token() {
        let builder = OneDriveSinkBuilder::new(Arc::new(StaticToken::new("the-bearer-token")))
            .with_http_client(client_with_a_key_in_its_headers("api-client-key"))
            .with_upload_http_client(client_with_a_key_in_its_headers("upload-client-key"));
        let shown = format!("{builder:?}");
        for secret in ["api-client-key", "upload-client-key", "the-bearer-token"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("custom_http_client: true"), "{shown}");
        assert!(shown.contains("custom_upload_http_client: true"), "{shown}");
        let plain = OneDriveSinkBuilder::new(Arc::new(StaticToken::new("t")));
        let shown = format!("{plain:?}");
        assert!(shown.contains("custom_http_client: false"), "{shown}");
        assert!(
            shown.contains("custom_upload_http_client: false"),
            "{shown}"
        );
    }
}
