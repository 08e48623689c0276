//! The fake's HTTP endpoints: authorize, token, devicecode.

use super::{DevicePoll, DeviceSession, FakeIdentity, IdState, PendingCode, random};
use crate::testkit::server::{FakeRequest, FakeResponse, FakeService};
use futures::future::BoxFuture;
use hyper::Method;
use oauth2::{PkceCodeChallenge, PkceCodeVerifier};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use url::Url;

/// Codes live about 10 minutes (onedrive-graph.md §1 "Authorization code + PKCE").
const CODE_LIFETIME: Duration = Duration::from_secs(600);

impl FakeService for FakeIdentity {
    fn handle(&self, request: FakeRequest) -> BoxFuture<'_, FakeResponse> {
        Box::pin(async move {
            let mut state = self.lock();
            let prefix = format!("/{}/oauth2/v2.0/", state.config.tenant);
            let endpoint = request.path.strip_prefix(&prefix).unwrap_or("");
            match (&request.method, endpoint) {
                (&Method::GET, "authorize") => state.authorize(&request),
                (&Method::POST, "token") => state.token(&request),
                (&Method::POST, "devicecode") => state.device_code(&request),
                _ => FakeResponse::json(404, &json!({"error": "not_found"})),
            }
        })
    }
}

/// A Microsoft-shaped OAuth error (§1: `{error, error_description, error_codes[], timestamp,
/// trace_id, correlation_id}`; descriptions start with an AADSTS code).
fn oauth_error(status: u16, error: &str, aadsts: u32, text: &str) -> FakeResponse {
    FakeResponse::json(
        status,
        &json!({
            "error": error,
            "error_description": format!(
                "AADSTS{aadsts}: {text}\r\nTrace ID: 00000000-fake\r\nCorrelation ID: 00000000-fake\r\nTimestamp: 2026-01-01 00:00:00Z"
            ),
            "error_codes": [aadsts],
            "timestamp": "2026-01-01 00:00:00Z",
            "trace_id": "00000000-fake",
            "correlation_id": "00000000-fake",
        }),
    )
}

fn form(request: &FakeRequest) -> HashMap<String, String> {
    url::form_urlencoded::parse(&request.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn scopes_of(raw: Option<&str>) -> Vec<String> {
    raw.unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// §1 "Redirect URIs": http only for loopback; the port is ignored when matching.
fn is_loopback_redirect(raw: &str) -> bool {
    Url::parse(raw).is_ok_and(|u| {
        u.scheme() == "http"
            && matches!(u.host_str(), Some("localhost" | "127.0.0.1"))
            && u.query().is_none()
    })
}

impl IdState {
    fn authorize(&mut self, request: &FakeRequest) -> FakeResponse {
        let page = |text: &str| FakeResponse::bytes(400, "text/html", text.to_owned());
        if request.query_param("client_id") != Some(self.config.client_id.as_str()) {
            return page("AADSTS700016: Application was not found in the directory.");
        }
        let Some(redirect_uri) = request
            .query_param("redirect_uri")
            .filter(|r| is_loopback_redirect(r))
        else {
            return page("AADSTS50011: The redirect URI does not match the registered ones.");
        };
        if request.query_param("response_type") != Some("code") {
            return page("AADSTS900144: response_type must be code.");
        }
        // The fake insists on PKCE S256, so a client that forgets it fails its tests.
        let challenge = match (
            request.query_param("code_challenge"),
            request.query_param("code_challenge_method"),
        ) {
            (Some(c), Some("S256")) if !c.is_empty() => c.to_owned(),
            _ => return page("AADSTS501491: code_challenge with method S256 is required."),
        };
        let mut target = match Url::parse(redirect_uri) {
            Ok(url) => url,
            Err(_) => return page("AADSTS50011: bad redirect URI."),
        };
        {
            let mut query = target.query_pairs_mut();
            if self.user_declines {
                query.append_pair("error", "access_denied").append_pair(
                    "error_description",
                    "AADSTS65004: User declined to consent to access the app.",
                );
            } else {
                let code = random("fake-code-", 32);
                self.codes.insert(
                    code.clone(),
                    PendingCode {
                        redirect_uri: redirect_uri.to_owned(),
                        challenge,
                        scopes: scopes_of(request.query_param("scope")),
                        issued: Instant::now(),
                    },
                );
                query.append_pair("code", &code);
            }
            if let Some(state) = request.query_param("state") {
                query.append_pair("state", state);
            }
        }
        FakeResponse::status(302).with_header("location", target.as_str())
    }

    fn token(&mut self, request: &FakeRequest) -> FakeResponse {
        let form = form(request);
        let grant = form.get("grant_type").cloned().unwrap_or_default();
        *self.grants.entry(grant.clone()).or_default() += 1;
        if let Some(status) = self.failures.pop_front() {
            let failure = FakeResponse::json(status, &json!({"error": "temporarily_unavailable"}));
            return if status == 503 {
                failure.with_header("retry-after", "1")
            } else {
                failure
            };
        }
        // §1: public clients must not send a secret.
        if form.contains_key("client_secret")
            || form.contains_key("client_assertion")
            || request.header("authorization").is_some()
        {
            return oauth_error(
                401,
                "invalid_client",
                700025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            );
        }
        if let Some(refused) = self.check_client(&form) {
            return refused;
        }
        match grant.as_str() {
            "authorization_code" => self.redeem_code(&form),
            "refresh_token" => self.redeem_refresh(&form),
            "urn:ietf:params:oauth:grant-type:device_code" => self.poll_device(&form),
            _ => oauth_error(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type.",
            ),
        }
    }

    /// An unknown client id is `unauthorized_client` (AADSTS700016), as on Microsoft.
    fn check_client(&self, form: &HashMap<String, String>) -> Option<FakeResponse> {
        (form.get("client_id") != Some(&self.config.client_id)).then(|| {
            oauth_error(
                400,
                "unauthorized_client",
                700016,
                "Application was not found in the directory.",
            )
        })
    }

    fn redeem_code(&mut self, form: &HashMap<String, String>) -> FakeResponse {
        // A code works once, whatever happens next.
        let pending = form.get("code").and_then(|c| self.codes.remove(c));
        let Some(pending) = pending.filter(|p| p.issued.elapsed() < CODE_LIFETIME) else {
            return oauth_error(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code is expired or invalid.",
            );
        };
        if form.get("redirect_uri") != Some(&pending.redirect_uri) {
            return oauth_error(
                400,
                "invalid_grant",
                70000,
                "The redirect_uri does not match the one of the authorization request.",
            );
        }
        let verified = form.get("code_verifier").is_some_and(|v| {
            let computed =
                PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(v.clone()));
            computed.as_str() == pending.challenge
        });
        if !verified {
            return oauth_error(
                400,
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            );
        }
        self.grant_tokens(pending.scopes)
    }

    fn redeem_refresh(&mut self, form: &HashMap<String, String>) -> FakeResponse {
        // Rotation: the old refresh token dies as the new one is issued (the fake is stricter
        // than Microsoft, which leaves the old one alive: onedrive-graph.md §1).
        let Some(granted) = form
            .get("refresh_token")
            .and_then(|rt| self.refresh_tokens.remove(rt))
        else {
            return oauth_error(
                400,
                "invalid_grant",
                700082,
                "The refresh token has expired due to inactivity or was revoked.",
            );
        };
        // §1 "Refresh tokens": `scope` is optional; without it, what was granted. With it,
        // the fake grants what is asked (a user who consented once, as to Files.ReadWrite).
        let asked = scopes_of(form.get("scope").map(String::as_str));
        self.grant_tokens(if asked.is_empty() { granted } else { asked })
    }

    fn poll_device(&mut self, form: &HashMap<String, String>) -> FakeResponse {
        let code = form.get("device_code").cloned().unwrap_or_default();
        let Some(session) = self.devices.get_mut(&code) else {
            return oauth_error(400, "expired_token", 70019, "Verification code expired.");
        };
        match session.script.pop_front().unwrap_or(DevicePoll::Approve) {
            DevicePoll::Pending => oauth_error(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending.",
            ),
            DevicePoll::SlowDown => oauth_error(400, "slow_down", 70016, "Polling too often."),
            DevicePoll::Decline => {
                self.devices.remove(&code);
                oauth_error(
                    400,
                    "authorization_declined",
                    70020,
                    "The user declined the authorization.",
                )
            }
            DevicePoll::Expire => {
                self.devices.remove(&code);
                oauth_error(400, "expired_token", 70019, "Verification code expired.")
            }
            DevicePoll::Approve => {
                let scopes = std::mem::take(&mut session.scopes);
                self.devices.remove(&code);
                self.grant_tokens(scopes)
            }
        }
    }

    fn device_code(&mut self, request: &FakeRequest) -> FakeResponse {
        let form = form(request);
        if let Some(refused) = self.check_client(&form) {
            return refused;
        }
        let device_code = random("fake-dc-", 40);
        let user_code = random("", 8).to_uppercase();
        self.devices.insert(
            device_code.clone(),
            DeviceSession {
                script: self.config.device_script.iter().copied().collect(),
                scopes: scopes_of(form.get("scope").map(String::as_str)),
            },
        );
        FakeResponse::json(
            200,
            &json!({
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": "https://microsoft.com/devicelogin",
                "expires_in": self.config.device_expires_in_secs,
                "interval": self.config.device_interval_secs,
                "message": format!("To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code {user_code} to authenticate."),
            }),
        )
    }

    /// A token response (§1: `access_token`, `token_type`, `expires_in`, `scope`, and a
    /// `refresh_token` only if `offline_access` was granted).
    fn grant_tokens(&mut self, scopes: Vec<String>) -> FakeResponse {
        let access = self.new_access_token(&scopes);
        let mut body = json!({
            "token_type": "Bearer",
            "scope": scopes.join(" "),
            "expires_in": self.config.access_token_lifetime.as_secs(),
            "ext_expires_in": self.config.access_token_lifetime.as_secs(),
            "access_token": access,
        });
        if scopes.iter().any(|s| s == "offline_access") {
            let refresh = random("fake-rt-", 40);
            self.refresh_tokens.insert(refresh.clone(), scopes);
            body["refresh_token"] = json!(refresh);
        }
        FakeResponse::json(200, &body)
    }
}
