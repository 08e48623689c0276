//! Building blocks of a service that runs many organisations in one process (feature
//! `fleet`): credentials sealed at rest under a rotating keyring.
//!
//! The budgets such a service shares between organisations need no feature: one
//! Qonto rate limiter per worker
//! ([`SharedQontoRateLimiter`](crate::source::qonto::SharedQontoRateLimiter)) and one
//! cap on uploads in flight ([`UploadBudget`](crate::sync::UploadBudget)).

pub mod seal;

pub use seal::{KeyId, Keyring, SEALING_KEYS_VAR, SealContext, SealedSecret};
