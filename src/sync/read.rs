//! Step 2 of a pass: reading the source into the state's catalog.

use super::events::{Failure, SyncReport};
use super::execute::Recorder;
use crate::error::Result;
use crate::model::{AccountId, BankAccount, Receipt};
use crate::source::{ReceiptQuery, ReceiptSource, SourceEvent};
use crate::state::{StateChange, SyncState};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use futures::{StreamExt, stream};
use std::collections::BTreeSet;

/// Receipts are recorded in batches of this many, and at every checkpoint.
const BATCH: usize = 500;

pub(super) struct SourceReader<'a> {
    pub source: &'a dyn ReceiptSource,
    pub recorder: &'a Recorder,
    pub start_date: Option<NaiveDate>,
    pub include_declined: bool,
    pub full_read_every: Option<TimeDelta>,
}

impl SourceReader<'_> {
    /// Reads every account, all at once (their listings are independent, so their
    /// latencies overlap); returns how many new or changed receipts were read.
    pub async fn read_all(
        &self,
        accounts: &[BankAccount],
        state: &mut SyncState,
        report: &mut SyncReport,
    ) -> Result<u64> {
        let now = Utc::now();
        let streams = accounts.iter().map(|account| {
            let whole = self.reads_whole(&account.id, state, now);
            let since = if whole {
                None
            } else {
                state.watermarks.get(&account.id).cloned()
            };
            let query = ReceiptQuery::all()
                .since(since)
                .start_date(self.start_date)
                .include_declined(self.include_declined);
            let id = account.id.clone();
            // `None` marks the end of the account's listing.
            self.source
                .receipts(&account.id, &query)
                .map(Some)
                .chain(stream::iter([None]))
                .map(move |item| (id.clone(), whole, item))
        });
        let mut merged = stream::select_all(streams);
        let mut batch: Vec<Receipt> = Vec::new();
        let mut read = 0;
        let mut failed: BTreeSet<AccountId> = BTreeSet::new();
        while let Some((account, whole, item)) = merged.next().await {
            let Some(item) = item else {
                if whole && !failed.contains(&account) {
                    let finished = StateChange::FullReadFinished { account, at: now };
                    self.flush(state, &mut batch, Some(finished)).await?;
                }
                continue;
            };
            match item {
                Ok(SourceEvent::Receipt(receipt)) => {
                    // Reads overlap (a watermark is re-read with a margin): what the state
                    // already has, unchanged, is neither counted nor recorded again.
                    let known = state.receipts.get(&receipt.id) == Some(&*receipt)
                        && !state.vanished.contains_key(&receipt.id);
                    if known {
                        continue;
                    }
                    read += 1;
                    batch.push(*receipt);
                    if batch.len() >= BATCH {
                        self.flush(state, &mut batch, None).await?;
                    }
                }
                Ok(SourceEvent::Checkpoint(watermark)) => {
                    // Everything read so far is recorded with the account's new position,
                    // so the position never runs ahead of what the state holds.
                    let moved = state.watermarks.get(&account) != Some(&watermark);
                    let advance = moved.then(|| StateChange::WatermarkAdvanced {
                        account: account.clone(),
                        watermark,
                    });
                    self.flush(state, &mut batch, advance).await?;
                }
                Err(error) if error.stops_sync() => {
                    self.flush(state, &mut batch, None).await?;
                    return Err(error);
                }
                Err(error) => {
                    // One unreadable receipt never stops the others; the source keeps the
                    // watermark before it, so it is read again next time.
                    tracing::warn!(%account, %error, "a receipt could not be read");
                    report.failures.push(Failure::new(None, None, &error));
                    failed.insert(account);
                }
            }
        }
        self.flush(state, &mut batch, None).await?;
        Ok(read)
    }

    /// Whether to read the account whole: the first time, and then every
    /// `full_read_every`, in case the source failed to show a change after the watermark.
    fn reads_whole(&self, account: &AccountId, state: &SyncState, now: DateTime<Utc>) -> bool {
        if !state.watermarks.contains_key(account) {
            return true;
        }
        let Some(every) = self.full_read_every else {
            return false;
        };
        let last = state.accounts.get(account).and_then(|r| r.full_read_at);
        last.is_none_or(|at| now - at >= every)
    }

    async fn flush(
        &self,
        state: &mut SyncState,
        batch: &mut Vec<Receipt>,
        then: Option<StateChange>,
    ) -> Result<()> {
        let mut changes = Vec::with_capacity(2);
        if !batch.is_empty() {
            changes.push(StateChange::ReceiptsSeen(std::mem::take(batch)));
        }
        changes.extend(then);
        self.recorder.record(state, changes).await
    }
}
