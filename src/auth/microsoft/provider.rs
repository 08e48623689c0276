//! [`MicrosoftTokenProvider`]: hands out access tokens, refreshing (and saving the rotated
//! refresh token) when needed.

use super::config::{MicrosoftAuthConfig, SERVICE};
use super::error::{Grant, SIGN_IN_AGAIN, map_request_error};
use super::oauth::{OAuthClient, Transport};
use super::token_store::TokenStore;
use super::tokens::MicrosoftTokens;
use crate::auth::{AccessTokenProvider, SecretString};
use crate::error::{Error, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oauth2::RefreshToken;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// An access token is handed out only while it has at least this long to live, so a
/// request that starts with it does not fail half-way.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(120);

/// An [`AccessTokenProvider`] for a personal Microsoft account.
///
/// # Guarantees
/// 1. A cached access token is returned while it is valid for [`REFRESH_MARGIN`] more.
/// 2. Otherwise one refresh runs; concurrent callers wait for it and share its result
///    (the state sits behind one async mutex, held across the refresh).
/// 3. Microsoft returns a new refresh token on every refresh (onedrive-graph.md §1
///    "Refresh tokens"); it is saved through the [`TokenStore`] *before* the new access token
///    is returned. If saving fails, the error is returned, the new tokens stay in memory,
///    and the next call saves again before handing anything out.
/// 4. `invalid_grant` (consent withdrawn, 90 days unused, password change) is
///    [`Error::ConsentRevoked`]; it is remembered, so later calls fail at once without
///    another request, until [`disconnect`](Self::disconnect) or a new provider.
/// 5. `invalid_client` / `unauthorized_client` are [`Error::Config`] naming what to check in
///    the app registration. Network failures, 429 and 5xx are retried with the config's
///    [`RetryConfig`](crate::http::RetryConfig), then returned as retryable errors.
///
/// # Assumptions
/// Only this provider refreshes these tokens: two processes refreshing the same refresh
/// token would each rotate it, and one of them would lose.
pub struct MicrosoftTokenProvider {
    config: MicrosoftAuthConfig,
    client: OAuthClient,
    store: Arc<dyn TokenStore>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    loaded: bool,
    tokens: Option<MicrosoftTokens>,
    /// A refresh token given by the caller, used when the store holds nothing.
    seed: Option<SecretString>,
    /// Rotated tokens not yet saved (the last save failed).
    unsaved: bool,
    /// The hint of a refused refresh token: every later call fails with it.
    revoked: Option<String>,
}

impl fmt::Debug for MicrosoftTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MicrosoftTokenProvider")
            .field("config", &self.config)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl MicrosoftTokenProvider {
    /// A provider using the tokens saved in `store` (loaded on first use).
    pub fn new(config: MicrosoftAuthConfig, store: Arc<dyn TokenStore>) -> Self {
        Self::with_state(config, store, State::default())
    }

    /// A provider starting from a bare refresh token (for example from the
    /// `ONEDRIVE_REFRESH_TOKEN` environment variable).
    ///
    /// `refresh_token` is used only when `store` holds no tokens: tokens in the store come
    /// from a later rotation and outlive the one given here. To start over from
    /// `refresh_token`, clear the store first. The first refresh saves its result to `store`.
    pub fn from_refresh_token(
        config: MicrosoftAuthConfig,
        store: Arc<dyn TokenStore>,
        refresh_token: SecretString,
    ) -> Self {
        let state = State {
            seed: Some(refresh_token),
            ..State::default()
        };
        Self::with_state(config, store, state)
    }

    /// Saves the tokens of a fresh sign-in to `store`, then returns a provider using them.
    ///
    /// # Errors
    /// What saving to `store` returns.
    pub async fn from_sign_in(
        config: MicrosoftAuthConfig,
        store: Arc<dyn TokenStore>,
        tokens: MicrosoftTokens,
    ) -> Result<Self> {
        store.save(&tokens).await?;
        let state = State {
            loaded: true,
            tokens: Some(tokens),
            ..State::default()
        };
        Ok(Self::with_state(config, store, state))
    }

    fn with_state(config: MicrosoftAuthConfig, store: Arc<dyn TokenStore>, state: State) -> Self {
        let client = config.oauth_client();
        Self {
            config,
            client,
            store,
            state: Mutex::new(state),
        }
    }

    /// The scopes the current tokens were granted (empty when not signed in or not yet
    /// refreshed). See [`MicrosoftTokens::is_app_folder_only`] for the 2026 AppFolder bug.
    pub async fn granted_scopes(&self) -> Result<Vec<String>> {
        let mut state = self.state.lock().await;
        self.ensure_loaded(&mut state).await?;
        Ok(state
            .tokens
            .as_ref()
            .map(|t| t.scopes.clone())
            .unwrap_or_default())
    }

    /// Signs out: forgets the tokens here and in the store. The app's consent stays on the
    /// Microsoft account until the user removes it at <https://account.live.com/consent/Manage>.
    pub async fn disconnect(&self) -> Result<()> {
        let mut state = self.state.lock().await;
        self.store.clear().await?;
        *state = State {
            loaded: true,
            ..State::default()
        };
        tracing::info!("signed out of the Microsoft account; saved tokens were removed");
        Ok(())
    }

    async fn ensure_loaded(&self, state: &mut State) -> Result<()> {
        if !state.loaded {
            state.tokens = match self.store.load().await? {
                Some(saved) => Some(saved),
                None => state.seed.take().map(MicrosoftTokens::from_refresh_token),
            };
            state.loaded = true;
        }
        Ok(())
    }

    async fn refresh(&self, current: &MicrosoftTokens) -> Result<MicrosoftTokens> {
        let refresh_token = RefreshToken::new(current.refresh_token.expose().to_owned());
        let requested = self.config.scopes();
        let http = Transport::new(self.config.http());
        self.config
            .retry()
            .retry(|attempt| {
                let refresh_token = &refresh_token;
                let http = &http;
                let requested = &requested;
                async move {
                    tracing::debug!(attempt, "refreshing the Microsoft access token");
                    // No `scope`: it is optional on refresh and defaults to what was granted
                    // (onedrive-graph.md §1 "Refresh tokens"), so a config changed since the
                    // sign-in cannot make a valid grant fail.
                    let response = self
                        .client
                        .exchange_refresh_token(refresh_token)
                        .request_async(http)
                        .await
                        .map_err(|e| {
                            map_request_error(Grant::Refresh, self.config.client_id(), e)
                        })?;
                    MicrosoftTokens::from_response(
                        &response,
                        Some(&current.refresh_token),
                        requested,
                        Utc::now(),
                    )
                }
            })
            .await
    }
}

#[async_trait]
impl AccessTokenProvider for MicrosoftTokenProvider {
    async fn access_token(&self) -> Result<SecretString> {
        let mut state = self.state.lock().await;
        if let Some(hint) = &state.revoked {
            return Err(Error::ConsentRevoked {
                service: SERVICE,
                hint: hint.clone(),
            });
        }
        self.ensure_loaded(&mut state).await?;
        let Some(current) = state.tokens.clone() else {
            return Err(Error::Unauthorized {
                service: SERVICE,
                hint: format!("not signed in to a Microsoft account; {SIGN_IN_AGAIN}"),
            });
        };
        if state.unsaved {
            self.store.save(&current).await?;
            state.unsaved = false;
        }
        if current.is_valid_for(Utc::now(), REFRESH_MARGIN) {
            return Ok(current.access_token);
        }
        match self.refresh(&current).await {
            Ok(fresh) => {
                tracing::debug!(expires_at = %fresh.expires_at, "Microsoft access token refreshed");
                let saved = self.store.save(&fresh).await;
                let token = fresh.access_token.clone();
                state.tokens = Some(fresh);
                if let Err(e) = saved {
                    // The old refresh token may already be dead: keep the new one in memory
                    // and save it before anything else is handed out.
                    state.unsaved = true;
                    tracing::warn!(error = %e, "could not save the rotated Microsoft tokens");
                    return Err(e);
                }
                Ok(token)
            }
            Err(e) => {
                tracing::warn!(error = %e, "Microsoft token refresh failed");
                if let Error::ConsentRevoked { hint, .. } = &e {
                    state.revoked = Some(hint.clone());
                }
                Err(e)
            }
        }
    }

    async fn invalidate(&self, token: &SecretString) {
        let mut state = self.state.lock().await;
        if let Some(tokens) = state.tokens.as_mut()
            && tokens.access_token == *token
        {
            // Only the refused token: one already replaced by a refresh stays replaced.
            tokens.expires_at = DateTime::<Utc>::UNIX_EPOCH;
        }
    }
}
