//! [`QontoCredentials`]: the one text an organisation's Qonto credentials are sealed as.

use crate::auth::SecretString;
use crate::error::{Error, Result};
use crate::source::qonto::QontoTokens;
use std::fmt;

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

    /// The text to hand to [`Fleet::save_qonto_credentials`](crate::fleet::Fleet::save_qonto_credentials).
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
