#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod auth;
pub mod error;
#[cfg(feature = "fleet")]
pub mod fleet;
mod fs_util;
pub mod http;
pub mod index;
pub mod layout;
pub mod model;
pub mod plan;
pub mod sink;
pub mod source;
pub mod state;
pub mod sync;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::{Error, ErrorKind, Result};

/// Every Rust block of the guides under `docs/` compiles, as doc tests.
#[cfg(doctest)]
mod guides {
    #[doc = include_str!("../docs/architecture.md")]
    struct Architecture;
    #[doc = include_str!("../docs/deletion-rules.md")]
    struct DeletionRules;
    #[doc = include_str!("../docs/getting-started.md")]
    struct GettingStarted;
    #[doc = include_str!("../docs/running-daily.md")]
    struct RunningDaily;
    #[doc = include_str!("../docs/embedding.md")]
    struct Embedding;
    #[doc = include_str!("../docs/writing-a-sink.md")]
    struct WritingASink;
    #[doc = include_str!("../docs/troubleshooting.md")]
    struct Troubleshooting;
    #[doc = include_str!("../docs/reliability.md")]
    struct Reliability;
    #[doc = include_str!("../docs/api-notes-qonto.md")]
    struct ApiNotesQonto;
    #[doc = include_str!("../docs/api-notes-onedrive.md")]
    struct ApiNotesOneDrive;
    #[doc = include_str!("../docs/api-notes-microsoft-identity.md")]
    struct ApiNotesMicrosoftIdentity;
    #[doc = include_str!("../docs/multiple-organisations.md")]
    struct MultipleOrganisations;
    #[doc = include_str!("../docs/accountant-index.md")]
    struct AccountantIndex;
    #[cfg(feature = "postgres")]
    #[doc = include_str!("../docs/service.md")]
    struct Service;
    #[cfg(feature = "fleet")]
    #[doc = include_str!("../docs/service-credentials-and-budgets.md")]
    struct ServiceCredentialsAndBudgets;
}
