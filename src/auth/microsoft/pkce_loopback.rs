//! Browser sign-in: authorization code with PKCE (S256) and a loopback redirect
//! (onedrive-graph.md §1 "Authorization code + PKCE", "Redirect URIs for native apps").
//!
//! 1. Bind `127.0.0.1:0` (a random free port).
//! 2. Build the authorize URL: client id, redirect URI `http://localhost:{port}/` (or
//!    `http://127.0.0.1:{port}/`, see [`LoopbackHost`](super::LoopbackHost)), scopes, a random
//!    `state`, and the S256 code challenge.
//! 3. Hand the URL to the caller, who prints it or opens a browser.
//! 4. Wait for one redirect whose `state` matches; others get a 400 and are ignored.
//! 5. Exchange the code with the verifier at the token endpoint, without a client secret.
//! 6. Only then answer the browser's redirect: "signed in", or "not completed" when the code
//!    was refused, the exchange failed or the time ran out.
//!
//! The whole flow is bounded by [`BrowserSignInOptions::timeout`]; the code itself lives
//! about ten minutes.

use super::LoopbackHost;
use super::config::{MicrosoftAuthConfig, SERVICE};
use super::error::{Grant, map_error_code, map_request_error};
use super::loopback::{LoopbackListener, Outcome, Redirect};
use super::oauth::Transport;
use super::tokens::MicrosoftTokens;
use crate::error::{Error, Result};
use chrono::Utc;
use oauth2::{
    AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use std::time::Duration;
use url::Url;

/// The `prompt` parameter of the authorize request (E-authcode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prompt {
    /// Ask for credentials even if a session exists.
    Login,
    /// Show the consent page even if consent was given: the way to re-consent, for example
    /// to add `Files.ReadWrite` when AppFolder-only tokens hit the 2026 403 bug
    /// (onedrive-graph.md §0, §9).
    Consent,
    /// Let the user pick among signed-in accounts.
    SelectAccount,
}

impl Prompt {
    fn as_str(self) -> &'static str {
        match self {
            Prompt::Login => "login",
            Prompt::Consent => "consent",
            Prompt::SelectAccount => "select_account",
        }
    }
}

/// Options of [`sign_in_with_browser`].
#[derive(Clone, Debug)]
pub struct BrowserSignInOptions {
    timeout: Duration,
    prompt: Option<Prompt>,
    login_hint: Option<String>,
}

impl Default for BrowserSignInOptions {
    fn default() -> Self {
        Self {
            // Below the code's ~10-minute life (§1), long enough to type a password and 2FA.
            timeout: Duration::from_secs(300),
            prompt: None,
            login_hint: None,
        }
    }
}

impl BrowserSignInOptions {
    /// How long the whole sign-in may take (default 5 minutes).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sets the time limit of the whole sign-in.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the `prompt` parameter; [`Prompt::Consent`] forces the consent page.
    pub fn with_prompt(mut self, prompt: Prompt) -> Self {
        self.prompt = Some(prompt);
        self
    }

    /// Pre-fills the account's e-mail address on the sign-in page.
    pub fn with_login_hint(mut self, email: impl Into<String>) -> Self {
        self.login_hint = Some(email.into());
        self
    }
}

/// Signs in through the user's browser and returns the tokens (the caller saves them,
/// for example with [`MicrosoftTokenProvider::from_sign_in`](super::MicrosoftTokenProvider::from_sign_in)).
///
/// `show_url` receives the authorize URL once the listener is ready; print it, open it, or
/// both. It carries no secret (the PKCE verifier stays here), but it is single-use.
///
/// # Errors
/// - [`Error::ConsentRevoked`]: the user declined the requested access (`access_denied`).
/// - [`Error::Config`]: Microsoft refused the app or the redirect URI (check the app
///   registration).
/// - [`Error::Permanent`]: no redirect within the timeout, or the code was refused.
/// - [`Error::Transient`]/[`Error::RateLimited`]: the token endpoint could not be reached.
pub async fn sign_in_with_browser(
    config: &MicrosoftAuthConfig,
    options: &BrowserSignInOptions,
    show_url: impl FnOnce(&Url) + Send,
) -> Result<MicrosoftTokens> {
    let host = config.loopback_host();
    let listener = LoopbackListener::bind(host == LoopbackHost::Localhost).await?;
    // §1 "Redirect URIs": the port is ignored when matching loopback URIs, so a random port
    // matches the registered `http://localhost`; a URI without a path comes back with `/`.
    let redirect = format!("http://{}:{}/", host.name(), listener.port());
    let redirect = RedirectUrl::new(redirect)
        .map_err(|e| Error::Config(format!("loopback redirect URI: {e}")))?;
    let client = config.oauth_client().set_redirect_uri(redirect);

    // §1: PKCE S256 is "recommended for all application types".
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(config.scopes().into_iter().map(Scope::new))
        .set_pkce_challenge(challenge);
    if let Some(prompt) = options.prompt {
        request = request.add_extra_param("prompt", prompt.as_str());
    }
    if let Some(hint) = &options.login_hint {
        request = request.add_extra_param("login_hint", hint.clone());
    }
    let (url, state) = request.url();
    tracing::info!(port = listener.port(), "waiting for the browser sign-in");
    show_url(&url);

    // The browser's redirect waits here for its page until the outcome is known, timeout
    // included.
    let mut pending_answer = None;
    let flow = async {
        let (redirect, answer) = listener.wait(state.secret()).await;
        pending_answer = Some(answer);
        let code = match redirect {
            Redirect::Code(code) => code,
            Redirect::Error { code, description } => {
                return Err(map_error_code(
                    Grant::Code,
                    config.client_id(),
                    &code,
                    description.as_deref(),
                ));
            }
        };
        tracing::debug!("sign-in redirect received; exchanging the code");
        let http = Transport::new(config.http());
        let requested = config.scopes();
        config
            .retry()
            .retry(|_attempt| {
                let code = AuthorizationCode::new(code.expose().to_owned());
                let verifier = PkceCodeVerifier::new(verifier.secret().clone());
                let client = &client;
                let http = &http;
                let requested = &requested;
                async move {
                    let response = client
                        .exchange_code(code)
                        .set_pkce_verifier(verifier)
                        .request_async(http)
                        .await
                        .map_err(|e| map_request_error(Grant::Code, config.client_id(), e))?;
                    MicrosoftTokens::from_response(&response, None, requested, Utc::now())
                }
            })
            .await
    };
    let result = match tokio::time::timeout(options.timeout, flow).await {
        Ok(result) => result,
        Err(_) => {
            let what = if pending_answer.is_some() {
                "the sign-in came back from the browser, but exchanging its code did not finish"
            } else {
                "no sign-in came back from the browser"
            };
            Err(Error::Permanent {
                service: SERVICE,
                operation: "browser sign-in".into(),
                message: format!(
                    "{what} within {} s; sign in again",
                    options.timeout.as_secs()
                ),
            })
        }
    };
    if let Some(answer) = pending_answer {
        let outcome = match &result {
            Ok(_) => Outcome::SignedIn,
            Err(_) => Outcome::NotCompleted,
        };
        answer.send(outcome).await;
    }
    result
}
