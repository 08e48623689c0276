//! Where receipts come from: the [`ReceiptSource`] trait and its implementations.

pub mod qonto;

pub use qonto::{QontoAuth, QontoSource, QontoSourceBuilder};

use crate::error::Result;
use crate::model::{AccountId, BankAccount, Body, Receipt};
use async_trait::async_trait;
use chrono::NaiveDate;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use std::fmt;

mod memory;
mod transaction;

pub use memory::InMemorySource;
pub use transaction::BankTransaction;

/// An opaque position in a source's history of changes (Qonto: an `updated_at` instant).
///
/// The sync stores it per account and hands it back on the next run; only the
/// source that issued it interprets it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Watermark(String);

impl Watermark {
    /// Wraps a source's position.
    pub fn new(position: impl Into<String>) -> Self {
        Self(position.into())
    }

    /// The position, for the source that issued it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Watermark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Watermark({:?})", self.0)
    }
}

/// What to read from a source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiptQuery {
    /// Only receipts whose transaction changed since this position (`None`: everything).
    pub since: Option<Watermark>,
    /// Only receipts of transactions emitted on or after this day (`None`: no limit).
    pub start_date: Option<NaiveDate>,
    /// Also read declined transactions (off by default: no money moved).
    pub include_declined: bool,
}

impl ReceiptQuery {
    /// Everything the source has.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only what changed since `since`.
    pub fn since(mut self, since: Option<Watermark>) -> Self {
        self.since = since;
        self
    }

    /// Only transactions emitted on or after `day`.
    pub fn start_date(mut self, day: Option<NaiveDate>) -> Self {
        self.start_date = day;
        self
    }

    /// Whether to include declined transactions.
    pub fn include_declined(mut self, include: bool) -> Self {
        self.include_declined = include;
        self
    }
}

/// One item of a receipt stream.
///
/// Non-exhaustive: a later release may yield more kinds of items; a consumer that
/// does not know one skips it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceEvent {
    /// A receipt, new or changed.
    Receipt(Box<Receipt>),
    /// A transaction of the listing, new or changed, with or without receipts (for
    /// the accountant's index). A source that does not know its transactions simply
    /// never yields one: the index then lists the transactions of the receipts.
    Transaction(Box<BankTransaction>),
    /// Every receipt before this point has been yielded without error: a later
    /// read may resume from here.
    Checkpoint(Watermark),
}

/// A stream of receipts and checkpoints, independent of the source's lifetime.
pub type ReceiptStream = BoxStream<'static, Result<SourceEvent>>;

/// A place receipts come from (a bank).
///
/// # Contract
/// - [`accounts`](Self::accounts) lists every account whose receipts should be archived.
/// - [`receipts`](Self::receipts) yields every receipt of one account matching the query,
///   in any order, possibly more than once (the caller deduplicates by [`Receipt::id`]).
///   It may also yield the transactions of the same listing, receipts or not, as
///   [`SourceEvent::Transaction`], under the same filters (declined ones only when
///   asked, none emitted before the start date) and without any extra request: each
///   lists the ids of its receipts.
///   A receipt that cannot be read is yielded as an `Err` and the stream goes on; an error
///   for which [`crate::Error::stops_sync`] is true ends the stream.
///   A [`SourceEvent::Checkpoint`] is yielded only when every receipt (and transaction)
///   before it was yielded `Ok`: resuming from it never skips one.
/// - [`open`](Self::open) returns the receipt's bytes as a stream with their exact
///   length; [`crate::Error::NotFound`] when the receipt no longer exists.
/// - Every method may be called concurrently.
#[async_trait]
pub trait ReceiptSource: Send + Sync + fmt::Debug {
    /// The bank accounts to archive.
    async fn accounts(&self) -> Result<Vec<BankAccount>>;

    /// The receipts of `account` matching `query`.
    fn receipts(&self, account: &AccountId, query: &ReceiptQuery) -> ReceiptStream;

    /// The bytes of `receipt`.
    async fn open(&self, receipt: &Receipt) -> Result<Body>;
}

/// A shared source is a source: wrappers can take `Arc<dyn ReceiptSource>`.
#[async_trait]
impl<T: ReceiptSource + ?Sized> ReceiptSource for std::sync::Arc<T> {
    async fn accounts(&self) -> Result<Vec<BankAccount>> {
        (**self).accounts().await
    }

    fn receipts(&self, account: &AccountId, query: &ReceiptQuery) -> ReceiptStream {
        (**self).receipts(account, query)
    }

    async fn open(&self, receipt: &Receipt) -> Result<Body> {
        (**self).open(receipt).await
    }
}
