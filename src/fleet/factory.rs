//! [`QontoOneDriveFactory`]: the [`OrganizationFactory`] of a real service. It builds
//! each organisation's [`QontoSource`] (API key or OAuth tokens, drawing on the worker's
//! shared Qonto limiter) and its [`OneDriveSink`] (from its Microsoft refresh token),
//! and saves every token rotated during the pass back into the fleet, sealed.
//!
//! # Guarantees
//! 1. A rotated token is saved before it is used: Microsoft returns a new refresh
//!    token on every refresh (onedrive-graph.md §1 "Refresh tokens") and Qonto rotates
//!    its refresh token at each refresh, the old one dying 60 s later (qonto.md §1.2).
//!    Both providers save through the stores below before handing out the new access
//!    token, and save again before anything else when a save failed, so a rotation is
//!    never lost while the pass runs ([`MicrosoftTokenProvider`], [`QontoTokenStore`]).
//! 2. No secret reaches `Debug`, a log or an error: the stores print the organisation
//!    only, and a credential that cannot be read is named, never quoted.
//!
//! # Assumptions
//! One pass at a time per organisation (the fleet's claim and the state lock see to
//! it): two passes refreshing one refresh token would each rotate it, and one would
//! lose its grant.

use super::registry::Fleet;
use super::worker::{Assignment, Connectors, OrganizationFactory};
use crate::auth::SecretString;
use crate::auth::microsoft::{
    MicrosoftAuthConfig, MicrosoftTokenProvider, MicrosoftTokens, TokenStore,
};
use crate::error::{Error, Result};
use crate::http::RetryConfig;
use crate::sink::OneDriveSink;
use crate::sink::onedrive::DEFAULT_BASE_URL as GRAPH_BASE_URL;
use crate::source::qonto::{
    QONTO_BASE_URL, QONTO_TOKEN_URL, QontoAuth, QontoOAuth, QontoSource, QontoTokenStore,
    QontoTokens,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// An organisation's Qonto credentials, as the fleet stores them (sealed) in its
/// `qonto` credential: `login:secret-key` for an API key, or the JSON of the OAuth
/// tokens (`{"access_token":…,"refresh_token":…,"expires_at":…}`). A login never
/// starts with `{`, so the two never mix. `Debug` shows no secret.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QontoCredentials {
    /// An API key (qonto.md §1.1).
    ApiKey {
        /// The organisation login.
        login: SecretString,
        /// The secret key.
        secret: SecretString,
    },
    /// OAuth tokens of the service's Qonto app (qonto.md §1.2).
    OAuth(QontoTokens),
}

impl fmt::Debug for QontoCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QontoCredentials::ApiKey { .. } => f.write_str("QontoCredentials::ApiKey([redacted])"),
            QontoCredentials::OAuth(tokens) => f
                .debug_tuple("QontoCredentials::OAuth")
                .field(tokens)
                .finish(),
        }
    }
}

impl QontoCredentials {
    /// An API key.
    pub fn api_key(login: impl Into<SecretString>, secret: impl Into<SecretString>) -> Self {
        QontoCredentials::ApiKey {
            login: login.into(),
            secret: secret.into(),
        }
    }

    /// The text to hand to [`Fleet::save_qonto_credentials`].
    ///
    /// # Errors
    /// [`Error::Config`] when the tokens cannot be written as JSON (never in practice).
    pub fn encode(&self) -> Result<SecretString> {
        match self {
            QontoCredentials::ApiKey { login, secret } => Ok(SecretString::new(format!(
                "{}:{}",
                login.expose(),
                secret.expose()
            ))),
            QontoCredentials::OAuth(tokens) => serde_json::to_string(tokens)
                .map(SecretString::new)
                .map_err(|_| Error::Config("the Qonto tokens could not be encoded".to_owned())),
        }
    }

    /// Reads what [`encode`](Self::encode) wrote; `organization` only names it in errors.
    ///
    /// # Errors
    /// [`Error::Config`] (the credential must be entered again) when the text is neither
    /// form. The message never quotes it.
    pub fn parse(organization: &str, text: &SecretString) -> Result<Self> {
        let text = text.expose().trim();
        let unreadable = || {
            Error::Config(format!(
                "organisation {organization:?} has Qonto credentials that are neither \
                 `login:secret-key` nor OAuth tokens: enter them again"
            ))
        };
        if text.starts_with('{') {
            return serde_json::from_str(text)
                .map(QontoCredentials::OAuth)
                .map_err(|_| unreadable());
        }
        match text.split_once(':') {
            Some((login, secret)) if !login.is_empty() && !secret.is_empty() => {
                Ok(Self::api_key(login, secret))
            }
            _ => Err(unreadable()),
        }
    }
}

/// The Qonto app a service signs organisations in with, for OAuth credentials.
#[derive(Clone)]
struct QontoApp {
    client_id: String,
    client_secret: SecretString,
}

/// Builds each organisation's Qonto source and OneDrive sink, the real hosts by
/// default; every URL can point elsewhere (the fakes, in tests).
#[derive(Clone)]
pub struct QontoOneDriveFactory {
    microsoft: MicrosoftAuthConfig,
    qonto_base_url: String,
    qonto_token_url: String,
    qonto_app: Option<QontoApp>,
    graph_base_url: String,
    graph_base_urls: HashMap<String, String>,
    app_name: Option<String>,
    retry: Option<RetryConfig>,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for QontoOneDriveFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QontoOneDriveFactory")
            .field("microsoft", &self.microsoft)
            .field("qonto_base_url", &self.qonto_base_url)
            .field("qonto_token_url", &self.qonto_token_url)
            .field(
                "qonto_client_id",
                &self.qonto_app.as_ref().map(|a| &a.client_id),
            )
            .field("graph_base_url", &self.graph_base_url)
            .field("graph_base_urls", &self.graph_base_urls.len())
            .finish_non_exhaustive()
    }
}

impl QontoOneDriveFactory {
    /// Sinks signed in through `microsoft` (the service's app registration), sources
    /// on Qonto's production API, Graph's production endpoint.
    pub fn new(microsoft: MicrosoftAuthConfig) -> Self {
        Self {
            microsoft,
            qonto_base_url: QONTO_BASE_URL.to_owned(),
            qonto_token_url: QONTO_TOKEN_URL.to_owned(),
            qonto_app: None,
            graph_base_url: GRAPH_BASE_URL.to_owned(),
            graph_base_urls: HashMap::new(),
            app_name: None,
            retry: None,
            http: None,
        }
    }

    /// Qonto's API base URL (default [`QONTO_BASE_URL`]).
    pub fn with_qonto_base_url(mut self, url: impl Into<String>) -> Self {
        self.qonto_base_url = url.into();
        self
    }

    /// The service's Qonto OAuth app, needed by organisations whose credentials are
    /// OAuth tokens, and its token endpoint (default [`QONTO_TOKEN_URL`]).
    pub fn with_qonto_oauth_app(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
        token_url: Option<String>,
    ) -> Self {
        self.qonto_app = Some(QontoApp {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        });
        if let Some(url) = token_url {
            self.qonto_token_url = url;
        }
        self
    }

    /// Graph's base URL for every organisation (default `https://graph.microsoft.com/v1.0`).
    pub fn with_graph_base_url(mut self, url: impl Into<String>) -> Self {
        self.graph_base_url = url.into();
        self
    }

    /// Graph's base URL for `organization` alone: a drive served apart (a test's fake
    /// Graph serves one drive per server).
    pub fn with_graph_base_url_for(
        mut self,
        organization: impl Into<String>,
        url: impl Into<String>,
    ) -> Self {
        self.graph_base_urls.insert(organization.into(), url.into());
        self
    }

    /// The app folder's name, as the app registration names it (`Apps/<name>`).
    pub fn with_app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = Some(name.into());
        self
    }

    /// The retry policy of both connectors (their defaults otherwise).
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = Some(retry);
        self
    }

    /// One HTTP client for every organisation's API requests, so that they share
    /// connections (build it as [`QontoSourceBuilder::with_http_client`] says).
    ///
    /// [`QontoSourceBuilder::with_http_client`]: crate::source::qonto::QontoSourceBuilder::with_http_client
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    fn source(&self, assignment: &Assignment<'_>) -> Result<QontoSource> {
        let organization = &assignment.claim.organization;
        let stored = assignment.credentials.qonto.as_ref().ok_or_else(|| {
            Error::Config(format!(
                "organisation {organization:?} has no Qonto credentials: save its API key or \
                 sign it in to Qonto"
            ))
        })?;
        let auth = match QontoCredentials::parse(organization, stored)? {
            QontoCredentials::ApiKey { login, secret } => QontoAuth::ApiKey { login, secret },
            QontoCredentials::OAuth(tokens) => {
                let app = self.qonto_app.as_ref().ok_or_else(|| {
                    Error::Config(format!(
                        "organisation {organization:?} signed in to Qonto with OAuth, but the \
                         service has no Qonto OAuth app configured"
                    ))
                })?;
                let store = Arc::new(FleetQontoTokens {
                    fleet: assignment.fleet.clone(),
                    organization: organization.clone(),
                });
                QontoAuth::OAuth(
                    QontoOAuth::new(
                        app.client_id.clone(),
                        app.client_secret.clone(),
                        tokens,
                        store,
                    )
                    .with_token_url(self.qonto_token_url.clone()),
                )
            }
        };
        let mut builder = QontoSource::builder(auth)
            .with_base_url(self.qonto_base_url.clone())
            .with_shared_rate_limiter(assignment.limiter.clone());
        if let Some(retry) = self.retry {
            builder = builder.with_retry(retry);
        }
        if let Some(http) = &self.http {
            builder = builder.with_http_client(http.clone());
        }
        builder.build()
    }

    fn sink(&self, assignment: &Assignment<'_>) -> Result<OneDriveSink> {
        let organization = &assignment.claim.organization;
        let refresh = assignment
            .credentials
            .microsoft_refresh_token
            .clone()
            .ok_or_else(|| {
                Error::Config(format!(
                    "organisation {organization:?} has no Microsoft sign-in: sign it in to \
                     OneDrive"
                ))
            })?;
        let store = Arc::new(FleetMicrosoftTokens {
            fleet: assignment.fleet.clone(),
            organization: organization.clone(),
            current: Mutex::new(Some(MicrosoftTokens::from_refresh_token(refresh))),
        });
        let tokens = Arc::new(MicrosoftTokenProvider::new(self.microsoft.clone(), store));
        let base = self
            .graph_base_urls
            .get(organization)
            .unwrap_or(&self.graph_base_url);
        let mut builder = OneDriveSink::builder(tokens).with_base_url(base.clone());
        if let Some(name) = &self.app_name {
            builder = builder.with_app_name(name.clone());
        }
        if let Some(retry) = self.retry {
            builder = builder.with_retry(retry);
        }
        if let Some(http) = &self.http {
            builder = builder.with_http_client(http.clone());
        }
        builder.build()
    }
}

#[async_trait]
impl OrganizationFactory for QontoOneDriveFactory {
    async fn connectors(&self, assignment: Assignment<'_>) -> Result<Connectors> {
        let source = self.source(&assignment)?;
        let sink = self.sink(&assignment)?;
        Ok(Connectors {
            source: Arc::new(source),
            sink: Arc::new(sink),
        })
    }
}

/// An organisation's Microsoft tokens: the refresh token read from the fleet, and each
/// rotated one saved back into it, sealed, before it is used.
struct FleetMicrosoftTokens {
    fleet: Fleet,
    organization: String,
    current: Mutex<Option<MicrosoftTokens>>,
}

impl fmt::Debug for FleetMicrosoftTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetMicrosoftTokens")
            .field("organization", &self.organization)
            .finish_non_exhaustive()
    }
}

impl FleetMicrosoftTokens {
    fn current(&self) -> std::sync::MutexGuard<'_, Option<MicrosoftTokens>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl TokenStore for FleetMicrosoftTokens {
    async fn load(&self) -> Result<Option<MicrosoftTokens>> {
        Ok(self.current().clone())
    }

    async fn save(&self, tokens: &MicrosoftTokens) -> Result<()> {
        // The fleet first: the pass's memory is the copy that may be lost.
        self.fleet
            .save_microsoft_refresh_token(&self.organization, &tokens.refresh_token)
            .await?;
        *self.current() = Some(tokens.clone());
        Ok(())
    }

    /// Forgets the tokens of this pass only: the fleet keeps its copy until the
    /// organisation is signed in again.
    async fn clear(&self) -> Result<()> {
        *self.current() = None;
        Ok(())
    }
}

/// Saves an organisation's rotated Qonto tokens into the fleet, sealed.
struct FleetQontoTokens {
    fleet: Fleet,
    organization: String,
}

impl fmt::Debug for FleetQontoTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetQontoTokens")
            .field("organization", &self.organization)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl QontoTokenStore for FleetQontoTokens {
    async fn save(&self, tokens: &QontoTokens) -> Result<()> {
        let encoded = QontoCredentials::OAuth(tokens.clone()).encode()?;
        self.fleet
            .save_qonto_credentials(&self.organization, &encoded)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_read_back_what_was_written_and_never_show() {
        let key = QontoCredentials::api_key("acme-4411", "sk-very-secret");
        let text = key.encode().unwrap();
        assert_eq!(text.expose(), "acme-4411:sk-very-secret");
        assert_eq!(QontoCredentials::parse("org", &text).unwrap(), key);
        let tokens = QontoCredentials::OAuth(QontoTokens {
            access_token: SecretString::new("ory_at_secret-access"),
            refresh_token: SecretString::new("ory_rt_secret-refresh"),
            expires_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        });
        let text = tokens.encode().unwrap();
        assert_eq!(QontoCredentials::parse("org", &text).unwrap(), tokens);
        let shown = format!("{key:?} {tokens:?}");
        for secret in ["acme-4411", "sk-very", "secret-access", "secret-refresh"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn unreadable_credentials_are_named_not_quoted() {
        for text in ["no-colon-here", ":missing-login", "{not json", "acme-77:"] {
            let error = QontoCredentials::parse("org-7", &SecretString::new(text)).unwrap_err();
            let message = error.to_string();
            assert!(message.contains("org-7"), "{message}");
            assert!(!message.contains(text), "{message}");
        }
    }
}
