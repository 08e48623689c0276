//! Steps 5 and 6 of a pass on a storage that may be almost full: read the free space,
//! fit the plan in it ([`crate::plan::fit`]), carry out what fits, and stop with
//! [`Error::QuotaExceeded`] when receipts wait for space, saying how much more they need.

use super::events::{SyncEvent, SyncReport};
use super::{Syncer, execute};
use crate::error::{Error, Result};
use crate::plan::fit::upload_order;
use crate::plan::{Fitted, Plan, fit_to_space};
use crate::state::SyncState;

impl Syncer {
    /// The free space of the archive, when the plan writes bytes and the sink can tell.
    pub(super) async fn free_space(&self, to_write: u64) -> Result<Option<u64>> {
        if to_write == 0 || !self.sink.capabilities().quota {
            return Ok(None);
        }
        match self.config.retry.retry(|_| self.sink.quota()).await {
            Ok(quota) => Ok(quota.map(|q| q.remaining)),
            // The check only spares writes that would fail; without it, a full drive
            // still stops the run cleanly at its first refused write. Not worth stopping for.
            Err(error) if !error.stops_sync() => {
                tracing::warn!(%error, "the free space could not be read; writing without the check");
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Steps 5 and 6: fits the plan in the `free` space (all of it when unknown),
    /// carries out what fits, and stops with [`Error::QuotaExceeded`] when something
    /// waits for space, saying how much more it needs.
    pub(super) async fn execute(
        &self,
        plan: Plan,
        free: Option<u64>,
        state: &mut SyncState,
        recorder: &execute::Recorder,
        report: &mut SyncReport,
    ) {
        let fitted = match free {
            Some(free) => fit_to_space(plan, &state.receipts, free),
            None => Fitted {
                plan,
                waiting: Vec::new(),
            },
        };
        self.observer.on_event(&SyncEvent::Planned {
            counts: report.planned.clone(),
            bytes: fitted.plan.bytes_to_write(),
        });
        let executor = execute::Executor {
            source: self.source.clone(),
            sink: self.sink.clone(),
            observer: self.observer.clone(),
            config: &self.config,
            recorder,
            cancel: &self.cancel,
            budget: self.budget.as_ref(),
        };
        let mut waiting = fitted.waiting;
        waiting.extend(executor.run(&fitted.plan, state, report).await);
        if waiting.is_empty() {
            return;
        }
        waiting.sort_by(|a, b| {
            upload_order(&state.receipts, &a.0).cmp(&upload_order(&state.receipts, &b.0))
        });
        let bytes = waiting
            .iter()
            .map(|(_, size)| *size)
            .fold(0, u64::saturating_add);
        report.waiting_for_space = waiting.into_iter().map(|(id, _)| id).collect();
        report.bytes_waiting = bytes;
        // The free space now: what was free less what this run wrote, or less, when the
        // storage refused a write and said how much it has left.
        let left = free.map(|free| free.saturating_sub(report.bytes_written));
        let told = match &report.stopped {
            Some(Error::QuotaExceeded { remaining, .. }) => Some(*remaining),
            Some(_) => return,
            None => None,
        };
        let left = match (left, told) {
            (Some(left), Some(told)) => left.min(told),
            (left, told) => left.or(told).unwrap_or(0),
        };
        report.stopped = Some(Error::quota_exceeded(bytes, left));
    }
}
