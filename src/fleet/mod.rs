//! A service that runs many organisations (feature `fleet`): the organisations, their
//! schedule and their credentials sealed at rest in PostgreSQL ([`Fleet`]), and the
//! workers that claim and run them ([`Worker`]). The design is in `docs/service.md`.
//!
//! The budgets such a service shares between organisations need no feature: one
//! Qonto rate limiter per worker
//! ([`SharedQontoRateLimiter`](crate::source::qonto::SharedQontoRateLimiter)) and one
//! cap on uploads in flight ([`UploadBudget`](crate::sync::UploadBudget)).

mod factory;
mod registry;
pub mod seal;
mod worker;

pub use factory::{QontoCredentials, QontoOneDriveFactory};
pub use registry::{
    Claim, Credentials, DEFAULT_LEASE, Fleet, FleetStatus, NewOrganization, OrganizationStatus,
    RunOutcome,
};
pub use seal::{KeyId, Keyring, SEALING_KEYS_VAR, SealContext, SealedSecret};
pub use worker::{Assignment, Connectors, OrganizationFactory, Worker};
