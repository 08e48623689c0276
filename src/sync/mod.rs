//! The sync: the only module that sees the source, the sink, the state and the plan
//! together.
//!
//! One pass ([`Syncer::run`]):
//! 0. take the state's lock; when the store keeps a settled summary
//!    ([`crate::state::Settled`]), find out from it alone whether anything changed, and
//!    if nothing did, record the read positions and the run, and stop there (the
//!    `quiet` module); otherwise go on with what was read, asking for none of it again;
//! 1. load the state, and settle the placement settings: the
//!    stored start date and layout, unless the config explicitly changes the start
//!    date ([`crate::plan::settings`]); a change is recorded and reported;
//! 2. list the bank accounts (those of the last pass, when the list cannot be read;
//!    none of those the state knows: another organisation's, refused, see
//!    [`crate::plan::organisation`]),
//!    read each account's receipts since its watermark into the state's catalog
//!    (checkpoints move the watermark only past what was fully read);
//!    an account not read in full (its listing broke off, or a receipt of it failed) is
//!    reported in [`SyncReport::unread_accounts`] and read again next time, while the
//!    others go on (a refusal on every account, or an error no account can get past,
//!    stops the pass);
//! 3. scan the archive, from the stored cursor when the sink has a change feed, and
//!    settle the folder renames of an earlier pass whose outcome was never recorded
//!    ([`crate::plan::settle_renames`]);
//! 4. plan ([`crate::plan::plan`]);
//! 5. fit the plan in the free space, when the sink can tell it
//!    ([`crate::plan::fit`]): the oldest receipts that fit are uploaded, the rest waits;
//! 6. carry the plan out with bounded concurrency, recording every finished action in
//!    the state at once, so a crash or a cancellation loses only the work in flight;
//!    when receipts wait for space (cut at step 5, or refused by a full storage on the
//!    way), the pass stops with [`crate::Error::QuotaExceeded`] saying how much more
//!    they need, and they stay pending for the next pass, neither failed nor tombstoned;
//! 7. record the run's summary; the store folds its journal into a new saved state only
//!    when the journal has grown large ([`crate::state::StateStore::checkpoint`]); a
//!    complete pass whose resulting plan is empty keeps a new settled summary.
//!
//! # Spans
//! A pass runs in a `tracing` span `sync_run` with the fields `label` (set with
//! [`Syncer::with_label`]: an organisation's id, say) and `run` (a number unique in the
//! process), so that one filter follows one organisation's pass through a log shared
//! with others. Inside it, `sync_phase` spans name the step (`phase` = `read`, `scan`,
//! `plan` or `write`), `sync_account` spans each account's listing (`account`), and
//! `sync_receipt` spans each upload (`receipt`, at DEBUG). No span field holds a
//! secret: only ids and the label.

mod budget;
mod events;
mod execute;
mod index;
mod quiet;
mod read;
mod report;
pub mod schedule;
mod space;

pub use budget::UploadBudget;
pub use events::{AccountFailure, Failure, NoObserver, SyncEvent, SyncObserver, SyncReport};
pub use schedule::{
    NextPass, Pass, RETRY_DELAYS, is_worth_retrying_soon, next_pass, next_run, run_daily,
};

use crate::error::{Error, Result};
use crate::http::RetryConfig;
use crate::index::IndexSettings;
use crate::layout::{Layout, LayoutSettings, NameLimits};
use crate::model::ScanUpdate;
use crate::plan::{
    PlanOptions, RequestedSettings, SettingsChange, plan, plan_indexes, preview_indexes,
    resolve_state_settings,
};
use crate::sink::ArchiveSink;
use crate::source::ReceiptSource;
use crate::state::{
    CatalogDigest, EchoDigest, Settled, StateChange, StateHead, StateSettings, StateStore,
    SyncState,
};
use chrono::{NaiveDate, Utc};
use quiet::{Prefetched, Quiet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Numbers the passes of this process, for the `run` field of their span.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// The span of one step of a pass.
fn phase_span(phase: &'static str) -> tracing::Span {
    tracing::info_span!("sync_phase", phase)
}

/// How a sync runs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncConfig {
    /// Receipts of transactions emitted before this day are not archived. Stored in
    /// the state at the first sync; `None` keeps the stored day, and a different day is
    /// an explicit change ([`crate::plan::settings`]).
    pub start_date: Option<NaiveDate>,
    /// How paths are laid out. Stored in the state at the first sync (the default when
    /// `None`); a later run may repeat it but not change it.
    pub layout: Option<LayoutSettings>,
    /// Uploads in flight at once (default 8).
    pub concurrency: usize,
    /// Plan only: write nothing, record nothing, return the plan.
    pub dry_run: bool,
    /// Archive receipts of declined transactions too (default no).
    pub include_declined: bool,
    /// How failed uploads are retried within a run.
    pub retry: RetryConfig,
    /// How often each account is read whole rather than from its watermark (default
    /// 7 days; `None`: only the first time). A source that fails to show a change after
    /// the watermark (a receipt attached without its transaction's `updated_at` moving)
    /// loses nothing for longer than this.
    pub full_read_every: Option<chrono::TimeDelta>,
    /// The accountant's index in each period folder ([`crate::index`]); off by
    /// default (`IndexSettings::with_separator(Separator::Comma)` turns it on).
    pub index: IndexSettings,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            start_date: None,
            layout: None,
            concurrency: 8,
            dry_run: false,
            include_declined: false,
            retry: RetryConfig::default(),
            full_read_every: Some(chrono::TimeDelta::days(7)),
            index: IndexSettings::default(),
        }
    }
}

impl SyncConfig {
    /// Sets the start date (`None`: the stored one).
    pub fn with_start_date(mut self, day: Option<NaiveDate>) -> Self {
        self.start_date = day;
        self
    }

    /// Sets the layout of a new archive (an archived one keeps its own).
    pub fn with_layout(mut self, layout: LayoutSettings) -> Self {
        self.layout = Some(layout);
        self
    }

    /// Sets the number of uploads in flight (at least 1).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Makes runs dry: plan only.
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Whether to archive declined transactions' receipts.
    pub fn with_include_declined(mut self, include: bool) -> Self {
        self.include_declined = include;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Sets how the accountant's indexes are written ([`IndexSettings::disabled`]: none).
    pub fn with_index(mut self, index: IndexSettings) -> Self {
        self.index = index;
        self
    }

    /// Sets how often each account is read whole (`None`: only the first time).
    pub fn with_full_read_every(mut self, every: Option<chrono::TimeDelta>) -> Self {
        self.full_read_every = every;
        self
    }
}

/// Syncs a source into a sink, remembering through a state store.
///
/// ```
/// # async fn example() -> receipt_sync::Result<()> {
/// use receipt_sync::sink::InMemorySink;
/// use receipt_sync::source::InMemorySource;
/// use receipt_sync::state::InMemoryStateStore;
/// use receipt_sync::sync::{SyncConfig, Syncer};
/// use std::sync::Arc;
///
/// let syncer = Syncer::new(
///     Arc::new(InMemorySource::new()),
///     Arc::new(InMemorySink::new()),
///     Arc::new(InMemoryStateStore::new()),
///     SyncConfig::default(),
/// );
/// let report = syncer.run().await?;
/// assert!(report.is_complete());
/// # Ok(())
/// # }
/// ```
pub struct Syncer {
    source: Arc<dyn ReceiptSource>,
    sink: Arc<dyn ArchiveSink>,
    store: Arc<dyn StateStore>,
    config: SyncConfig,
    observer: Arc<dyn SyncObserver>,
    cancel: CancellationToken,
    budget: Option<UploadBudget>,
    label: Option<String>,
}

impl fmt::Debug for Syncer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Syncer")
            .field("source", &self.source)
            .field("sink", &self.sink)
            .field("store", &self.store)
            .field("config", &self.config)
            .field("budget", &self.budget)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl Syncer {
    /// A syncer from `source` into `sink`, remembering in `store`.
    pub fn new(
        source: Arc<dyn ReceiptSource>,
        sink: Arc<dyn ArchiveSink>,
        store: Arc<dyn StateStore>,
        config: SyncConfig,
    ) -> Self {
        Self {
            source,
            sink,
            store,
            config,
            observer: Arc::new(NoObserver),
            cancel: CancellationToken::new(),
            budget: None,
            label: None,
        }
    }

    /// Names this syncer's passes in their `sync_run` span (field `label`; see the
    /// module docs): an organisation's id or name, so that a log shared by many
    /// organisations can be read one at a time. It is written to logs: never put a
    /// secret in it.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Counts this syncer's uploads in `budget`, shared with other syncers: together
    /// they never have more than its limit in flight (each also keeps to its own
    /// [`SyncConfig::concurrency`]).
    pub fn with_upload_budget(mut self, budget: UploadBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Stops passes when `token` is cancelled, the way a service stops: a pass that is
    /// reading the source or scanning the archive finishes both (they are checkpointed
    /// as they go), then writes nothing; a pass that is uploading starts no new upload,
    /// lets those in flight finish and records them, then saves the state. Such a pass
    /// ends with [`Error::Cancelled`] in [`SyncReport::stopped`], and the next one picks
    /// up the rest. A pass started after the cancellation stops at once.
    pub fn with_cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// The token that stops this syncer's passes (see [`Self::with_cancellation`]).
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Sends progress events to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn SyncObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    /// The configured layout (the default when none is set) with the sink's limits.
    /// A run uses the layout stored in its state, which only ever differs when the
    /// configured one is refused.
    pub fn layout(&self) -> Layout {
        self.layout_for(self.config.layout.unwrap_or_default())
    }

    fn layout_for(&self, settings: LayoutSettings) -> Layout {
        let caps = self.sink.capabilities();
        Layout::new(
            settings,
            NameLimits {
                max_name_len: caps.max_name_len,
                max_path_len: caps.max_path_len,
                root_prefix_len: caps.root_prefix_len,
            },
        )
    }

    /// The stored state (an empty one the first time), the settings it is to use, and
    /// the change to record when the config asks for one (not applied yet).
    async fn load(&self) -> Result<(SyncState, StateSettings, Option<SettingsChange>)> {
        let state = self.store.load().await?.unwrap_or_else(|| SyncState {
            version: crate::state::STATE_VERSION,
            ..SyncState::default()
        });
        let requested = RequestedSettings {
            start_date: self.config.start_date,
            layout: self.config.layout,
        };
        let (settings, change) = resolve_state_settings(&state, &requested)?;
        Ok((state, settings, change))
    }

    /// One sync pass; see the module docs.
    ///
    /// Returns `Err` only when the pass could not start or could not save the state
    /// (lock held, state unreadable); anything that stops it midway is in
    /// [`SyncReport::stopped`], with everything done so far recorded.
    ///
    /// A pass that owns its syncer is a `Send + 'static` future: it can run on its
    /// own task of a multi-threaded runtime, next to other organisations' passes.
    ///
    /// ```
    /// # use receipt_sync::sink::InMemorySink;
    /// # use receipt_sync::source::InMemorySource;
    /// # use receipt_sync::state::InMemoryStateStore;
    /// # use receipt_sync::sync::{SyncConfig, Syncer};
    /// # use std::sync::Arc;
    /// # #[tokio::main(flavor = "multi_thread")]
    /// # async fn main() -> receipt_sync::Result<()> {
    /// let syncer = Syncer::new(
    ///     Arc::new(InMemorySource::new()),
    ///     Arc::new(InMemorySink::new()),
    ///     Arc::new(InMemoryStateStore::new()),
    ///     SyncConfig::default(),
    /// );
    /// let pass = tokio::spawn(async move { syncer.run().await });
    /// if let Ok(report) = pass.await {
    ///     assert!(report?.is_complete());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run(&self) -> Result<SyncReport> {
        // A connector paused by throttling tells the observer, through the task.
        let observer = self.observer.clone();
        let watcher: crate::http::throttle::PauseWatcher = Arc::new(move |pause| {
            observer.on_event(&SyncEvent::Waiting {
                service: pause.service,
                wait: pause.wait,
                until: pause.until,
            });
        });
        let run = RUNS.fetch_add(1, Ordering::Relaxed) + 1;
        let span = tracing::info_span!("sync_run", label = tracing::field::Empty, run);
        if let Some(label) = &self.label {
            span.record("label", label.as_str());
        }
        crate::http::throttle::watch_pauses(watcher, self.run_pass())
            .instrument(span)
            .await
    }

    /// [`Syncer::run`], with the pauses watched.
    async fn run_pass(&self) -> Result<SyncReport> {
        let started = std::time::Instant::now();
        let mut report = SyncReport {
            started_at: Some(Utc::now()),
            ..SyncReport::default()
        };
        let _lock = self.store.lock().await?;
        let mut prefetched = match self.quiet_pass(started, &mut report).await? {
            Quiet::Done => return Ok(report),
            Quiet::NotQuiet(prefetched) => prefetched,
        };
        let (mut state, settings, change) = self.load().await?;
        let recorder = execute::Recorder::new(self.store.clone(), self.config.dry_run);
        if let Some(change) = change {
            if change.from.is_some() {
                tracing::info!(%change, "the placement settings changed");
                report.settings_change = Some(change.clone());
            }
            recorder
                .record(&mut state, vec![StateChange::SettingsChanged(change)])
                .await?;
        }
        report.settings = Some(settings.clone());

        let prepared = if self.cancel.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            self.prepare(
                &mut state,
                &settings,
                &recorder,
                &mut prefetched,
                &mut report,
            )
            .await
        };
        // The counts of this pass's plan when it was empty and nothing was written: the
        // plan of the state it leaves is the same (see `quiet`).
        let mut planned_nothing = None;
        if let Err(error) = prepared {
            report.stopped = Some(error);
        } else if self.cancel.is_cancelled() {
            // Asked to stop: what was read and scanned is saved; nothing is written.
            report.stopped = Some(Error::Cancelled);
        } else {
            let layout = self.layout_for(settings.layout);
            let options = self
                .plan_options(&settings)
                .with_settings_change(report.settings_change.clone());
            let plan = phase_span("plan").in_scope(|| plan(&state, &layout, &options));
            report.planned = plan.counts();
            if plan.is_noop() && report.settings_change.is_none() {
                planned_nothing = Some(report.planned.clone());
            }
            if self.config.dry_run {
                self.observer.on_event(&SyncEvent::Planned {
                    counts: report.planned.clone(),
                    bytes: plan.bytes_to_write(),
                });
                report.index_plan = Some(preview_indexes(
                    &state,
                    &plan,
                    &layout,
                    settings.start_date,
                    self.config.include_declined,
                    &self.config.index,
                ));
                report.plan = Some(plan);
            } else {
                match self.free_space(plan.bytes_to_write()).await {
                    Ok(free) => {
                        self.execute(plan, free, &mut state, &recorder, &mut report)
                            .instrument(phase_span("write"))
                            .await
                    }
                    Err(error) => report.stopped = Some(error),
                }
                if report.stopped.is_none() && !self.cancel.is_cancelled() {
                    // The indexes name the files just archived: planned from the state
                    // the receipts' actions left.
                    let indexes = self.plan_indexes(&state, &layout, &settings);
                    if !self.writes_no_index(&indexes) {
                        planned_nothing = None;
                    }
                    if let Err(error) = index::write_indexes(
                        indexes,
                        self.sink.as_ref(),
                        &self.config.retry,
                        &mut state,
                        &recorder,
                        &mut report,
                    )
                    .await
                    {
                        report.stopped = Some(error);
                    }
                }
                if self.cancel.is_cancelled() && report.stopped.is_none() {
                    report.stopped = Some(Error::Cancelled);
                }
            }
        }
        report.duration = started.elapsed();
        if !self.config.dry_run {
            let summary = crate::state::RunSummary {
                started_at: report.started_at,
                finished_at: Some(Utc::now()),
                uploaded: report.count("upload") as u64,
                failed: report.failures.len() as u64,
                stopped: report.stopped.as_ref().map(ToString::to_string),
            };
            let finished = vec![StateChange::RunFinished(summary)];
            let complete = report.stopped.is_none()
                && report.failures.is_empty()
                && report.unread_accounts.is_empty()
                && state.pending_renames.is_empty();
            match recorder.record(&mut state, finished.clone()).await {
                // Every change of the run is recorded: the store rewrites the whole
                // state only when its journal has grown large next to it.
                Ok(()) => {
                    self.store.checkpoint(&state).await?;
                    if complete {
                        self.settle(&state, &settings, planned_nothing, &recorder)
                            .await;
                    }
                }
                // The journal cannot take the summary (a full disk): a whole new
                // state, written aside and renamed, may still fit.
                Err(error) => {
                    tracing::warn!(%error, "the end of the run could not be recorded; saving the whole state");
                    state.apply(&finished[0]);
                    self.store.save(&state).await?;
                }
            }
        }
        Ok(report)
    }

    /// The options a plan of this pass is made with (a settings change aside).
    fn plan_options(&self, settings: &StateSettings) -> PlanOptions {
        PlanOptions::default()
            .with_start_date(settings.start_date)
            .with_include_declined(self.config.include_declined)
    }

    /// The accountant's indexes `state` calls for.
    fn plan_indexes(
        &self,
        state: &SyncState,
        layout: &Layout,
        settings: &StateSettings,
    ) -> crate::plan::IndexPlan {
        plan_indexes(
            state,
            layout,
            settings.start_date,
            self.config.include_declined,
            &self.config.index,
        )
    }

    /// Whether an index plan writes nothing (a sink that cannot replace a file leaves an
    /// index as written).
    fn writes_no_index(&self, indexes: &crate::plan::IndexPlan) -> bool {
        let can_replace = self.sink.capabilities().replace;
        indexes
            .writes
            .iter()
            .all(|write| write.replace.is_some() && !can_replace)
    }

    /// Keeps the summary that lets the next quiet day skip loading `state`, when the
    /// plan of `state` is empty: `planned_nothing` when this pass already knows it
    /// (its own plan was, and it wrote nothing), else planned again here, which costs
    /// one plan on a day that wrote something.
    async fn settle(
        &self,
        state: &SyncState,
        settings: &StateSettings,
        planned_nothing: Option<std::collections::BTreeMap<String, usize>>,
        recorder: &execute::Recorder,
    ) {
        let skipped = match planned_nothing {
            Some(skipped) => skipped,
            None => {
                let layout = self.layout_for(settings.layout);
                let next = plan(state, &layout, &self.plan_options(settings));
                let indexes = self.plan_indexes(state, &layout, settings);
                if !next.is_noop() || !self.writes_no_index(&indexes) {
                    return;
                }
                next.counts()
            }
        };
        let settled = Settled {
            head: StateHead::of(state),
            key: self.settled_key(settings),
            skipped,
            catalog: CatalogDigest::of(state),
            echoes: EchoDigest::of(&echoes_of(&state.snapshot, recorder.written())),
        };
        if let Err(error) = self.store.save_settled(&settled).await {
            // Only the next quiet day's shortcut is lost: it loads the whole state.
            tracing::warn!(%error, "the settled summary could not be saved");
        }
    }

    /// Steps 2 and 3: read the source, scan the archive, record both; with what the
    /// quiet check read already.
    async fn prepare(
        &self,
        state: &mut SyncState,
        settings: &StateSettings,
        recorder: &execute::Recorder,
        prefetched: &mut Prefetched,
        report: &mut SyncReport,
    ) -> Result<()> {
        self.read_source(state, settings, recorder, prefetched, report)
            .instrument(phase_span("read"))
            .await?;
        self.scan_archive(state, recorder, prefetched.scan.take())
            .instrument(phase_span("scan"))
            .await
    }

    /// Step 2: list the accounts and read their receipts into the catalog.
    async fn read_source(
        &self,
        state: &mut SyncState,
        settings: &StateSettings,
        recorder: &execute::Recorder,
        prefetched: &mut Prefetched,
        report: &mut SyncReport,
    ) -> Result<()> {
        let retry = &self.config.retry;
        let listed = match prefetched.accounts.take() {
            Some(listed) => listed,
            None => retry.retry(|_| self.source.accounts()).await,
        };
        let accounts = match listed {
            Ok(accounts) => {
                crate::plan::organisation::check_same_organisation(state, &accounts)?;
                recorder
                    .record(state, vec![StateChange::AccountsSeen(accounts.clone())])
                    .await?;
                accounts
            }
            // The list itself could not be read: the accounts of the last run are read
            // as they were, so one failed request holds no account back. Incomplete.
            Err(error) if !error.stops_sync() && !state.accounts.is_empty() => {
                tracing::warn!(%error, "the account list could not be read; reading the accounts of the last run");
                report.failures.push(Failure::new(None, None, &error));
                state.accounts.values().map(|r| r.account.clone()).collect()
            }
            Err(error) => return Err(error),
        };
        let reader = read::SourceReader {
            source: self.source.as_ref(),
            recorder,
            start_date: settings.start_date,
            include_declined: self.config.include_declined,
            full_read_every: self.config.full_read_every,
            keep_transactions: self.config.index.enabled,
        };
        report.receipts_read = reader
            .read_all(&accounts, prefetched.listings.take(), state, report)
            .await?;
        self.observer.on_event(&SyncEvent::SourceRead {
            receipts: report.receipts_read,
        });
        Ok(())
    }

    /// Step 3: scan the archive and settle the renames of an earlier pass.
    async fn scan_archive(
        &self,
        state: &mut SyncState,
        recorder: &execute::Recorder,
        scanned: Option<Result<ScanUpdate>>,
    ) -> Result<()> {
        let update = match scanned {
            Some(scanned) => scanned?,
            None => {
                let cursor = state.scan_cursor.clone();
                self.config
                    .retry
                    .retry(|_| self.sink.scan(cursor.as_ref()))
                    .await?
            }
        };
        // The snapshot and its cursor go together: one change, one journal line.
        recorder
            .record(
                state,
                vec![StateChange::archive_scanned(&state.snapshot, update)],
            )
            .await?;
        // A rename of an earlier run whose outcome was never recorded: the scan says
        // whether it happened, before the deletion rules read the archive.
        let settled = crate::plan::settle_renames(state);
        recorder.record(state, settled).await
    }

    /// "Reconfigure the integration": forgets every export record and tombstone, so
    /// the next run brings back everything the user deleted; files still in place are
    /// adopted, not written twice. See [`SyncState::reset`]. The stored start date is
    /// kept unless the config gives another one, which is recorded as a change.
    pub async fn reset(&self) -> Result<()> {
        let _lock = self.store.lock().await?;
        let (mut state, _, change) = self.load().await?;
        if let Some(change) = change {
            state.apply(&StateChange::SettingsChanged(change));
        }
        state.reset();
        self.store.save(&state).await
    }

    /// Binds the state to the archive of this syncer's sink, when it was made in another
    /// one: the records of the old archive are forgotten, never read against the new one
    /// (where every file would look deleted and be tombstoned). See [`SyncState::rebind`].
    /// The next run adopts what the new archive already holds and writes the rest; the
    /// old archive is left as it is. The stored start date is kept unless the config
    /// gives another one, which is recorded as a change.
    pub async fn rebind(&self) -> Result<()> {
        let _lock = self.store.lock().await?;
        let (mut state, _, change) = self.load().await?;
        if let Some(change) = change {
            state.apply(&StateChange::SettingsChanged(change));
        }
        state.rebind();
        self.store.save(&state).await
    }
}

/// The entries of the items `written`, and of their folders, as `snapshot` holds them
/// now: what the archive's change feed will report back of this pass.
fn echoes_of(
    snapshot: &crate::model::ArchiveSnapshot,
    written: Vec<crate::model::SinkItemId>,
) -> Vec<crate::model::SinkEntry> {
    let mut echoes = std::collections::BTreeMap::new();
    for id in written {
        let mut next = Some(id);
        while let Some(id) = next.take() {
            if echoes.contains_key(&id) {
                break;
            }
            let Some(entry) = snapshot.entry(&id) else {
                break;
            };
            next = entry.parent.clone();
            echoes.insert(id, entry);
        }
    }
    echoes.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::InMemorySink;
    use crate::source::InMemorySource;
    use crate::state::InMemoryStateStore;

    #[tokio::test]
    async fn a_rebound_state_fills_the_new_archive_and_tombstones_nothing() {
        let bank = InMemorySource::new();
        let account = bank.add_account_named("acc", "Main");
        for month in 1..=4 {
            let day = chrono::NaiveDate::from_ymd_opt(2025, month, 10).unwrap();
            let id = format!("r{month}");
            bank.add_receipt(
                InMemorySource::receipt(&id, &account, day, "Shop", -100),
                format!("bytes of {id}"),
            );
        }
        let store = InMemoryStateStore::new();
        let syncer = |sink: &InMemorySink| {
            Syncer::new(
                Arc::new(bank.clone()),
                Arc::new(sink.clone()),
                Arc::new(store.clone()),
                SyncConfig::default(),
            )
        };
        let (old, new) = (InMemorySink::new(), InMemorySink::new());
        assert_eq!(syncer(&old).run().await.unwrap().count("upload"), 4);
        // One receipt already sits in the new archive, where the sync would put it.
        let placed = old.files();
        let (path, bytes) = placed.first().unwrap();
        new.add_user_file(path.as_str(), bytes.clone()).unwrap();

        syncer(&new).rebind().await.unwrap();
        let state = store.load().await.unwrap().unwrap();
        assert!(state.exported.is_empty() && state.snapshot.entries().is_empty());
        assert_eq!(state.receipts.len(), 4, "the catalog is kept");
        assert!(state.settings.is_some(), "the settings are kept");

        let report = syncer(&new).run().await.unwrap();
        assert!(report.is_complete(), "{report:?}");
        assert_eq!(report.count("tombstone"), 0);
        assert_eq!(report.count("adopt"), 1, "the file in place is adopted");
        assert_eq!(report.count("upload"), 3);
        assert_eq!(new.files().len(), 4);
        assert_eq!(old.files(), placed, "the old archive is left as it was");
        let state = store.load().await.unwrap().unwrap();
        assert!(state.tombstones.is_empty());
        assert_eq!(state.exported.len(), 4);
    }
}
