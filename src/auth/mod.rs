//! Credentials: secret newtypes and the access-token provider the HTTP connectors use.

pub mod microsoft;
mod secret;

pub use secret::SecretString;

use crate::error::Result;
use async_trait::async_trait;
use std::fmt;

/// Something that hands out a valid bearer access token, refreshing it as needed.
///
/// # Contract
/// - [`access_token`](Self::access_token) returns a token valid for at least a minute,
///   refreshing it first when needed. A refresh that rotates the refresh token
///   persists the new one before returning.
/// - A revoked grant is [`crate::Error::ConsentRevoked`], never retried in a loop.
/// - [`invalidate`](Self::invalidate) tells the provider a token was refused (HTTP 401),
///   so the next call refreshes instead of returning it again.
#[async_trait]
pub trait AccessTokenProvider: Send + Sync + fmt::Debug {
    /// A valid access token.
    async fn access_token(&self) -> Result<SecretString>;

    /// Marks `token` as refused by the server.
    async fn invalidate(&self, token: &SecretString);
}

/// A fixed token, for tests and for callers that manage tokens themselves.
#[derive(Clone, Debug)]
pub struct StaticToken(SecretString);

impl StaticToken {
    /// Always hands out `token`.
    pub fn new(token: impl Into<SecretString>) -> Self {
        Self(token.into())
    }
}

#[async_trait]
impl AccessTokenProvider for StaticToken {
    async fn access_token(&self) -> Result<SecretString> {
        Ok(self.0.clone())
    }

    async fn invalidate(&self, _token: &SecretString) {}
}
