//! Token stores that save what a pass's providers rotate back into the fleet, sealed.

use super::credentials::QontoCredentials;
use crate::auth::microsoft::{MicrosoftTokens, TokenStore};
use crate::error::Result;
use crate::fleet::Fleet;
use crate::source::qonto::{QontoTokenStore, QontoTokens};
use async_trait::async_trait;
use std::fmt;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Waits before each new attempt at saving a rotated token: about 15 s in all.
const SAVE_BACKOFF: [Duration; 5] = [
    Duration::from_millis(250),
    Duration::from_millis(750),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];

/// Runs `save` until it succeeds, tries again after a passing failure (the database
/// restarting), and returns the last error once [`SAVE_BACKOFF`] is spent. A rotated
/// token not saved is lost with the pass: Qonto's old refresh token dies 60 s after a
/// rotation (qonto.md §1.2), and the organisation would need a person to sign in again.
async fn save_patiently<F, Fut>(mut save: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut waits = SAVE_BACKOFF.iter();
    loop {
        match save().await {
            Err(error) if error.is_retryable() => match waits.next() {
                Some(wait) => {
                    tracing::warn!(%error, "saving a rotated token failed; trying again");
                    tokio::time::sleep(*wait).await;
                }
                None => return Err(error),
            },
            other => return other,
        }
    }
}

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
        save_patiently(|| {
            self.fleet
                .save_microsoft_refresh_token(&self.organization, &tokens.refresh_token)
        })
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
        save_patiently(|| {
            self.fleet
                .save_qonto_credentials(&self.organization, &encoded)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn passing() -> Error {
        Error::Transient {
            service: "postgresql",
            operation: "saving sealed credentials".to_owned(),
            message: "connection refused".to_owned(),
            retry_after: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_save_failing_for_a_while_is_tried_again_until_it_succeeds() {
        let calls = AtomicU32::new(0);
        let result = save_patiently(|| async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0..=2 => Err(passing()),
                _ => Ok(()),
            }
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_save_refused_for_good_or_for_too_long_returns_the_error() {
        let calls = AtomicU32::new(0);
        let refused = save_patiently(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Error::Config("no such organisation".to_owned()))
        })
        .await;
        assert!(matches!(refused, Err(Error::Config(_))));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "a refusal is not tried again"
        );
        calls.store(0, Ordering::SeqCst);
        let started = tokio::time::Instant::now();
        let down = save_patiently(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(passing())
        })
        .await;
        assert!(down.unwrap_err().is_retryable());
        assert_eq!(calls.load(Ordering::SeqCst), 1 + SAVE_BACKOFF.len() as u32);
        assert!(started.elapsed() >= Duration::from_secs(15));
    }
}
