//! A cap on uploads in flight shared by several [`Syncer`](super::Syncer)s.

use std::fmt;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// At most this many uploads in flight, across every [`Syncer`](super::Syncer) that
/// holds a clone.
///
/// [`SyncConfig::concurrency`](super::SyncConfig::concurrency) bounds one
/// organisation's uploads; a service that syncs many organisations in one process
/// gives each syncer a clone of one budget
/// ([`Syncer::with_upload_budget`](super::Syncer::with_upload_budget)), so that N
/// organisations together never have more than `limit` uploads open, whatever N.
///
/// # Guarantees
/// - An upload takes a permit before it opens the receipt and gives it back when
///   its last attempt ends (the short backoff between attempts keeps it).
/// - Permits are served in the order they were asked for (tokio's fair semaphore): no
///   organisation waits for ever while others keep uploading.
/// - A pass asked to stop stops waiting for a permit at once; the upload it was
///   waiting for is left for the next pass, as any upload not started.
///
/// # Assumptions
/// - A sink paused by its service (a Graph `429`) holds the permits of the uploads it
///   pauses: give the budget some room beyond one organisation's concurrency.
///
/// ```
/// use receipt_sync::sync::UploadBudget;
/// let budget = UploadBudget::new(16);
/// let for_another_syncer = budget.clone();
/// assert_eq!(for_another_syncer.limit(), 16);
/// assert_eq!(budget.in_flight(), 0);
/// ```
#[derive(Clone)]
pub struct UploadBudget {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl UploadBudget {
    /// A budget of `limit` uploads in flight (at least 1).
    pub fn new(limit: usize) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// The most uploads in flight at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Uploads in flight now, across every holder.
    pub fn in_flight(&self) -> usize {
        self.limit - self.permits.available_permits()
    }

    /// Waits for a permit, given back when dropped; `None` when `cancel` fires first.
    pub(crate) async fn admit(&self, cancel: &CancellationToken) -> Option<UploadPermit> {
        tokio::select! {
            biased;
            () = cancel.cancelled() => None,
            // The semaphore is never closed; were it ever, an upload without a permit
            // would do less harm than a pass that stops.
            permit = self.permits.clone().acquire_owned() => Some(UploadPermit { _held: permit.ok() }),
        }
    }
}

/// One upload's place in an [`UploadBudget`], until dropped.
#[derive(Debug)]
pub(crate) struct UploadPermit {
    _held: Option<OwnedSemaphorePermit>,
}

impl fmt::Debug for UploadBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadBudget")
            .field("limit", &self.limit)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn clones_share_the_permits() {
        let cancel = CancellationToken::new();
        let budget = UploadBudget::new(2);
        let other = budget.clone();
        let a = budget.admit(&cancel).await.unwrap();
        let _b = other.admit(&cancel).await.unwrap();
        assert_eq!(budget.in_flight(), 2);
        let third = budget.admit(&cancel);
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(20), third);
        assert!(waiting.await.is_err(), "a third permit was given");
        drop(a);
        let _c = other.admit(&cancel).await.unwrap();
        assert_eq!(other.in_flight(), 2);
    }

    #[tokio::test]
    async fn a_cancelled_pass_stops_waiting() {
        let cancel = CancellationToken::new();
        let budget = UploadBudget::new(1);
        let _held = budget.admit(&cancel).await.unwrap();
        let waiter = budget.admit(&cancel);
        cancel.cancel();
        assert!(waiter.await.is_none());
        assert_eq!(budget.in_flight(), 1);
    }

    #[test]
    fn the_limit_is_at_least_one() {
        assert_eq!(UploadBudget::new(0).limit(), 1);
    }
}
