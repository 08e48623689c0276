//! Running workers: `workers` runs one until SIGTERM or ctrl-c; the demo runs two in
//! its own process.

use receipt_sync::Result;
use receipt_sync::fleet::{Fleet, OrganizationFactory, Worker};
use receipt_sync::source::qonto::{QontoRateLimit, SharedQontoRateLimiter};
use receipt_sync::sync::UploadBudget;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Its id, in `fleet_runs` and the status.
    pub id: String,
    /// Organisations at once.
    pub concurrency: usize,
    /// How often it looks for due organisations when idle.
    pub poll: Duration,
}

/// A worker of `fleet`, stopped by `stop`.
pub fn worker(
    fleet: Fleet,
    factory: Arc<dyn OrganizationFactory>,
    settings: &WorkerSettings,
    stop: CancellationToken,
) -> Worker {
    Worker::new(
        fleet,
        factory,
        settings.id.clone(),
        settings.concurrency,
        // One process on one address: Qonto's whole per-address budget.
        SharedQontoRateLimiter::new(QontoRateLimit::default()),
        // Room for every organisation's own uploads, and a little more.
        UploadBudget::new(settings.concurrency * 4),
    )
    .with_poll_interval(settings.poll)
    .with_cancellation(stop)
}

/// Runs one worker until SIGTERM or ctrl-c; its passes in progress stop cleanly and are
/// recorded before it returns.
pub async fn run_until_signalled(
    fleet: Fleet,
    factory: Arc<dyn OrganizationFactory>,
    settings: &WorkerSettings,
) -> Result<()> {
    let stop = CancellationToken::new();
    let worker = worker(fleet, factory, settings, stop.clone());
    let signals = tokio::spawn(stop_on_signal(stop.clone()));
    eprintln!(
        "fleet: worker {} running; SIGTERM or ctrl-c stops it",
        settings.id
    );
    let result = worker.run().await;
    signals.abort();
    eprintln!("fleet: worker {} stopped", settings.id);
    result
}

/// Cancels `stop` at the first SIGTERM or ctrl-c.
async fn stop_on_signal(stop: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    stop.cancel();
}
