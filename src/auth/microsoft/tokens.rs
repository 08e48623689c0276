//! [`MicrosoftTokens`]: what a sign-in or a refresh yields, and what the token store keeps.

use super::config::SERVICE;
use crate::auth::SecretString;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use oauth2::TokenResponse;
use oauth2::basic::BasicTokenResponse;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// An access token, the refresh token that renews it, when the access token expires, and
/// the scopes Microsoft granted. `Debug` shows neither token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MicrosoftTokens {
    /// The bearer token for Graph. Opaque for personal accounts: never parse it
    /// (onedrive-graph.md §1, "Consumer access tokens appear opaque").
    pub access_token: SecretString,
    /// The refresh token. Each refresh returns a new one, which replaces it
    /// (onedrive-graph.md §1 "Refresh tokens").
    pub refresh_token: SecretString,
    /// When the access token stops working.
    pub expires_at: DateTime<Utc>,
    /// The scopes granted, as Microsoft listed them.
    pub scopes: Vec<String>,
}

/// The longest access-token lifetime believed; Microsoft's are about an hour
/// (`expires_in` 3599, onedrive-graph.md §1).
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

impl MicrosoftTokens {
    /// Tokens known only by their refresh token: the access token is empty and already
    /// expired, so the first use refreshes.
    pub fn from_refresh_token(refresh_token: SecretString) -> Self {
        Self {
            access_token: SecretString::new(""),
            refresh_token,
            expires_at: DateTime::<Utc>::UNIX_EPOCH,
            scopes: Vec::new(),
        }
    }

    /// Whether the access token is still good `margin` after `now`.
    pub fn is_valid_for(&self, now: DateTime<Utc>, margin: Duration) -> bool {
        let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::MAX);
        !self.access_token.expose().is_empty()
            && now
                .checked_add_signed(margin)
                .is_some_and(|t| t < self.expires_at)
    }

    /// Whether `scope` was granted. Case-insensitive, and a resource prefix such as
    /// `https://graph.microsoft.com/` is ignored.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|granted| {
            let bare = granted.rsplit('/').next().unwrap_or(granted);
            bare.eq_ignore_ascii_case(scope)
        })
    }

    /// Whether the only file scope granted is `Files.ReadWrite.AppFolder`: the tokens hit by
    /// the 2026 bug where every drive call answers 403 (onedrive-graph.md §0, §9, §12.2).
    /// Signing in again with [`DriveAccess::AllFiles`](super::DriveAccess::AllFiles) repairs it.
    pub fn is_app_folder_only(&self) -> bool {
        self.has_scope("Files.ReadWrite.AppFolder")
            && !["Files.ReadWrite", "Files.ReadWrite.All"]
                .iter()
                .any(|s| self.has_scope(s))
    }

    /// Reads a token response. `previous` is the refresh token that was just used, kept if
    /// the answer carries none (Microsoft always sends one, but the standard does not
    /// promise it for refreshes). `requested` stands in when no `scope` is returned.
    pub(crate) fn from_response(
        response: &BasicTokenResponse,
        previous: Option<&SecretString>,
        requested: &[String],
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let refresh_token = match (response.refresh_token(), previous) {
            (Some(new), _) => SecretString::new(new.secret().clone()),
            (None, Some(old)) => old.clone(),
            // Only issued when offline_access was granted (onedrive-graph.md §1 "Scopes").
            (None, None) => {
                return Err(Error::Malformed {
                    service: SERVICE,
                    field: "refresh_token".into(),
                    detail: "missing: Microsoft issues one only when offline_access is granted"
                        .into(),
                });
            }
        };
        // No `expires_in`: treat the token as expiring now, so the next use refreshes
        // rather than risking a stale token.
        let lifetime = response
            .expires_in()
            .unwrap_or(Duration::ZERO)
            .min(MAX_LIFETIME);
        let expires_at = chrono::Duration::from_std(lifetime)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(now);
        let scopes = match response.scopes() {
            Some(granted) if !granted.is_empty() => {
                granted.iter().map(|s| s.as_str().to_owned()).collect()
            }
            _ => requested.to_vec(),
        };
        Ok(Self {
            access_token: SecretString::new(response.access_token().secret().clone()),
            refresh_token,
            expires_at,
            scopes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(json: &str) -> BasicTokenResponse {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn reads_a_response_and_keeps_secrets_out_of_debug() {
        let now = Utc::now();
        let t = MicrosoftTokens::from_response(
            &response(
                r#"{"access_token":"AT-1","token_type":"Bearer","expires_in":3599,
                    "scope":"https://graph.microsoft.com/Files.ReadWrite.AppFolder offline_access",
                    "refresh_token":"RT-1"}"#,
            ),
            None,
            &[],
            now,
        )
        .unwrap();
        assert!(t.is_valid_for(now, Duration::from_secs(120)));
        assert!(!t.is_valid_for(now, Duration::from_secs(3600)));
        assert!(t.is_app_folder_only());
        let debug = format!("{t:?}");
        assert!(
            !debug.contains("AT-1") && !debug.contains("RT-1"),
            "{debug}"
        );

        let kept = MicrosoftTokens::from_response(
            &response(r#"{"access_token":"AT-2","token_type":"bearer"}"#),
            Some(&SecretString::new("RT-old")),
            &["Files.ReadWrite".to_owned()],
            now,
        )
        .unwrap();
        assert_eq!(kept.refresh_token.expose(), "RT-old");
        assert!(!kept.is_valid_for(now, Duration::ZERO));
        assert!(!kept.is_app_folder_only());

        let missing = MicrosoftTokens::from_response(
            &response(r#"{"access_token":"AT-3","token_type":"Bearer","expires_in":60}"#),
            None,
            &[],
            now,
        );
        assert!(matches!(missing, Err(Error::Malformed { .. })));
    }
}
