//! [`Worker`]: claims due organisations of a [`Fleet`] and runs their passes, a few at
//! a time, until told to stop.

use super::registry::{Claim, Credentials, Fleet, RunOutcome};
use crate::error::{Error, Result};
use crate::sink::ArchiveSink;
use crate::source::ReceiptSource;
use crate::source::qonto::SharedQontoRateLimiter;
use crate::state::pg::error as pg_error;
use crate::sync::{SyncConfig, SyncReport, Syncer, UploadBudget};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What a [`OrganizationFactory`] gets to build one organisation's connectors.
#[derive(Debug)]
#[non_exhaustive]
pub struct Assignment<'a> {
    /// The claimed organisation.
    pub claim: &'a Claim,
    /// Its credentials, opened.
    pub credentials: Credentials,
    /// The Qonto limiter every organisation of this worker shares.
    pub limiter: &'a SharedQontoRateLimiter,
    /// The fleet, to save a token rotated during the pass
    /// ([`Fleet::save_microsoft_refresh_token`], [`Fleet::save_qonto_credentials`]).
    pub fleet: &'a Fleet,
}

/// One organisation's source and archive, as the service builds them.
pub struct Connectors {
    /// Where its receipts come from.
    pub source: Arc<dyn ReceiptSource>,
    /// Where they are archived.
    pub sink: Arc<dyn ArchiveSink>,
}

/// Builds an organisation's connectors for a run: Qonto and OneDrive in a service,
/// the fakes in tests. An error fails that organisation's run only.
#[async_trait]
pub trait OrganizationFactory: Send + Sync {
    /// The connectors of `assignment`'s organisation.
    async fn connectors(&self, assignment: Assignment<'_>) -> Result<Connectors>;
}

/// A worker of a [`Fleet`]: any number of them, in any number of processes, share one
/// database. Organisations' passes run on tasks of the current (multi-threaded)
/// runtime, at most `concurrency` at once, sharing one Qonto limiter and one cap on
/// uploads in flight.
///
/// While a pass runs, its claim is renewed every third of the fleet's lease; a claim
/// found lost (taken by another run after it ran out, or the organisation disabled),
/// or not renewed for a whole lease, cancels the pass, whose result then goes to its
/// own run's row only. A pass the database failed for a passing reason (a restart, a
/// lost connection) runs again within its claim after a pause (0.5 s, doubled each
/// time, six attempts), and its result is recorded with the same patience.
pub struct Worker {
    fleet: Fleet,
    factory: Arc<dyn OrganizationFactory>,
    id: String,
    concurrency: usize,
    limiter: SharedQontoRateLimiter,
    budget: UploadBudget,
    config: SyncConfig,
    poll: Duration,
    cancel: CancellationToken,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .field("concurrency", &self.concurrency)
            .field("fleet", &self.fleet)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Worker `id` (written in `fleet_runs` and the status: a host name and process id
    /// serve), running at most `concurrency` organisations at once.
    pub fn new(
        fleet: Fleet,
        factory: Arc<dyn OrganizationFactory>,
        id: impl Into<String>,
        concurrency: usize,
        limiter: SharedQontoRateLimiter,
        budget: UploadBudget,
    ) -> Self {
        Self {
            fleet,
            factory,
            id: id.into(),
            concurrency: concurrency.max(1),
            limiter,
            budget,
            config: SyncConfig::default(),
            poll: Duration::from_secs(30),
            cancel: CancellationToken::new(),
        }
    }

    /// The passes' configuration (each organisation's start date replaces its own).
    pub fn with_config(mut self, config: SyncConfig) -> Self {
        self.config = config;
        self
    }

    /// How often an idle worker looks for due organisations.
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Stops the worker when `token` is cancelled: it claims nothing more, its passes
    /// in progress stop as [`Syncer::with_cancellation`] describes, and their results
    /// are recorded before [`run`](Self::run) returns.
    pub fn with_cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// Runs until cancelled. A database that cannot be reached is tried again at the
    /// next poll; the error is logged, not returned.
    pub async fn run(&self) -> Result<()> {
        let mut running = JoinSet::new();
        while !self.cancel.is_cancelled() {
            let free = self.concurrency.saturating_sub(running.len());
            let mut claimed = 0;
            if free > 0 {
                match self.fleet.claim_due(&self.id, free).await {
                    Ok(claims) => {
                        claimed = claims.len();
                        for claim in claims {
                            running.spawn(self.pass(claim));
                        }
                    }
                    Err(error) => {
                        tracing::warn!(worker = %self.id, %error, "claiming due organisations failed");
                    }
                }
            }
            // Ask again at once while there was work enough to fill every slot.
            if claimed > 0 && claimed == free {
                continue;
            }
            tokio::select! {
                _ = self.cancel.cancelled() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
        while running.join_next().await.is_some() {}
        Ok(())
    }

    /// Claims what is due now, runs it to the end, and returns how many organisations
    /// ran: one round of [`run`](Self::run), for tests and one-shot jobs.
    pub async fn run_once(&self) -> Result<usize> {
        let claims = self.fleet.claim_due(&self.id, self.concurrency).await?;
        let count = claims.len();
        let mut running = JoinSet::new();
        for claim in claims {
            running.spawn(self.pass(claim));
        }
        while running.join_next().await.is_some() {}
        Ok(count)
    }

    /// One organisation's run, from building its connectors to recording the result;
    /// `'static`, for its own task. While the pass runs its claim is renewed; should
    /// the claim be lost, the pass is cancelled (see [`keep_claim`]).
    fn pass(&self, claim: Claim) -> impl std::future::Future<Output = ()> + Send + 'static {
        let fleet = self.fleet.clone();
        let run = PassRun {
            fleet: self.fleet.clone(),
            factory: self.factory.clone(),
            limiter: self.limiter.clone(),
            budget: self.budget.clone(),
            config: self.config.clone(),
            cancel: self.cancel.child_token(),
        };
        let span = tracing::info_span!(
            "fleet_run",
            worker = %self.id,
            organization = %claim.organization,
            run = claim.run_id
        );
        async move {
            let report = {
                let work = run.attempts(&claim);
                let keeper = keep_claim(&fleet, &claim, &run.cancel);
                tokio::pin!(work);
                tokio::select! {
                    biased;
                    report = &mut work => report,
                    // The claim is lost and the pass told to stop: it ends at its next
                    // step, and its result goes to its own run's row only.
                    () = keeper => work.await,
                }
            };
            if let Err(error) = &report {
                tracing::warn!(%error, "the organisation's run failed");
            }
            let outcome = RunOutcome {
                finished_at: chrono::Utc::now(),
                report,
            };
            record(&fleet, &claim, &outcome).await;
        }
        .instrument(span)
    }
}

/// What one organisation's pass needs, owned, for its own task.
struct PassRun {
    fleet: Fleet,
    factory: Arc<dyn OrganizationFactory>,
    limiter: SharedQontoRateLimiter,
    budget: UploadBudget,
    config: SyncConfig,
    /// Cancelled when the worker stops or the claim is lost.
    cancel: CancellationToken,
}

impl PassRun {
    /// The pass, run again after a short pause when the database failed it for a
    /// passing reason (a restart, a lost connection): such a blip should not cost the
    /// organisation its early-retry delay. Bounded; the claim is kept meanwhile.
    async fn attempts(&self, claim: &Claim) -> Result<SyncReport> {
        let mut attempt = 1;
        loop {
            let report = self.attempt(claim).await;
            if attempt >= DATABASE_ATTEMPTS
                || self.cancel.is_cancelled()
                || !failed_on_the_database(&report)
            {
                return report;
            }
            let pause = DATABASE_PAUSE * 2u32.pow(attempt - 1);
            tracing::warn!(
                attempt,
                pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                "the database failed the pass; running it again"
            );
            tokio::select! {
                () = self.cancel.cancelled() => return report,
                () = tokio::time::sleep(pause) => {}
            }
            attempt += 1;
        }
    }

    async fn attempt(&self, claim: &Claim) -> Result<SyncReport> {
        let connectors = async {
            let credentials = self.fleet.credentials(&claim.organization).await?;
            let assignment = Assignment {
                claim,
                credentials,
                limiter: &self.limiter,
                fleet: &self.fleet,
            };
            self.factory.connectors(assignment).await
        };
        // Building the connectors may take a while (a token refresh): a lost claim or
        // a stopping worker does not wait for it.
        let connectors = tokio::select! {
            biased;
            () = self.cancel.cancelled() => return Err(Error::Cancelled),
            connectors = connectors => connectors?,
        };
        let store = Arc::new(self.fleet.database().store(&claim.organization));
        let syncer = Syncer::new(
            connectors.source,
            connectors.sink,
            store,
            self.config.clone().with_start_date(claim.start_date),
        )
        .with_label(claim.organization.clone())
        .with_upload_budget(self.budget.clone())
        .with_cancellation(self.cancel.clone());
        syncer.run().await
    }
}

/// Attempts of a pass in all when the database fails it: the pauses between them
/// (0.5, 1, 2, 4 and 8 s) outlast a restart or a failover of a few seconds.
const DATABASE_ATTEMPTS: u32 = 6;
/// The pause before the second attempt; doubled before each next one.
const DATABASE_PAUSE: Duration = Duration::from_millis(500);
/// Tries at recording a run's result, with the same pauses.
const RECORD_ATTEMPTS: u32 = 6;

/// Whether the pass ended on a passing failure of the state database.
fn failed_on_the_database(report: &Result<SyncReport>) -> bool {
    let error = match report {
        Err(error) => error,
        Ok(report) => match &report.stopped {
            Some(error) => error,
            None => return false,
        },
    };
    error.is_retryable()
        && matches!(error, Error::Transient { service, .. } if *service == pg_error::SERVICE)
}

/// Renews `claim` every third of the lease for as long as it is polled. Returns once
/// the claim is lost, having cancelled `pass`: the database said another run holds it
/// or the organisation was disabled, or no renewal went through for a whole lease (the
/// claim may have been taken meanwhile, so the pass must not go on as if it held it).
async fn keep_claim(fleet: &Fleet, claim: &Claim, pass: &CancellationToken) {
    let lease = fleet.lease();
    let every = lease / 3;
    // The claim was made just before the pass started.
    let mut held_since = Instant::now();
    loop {
        // Renewed even while a stopping pass winds down: it still holds the claim.
        tokio::time::sleep(every).await;
        let asked_at = Instant::now();
        let renewed = tokio::time::timeout(every, fleet.renew(claim)).await;
        match renewed {
            Ok(Ok(true)) => {
                held_since = asked_at;
                continue;
            }
            Ok(Ok(false)) => {
                tracing::warn!(
                    "the organisation was claimed by another run or disabled; stopping this pass"
                );
            }
            Ok(Err(error)) if held_since.elapsed() < lease => {
                tracing::warn!(%error, "the claim could not be renewed; trying again");
                continue;
            }
            Err(_) if held_since.elapsed() < lease => {
                tracing::warn!("renewing the claim timed out; trying again");
                continue;
            }
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(
                    "the claim could not be renewed for a whole lease; stopping this pass"
                );
            }
        }
        pass.cancel();
        return;
    }
}

/// Records `outcome`, trying again for a while when the database fails: a result
/// not recorded leaves the organisation claimed until its lease runs out. Recording
/// twice is harmless (the second write finds the claim released and changes only the
/// run's own row, to the same values).
async fn record(fleet: &Fleet, claim: &Claim, outcome: &RunOutcome) {
    for attempt in 1..=RECORD_ATTEMPTS {
        match fleet.finish(claim, outcome).await {
            Ok(()) => return,
            Err(error) if error.is_retryable() && attempt < RECORD_ATTEMPTS => {
                tracing::warn!(%error, attempt, "recording the run failed; trying again");
                tokio::time::sleep(DATABASE_PAUSE * 2u32.pow(attempt - 1)).await;
            }
            Err(error) => {
                // Its lease runs out and another run takes it up.
                tracing::warn!(%error, "the run's result could not be recorded");
                return;
            }
        }
    }
}
