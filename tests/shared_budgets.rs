//! Budgets shared by the organisations of one process: Qonto's per-address rate limit
//! and pause, a cap on uploads in flight, and a Graph throttle that pauses only its own
//! sink.
#![cfg(feature = "testkit")]

use async_trait::async_trait;
use chrono::NaiveDate;
use receipt_sync::Result;
use receipt_sync::auth::StaticToken;
use receipt_sync::http::RetryConfig;
use receipt_sync::model::{ArchivePath, Body, ScanCursor, ScanUpdate, SinkEntry, SinkItemId};
use receipt_sync::sink::onedrive::OneDriveSink;
use receipt_sync::sink::{ArchiveSink, InMemorySink, Quota, SinkCapabilities};
use receipt_sync::source::qonto::{QontoRateLimit, SharedQontoRateLimiter};
use receipt_sync::source::{InMemorySource, ReceiptSource};
use receipt_sync::state::InMemoryStateStore;
use receipt_sync::sync::{SyncConfig, Syncer, UploadBudget};
use receipt_sync::testkit::fake_graph::{FakeGraph, Fault, FaultRule};
use receipt_sync::testkit::fake_qonto::{FakeQonto, Fault as QontoFault};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The limit the Qonto test keeps: 3 at once, then 10 a second, so at most
/// `3 + 10 × w` requests in any `w` seconds.
const BURST: u32 = 3;
const PER_SECOND: f64 = 10.0;

/// A count of requests the fake received, between two readings of the clock.
struct Sample {
    before: Instant,
    requests: u64,
    after: Instant,
}

/// Requests the fake received, sampled every few milliseconds until `until`.
async fn sample_requests(fake: &FakeQonto, until: Instant) -> Vec<Sample> {
    let mut samples = Vec::new();
    loop {
        let before = Instant::now();
        let requests = fake.api_requests().total();
        samples.push(Sample {
            before,
            requests,
            after: Instant::now(),
        });
        if before >= until {
            return samples;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The largest excess over `BURST + PER_SECOND × w` of any window between two samples.
/// The requests counted between samples `i` and `j` all arrived between `i.before` and
/// `j.after`: a slow reading widens the window, it never shrinks it.
fn worst_excess(samples: &[Sample]) -> f64 {
    let mut worst = f64::MIN;
    for (i, start) in samples.iter().enumerate() {
        for end in &samples[i + 1..] {
            let window = end.after.duration_since(start.before).as_secs_f64();
            let allowed = f64::from(BURST) + PER_SECOND * window;
            worst = worst.max((end.requests - start.requests) as f64 - allowed);
        }
    }
    worst
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_sharing_a_limiter_stay_under_it_together() {
    let fake = FakeQonto::start().await.unwrap();
    fake.add_account("Main");
    let shared = SharedQontoRateLimiter::new(QontoRateLimit::new(BURST, PER_SECOND));
    assert_eq!(shared.limit(), QontoRateLimit::new(BURST, PER_SECOND));
    let sources: Vec<_> = (0..2)
        .map(|_| {
            fake.source_builder()
                .with_shared_rate_limiter(shared.clone())
                .build()
                .unwrap()
        })
        .collect();

    // Both call as fast as they can for a second.
    let until = Instant::now() + Duration::from_secs(1);
    let callers: Vec<_> = sources
        .into_iter()
        .map(|source| {
            tokio::spawn(async move {
                while Instant::now() < until {
                    source.accounts().await.unwrap();
                }
            })
        })
        .collect();
    let samples = sample_requests(&fake, until).await;
    for caller in callers {
        caller.await.unwrap();
    }

    // One bucket for both. The slack is for requests let through just before a window
    // that reach the fake inside it (300 ms of delay on a loaded machine); a bucket of
    // its own for each source goes over by about 13.
    let worst = worst_excess(&samples);
    assert!(worst <= 3.0, "{worst} requests over the shared limit");
    let total = fake.api_requests().total();
    assert!(
        total >= u64::from(BURST) + 5,
        "the callers were held back too much: {total} requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qonto_throttle_pauses_every_source_sharing_the_limiter() {
    let fake = FakeQonto::start().await.unwrap();
    fake.add_account("Main");
    let shared = SharedQontoRateLimiter::new(QontoRateLimit::unlimited());
    let sharing = || {
        fake.source_builder()
            .with_shared_rate_limiter(shared.clone())
            .build()
            .unwrap()
    };
    let (first, second) = (sharing(), sharing());
    let apart = fake.source_builder().build().unwrap();

    // The first source is told to wait 2 s: Qonto's limit is the address's.
    fake.inject("GET /v2/", QontoFault::too_many_requests_after(2));
    let throttled_at = Instant::now();
    let first = tokio::spawn(async move { first.accounts().await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.fault_log().is_empty() {
        assert!(Instant::now() < deadline, "the throttle never fired");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    // A source with a limiter of its own goes on; the one sharing waits the pause out.
    apart.accounts().await.unwrap();
    assert!(
        throttled_at.elapsed() < Duration::from_millis(1500),
        "a source apart was held"
    );
    second.accounts().await.unwrap();
    assert!(
        throttled_at.elapsed() >= Duration::from_millis(1900),
        "the sharing source did not wait: {:?}",
        throttled_at.elapsed()
    );
    first.await.unwrap().unwrap();
    assert_eq!(fake.fault_log().len(), 1, "no request was refused again");
}

/// An in-memory sink whose writes take a while, counting the writes in flight across
/// every sink that shares `in_flight`, and the most seen at once.
#[derive(Debug, Clone)]
struct CountingSink {
    inner: InMemorySink,
    in_flight: Arc<AtomicUsize>,
    high_water: Arc<AtomicUsize>,
    /// When set, each write waits for a permit of it first.
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl CountingSink {
    fn new(in_flight: Arc<AtomicUsize>, high_water: Arc<AtomicUsize>) -> Self {
        Self {
            inner: InMemorySink::new(),
            in_flight,
            high_water,
            gate: None,
        }
    }
}

#[async_trait]
impl ArchiveSink for CountingSink {
    fn capabilities(&self) -> SinkCapabilities {
        self.inner.capabilities()
    }

    async fn scan(&self, cursor: Option<&ScanCursor>) -> Result<ScanUpdate> {
        self.inner.scan(cursor).await
    }

    async fn create_folder(&self, path: &ArchivePath) -> Result<SinkEntry> {
        self.inner.create_folder(path).await
    }

    async fn write_file(&self, path: &ArchivePath, body: Body) -> Result<SinkEntry> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.high_water.fetch_max(now, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            let _passed = gate.acquire().await;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
        let written = self.inner.write_file(path, body).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        written
    }

    async fn rename_folder(
        &self,
        folder: &SinkItemId,
        from: &ArchivePath,
        new_name: &str,
    ) -> Result<SinkEntry> {
        self.inner.rename_folder(folder, from, new_name).await
    }

    async fn quota(&self) -> Result<Option<Quota>> {
        self.inner.quota().await
    }
}

/// An organisation with `receipts` receipts in one account.
fn organisation(receipts: usize) -> InMemorySource {
    let source = InMemorySource::new();
    let account = source.add_account_named("acc-1", "Main");
    let day = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
    for n in 0..receipts {
        let receipt = InMemorySource::receipt(&format!("r{n}"), &account, day, "Shop", 1000);
        source.add_receipt(receipt, format!("%PDF receipt {n}").into_bytes());
    }
    source
}

/// Runs `organisations` syncers at once, each with 4 uploads in flight of its own and
/// `budget` shared when given; returns the most uploads in flight seen and the sinks.
async fn run_fleet(
    organisations: usize,
    budget: Option<UploadBudget>,
) -> (usize, Vec<InMemorySink>) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let high_water = Arc::new(AtomicUsize::new(0));
    let mut runs = Vec::new();
    let mut sinks = Vec::new();
    for _ in 0..organisations {
        let sink = CountingSink::new(in_flight.clone(), high_water.clone());
        sinks.push(sink.inner.clone());
        let mut syncer = Syncer::new(
            Arc::new(organisation(8)),
            Arc::new(sink),
            Arc::new(InMemoryStateStore::new()),
            SyncConfig::default().with_concurrency(4),
        );
        if let Some(budget) = &budget {
            syncer = syncer.with_upload_budget(budget.clone());
        }
        runs.push(tokio::spawn(async move { syncer.run().await }));
    }
    for run in runs {
        let report = run.await.unwrap().unwrap();
        assert!(report.is_complete(), "{report}");
        assert_eq!(report.count("upload"), 8);
    }
    assert_eq!(in_flight.load(Ordering::SeqCst), 0);
    (high_water.load(Ordering::SeqCst), sinks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisations_sharing_an_upload_budget_never_exceed_it_together() {
    // Without a budget, three organisations of 4 uploads each overlap well past 2:
    // the test can see a breach.
    let (unbounded, _) = run_fleet(3, None).await;
    assert!(unbounded > 2, "the uploads never overlapped: {unbounded}");

    let budget = UploadBudget::new(2);
    let (bounded, sinks) = run_fleet(3, Some(budget.clone())).await;
    assert!(bounded <= 2, "{bounded} uploads in flight at once");
    assert_eq!(bounded, 2, "the budget is used in full");
    assert_eq!(budget.in_flight(), 0, "every permit is given back");
    for sink in sinks {
        assert_eq!(sink.files().len(), 8, "every receipt is archived");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_waiting_for_the_budget_stops_when_cancelled() {
    let budget = UploadBudget::new(1);
    // Organisation A takes the only permit and keeps it until the gate opens.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let sink_a = CountingSink {
        gate: Some(gate.clone()),
        ..CountingSink::new(Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)))
    };
    let syncer_a = Syncer::new(
        Arc::new(organisation(1)),
        Arc::new(sink_a),
        Arc::new(InMemoryStateStore::new()),
        SyncConfig::default(),
    )
    .with_upload_budget(budget.clone());
    let run_a = tokio::spawn(async move { syncer_a.run().await });
    let deadline = Instant::now() + Duration::from_secs(20);
    while budget.in_flight() == 0 {
        assert!(Instant::now() < deadline, "A never started uploading");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Organisation B waits for a permit, then is asked to stop.
    let sink_b = InMemorySink::new();
    let store_b = InMemoryStateStore::new();
    let cancel = tokio_util::sync::CancellationToken::new();
    let syncer_b = Syncer::new(
        Arc::new(organisation(3)),
        Arc::new(sink_b.clone()),
        Arc::new(store_b.clone()),
        SyncConfig::default(),
    )
    .with_upload_budget(budget.clone())
    .with_cancellation(cancel.clone());
    let run_b = tokio::spawn(async move { syncer_b.run().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!run_b.is_finished(), "B did not wait for the budget");
    cancel.cancel();
    let report = tokio::time::timeout(Duration::from_secs(5), run_b)
        .await
        .expect("B stopped waiting when cancelled")
        .unwrap()
        .unwrap();
    assert!(
        matches!(report.stopped, Some(receipt_sync::Error::Cancelled)),
        "{report}"
    );
    assert_eq!(report.count("upload"), 0);
    assert!(report.failures.is_empty(), "{report}");
    assert!(sink_b.files().is_empty());
    assert_eq!(budget.in_flight(), 1, "B took no permit");

    // A finishes once its writes go through; B's next pass uploads everything.
    gate.add_permits(100);
    assert_eq!(run_a.await.unwrap().unwrap().count("upload"), 1);
    let syncer_b = Syncer::new(
        Arc::new(organisation(3)),
        Arc::new(sink_b.clone()),
        Arc::new(store_b),
        SyncConfig::default(),
    )
    .with_upload_budget(budget.clone());
    assert_eq!(syncer_b.run().await.unwrap().count("upload"), 3);
    assert_eq!(budget.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_throttle_pauses_only_its_own_organisation() {
    let (graph_a, graph_b) = (
        FakeGraph::start().await.unwrap(),
        FakeGraph::start().await.unwrap(),
    );
    // The ceiling is an hour: organisation A's sink waits the minute out in full.
    let retry =
        RetryConfig::default().with_backoff(Duration::from_millis(1), Duration::from_millis(10));
    let sink = |graph: &FakeGraph| {
        OneDriveSink::builder(Arc::new(StaticToken::new("test-token")))
            .with_base_url(graph.base_url())
            .with_retry(retry)
            .build()
            .unwrap()
    };
    let (sink_a, sink_b) = (sink(&graph_a), sink(&graph_b));
    const PUT_CONTENT: &str = "PUT /items/{id}:/{path}:/content";
    graph_a.inject(FaultRule::new(PUT_CONTENT, Fault::Throttle(Some(60))));
    let syncer = |sink: OneDriveSink| {
        Syncer::new(
            Arc::new(organisation(6)),
            Arc::new(sink),
            Arc::new(InMemoryStateStore::new()),
            SyncConfig::default()
                .with_concurrency(2)
                .with_retry(RetryConfig::fast()),
        )
    };
    let run_a = {
        let syncer = syncer(sink_a);
        tokio::spawn(async move { syncer.run().await })
    };
    // A has met its 429 before B starts.
    let deadline = Instant::now() + Duration::from_secs(20);
    while graph_a.fault_log().is_empty() {
        assert!(Instant::now() < deadline, "the throttle never fired");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let run_b = {
        let syncer = syncer(sink_b);
        tokio::spawn(async move { syncer.run().await })
    };
    let report_b = tokio::time::timeout(Duration::from_secs(20), run_b)
        .await
        .expect("B finished while A was paused")
        .unwrap()
        .unwrap();
    assert!(report_b.is_complete(), "{report_b}");
    assert_eq!(report_b.count("upload"), 6);
    assert_eq!(graph_b.requests().matching(PUT_CONTENT), 6);
    // A still waits; it sent no upload after the 429, beyond what was on the wire.
    assert!(!run_a.is_finished(), "A's pause did not hold");
    assert!(graph_a.requests().matching(PUT_CONTENT) <= 2);
    run_a.abort();
}
