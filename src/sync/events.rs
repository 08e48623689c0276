//! What a sync tells its observer as it goes, and the report it returns.

use crate::error::{Error, ErrorKind};
use crate::model::{AccountId, ArchivePath, BankAccount, ReceiptId};
use crate::plan::Plan;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

/// One thing that happened during a sync.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncEvent {
    /// The source was read: `receipts` new or changed receipts.
    SourceRead {
        /// Receipts read.
        receipts: u64,
    },
    /// The plan is ready: counts per action kind, bytes to write.
    Planned {
        /// Actions per kind (and skips per reason).
        counts: BTreeMap<String, usize>,
        /// Bytes this run writes: the plan's uploads that fit in the free space.
        bytes: u64,
    },
    /// An action started.
    Started {
        /// `upload`, `create-folder`, ….
        kind: &'static str,
        /// The path it concerns.
        path: ArchivePath,
    },
    /// Bytes of a file were written.
    Bytes {
        /// The receipt.
        receipt: ReceiptId,
        /// How many bytes, in this step.
        bytes: u64,
    },
    /// An action finished.
    Finished {
        /// `upload`, `create-folder`, ….
        kind: &'static str,
        /// The path it concerns.
        path: ArchivePath,
    },
    /// A service is throttling: every request to it waits until `until`, as it asked
    /// (`Retry-After`), before the run goes on. Sent when the pause starts (or grows).
    Waiting {
        /// The service, for example `"onedrive"` or `"qonto"`.
        service: &'static str,
        /// How long it asked to wait, from when it said so.
        wait: Duration,
        /// When the wait ends.
        until: DateTime<Utc>,
    },
    /// An action failed; it is retried on the next run.
    Failed {
        /// The receipt, when the action is about one.
        receipt: Option<ReceiptId>,
        /// The path concerned.
        path: Option<ArchivePath>,
        /// What went wrong.
        error: String,
    },
}

/// Receives [`SyncEvent`]s, from whichever task produced them.
pub trait SyncObserver: Send + Sync {
    /// Called for each event; must return quickly.
    fn on_event(&self, event: &SyncEvent);
}

/// An observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoObserver;

impl SyncObserver for NoObserver {
    fn on_event(&self, _event: &SyncEvent) {}
}

impl<F: Fn(&SyncEvent) + Send + Sync> SyncObserver for F {
    fn on_event(&self, event: &SyncEvent) {
        self(event)
    }
}

/// One action that did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The receipt, when the action was about one.
    pub receipt: Option<ReceiptId>,
    /// The path concerned.
    pub path: Option<ArchivePath>,
    /// The kind of error.
    pub kind: ErrorKind,
    /// What went wrong.
    pub message: String,
}

impl Failure {
    pub(crate) fn new(
        receipt: Option<ReceiptId>,
        path: Option<ArchivePath>,
        error: &Error,
    ) -> Self {
        Self {
            receipt,
            path,
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}

/// A bank account not read in full in a run: its listing broke off, or some of its
/// receipts could not be read (each error is also in [`SyncReport::failures`]).
///
/// What was read is kept, nothing of the account is taken as removed, and the next
/// run reads it again from before the first error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountFailure {
    /// The account.
    pub account: AccountId,
    /// Its name, as the source gave it.
    pub name: String,
    /// The kind of error.
    pub kind: ErrorKind,
    /// What went wrong.
    pub message: String,
}

impl AccountFailure {
    /// `account`, whose listing's last error was `last`.
    pub(crate) fn new(account: &BankAccount, last: &Failure) -> Self {
        Self {
            account: account.id.clone(),
            name: account.name.clone(),
            kind: last.kind,
            message: last.message.clone(),
        }
    }
}

/// What a sync did.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// How long it took.
    pub duration: Duration,
    /// New or changed receipts read from the source.
    pub receipts_read: u64,
    /// The plan's actions per kind (and skips per reason).
    pub planned: BTreeMap<String, usize>,
    /// Actions carried out, per kind.
    pub done: BTreeMap<String, usize>,
    /// Bytes written to the archive.
    pub bytes_written: u64,
    /// Actions that failed (retried on the next run).
    pub failures: Vec<Failure>,
    /// Bank accounts that could not be read in full (read again on the next run), with
    /// the last error of each; the others were read and archived as usual.
    pub unread_accounts: Vec<AccountFailure>,
    /// Uploads whose file turned out to be in place already (an earlier attempt landed
    /// after all): the next run records them.
    pub deferred: u64,
    /// Receipts that wait for space, the oldest first: the archive's storage is full
    /// (the run then stops with [`Error::QuotaExceeded`]). They are neither failed nor
    /// tombstoned: the next run, once there is room, archives them.
    pub waiting_for_space: Vec<ReceiptId>,
    /// Bytes of the receipts in [`waiting_for_space`](Self::waiting_for_space).
    pub bytes_waiting: u64,
    /// Why the sync stopped before the end, if it did.
    pub stopped: Option<Error>,
    /// The plan, for a dry run.
    pub plan: Option<Plan>,
    /// The accountant's indexes a dry run would write once its plan is carried out
    /// ([`crate::plan::preview_indexes`]); `None` for a pass that writes.
    pub index_plan: Option<crate::plan::IndexPlan>,
    /// The placement settings the run used (stored, or just changed).
    pub settings: Option<crate::state::StateSettings>,
    /// The explicit change of the stored settings this run made, if any (never silent:
    /// shown with the report).
    pub settings_change: Option<crate::plan::SettingsChange>,
}

impl SyncReport {
    /// Whether every receipt is where it should be: every account was read, nothing
    /// failed, nothing deferred, nothing stopped the run, and no receipt waits for a
    /// free path.
    pub fn is_complete(&self) -> bool {
        self.unread_accounts.is_empty()
            && self.failures.is_empty()
            && self.deferred == 0
            && self.stopped.is_none()
            && !self
                .planned
                .keys()
                .any(|k| k == "skip: target occupied" || k == "skip: path collision")
    }

    /// How many actions of `kind` were carried out.
    pub fn count(&self, kind: &str) -> usize {
        self.done.get(kind).copied().unwrap_or(0)
    }

    pub(crate) fn add_done(&mut self, kind: &str) {
        *self.done.entry(kind.to_owned()).or_insert(0) += 1;
    }
}
