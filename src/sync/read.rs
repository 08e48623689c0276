//! Step 2 of a pass: reading the source into the state's catalog.
//!
//! # One account's failure stays that account's
//! Every account is listed on its own stream, all at once. An error ends at most that
//! account's listing (the [`ReceiptSource`] contract); the other accounts are read to
//! their end, planned and archived as usual. For an account whose listing broke off:
//! 1. the receipts read before the error are recorded, and its watermark moves only
//!    as far as the source's last checkpoint, never past the error; a whole read is
//!    not marked finished. The next run reads again what this one missed.
//! 2. nothing already in the catalog is dropped or taken as removed: a listing that
//!    broke off says nothing about the receipts it did not reach. (The deletion rules
//!    look only at the archive, so an unread account tombstones nothing either.)
//! 3. its errors go into [`SyncReport::failures`], the account into
//!    [`SyncReport::unread_accounts`] with the last of them, and the run is not
//!    complete. (A receipt that fails as the listing's last item and a listing that
//!    breaks off look the same in a stream; both leave the account not read in full.)
//!
//! Two exceptions stop the whole run, as before the other accounts mattered:
//! - an error that no account can get past ([`Error::stops_sync`], other than a
//!   refusal): a cancellation, the configuration, revoked consent; at once;
//! - a refusal (bad credentials, a missing permission, a login page where JSON was
//!   expected) on *every* account: it is then not about one account, and a person has
//!   to act. A refusal on some accounts only stays theirs: a membership may not see
//!   every account, and a proxy may answer one request with a page.

use super::events::{AccountFailure, Failure, SyncReport};
use super::execute::Recorder;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{AccountId, BankAccount, Receipt};
use crate::source::{
    BankTransaction, ReceiptQuery, ReceiptSource, ReceiptStream, SourceEvent, Watermark,
};
use crate::state::{StateChange, SyncState};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use futures::StreamExt;
use futures::stream::{self, BoxStream};

/// Receipts are recorded in batches of this many, and at every checkpoint.
const BATCH: usize = 500;

pub(super) struct SourceReader<'a> {
    pub source: &'a dyn ReceiptSource,
    pub recorder: &'a Recorder,
    pub start_date: Option<NaiveDate>,
    pub include_declined: bool,
    pub full_read_every: Option<TimeDelta>,
    /// Whether transactions are kept, for the accountant's index: without it they are
    /// skipped, so an archive without indexes keeps no second copy of each transaction
    /// in its state (memory and state size grow with the archive).
    pub keep_transactions: bool,
}

/// What was read and is not recorded yet.
#[derive(Default)]
struct Batch {
    receipts: Vec<Receipt>,
    transactions: Vec<BankTransaction>,
}

impl Batch {
    fn len(&self) -> usize {
        self.receipts.len() + self.transactions.len()
    }
}

/// One account's listing as the merged stream goes.
struct Listing {
    /// Read whole, not from a watermark.
    whole: bool,
    /// Its errors, in order.
    failures: Vec<Failure>,
    /// The last error, while nothing has followed it: if the listing ends now, it
    /// ended on it.
    last_error: Option<Error>,
    /// The error the listing ended on, if it did.
    ended_on: Option<Error>,
}

/// An event of one account's listing (by its index), `None` at its end.
type Tagged = (usize, Option<Result<SourceEvent>>);

/// Tags `events` with the account's index, and marks their end with `None`.
fn tagged(index: usize, events: ReceiptStream) -> BoxStream<'static, Tagged> {
    events
        .map(Some)
        .chain(stream::iter([None]))
        .map(move |item| (index, item))
        .boxed()
}

/// One account's listing from `since` (whole when `None`), each request of it followed
/// in the account's `sync_account` span.
pub(super) fn listing(
    source: &dyn ReceiptSource,
    account: &AccountId,
    since: Option<Watermark>,
    start_date: Option<NaiveDate>,
    include_declined: bool,
) -> ReceiptStream {
    let query = ReceiptQuery::all()
        .since(since)
        .start_date(start_date)
        .include_declined(include_declined);
    InSpan {
        span: tracing::info_span!("sync_account", account = %account),
        inner: source.receipts(account, &query),
    }
    .boxed()
}

/// Whether an account is read whole rather than from its watermark: the first time (no
/// watermark), and then every `every`, in case the source failed to show a change after
/// the watermark.
pub(super) fn reads_whole(
    has_watermark: bool,
    full_read_at: Option<DateTime<Utc>>,
    every: Option<TimeDelta>,
    now: DateTime<Utc>,
) -> bool {
    if !has_watermark {
        return true;
    }
    let Some(every) = every else {
        return false;
    };
    full_read_at.is_none_or(|at| now - at >= every)
}

/// A stream polled inside its span: the listings are merged into one stream, so each
/// account's requests are followed in its own `sync_account` span this way.
struct InSpan<T> {
    span: tracing::Span,
    inner: BoxStream<'static, T>,
}

impl<T> futures::Stream for InSpan<T> {
    type Item = T;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        this.inner.poll_next_unpin(cx)
    }
}

/// Whether `error` can concern one account only (see the module docs).
fn is_refusal(error: &Error) -> bool {
    matches!(error.kind(), ErrorKind::Unauthorized | ErrorKind::Forbidden)
}

impl SourceReader<'_> {
    /// Reads every account, all at once (their listings are independent, so their
    /// latencies overlap); returns how many new or changed receipts were read.
    /// `prefetched`: the accounts' listings from their watermarks, started already
    /// (one per account, in order; see [`super::quiet`]), instead of new ones.
    pub async fn read_all(
        &self,
        accounts: &[BankAccount],
        prefetched: Option<Vec<ReceiptStream>>,
        state: &mut SyncState,
        report: &mut SyncReport,
    ) -> Result<u64> {
        let now = Utc::now();
        let mut listings = Vec::with_capacity(accounts.len());
        let mut streams = Vec::with_capacity(accounts.len());
        let mut prefetched = prefetched.map(Vec::into_iter);
        for (index, account) in accounts.iter().enumerate() {
            let started = prefetched.as_mut().and_then(Iterator::next);
            // A listing started before is one from the watermark.
            let whole = started.is_none() && self.reads_whole(&account.id, state, now);
            let events = match started {
                Some(events) => events,
                None => {
                    let since = if whole {
                        None
                    } else {
                        state.watermarks.get(&account.id).cloned()
                    };
                    listing(
                        self.source,
                        &account.id,
                        since,
                        self.start_date,
                        self.include_declined,
                    )
                }
            };
            streams.push(tagged(index, events));
            listings.push(Listing {
                whole,
                failures: Vec::new(),
                last_error: None,
                ended_on: None,
            });
        }
        let mut merged = stream::select_all(streams);
        let mut batch = Batch::default();
        let mut read = 0;
        while let Some((index, item)) = merged.next().await {
            let (Some(account), Some(listing)) = (accounts.get(index), listings.get_mut(index))
            else {
                continue;
            };
            let event = match item {
                None => {
                    listing.ended_on = listing.last_error.take();
                    if listing.whole && listing.failures.is_empty() {
                        let finished = StateChange::FullReadFinished {
                            account: account.id.clone(),
                            at: now,
                        };
                        self.flush(state, &mut batch, Some(finished)).await?;
                    }
                    continue;
                }
                Some(Err(error)) if error.stops_sync() && !is_refusal(&error) => {
                    self.flush(state, &mut batch, None).await?;
                    report
                        .failures
                        .extend(listings.into_iter().flat_map(|l| l.failures));
                    return Err(error);
                }
                Some(Err(error)) => {
                    tracing::warn!(account = %account.id, %error, "the account's listing failed");
                    listing.failures.push(Failure::new(None, None, &error));
                    listing.last_error = Some(error);
                    continue;
                }
                Some(Ok(event)) => event,
            };
            // More followed the error: it was one receipt's, not the listing's end.
            listing.last_error = None;
            match event {
                SourceEvent::Receipt(receipt) => {
                    // Reads overlap (a watermark is re-read with a margin): what the state
                    // already has, unchanged, is neither counted nor recorded again.
                    let known = state.receipts.get(&receipt.id) == Some(&*receipt)
                        && !state.vanished.contains_key(&receipt.id);
                    if known {
                        continue;
                    }
                    read += 1;
                    batch.receipts.push(*receipt);
                    if batch.len() >= BATCH {
                        self.flush(state, &mut batch, None).await?;
                    }
                }
                SourceEvent::Transaction(_) if !self.keep_transactions => {}
                SourceEvent::Transaction(transaction) => {
                    // Not counted as read: the index follows, receipts are what is archived.
                    let known =
                        state.transactions.get(&transaction.transaction.id) == Some(&*transaction);
                    if !known {
                        batch.transactions.push(*transaction);
                        if batch.len() >= BATCH {
                            self.flush(state, &mut batch, None).await?;
                        }
                    }
                }
                SourceEvent::Checkpoint(watermark) => {
                    // Everything read so far is recorded with the account's new position,
                    // so the position never runs ahead of what the state holds.
                    let moved = state.watermarks.get(&account.id) != Some(&watermark);
                    let advance = moved.then(|| StateChange::WatermarkAdvanced {
                        account: account.id.clone(),
                        watermark,
                    });
                    self.flush(state, &mut batch, advance).await?;
                }
            }
        }
        self.flush(state, &mut batch, None).await?;
        let every_account_refused = !listings.is_empty()
            && listings
                .iter()
                .all(|l| l.ended_on.as_ref().is_some_and(is_refusal));
        if every_account_refused {
            // Not one account's problem: nothing can be archived until a person acts.
            if let Some(first) = listings.into_iter().find_map(|l| l.ended_on) {
                return Err(first);
            }
            return Ok(read);
        }
        for (account, listing) in accounts.iter().zip(listings) {
            if let Some(last) = listing.failures.last() {
                report
                    .unread_accounts
                    .push(AccountFailure::new(account, last));
                report.failures.extend(listing.failures);
            }
        }
        Ok(read)
    }

    /// Whether to read the account whole: the first time, and then every
    /// `full_read_every`, in case the source failed to show a change after the watermark.
    fn reads_whole(&self, account: &AccountId, state: &SyncState, now: DateTime<Utc>) -> bool {
        reads_whole(
            state.watermarks.contains_key(account),
            state.accounts.get(account).and_then(|r| r.full_read_at),
            self.full_read_every,
            now,
        )
    }

    async fn flush(
        &self,
        state: &mut SyncState,
        batch: &mut Batch,
        then: Option<StateChange>,
    ) -> Result<()> {
        let mut changes = Vec::with_capacity(3);
        if !batch.receipts.is_empty() {
            changes.push(StateChange::ReceiptsSeen(std::mem::take(
                &mut batch.receipts,
            )));
        }
        if !batch.transactions.is_empty() {
            changes.push(StateChange::TransactionsSeen(std::mem::take(
                &mut batch.transactions,
            )));
        }
        changes.extend(then);
        self.recorder.record(state, changes).await
    }
}
