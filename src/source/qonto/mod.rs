//! Qonto Business API v2 as a [`ReceiptSource`].
//!
//! - Accounts come from `GET /v2/organization` (qonto.md §2.1).
//! - Receipts are the attachments of `GET /v2/transactions?includes[]=attachments`,
//!   read per account in `updated_at` order from a watermark (qonto.md §2.2, §2.6).
//! - Bytes come from each attachment's pre-signed URL, downloaded without any Qonto
//!   credential, refreshed through `GET /v2/attachments/{id}` when it expired
//!   (qonto.md §2.3).
//!
//! ```no_run
//! # async fn demo() -> receipt_sync::Result<()> {
//! use receipt_sync::source::{QontoAuth, QontoSource, ReceiptSource};
//! let source = QontoSource::builder(QontoAuth::api_key("acme-1234", "secret-key")).build()?;
//! for account in source.accounts().await? {
//!     println!("{} ({})", account.name, account.id);
//! }
//! # Ok(()) }
//! ```

mod accounts;
mod auth;
mod builder;
mod client;
mod convert;
#[cfg(feature = "testkit")]
pub(crate) mod decode;
mod download;
mod error;
mod limiter;
mod model;
mod paginate;
mod receipts;

pub use auth::{
    InMemoryTokenStore, QONTO_SANDBOX_TOKEN_URL, QONTO_TOKEN_URL, QontoAuth, QontoOAuth,
    QontoTokenStore, QontoTokens,
};
pub use builder::{QONTO_BASE_URL, QONTO_SANDBOX_BASE_URL, QontoSourceBuilder};
pub use limiter::{QontoRateLimit, SharedQontoRateLimiter};
pub use paginate::PagingMode;

use crate::auth::SecretString;
use crate::error::Result;
use crate::model::{AccountId, BankAccount, Body, Receipt};
use crate::source::{ReceiptQuery, ReceiptSource, ReceiptStream};
use async_trait::async_trait;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Receipts from the Qonto Business API v2.
///
/// Cheap to clone; clones share their HTTP clients, rate limit, tokens and URL cache.
#[derive(Clone)]
pub struct QontoSource {
    inner: Arc<Inner>,
}

/// How transactions of an account are selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// `bank_account_id=…`.
    Id(String),
    /// `iban=…`, for an account whose id Qonto did not give (qonto.md §2.1).
    Iban(String),
}

/// Everything a source and its streams share.
pub(crate) struct Inner {
    pub(crate) client: client::QontoClient,
    pub(crate) pager: paginate::Pager,
    /// Downloads: no default headers, no credentials, ever.
    pub(crate) download: reqwest::Client,
    /// How long a download may wait for the storage host, by size.
    pub(crate) download_deadline: download::DownloadDeadline,
    pub(crate) urls: download::UrlCache,
    pub(crate) targets: Mutex<HashMap<AccountId, Target>>,
    pub(crate) overlap: Duration,
    pub(crate) url_max_age: Duration,
}

impl Inner {
    /// How to select `account`'s transactions: as [`accounts`](QontoSource::accounts)
    /// found it, or, for an id from an earlier run, by its shape.
    pub(crate) fn target(&self, account: &AccountId) -> Target {
        let known = self
            .targets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(account)
            .cloned();
        known.unwrap_or_else(|| {
            if accounts::looks_like_iban(account.as_str()) {
                Target::Iban(account.as_str().to_owned())
            } else {
                Target::Id(account.as_str().to_owned())
            }
        })
    }
}

impl QontoSource {
    /// A builder for Qonto's production API.
    pub fn builder(auth: QontoAuth) -> QontoSourceBuilder {
        QontoSourceBuilder::new(auth)
    }

    /// A builder for Qonto's sandbox, with its staging token (qonto.md §1.4).
    pub fn sandbox(auth: QontoAuth, staging_token: impl Into<SecretString>) -> QontoSourceBuilder {
        QontoSourceBuilder::sandbox(auth, staging_token)
    }
}

impl fmt::Debug for QontoSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QontoSource")
            .field("base_url", &self.inner.client.base)
            .field("auth", &self.inner.client.auth.kind())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ReceiptSource for QontoSource {
    async fn accounts(&self) -> Result<Vec<BankAccount>> {
        accounts::list(&self.inner).await
    }

    fn receipts(&self, account: &AccountId, query: &ReceiptQuery) -> ReceiptStream {
        receipts::stream(self.inner.clone(), account.clone(), query.clone())
    }

    async fn open(&self, receipt: &Receipt) -> Result<Body> {
        download::open(&self.inner, receipt).await
    }
}
