//! Qonto credentials: an API key, or OAuth 2.0 tokens refreshed before they expire.

use super::error::{AuthKind, SERVICE, STAGING_HINT};
use crate::auth::{AccessTokenProvider, SecretString};
use crate::error::{Error, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{AuthType, ClientId, ClientSecret, RefreshToken, RequestTokenError, TokenResponse};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use url::Url;

/// Qonto's production token endpoint (qonto.md §1.2: the un-versioned path).
pub const QONTO_TOKEN_URL: &str = "https://oauth.qonto.com/oauth2/token";
/// Qonto's sandbox token endpoint (qonto.md §1.4).
pub const QONTO_SANDBOX_TOKEN_URL: &str = "https://oauth-sandbox.staging.qonto.co/oauth2/token";

/// An access token's lifetime when the token endpoint sends no `expires_in`: Qonto's
/// documented hour (qonto.md §1.2).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// The longest access-token lifetime believed, as for Microsoft's tokens: a larger
/// `expires_in` is a server's mistake, and added to the clock it would overflow.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How [`QontoSource`](super::QontoSource) authenticates.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum QontoAuth {
    /// An organisation's API key, sent as `Authorization: {login}:{secret-key}`,
    /// with no scheme (qonto.md §1.1).
    ApiKey {
        /// The organisation login (also called slug), for example `pied-piper-7132`.
        login: SecretString,
        /// The secret key.
        secret: SecretString,
    },
    /// OAuth 2.0 tokens, refreshed with the refresh token before they expire.
    OAuth(QontoOAuth),
    /// Bearer tokens from any provider (for example a [`crate::auth::StaticToken`]).
    Bearer(Arc<dyn AccessTokenProvider>),
}

impl QontoAuth {
    /// An API key.
    pub fn api_key(login: impl Into<SecretString>, secret: impl Into<SecretString>) -> Self {
        QontoAuth::ApiKey {
            login: login.into(),
            secret: secret.into(),
        }
    }
}

/// An access token, its refresh token and when the access token expires.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QontoTokens {
    /// The access token (`ory_at_…`), valid for an hour (qonto.md §1.2).
    pub access_token: SecretString,
    /// The refresh token (`ory_rt_…`), valid for 90 days and rotated at each refresh.
    pub refresh_token: SecretString,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for QontoTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QontoTokens")
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Where refreshed tokens are kept.
///
/// Qonto rotates refresh tokens: the old one stops working 60 seconds after a refresh
/// (qonto.md §1.2). [`save`](Self::save) is called with the new pair right after each
/// refresh, before the new access token is used; persist it durably. When it fails,
/// the error is returned to the caller that needed a token, the new pair stays in
/// memory, and the next call saves it again before handing out any token.
#[async_trait]
pub trait QontoTokenStore: Send + Sync + fmt::Debug {
    /// Stores `tokens`, replacing the previous pair.
    async fn save(&self, tokens: &QontoTokens) -> Result<()>;
}

/// A [`QontoTokenStore`] that keeps the latest pair in memory.
#[derive(Debug, Default)]
pub struct InMemoryTokenStore {
    latest: Mutex<Option<QontoTokens>>,
    saves: Mutex<u64>,
}

impl InMemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last pair saved.
    pub fn latest(&self) -> Option<QontoTokens> {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many times a pair was saved.
    pub fn saves(&self) -> u64 {
        *self.saves.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl QontoTokenStore for InMemoryTokenStore {
    async fn save(&self, tokens: &QontoTokens) -> Result<()> {
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(tokens.clone());
        *self.saves.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Ok(())
    }
}

/// OAuth 2.0 settings: the app's client credentials, the current tokens, and where
/// rotated tokens go.
#[derive(Clone)]
pub struct QontoOAuth {
    client_id: String,
    client_secret: SecretString,
    tokens: QontoTokens,
    store: Arc<dyn QontoTokenStore>,
    pub(crate) token_url: Option<String>,
    refresh_margin: Duration,
}

impl fmt::Debug for QontoOAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QontoOAuth")
            .field("client_id", &self.client_id)
            .field("token_url", &self.token_url)
            .field("expires_at", &self.tokens.expires_at)
            .finish_non_exhaustive()
    }
}

impl QontoOAuth {
    /// Tokens for the app `client_id`; rotated tokens are saved to `store`.
    /// The access token is refreshed 5 minutes before it expires.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
        tokens: QontoTokens,
        store: Arc<dyn QontoTokenStore>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            tokens,
            store,
            token_url: None,
            refresh_margin: Duration::from_secs(300),
        }
    }

    /// Sets the token endpoint (default [`QONTO_TOKEN_URL`], or
    /// [`QONTO_SANDBOX_TOKEN_URL`] for a sandbox source). Some Qonto pages show a
    /// `/v2/oauth2/token` path instead (qonto.md §1.2, UNCERTAIN).
    pub fn with_token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = Some(url.into());
        self
    }

    /// Refreshes this long before the access token expires (at least a minute).
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin.max(Duration::from_secs(60));
        self
    }

    /// The provider, talking to `token_url` through `http` (which must not follow
    /// redirects and carries the sandbox header when there is one).
    pub(crate) fn into_provider(self, token_url: Url, http: reqwest::Client) -> OAuthProvider {
        OAuthProvider {
            client: BasicClient::new(ClientId::new(self.client_id))
                .set_client_secret(ClientSecret::new(self.client_secret.expose().to_owned()))
                .set_token_uri(oauth2::TokenUrl::from_url(token_url))
                // Qonto reads the client credentials from the form body (qonto.md §1.2).
                .set_auth_type(AuthType::RequestBody),
            http,
            current: tokio::sync::Mutex::new(Current {
                tokens: self.tokens,
                unsaved: false,
            }),
            store: self.store,
            margin: self.refresh_margin,
        }
    }
}

type Client = BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// Hands out Qonto access tokens, refreshing them shortly before they expire.
pub(crate) struct OAuthProvider {
    client: Client,
    http: reqwest::Client,
    current: tokio::sync::Mutex<Current>,
    store: Arc<dyn QontoTokenStore>,
    margin: Duration,
}

/// The tokens in use, and whether the store has them.
struct Current {
    tokens: QontoTokens,
    /// A refresh rotated them and saving failed: the store holds a refresh token that
    /// dies 60 s after the rotation, so these are saved before anything else happens.
    unsaved: bool,
}

impl fmt::Debug for OAuthProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QontoOAuthProvider").finish_non_exhaustive()
    }
}

#[async_trait]
impl AccessTokenProvider for OAuthProvider {
    async fn access_token(&self) -> Result<SecretString> {
        // Held across the refresh: refresh tokens rotate, so two concurrent refreshes
        // would race and one would lose its grant (qonto.md §1.2).
        let mut current = self.current.lock().await;
        if current.unsaved {
            self.store.save(&current.tokens).await?;
            current.unsaved = false;
            tracing::info!("rotated Qonto tokens saved after an earlier failure");
        }
        if is_valid_for(&current.tokens, self.margin, Utc::now()) {
            return Ok(current.tokens.access_token.clone());
        }
        let refreshed = self.refresh(&current.tokens.refresh_token).await?;
        current.tokens = refreshed.clone();
        // The old refresh token dies 60 s from now: persist the new pair at once.
        if let Err(error) = self.store.save(&refreshed).await {
            current.unsaved = true;
            tracing::warn!(%error, "could not save the rotated Qonto tokens; saving again at the next use");
            return Err(error);
        }
        Ok(refreshed.access_token)
    }

    async fn invalidate(&self, token: &SecretString) {
        let mut current = self.current.lock().await;
        if &current.tokens.access_token == token {
            current.tokens.expires_at = DateTime::<Utc>::MIN_UTC;
        }
    }
}

impl OAuthProvider {
    async fn refresh(&self, refresh_token: &SecretString) -> Result<QontoTokens> {
        let refresh = RefreshToken::new(refresh_token.expose().to_owned());
        let answer = self
            .client
            .exchange_refresh_token(&refresh)
            .request_async(&self.http)
            .await;
        let response = match answer {
            Ok(response) => response,
            Err(error) => return Err(refresh_error(error)),
        };
        let lifetime = response
            .expires_in()
            .unwrap_or(DEFAULT_LIFETIME)
            .min(MAX_LIFETIME);
        let now = Utc::now();
        Ok(QontoTokens {
            access_token: SecretString::new(response.access_token().secret().clone()),
            // Rotated when the server sends a new one (qonto.md §1.2); kept otherwise.
            refresh_token: response
                .refresh_token()
                .map(|t| SecretString::new(t.secret().clone()))
                .unwrap_or_else(|| refresh_token.clone()),
            // At most a day ahead (MAX_LIFETIME), so this cannot overflow; if it did,
            // the token would count as expired and the next use would refresh it.
            expires_at: chrono::Duration::from_std(lifetime)
                .ok()
                .and_then(|lifetime| now.checked_add_signed(lifetime))
                .unwrap_or(now),
        })
    }
}

/// Whether `tokens`' access token is still good `margin` after `now`. A margin too
/// large to add to the clock leaves no token good enough: each use refreshes.
fn is_valid_for(tokens: &QontoTokens, margin: Duration, now: DateTime<Utc>) -> bool {
    chrono::Duration::from_std(margin)
        .ok()
        .and_then(|margin| now.checked_add_signed(margin))
        .is_some_and(|deadline| deadline < tokens.expires_at)
}

fn refresh_error<RE: std::error::Error + 'static>(
    error: RequestTokenError<RE, oauth2::StandardErrorResponse<BasicErrorResponseType>>,
) -> Error {
    match error {
        RequestTokenError::ServerResponse(response) => match response.error() {
            BasicErrorResponseType::InvalidGrant => Error::ConsentRevoked {
                service: SERVICE,
                hint: "Qonto refused the refresh token (expired after 90 days, revoked, or \
                    already rotated); sign in again"
                    .to_owned(),
            },
            BasicErrorResponseType::InvalidClient | BasicErrorResponseType::UnauthorizedClient => {
                Error::Unauthorized {
                    service: SERVICE,
                    hint: "Qonto refused the OAuth client id or secret".to_owned(),
                }
            }
            other => Error::Permanent {
                service: SERVICE,
                operation: "refresh the access token".to_owned(),
                message: format!("token endpoint answered {}", other.as_ref()),
            },
        },
        RequestTokenError::Parse(_, body) if looks_like_html(&body) => Error::Unauthorized {
            service: SERVICE,
            hint: STAGING_HINT.to_owned(),
        },
        RequestTokenError::Parse(..) | RequestTokenError::Other(_) => Error::Transient {
            service: SERVICE,
            operation: "refresh the access token".to_owned(),
            message: "the token endpoint answered something unreadable".to_owned(),
            retry_after: None,
        },
        RequestTokenError::Request(_) => Error::Transient {
            service: SERVICE,
            operation: "refresh the access token".to_owned(),
            message: "the token endpoint could not be reached".to_owned(),
            retry_after: None,
        },
    }
}

/// Whether a body is an HTML page (the sandbox login, qonto.md §1.4).
pub(crate) fn looks_like_html(body: &[u8]) -> bool {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    body.get(start) == Some(&b'<')
}

/// The credential sent with each API request.
#[derive(Debug)]
pub(crate) enum Authenticator {
    /// The whole `login:secret-key` header value.
    ApiKey(SecretString),
    /// A bearer token provider.
    Bearer(Arc<dyn AccessTokenProvider>),
}

impl Authenticator {
    /// The value of the `Authorization` header.
    pub(crate) async fn header(&self) -> Result<SecretString> {
        match self {
            Authenticator::ApiKey(value) => Ok(value.clone()),
            Authenticator::Bearer(provider) => {
                let token = provider.access_token().await?;
                Ok(SecretString::new(format!("Bearer {}", token.expose())))
            }
        }
    }

    /// Called once per request after a 401 with `sent`: whether a new credential
    /// exists, so that one retry makes sense. Never for an API key (qonto.md §3:
    /// 401s are throttled after 200 an hour).
    pub(crate) async fn refused(&self, sent: &SecretString) -> Result<bool> {
        match self {
            Authenticator::ApiKey(_) => Ok(false),
            Authenticator::Bearer(provider) => {
                let token = sent
                    .expose()
                    .strip_prefix("Bearer ")
                    .unwrap_or(sent.expose());
                let token = SecretString::new(token);
                provider.invalidate(&token).await;
                Ok(provider.access_token().await? != token)
            }
        }
    }

    /// Which kind of credential this is, for error hints.
    pub(crate) fn kind(&self) -> AuthKind {
        match self {
            Authenticator::ApiKey(_) => AuthKind::ApiKey,
            Authenticator::Bearer(_) => AuthKind::OAuth,
        }
    }
}
