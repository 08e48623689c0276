//! [`Worker`]: claims due organisations of a [`Fleet`] and runs their passes, a few at
//! a time, until told to stop.

use super::registry::{Claim, Credentials, Fleet, RunOutcome};
use crate::error::Result;
use crate::sink::ArchiveSink;
use crate::source::ReceiptSource;
use crate::source::qonto::SharedQontoRateLimiter;
use crate::sync::{SyncConfig, Syncer, UploadBudget};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
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
    /// `'static`, for its own task.
    fn pass(&self, claim: Claim) -> impl std::future::Future<Output = ()> + Send + 'static {
        let fleet = self.fleet.clone();
        let factory = self.factory.clone();
        let limiter = self.limiter.clone();
        let budget = self.budget.clone();
        let config = self.config.clone();
        let cancel = self.cancel.child_token();
        let span = tracing::info_span!(
            "fleet_run",
            worker = %self.id,
            organization = %claim.organization,
            run = claim.run_id
        );
        async move {
            let report = async {
                let credentials = fleet.credentials(&claim.organization).await?;
                let assignment = Assignment {
                    claim: &claim,
                    credentials,
                    limiter: &limiter,
                    fleet: &fleet,
                };
                let connectors = factory.connectors(assignment).await?;
                let store = Arc::new(fleet.database().store(&claim.organization));
                let syncer = Syncer::new(
                    connectors.source,
                    connectors.sink,
                    store,
                    config.with_start_date(claim.start_date),
                )
                .with_label(claim.organization.clone())
                .with_upload_budget(budget)
                .with_cancellation(cancel);
                syncer.run().await
            }
            .await;
            if let Err(error) = &report {
                tracing::warn!(%error, "the organisation's run failed");
            }
            let outcome = RunOutcome {
                finished_at: chrono::Utc::now(),
                report,
            };
            if let Err(error) = fleet.finish(&claim, &outcome).await {
                // Its lease runs out and another run takes it up.
                tracing::warn!(%error, "the run's result could not be recorded");
            }
        }
        .instrument(span)
    }
}
