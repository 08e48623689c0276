//! Token stores that save what a pass's providers rotate back into the fleet, sealed.

use super::credentials::QontoCredentials;
use crate::auth::microsoft::{MicrosoftTokens, TokenStore};
use crate::error::Result;
use crate::fleet::Fleet;
use crate::source::qonto::{QontoTokenStore, QontoTokens};
use async_trait::async_trait;
use std::fmt;
use std::sync::{Mutex, PoisonError};

/// An organisation's Microsoft tokens: the refresh token read from the fleet, and each
/// rotated one saved back into it, sealed, before it is used.
pub(super) struct FleetMicrosoftTokens {
    pub(super) fleet: Fleet,
    pub(super) organization: String,
    pub(super) current: Mutex<Option<MicrosoftTokens>>,
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
pub(super) struct FleetQontoTokens {
    pub(super) fleet: Fleet,
    pub(super) organization: String,
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
