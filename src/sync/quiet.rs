//! A quiet day without loading the state.
//!
//! A pass whose store keeps a [`Settled`] summary (the last pass left nothing to do)
//! first finds out whether anything changed, from the summary alone:
//! 1. the stored settings, and the options the empty plan was made under, are this
//!    pass's ([`Syncer::settled_key`]);
//! 2. the source lists the same accounts, none is due for a whole read, and every
//!    receipt and transaction read from the watermarks is one the catalog already holds
//!    (the reads overlap: the last receipts come back each day);
//! 3. the archive's change feed reports nothing, or only the last pass's own writes,
//!    exactly as the state holds them.
//!
//! Then the state is the one the last plan was made from, so the plan is empty again:
//! the pass records the new read positions, the scan cursor and its summary, and
//! ends, having read a few kilobytes of state instead of all of it. Otherwise what was
//! read on the way ([`Prefetched`]) goes to the whole pass, which loads the state and
//! goes on from there: no request is made twice.

use super::events::{SyncEvent, SyncReport};
use super::{Syncer, read};
use crate::error::Result;
use crate::model::{BankAccount, ScanUpdate, SinkChange, SinkEntry};
use crate::plan::{RequestedSettings, resolve_state_settings};
use crate::source::{ReceiptStream, SourceEvent, Watermark};
use crate::state::{
    CatalogDigest, EchoDigest, HeldEchoes, RunSummary, STATE_VERSION, SettledKey, StateChange,
    StateSettings, SyncState,
};
use chrono::Utc;
use futures::{StreamExt, future, stream};

/// What a pass read while finding out whether the day is quiet; the whole pass uses it
/// instead of asking again.
#[derive(Default)]
pub(super) struct Prefetched {
    /// The account list's answer.
    pub accounts: Option<Result<Vec<BankAccount>>>,
    /// Each listed account's receipts, in the list's order: what was read, then the
    /// rest of the listing. Only when no account was due for a whole read.
    pub listings: Option<Vec<ReceiptStream>>,
    /// The archive's answer to the scan.
    pub scan: Option<Result<ScanUpdate>>,
}

/// How the quiet check ended.
pub(super) enum Quiet {
    /// Nothing changed: the pass is over, its report filled in.
    Done,
    /// Something may have: the whole pass goes on with what was read.
    NotQuiet(Prefetched),
}

/// One account's listing as far as the check read it.
struct Probed {
    /// The events read, in order.
    read: Vec<Result<SourceEvent>>,
    /// The rest of the listing, when the check stopped before its end.
    rest: Option<ReceiptStream>,
    /// Whether everything read is already in the catalog.
    quiet: bool,
}

impl Probed {
    /// The listing as the whole pass reads it: what was read, then the rest.
    fn into_stream(self) -> ReceiptStream {
        let read = stream::iter(self.read);
        match self.rest {
            Some(rest) => read.chain(rest).boxed(),
            None => read.boxed(),
        }
    }

    /// The last read position the listing gave, if any.
    fn last_watermark(&self) -> Option<&Watermark> {
        self.read.iter().rev().find_map(|event| match event {
            Ok(SourceEvent::Checkpoint(watermark)) => Some(watermark),
            _ => None,
        })
    }
}

/// Reads `listing` while what it shows is already in `catalog`; stops at the first
/// event that is not (a new or changed receipt, an error).
async fn probe(mut listing: ReceiptStream, catalog: &CatalogDigest, transactions: bool) -> Probed {
    let mut read = Vec::new();
    while let Some(event) = listing.next().await {
        let known = match &event {
            Ok(SourceEvent::Receipt(receipt)) => catalog.holds_receipt(receipt),
            // Without indexes, transactions are not kept: nothing to compare.
            Ok(SourceEvent::Transaction(transaction)) => {
                !transactions || catalog.holds_transaction(transaction)
            }
            Ok(SourceEvent::Checkpoint(_)) => true,
            Err(_) => false,
        };
        read.push(event);
        if !known {
            return Probed {
                read,
                rest: Some(listing),
                quiet: false,
            };
        }
    }
    Probed {
        read,
        rest: None,
        quiet: true,
    }
}

/// What `changes` report when every one is an item the last pass wrote, exactly as
/// the state holds it, mentioned once: changes that change nothing, as
/// [`StateChange::archive_scanned`] would find. `None` otherwise.
fn echoes_only(changes: &[SinkChange], echoes: &EchoDigest) -> Option<HeldEchoes> {
    let entries: Option<Vec<&SinkEntry>> = changes
        .iter()
        .map(|change| match change {
            SinkChange::Upsert(entry) => Some(entry),
            SinkChange::Removed(_) => None,
        })
        .collect();
    echoes.all_held(entries?)
}

impl Syncer {
    /// What a plan depends on besides the state: a state settled under another key is
    /// planned again.
    pub(super) fn settled_key(&self, settings: &StateSettings) -> SettledKey {
        let caps = self.sink.capabilities();
        SettledKey::of(&(
            // Another release may plan differently.
            env!("CARGO_PKG_VERSION"),
            STATE_VERSION,
            settings,
            self.config.include_declined,
            self.config.index.enabled,
            self.config.index.separator.byte(),
            (caps.max_name_len, caps.max_path_len, caps.root_prefix_len),
            caps.replace,
        ))
    }

    /// The quiet check (see the module docs).
    pub(super) async fn quiet_pass(
        &self,
        started: std::time::Instant,
        report: &mut SyncReport,
    ) -> Result<Quiet> {
        let not_quiet = || Ok(Quiet::NotQuiet(Prefetched::default()));
        if self.config.dry_run || self.cancel.is_cancelled() {
            return not_quiet();
        }
        let Some(settled) = self.store.load_settled().await? else {
            return not_quiet();
        };
        let head = &settled.head;
        let Some(stored) = head.settings.clone() else {
            return not_quiet();
        };
        // Settings are stored: resolving them reads nothing but them.
        let requested = RequestedSettings {
            start_date: self.config.start_date,
            layout: self.config.layout,
        };
        let only_settings = SyncState {
            version: STATE_VERSION,
            settings: Some(stored),
            ..SyncState::default()
        };
        let (settings, change) = resolve_state_settings(&only_settings, &requested)?;
        if change.is_some() || settled.key != self.settled_key(&settings) {
            return not_quiet();
        }

        let listed = self.config.retry.retry(|_| self.source.accounts()).await;
        let Ok(accounts) = &listed else {
            return Ok(Quiet::NotQuiet(Prefetched {
                accounts: Some(listed),
                ..Prefetched::default()
            }));
        };
        let now = Utc::now();
        let same_accounts = accounts.len() == head.accounts.len()
            && accounts.iter().all(|account| {
                head.accounts
                    .get(&account.id)
                    .is_some_and(|record| record.account == *account)
            });
        let any_whole = accounts.iter().any(|account| {
            read::reads_whole(
                head.watermarks.contains_key(&account.id),
                head.accounts.get(&account.id).and_then(|r| r.full_read_at),
                self.config.full_read_every,
                now,
            )
        });
        if !same_accounts || any_whole {
            return Ok(Quiet::NotQuiet(Prefetched {
                accounts: Some(listed),
                ..Prefetched::default()
            }));
        }

        let keep_transactions = self.config.index.enabled;
        let probes = future::join_all(accounts.iter().map(|account| {
            let listing = read::listing(
                self.source.as_ref(),
                &account.id,
                head.watermarks.get(&account.id).cloned(),
                settings.start_date,
                self.config.include_declined,
            );
            probe(listing, &settled.catalog, keep_transactions)
        }))
        .await;
        if !probes.iter().all(|p| p.quiet) {
            return Ok(Quiet::NotQuiet(Prefetched {
                accounts: Some(listed),
                listings: Some(probes.into_iter().map(Probed::into_stream).collect()),
                scan: None,
            }));
        }

        let cursor = head.scan_cursor.clone();
        let scanned = self
            .config
            .retry
            .retry(|_| self.sink.scan(cursor.as_ref()))
            .await;
        let echoed = match &scanned {
            Ok(ScanUpdate::Changes { changes, cursor }) => {
                echoes_only(changes, &settled.echoes).map(|echoed| (echoed, cursor.clone()))
            }
            Ok(ScanUpdate::Full { .. }) | Err(_) => None,
        };
        let Some((echoed, next_cursor)) = echoed else {
            return Ok(Quiet::NotQuiet(Prefetched {
                accounts: Some(listed),
                listings: Some(probes.into_iter().map(Probed::into_stream).collect()),
                scan: Some(scanned),
            }));
        };

        // Quiet: the state is the one the last (empty) plan was made from.
        self.observer
            .on_event(&SyncEvent::SourceRead { receipts: 0 });
        let mut settled = settled;
        // Reported back: not to be expected again.
        settled.echoes.forget(&echoed);
        let mut changes = Vec::new();
        for (account, probed) in accounts.iter().zip(&probes) {
            if let Some(watermark) = probed.last_watermark()
                && settled.head.watermarks.get(&account.id) != Some(watermark)
            {
                settled.head.advance(&account.id, watermark.clone());
                changes.push(StateChange::WatermarkAdvanced {
                    account: account.id.clone(),
                    watermark: watermark.clone(),
                });
            }
        }
        if settled.head.scan_cursor.as_ref() != Some(&next_cursor) {
            settled.head.move_cursor(next_cursor.clone());
            changes.push(StateChange::ArchiveScanned(ScanUpdate::Changes {
                changes: Vec::new(),
                cursor: next_cursor,
            }));
        }
        report.planned = settled.skipped.clone();
        report.settings = Some(settings);
        self.observer.on_event(&SyncEvent::Planned {
            counts: report.planned.clone(),
            bytes: 0,
        });
        report.duration = started.elapsed();
        let summary = RunSummary {
            started_at: report.started_at,
            finished_at: Some(Utc::now()),
            uploaded: 0,
            failed: 0,
            stopped: None,
        };
        settled.head.finish_run(summary.clone());
        changes.push(StateChange::RunFinished(summary));
        self.store.record(&changes).await?;
        if let Err(error) = self.store.save_settled(&settled).await {
            // Only the next quiet day's shortcut is lost: it loads the whole state.
            tracing::warn!(%error, "the settled summary could not be saved");
        }
        Ok(Quiet::Done)
    }
}
