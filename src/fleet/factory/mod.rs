//! [`QontoOneDriveFactory`]: the [`OrganizationFactory`] of a real service. It builds
//! each organisation's [`QontoSource`] (API key or OAuth tokens, drawing on the worker's
//! shared Qonto limiter) and its [`OneDriveSink`] (from its Microsoft refresh token),
//! and saves every token rotated during the pass back into the fleet, sealed.
//!
//! # Guarantees
//! 1. A rotated token is saved before it is used: Microsoft returns a new refresh
//!    token on every refresh (onedrive-graph.md §1 "Refresh tokens") and Qonto rotates
//!    its refresh token at each refresh, the old one dying 60 s later (qonto.md §1.2).
//!    Both providers save through the fleet's token stores (`stores.rs`) before handing
//!    out the new access token, and save again before anything else when a save failed,
//!    so a rotation is never lost while the pass runs ([`MicrosoftTokenProvider`],
//!    [`QontoTokenStore`](crate::source::qonto::QontoTokenStore)).
//! 2. No secret reaches `Debug`, a log or an error: the stores print the organisation
//!    only, and a credential that cannot be read is named, never quoted.
//!
//! # Assumptions
//! One pass at a time per organisation (the fleet's claim and the state lock see to
//! it): two passes refreshing one refresh token would each rotate it, and one would
//! lose its grant.

mod credentials;
mod stores;

pub use credentials::QontoCredentials;

use super::worker::{Assignment, Connectors, OrganizationFactory};
use crate::auth::SecretString;
use crate::auth::microsoft::{MicrosoftAuthConfig, MicrosoftTokenProvider, MicrosoftTokens};
use crate::error::{Error, Result};
use crate::http::RetryConfig;
use crate::sink::OneDriveSink;
use crate::sink::onedrive::DEFAULT_BASE_URL as GRAPH_BASE_URL;
use crate::source::qonto::{QONTO_BASE_URL, QONTO_TOKEN_URL, QontoAuth, QontoOAuth, QontoSource};
use async_trait::async_trait;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use stores::{FleetMicrosoftTokens, FleetQontoTokens};

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
