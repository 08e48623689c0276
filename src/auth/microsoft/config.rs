//! [`MicrosoftAuthConfig`]: which app signs in, against which tenant and login host,
//! for which scopes, with which HTTP client.

use super::oauth::OAuthClient;
use crate::error::{Error, Result};
use crate::http::RetryConfig;
use oauth2::{AuthUrl, ClientId, DeviceAuthorizationUrl, TokenUrl};
use std::fmt;
use std::time::Duration;
use url::Url;

/// The real Microsoft identity platform host.
pub const DEFAULT_LOGIN_BASE_URL: &str = "https://login.microsoftonline.com";

/// The tenant for personal Microsoft accounts only (onedrive-graph.md §1 "Endpoints and tenants").
pub const DEFAULT_TENANT: &str = "consumers";

/// The `service` named in the errors of the Microsoft sign-in (token endpoint, device
/// code, the token provider), to tell them from Qonto's or OneDrive's.
pub const SERVICE: &str = "microsoft-identity";

/// Asked with every sign-in: without it no refresh token is issued
/// (onedrive-graph.md §1 "Scopes"; E-authcode).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Which OneDrive files the app asks to reach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DriveAccess {
    /// `Files.ReadWrite.AppFolder`: only the app's own folder (`Apps/<app name>`); the least
    /// privilege, and the default.
    #[default]
    AppFolder,
    /// `Files.ReadWrite`: all the user's files. The documented repair for the 2026 bug where
    /// AppFolder-only tokens get 403 on every drive call (onedrive-graph.md §0, §9, §12.2).
    AllFiles,
}

impl DriveAccess {
    /// The scope string sent to Microsoft.
    pub fn scope(self) -> &'static str {
        match self {
            DriveAccess::AppFolder => "Files.ReadWrite.AppFolder",
            DriveAccess::AllFiles => "Files.ReadWrite",
        }
    }
}

/// The host name put in the loopback redirect URI of the browser sign-in.
///
/// The listener always binds `127.0.0.1` on a random port; Microsoft ignores the port when it
/// matches loopback redirect URIs (onedrive-graph.md §1 "Redirect URIs for native apps").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoopbackHost {
    /// `http://localhost:{port}/` (the default): matches the `http://localhost` redirect URI
    /// that the Azure portal lets you type in for "Mobile and desktop applications", the
    /// value Microsoft recommends for apps using the system browser (E-reply).
    #[default]
    Localhost,
    /// `http://127.0.0.1:{port}/`: what Microsoft says to prefer, but such a URI can only be
    /// registered by editing `replyUrlsWithType` in the app manifest (E-reply).
    Ip,
}

impl LoopbackHost {
    pub(crate) fn name(self) -> &'static str {
        match self {
            LoopbackHost::Localhost => "localhost",
            LoopbackHost::Ip => "127.0.0.1",
        }
    }
}

/// How this crate signs in to a personal Microsoft account: a public client (no secret),
/// its tenant, login host and scopes. Build it with [`MicrosoftAuthConfig::builder`].
///
/// Token requests never follow a redirect (the oauth2 v5 upgrade guide's advice against
/// SSRF: a redirect would carry the refresh token to another host). The default client
/// follows none; with a caller's client that does, the request body is sent so that it
/// cannot be replayed to a 307/308 target, and any redirected answer is refused.
#[derive(Clone)]
pub struct MicrosoftAuthConfig {
    client_id: String,
    tenant: String,
    login_base: Url,
    drive_access: DriveAccess,
    loopback_host: LoopbackHost,
    http: reqwest::Client,
    retry: RetryConfig,
}

impl fmt::Debug for MicrosoftAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MicrosoftAuthConfig")
            .field("client_id", &self.client_id)
            .field("tenant", &self.tenant)
            .field("login_base", &self.login_base.as_str())
            .field("drive_access", &self.drive_access)
            .field("loopback_host", &self.loopback_host)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl MicrosoftAuthConfig {
    /// A builder for the app registered with application (client) id `client_id`.
    pub fn builder(client_id: impl Into<String>) -> MicrosoftAuthConfigBuilder {
        MicrosoftAuthConfigBuilder {
            client_id: client_id.into(),
            tenant: DEFAULT_TENANT.to_owned(),
            login_base: DEFAULT_LOGIN_BASE_URL.to_owned(),
            drive_access: DriveAccess::default(),
            loopback_host: LoopbackHost::default(),
            http: None,
            retry: RetryConfig::default(),
        }
    }

    /// The application (client) id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The tenant (`consumers` by default).
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Which files the app asks for.
    pub fn drive_access(&self) -> DriveAccess {
        self.drive_access
    }

    /// The host name of the loopback redirect URI.
    pub fn loopback_host(&self) -> LoopbackHost {
        self.loopback_host
    }

    /// The scopes asked for: the drive scope and `offline_access`.
    pub fn scopes(&self) -> Vec<String> {
        vec![
            self.drive_access.scope().to_owned(),
            OFFLINE_ACCESS.to_owned(),
        ]
    }

    /// `{base}/{tenant}/oauth2/v2.0/authorize`.
    pub fn authorize_endpoint(&self) -> Url {
        self.endpoint("authorize")
    }

    /// `{base}/{tenant}/oauth2/v2.0/token`.
    pub fn token_endpoint(&self) -> Url {
        self.endpoint("token")
    }

    /// `{base}/{tenant}/oauth2/v2.0/devicecode`.
    pub fn device_code_endpoint(&self) -> Url {
        self.endpoint("devicecode")
    }

    /// The retry policy for transient token-endpoint failures.
    pub fn retry(&self) -> RetryConfig {
        self.retry
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn endpoint(&self, name: &str) -> Url {
        // `build()` checked that the base is a URL with a path we can extend, and the tenant
        // is one plain path segment, so pushing segments cannot fail or escape the base.
        let mut url = self.login_base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend([self.tenant.as_str(), "oauth2", "v2.0", name]);
        }
        url
    }

    /// The oauth2 client: public (client id only, no secret: onedrive-graph.md §1, "Public
    /// clients must not send client_secret"), with the three endpoints set.
    pub(crate) fn oauth_client(&self) -> OAuthClient {
        oauth2::basic::BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(self.authorize_endpoint()))
            .set_token_uri(TokenUrl::from_url(self.token_endpoint()))
            .set_device_authorization_url(DeviceAuthorizationUrl::from_url(
                self.device_code_endpoint(),
            ))
    }
}

/// Builds a [`MicrosoftAuthConfig`]; [`build`](Self::build) validates it.
pub struct MicrosoftAuthConfigBuilder {
    client_id: String,
    tenant: String,
    login_base: String,
    drive_access: DriveAccess,
    loopback_host: LoopbackHost,
    http: Option<reqwest::Client>,
    retry: RetryConfig,
}

/// Like the config's: the HTTP client stays out, since reqwest prints a client's default
/// headers and proxies, where a caller may have put credentials.
impl fmt::Debug for MicrosoftAuthConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MicrosoftAuthConfigBuilder")
            .field("client_id", &self.client_id)
            .field("tenant", &self.tenant)
            .field("login_base", &self.login_base)
            .field("drive_access", &self.drive_access)
            .field("loopback_host", &self.loopback_host)
            .field("custom_http_client", &self.http.is_some())
            .field("retry", &self.retry)
            .finish()
    }
}

impl MicrosoftAuthConfigBuilder {
    /// The tenant: `consumers` (default, personal accounts only), `common`, or a tenant id.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = tenant.into();
        self
    }

    /// The login host (default [`DEFAULT_LOGIN_BASE_URL`]); `http://` only for loopback hosts.
    pub fn with_login_base_url(mut self, base: impl Into<String>) -> Self {
        self.login_base = base.into();
        self
    }

    /// Which files to ask for (default [`DriveAccess::AppFolder`]).
    pub fn with_drive_access(mut self, access: DriveAccess) -> Self {
        self.drive_access = access;
        self
    }

    /// The redirect URI's host name for the browser sign-in (default [`LoopbackHost::Localhost`]).
    pub fn with_loopback_host(mut self, host: LoopbackHost) -> Self {
        self.loopback_host = host;
        self
    }

    /// The HTTP client for the identity endpoints. Build it with
    /// `redirect(reqwest::redirect::Policy::none())`. A client that follows redirects still
    /// never carries a grant away: token request bodies are sent as one-shot streams, which
    /// reqwest does not re-send to a 307/308 target, and an answer that was redirected at all
    /// (a 301/302/303 turns into a bodiless GET elsewhere) is refused with [`Error::Config`].
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The retry policy for transient failures of the token endpoint.
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Checks the settings and builds the config.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty client id, a tenant that is not one path segment, a base
    /// URL that does not parse, has a query, or uses `http://` for a host that is not loopback.
    pub fn build(self) -> Result<MicrosoftAuthConfig> {
        let client_id = self.client_id.trim().to_owned();
        if client_id.is_empty() {
            return Err(Error::Config(
                "the Microsoft application (client) id is empty".into(),
            ));
        }
        let tenant = self.tenant.trim().to_owned();
        // One plain path segment, never `.` or `..` (it is pushed onto the base URL's path).
        let tenant_ok = !tenant.chars().all(|c| c == '.')
            && tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !tenant_ok {
            return Err(Error::Config(format!(
                "tenant {tenant:?} is not `consumers`, `common`, `organizations`, a tenant id or a domain"
            )));
        }
        let login_base = parse_base_url(&self.login_base)?;
        let http = match self.http {
            Some(client) => client,
            None => default_http_client()?,
        };
        Ok(MicrosoftAuthConfig {
            client_id,
            tenant,
            login_base,
            drive_access: self.drive_access,
            loopback_host: self.loopback_host,
            http,
            retry: self.retry,
        })
    }
}

fn parse_base_url(raw: &str) -> Result<Url> {
    let url = Url::parse(raw.trim())
        .map_err(|e| Error::Config(format!("login base URL {raw:?} does not parse: {e}")))?;
    if url.query().is_some() || url.fragment().is_some() || url.cannot_be_a_base() {
        return Err(Error::Config(format!(
            "login base URL {raw:?} must be a plain https URL without query or fragment"
        )));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(Error::Config(format!(
            "login base URL {raw:?} uses http:// for a host that is not loopback; use https://"
        ))),
        other => Err(Error::Config(format!(
            "login base URL {raw:?} has scheme {other:?}; use https://"
        ))),
    }
}

/// Whether `url` points at this machine (`localhost`, `127.0.0.0/8`, `::1`).
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn default_http_client() -> Result<reqwest::Client> {
    crate::http::client_builder()
        // Never follow a redirect from a token endpoint (oauth2 v5 upgrade guide: SSRF).
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_validation() {
        let cfg = MicrosoftAuthConfig::builder("app-id").build().unwrap();
        assert_eq!(
            cfg.token_endpoint().as_str(),
            "https://login.microsoftonline.com/consumers/oauth2/v2.0/token"
        );
        assert_eq!(
            cfg.scopes(),
            ["Files.ReadWrite.AppFolder", "offline_access"]
        );
        let local = MicrosoftAuthConfig::builder("app-id")
            .with_login_base_url("http://127.0.0.1:9/idp/")
            .with_tenant("common")
            .with_drive_access(DriveAccess::AllFiles)
            .build()
            .unwrap();
        assert_eq!(
            local.device_code_endpoint().as_str(),
            "http://127.0.0.1:9/idp/common/oauth2/v2.0/devicecode"
        );
        assert_eq!(local.scopes()[0], "Files.ReadWrite");
        for bad_base in [
            "http://example.com",
            "ftp://localhost",
            "https://x/?a=1",
            "nope",
        ] {
            let err = MicrosoftAuthConfig::builder("id")
                .with_login_base_url(bad_base)
                .build()
                .unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{bad_base}");
        }
        for bad_tenant in ["", "a/b", "x?y", "../up", ".."] {
            assert!(
                MicrosoftAuthConfig::builder("id")
                    .with_tenant(bad_tenant)
                    .build()
                    .is_err(),
                "{bad_tenant}"
            );
        }
        assert!(MicrosoftAuthConfig::builder(" ").build().is_err());
    }

    #[test]
    fn debug_leaves_out_the_callers_client() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-api-key", "key-in-a-default-header".parse().unwrap());
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap();
        let builder = MicrosoftAuthConfig::builder("app-id").with_http_client(client);
        let shown = format!("{builder:?}");
        assert!(!shown.contains("key-in-a-default-header"), "{shown}");
        assert!(shown.contains("custom_http_client: true"), "{shown}");
        let shown = format!("{:?}", builder.build().unwrap());
        assert!(!shown.contains("key-in-a-default-header"), "{shown}");
    }
}
