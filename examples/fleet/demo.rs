//! The zero-setup demo: a throwaway PostgreSQL (or `DATABASE_URL`'s), the fakes of N
//! organisations, two workers until every organisation has run once, the status.

use crate::fakes::register_all;
use crate::setup::{fake_factory, fleet, keyring_or_throwaway};
use crate::workers::{WorkerSettings, worker};
use crate::world::{DriveReport, World};
use receipt_sync::fleet::{FleetStatus, OrganizationFactory};
use receipt_sync::testkit::postgres::TestCluster;
use receipt_sync::{Error, Result};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How big the demo is.
#[derive(Clone, Copy, Debug)]
pub struct DemoOptions {
    /// Organisations.
    pub organisations: usize,
    /// Receipts each.
    pub receipts: usize,
    /// Workers.
    pub workers: usize,
}

/// What the demo ended with.
pub struct DemoOutcome {
    /// The fleet's status after every organisation ran once.
    pub status: FleetStatus,
    /// Each organisation's drive.
    pub drives: BTreeMap<String, DriveReport>,
}

impl DemoOutcome {
    /// Every organisation's run complete, every receipt archived once.
    pub fn succeeded(&self, ids: usize) -> bool {
        let complete = self
            .status
            .next_runs
            .iter()
            .filter(|o| o.last_result.as_deref() == Some("complete"))
            .count();
        complete >= ids
            && self
                .drives
                .values()
                .all(|d| d.missing == 0 && d.duplicates == 0)
    }
}

/// Runs the demo.
pub async fn run(options: DemoOptions) -> Result<DemoOutcome> {
    let keyring = keyring_or_throwaway()?;
    let managed = std::env::var_os("DATABASE_URL").is_none();
    // Stopped (and its folder removed) when dropped, at the end of this function.
    let cluster = TestCluster::start().ok_or_else(|| {
        Error::Config(
            "PostgreSQL's binaries (initdb, pg_ctl) were not found: install PostgreSQL, or set \
             DATABASE_URL to a database the demo may write to"
                .to_owned(),
        )
    })?;
    if managed {
        eprintln!("fleet: started a throwaway PostgreSQL cluster in a temporary folder");
    }
    let world = World::start(options.organisations, options.receipts, Duration::ZERO)
        .await
        .map_err(|e| Error::io("start the fakes", std::path::PathBuf::new(), e))?;
    let info = world.info();
    let admin = fleet(cluster.url(), keyring.clone(), None).await?;
    register_all(&admin, &info).await?;
    eprintln!(
        "fleet: registered {} organisations, each with its own Qonto organisation and drive",
        info.organisations.len()
    );
    let factory: Arc<dyn OrganizationFactory> = Arc::new(fake_factory(&info)?);
    let stop = CancellationToken::new();
    let mut running = Vec::new();
    for n in 1..=options.workers.max(1) {
        // A pool of its own per worker, as separate processes would have.
        let own = fleet(cluster.url(), keyring.clone(), None).await?;
        let settings = WorkerSettings {
            id: format!("demo-worker-{n}"),
            concurrency: 2,
            poll: Duration::from_millis(200),
        };
        let worker = worker(own, factory.clone(), &settings, stop.clone());
        running.push(tokio::spawn(async move { worker.run().await }));
    }
    let ids: Vec<&str> = info.organisations.iter().map(|o| o.id.as_str()).collect();
    let waited = wait_until_each_ran(&admin, &ids, Duration::from_secs(120)).await;
    stop.cancel();
    for task in running {
        if let Ok(Err(error)) = task.await {
            eprintln!("fleet: a worker ended with: {error}");
        }
    }
    let mut status = waited?;
    status.next_runs.retain(|o| ids.contains(&o.id.as_str()));
    let drives = world.report();
    drop(cluster);
    Ok(DemoOutcome { status, drives })
}

/// Polls the status until each of `ids` has a last result, or `limit` passes.
async fn wait_until_each_ran(
    fleet: &receipt_sync::fleet::Fleet,
    ids: &[&str],
    limit: Duration,
) -> Result<FleetStatus> {
    let deadline = Instant::now() + limit;
    loop {
        let status = fleet.status(10_000).await?;
        let ran = status
            .next_runs
            .iter()
            .filter(|o| {
                ids.contains(&o.id.as_str()) && o.last_result.is_some() && o.running_on.is_none()
            })
            .count();
        if ran >= ids.len() || Instant::now() >= deadline {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
