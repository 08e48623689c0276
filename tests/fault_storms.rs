//! Fault storms, end to end: `QontoSource` over the fake Qonto and `OneDriveSink` over the
//! fake Graph, with a state file on disk, while both fakes throw, together and at
//! random (seeded): 429 with and without `Retry-After` (about 20% of Graph requests),
//! 503 (5%), dropped connections, answers cut short, an upload answered but its
//! answer lost, download URLs that expire within a second, upload sessions that
//! expire, a delta 410, and a drive that fills up in the middle of the first run.
//!
//! Every run ends (each is bounded by a timeout, and none may panic). The storm blows
//! through two runs; the third, calm, completes, and the archive has converged: every
//! receipt exactly once with its bytes, the state file readable, and a sync after that
//! writes nothing. `STORM_SEEDS` raises the number of storms (CI runs 4), and
//! `STORM_RUNS` the number of stormy runs.
#![cfg(feature = "testkit")]

use receipt_sync::auth::StaticToken;
use receipt_sync::http::RetryConfig;
use receipt_sync::sink::onedrive::OneDriveSink;
use receipt_sync::state::{JsonFileStateStore, StateStore};
use receipt_sync::sync::{SyncConfig, SyncReport, Syncer};
use receipt_sync::testkit::fake_graph::{FakeGraph, Fault, FaultRule, RandomFaults};
use receipt_sync::testkit::fake_qonto::{FakeQonto, NewTransaction};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// No run may take longer than this; a hang fails the test.
const RUN_LIMIT: Duration = Duration::from_secs(60);

struct Storm {
    seed: u64,
    qonto: FakeQonto,
    graph: Arc<FakeGraph>,
    home: tempfile::TempDir,
    /// Every receipt's bytes, which are unique to it.
    expected: Vec<Vec<u8>>,
}

impl Storm {
    async fn start(seed: u64) -> Self {
        let qonto = FakeQonto::start().await.unwrap();
        let mut expected = Vec::new();
        for (a, name) in ["Main", "Travel"].into_iter().enumerate() {
            let account = qonto.add_account(name);
            for i in 0..20 {
                let tx = qonto.add_transaction(
                    &account.id,
                    NewTransaction::debit(100 + i, &format!("Shop {a}-{i}")),
                );
                // Two receipts above the session cutoff in each account.
                let size = if i % 10 == 3 {
                    400 * 1024
                } else {
                    500 + 97 * i as usize
                };
                let mut bytes = format!("receipt {a}-{i};").into_bytes();
                bytes.resize(size, b'.');
                qonto.add_attachment(&tx, &format!("r{i}.pdf"), "application/pdf", bytes.clone());
                expected.push(bytes);
            }
        }
        let graph = Arc::new(FakeGraph::start().await.unwrap());
        Self {
            seed,
            qonto,
            graph,
            home: tempfile::tempdir().unwrap(),
            expected,
        }
    }

    fn store(&self) -> JsonFileStateStore {
        JsonFileStateStore::new(self.home.path())
    }

    fn syncer(&self) -> Syncer {
        let source = self
            .qonto
            .source_builder()
            .with_retry(retry())
            .build()
            .unwrap();
        let sink = OneDriveSink::builder(Arc::new(StaticToken::new("graph-token")))
            .with_base_url(self.graph.base_url())
            .with_retry(retry())
            .with_simple_upload_cutoff(64 * 1024)
            .with_fragment_size(327_680)
            .build()
            .unwrap();
        Syncer::new(
            Arc::new(source),
            Arc::new(sink),
            Arc::new(self.store()),
            SyncConfig::default().with_retry(retry()),
        )
    }

    /// Both fakes throw at random from now on.
    fn storm(&self, run: u64) {
        let seed = self.seed.wrapping_mul(31).wrapping_add(run);
        // 5 kinds in equal shares: 429 with and without Retry-After, 503, drop, cut.
        self.qonto.set_chaos(seed, 0.25);
        // Listed URLs go stale while earlier receipts are copied.
        self.qonto.set_url_lifetime(Duration::from_millis(40));
        self.qonto.set_latency(Duration::from_millis(5));
        let mut kinds = Vec::new();
        for _ in 0..4 {
            kinds.extend([Fault::Throttle(Some(0)), Fault::Throttle(None)]);
        }
        kinds.extend([Fault::Unavailable(None), Fault::Unavailable(Some(0))]);
        kinds.extend([Fault::Drop, Fault::Truncate]);
        self.graph.set_random_faults(Some(RandomFaults {
            seed,
            probability: 0.3,
            kinds,
            route_prefix: String::new(),
        }));
        // Answered but the answer lost, and sessions that expire, on uploads.
        self.graph.inject(
            FaultRule::new("PUT /items", Fault::DropAfter)
                .after(2)
                .times(2),
        );
        self.graph.inject(
            FaultRule::new("PUT /upload", Fault::ExpireSession)
                .after(1)
                .times(1),
        );
    }

    fn calm(&self) {
        self.qonto.set_chaos(0, 0.0);
        self.qonto.set_url_lifetime(Duration::from_secs(1800));
        self.graph.set_random_faults(None);
        self.graph.clear_faults();
    }

    async fn run(&self) -> SyncReport {
        tokio::time::timeout(RUN_LIMIT, self.syncer().run())
            .await
            .unwrap_or_else(|_| panic!("seed {}: a run hung", self.seed))
            .unwrap_or_else(|e| panic!("seed {}: a run could not start or save: {e}", self.seed))
    }

    fn archived(&self) -> BTreeMap<String, Vec<u8>> {
        let root = format!("{}/", self.graph.app_path(""));
        self.graph
            .files()
            .into_iter()
            .filter(|(path, _)| path.starts_with(&root))
            .map(|(path, bytes)| (path, bytes.to_vec()))
            .collect()
    }

    /// Fills the drive once the first `files` receipts are in, as another device would.
    fn fill_up_after(&self, files: usize) -> tokio::task::JoinHandle<()> {
        let graph = self.graph.clone();
        tokio::spawn(async move {
            loop {
                if graph.files().len() >= files {
                    let used: u64 = graph.files().values().map(|b| b.len() as u64).sum();
                    graph.set_quota_total(used + 10_000);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    }
}

/// Stormy runs before the calm one (default 2: three runs in all).
fn stormy_runs() -> u64 {
    std::env::var("STORM_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

fn retry() -> RetryConfig {
    RetryConfig::fast().with_max_retry_after(Duration::from_millis(200))
}

/// One storm; returns the faults the fake Graph threw.
async fn weather(seed: u64) -> Vec<String> {
    let storm = Storm::start(seed).await;
    storm.storm(0);
    let filler = storm.fill_up_after(8);
    let first = storm.run().await;
    filler.abort();
    assert!(
        first.stopped.is_some() || first.failures.is_empty(),
        "seed {seed}: the first run reports what it could not do: {first}"
    );
    // The user frees space; the storm goes on.
    storm.graph.set_quota_total(1 << 40);
    storm.graph.require_resync();
    let mut reports = vec![first];
    // The storm goes on through the second run (`STORM_RUNS` raises that); the run
    // after it must finish everything.
    for run in 1..stormy_runs() {
        storm.storm(run);
        reports.push(storm.run().await);
    }
    storm.calm();
    let last = storm.run().await;
    assert!(
        last.is_complete(),
        "seed {seed}: the run after the storm: {last}"
    );
    reports.push(last);

    let archived = storm.archived();
    let mut found: Vec<&Vec<u8>> = archived.values().collect();
    found.sort();
    let mut expected: Vec<&Vec<u8>> = storm.expected.iter().collect();
    expected.sort();
    assert_eq!(
        found.len(),
        expected.len(),
        "seed {seed}: {} files for {} receipts: {:?}",
        found.len(),
        expected.len(),
        archived.keys().collect::<Vec<_>>()
    );
    assert!(found == expected, "seed {seed}: the bytes differ");
    let state = storm.store().load().await.unwrap().expect("a state");
    assert_eq!(state.exported.len(), expected.len(), "seed {seed}");

    let quiet = storm.run().await;
    assert!(quiet.is_complete(), "seed {seed}: {quiet}");
    for kind in ["upload", "create-folder", "adopt", "tombstone"] {
        assert_eq!(
            quiet.count(kind),
            0,
            "seed {seed}: a calm sync did {kind}: {quiet}"
        );
    }
    assert_eq!(archived, storm.archived(), "seed {seed}");

    // The storm really blew (each kind is checked over all the storms, below).
    let faults = storm.graph.fault_log();
    assert!(
        faults.len() >= 10,
        "seed {seed}: only {} faults",
        faults.len()
    );
    let requests = storm.qonto.api_requests();
    assert!(
        requests.per_route.keys().any(|r| r.contains("attachments")),
        "seed {seed}: no download URL expired: {requests:?}"
    );
    eprintln!(
        "seed {seed}: first complete run: {}; {} Graph faults; runs: {}",
        reports
            .iter()
            .position(SyncReport::is_complete)
            .map_or(0, |i| i + 1),
        faults.len(),
        reports
            .iter()
            .map(|r| format!("[{r}]"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    faults.iter().map(|(_, f)| format!("{f:?}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storms_end_cleanly_and_converge_within_three_runs() {
    let seeds: u64 = std::env::var("STORM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let mut thrown = Vec::new();
    for seed in 1..=seeds {
        thrown.extend(weather(seed).await);
    }
    for kind in [
        "Throttle(Some",
        "Throttle(None",
        "Unavailable",
        "Drop",
        "DropAfter",
        "Truncate",
        "ExpireSession",
    ] {
        assert!(
            thrown.iter().any(|f| f.starts_with(kind)),
            "no {kind} fault was thrown in {seeds} storms"
        );
    }
}
