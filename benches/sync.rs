//! Throughput of whole sync passes.
//!
//! 1. In memory (`InMemorySource` → `InMemorySink`, `InMemoryStateStore`), every source
//!    and sink operation delayed by 5 ms (the `Slow` wrapper below), at concurrency 1
//!    and 8: a criterion group on 1,000 receipts (throughput in receipts/s), then one
//!    timed pass of 10,000 receipts at each concurrency.
//! 2. Over HTTP: the real `QontoSource` against the fake Qonto and the real
//!    `OneDriveSink` against the fake Graph, every answer of every fake host delayed by
//!    30 ms: one timed initial export of 2,000 receipts of 20–500 KB at concurrency 16
//!    and 1, compared with the floor 2 × N × 30 ms / concurrency (one download and one
//!    upload per receipt, nothing else overlapping).
//!
//! `cargo bench --features testkit --bench sync` (add `-- --quick` for a shorter
//! criterion pass; a filter argument such as `timed` or `http` runs only the parts
//! whose name contains it). Under `cargo test --benches` every part runs once, small
//! and without latency, as a smoke test.

use async_trait::async_trait;
use chrono::{NaiveDate, TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use futures::StreamExt;
use receipt_sync::auth::StaticToken;
use receipt_sync::http::RetryConfig;
use receipt_sync::model::{
    AccountId, ArchivePath, BankAccount, Body, Receipt, ScanCursor, ScanUpdate, SinkEntry,
    SinkItemId,
};
use receipt_sync::sink::{ArchiveSink, InMemorySink, OneDriveSink, Quota, SinkCapabilities};
use receipt_sync::source::{InMemorySource, ReceiptQuery, ReceiptSource, ReceiptStream};
use receipt_sync::state::InMemoryStateStore;
use receipt_sync::sync::{SyncConfig, Syncer};
use receipt_sync::testkit::fake_graph::FakeGraph;
use receipt_sync::testkit::fake_qonto::{FakeQonto, NewTransaction};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A source or sink whose every operation first waits `latency`, like a remote one.
#[derive(Debug)]
struct Slow<T> {
    inner: T,
    latency: Duration,
}

impl<T> Slow<T> {
    async fn wait(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }
}

#[async_trait]
impl<T: ReceiptSource> ReceiptSource for Slow<T> {
    async fn accounts(&self) -> receipt_sync::Result<Vec<BankAccount>> {
        self.wait().await;
        self.inner.accounts().await
    }

    fn receipts(&self, account: &AccountId, query: &ReceiptQuery) -> ReceiptStream {
        // One wait per listing, before its first item.
        let latency = self.latency;
        let first = futures::stream::once(tokio::time::sleep(latency)).filter_map(|()| async {
            None::<receipt_sync::Result<receipt_sync::source::SourceEvent>>
        });
        first.chain(self.inner.receipts(account, query)).boxed()
    }

    async fn open(&self, receipt: &Receipt) -> receipt_sync::Result<Body> {
        self.wait().await;
        self.inner.open(receipt).await
    }
}

#[async_trait]
impl<T: ArchiveSink> ArchiveSink for Slow<T> {
    fn capabilities(&self) -> SinkCapabilities {
        self.inner.capabilities()
    }

    async fn scan(&self, cursor: Option<&ScanCursor>) -> receipt_sync::Result<ScanUpdate> {
        self.wait().await;
        self.inner.scan(cursor).await
    }

    async fn create_folder(&self, path: &ArchivePath) -> receipt_sync::Result<SinkEntry> {
        self.wait().await;
        self.inner.create_folder(path).await
    }

    async fn write_file(&self, path: &ArchivePath, body: Body) -> receipt_sync::Result<SinkEntry> {
        self.wait().await;
        self.inner.write_file(path, body).await
    }

    async fn rename_folder(
        &self,
        id: &SinkItemId,
        path: &ArchivePath,
        new_name: &str,
    ) -> receipt_sync::Result<SinkEntry> {
        self.wait().await;
        self.inner.rename_folder(id, path, new_name).await
    }

    async fn quota(&self) -> receipt_sync::Result<Option<Quota>> {
        self.wait().await;
        self.inner.quota().await
    }
}

const ACCOUNTS: usize = 3;

/// `n` receipts of 4 KB over three accounts and twelve months of 2025.
fn bank(n: usize) -> InMemorySource {
    let source = InMemorySource::new();
    for a in 0..ACCOUNTS {
        source.add_account_named(&format!("acc-{a}"), &format!("Account {a}"));
    }
    let bytes = bytes::Bytes::from(vec![b'%'; 4096]);
    for i in 0..n {
        let account = AccountId::new(format!("acc-{}", i % ACCOUNTS));
        let day = NaiveDate::from_ymd_opt(2025, 1 + (i % 12) as u32, 1 + (i % 28) as u32)
            .unwrap_or_default();
        let receipt =
            InMemorySource::receipt(&format!("r{i}"), &account, day, &format!("Shop {i}"), -1234);
        source.add_receipt(receipt, bytes.clone());
    }
    source
}

/// One initial export of `bank` into a fresh in-memory drive; returns its wall time.
fn in_memory_pass(
    rt: &tokio::runtime::Runtime,
    bank: &InMemorySource,
    latency: Duration,
    concurrency: usize,
) -> Duration {
    let source = Arc::new(Slow {
        inner: bank.clone(),
        latency,
    });
    let sink = Arc::new(Slow {
        inner: InMemorySink::new(),
        latency,
    });
    let syncer = Syncer::new(
        source,
        sink,
        Arc::new(InMemoryStateStore::new()),
        SyncConfig::default()
            .with_concurrency(concurrency)
            .with_retry(RetryConfig::fast()),
    );
    let started = Instant::now();
    let report = rt.block_on(syncer.run()).expect("the pass runs");
    let took = started.elapsed();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.count("upload"), bank.len());
    took
}

fn criterion_in_memory(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    n: usize,
    latency: Duration,
) {
    let bank = bank(n);
    let mut group = c.benchmark_group("sync_in_memory_5ms");
    // Flat sampling: one pass per sample, not 1 + 2 + … + 10 of them.
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(100));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(n as u64));
    for concurrency in [1, 8] {
        group.bench_with_input(
            BenchmarkId::new("concurrency", concurrency),
            &concurrency,
            |b, &concurrency| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| in_memory_pass(rt, &bank, latency, concurrency))
                        .sum()
                })
            },
        );
    }
    group.finish();
}

fn timed_in_memory(rt: &tokio::runtime::Runtime, n: usize, latency: Duration) {
    let bank = bank(n);
    let mut walls = Vec::new();
    for concurrency in [1, 8] {
        let wall = in_memory_pass(rt, &bank, latency, concurrency);
        println!(
            "timed_in_memory n={n} latency={latency:?} concurrency={concurrency}: {:.2} s, {:.0} receipts/s",
            wall.as_secs_f64(),
            n as f64 / wall.as_secs_f64()
        );
        walls.push(wall);
    }
    println!(
        "timed_in_memory n={n}: speed-up 8 vs 1 = {:.2}x",
        walls[0].as_secs_f64() / walls[1].as_secs_f64()
    );
}

/// A receipt's size, 20–500 KB, spread deterministically.
fn http_size(i: usize) -> usize {
    20_000 + (i * 48_271) % 480_001
}

/// A fake Qonto holding `n` receipts over two accounts and six months of 2025.
async fn seeded_qonto(n: usize) -> FakeQonto {
    let qonto = FakeQonto::start().await.expect("fake Qonto starts");
    let accounts = [qonto.add_account("Main"), qonto.add_account("Travel")];
    for i in 0..n {
        let at = Utc
            .with_ymd_and_hms(2025, 1 + (i % 6) as u32, 1 + (i % 28) as u32, 12, 0, 0)
            .single()
            .unwrap_or_default();
        let tx = qonto.add_transaction(
            &accounts[i % 2].id,
            NewTransaction::debit(100 + i as i64, &format!("Shop {i}")).emitted_at(at),
        );
        let bytes: Vec<u8> = (0..http_size(i)).map(|j| (i ^ j) as u8).collect();
        qonto.add_attachment(&tx, &format!("receipt-{i}.pdf"), "application/pdf", bytes);
    }
    qonto
}

/// One initial export over the fakes into a fresh fake Graph; returns the wall time
/// and the requests served by both fakes.
async fn http_pass(qonto: &FakeQonto, latency: Duration, concurrency: usize) -> (Duration, u64) {
    let graph = FakeGraph::start().await.expect("fake Graph starts");
    graph.api_server().set_latency(latency);
    graph.upload_server().set_latency(latency);
    qonto.set_latency(latency);
    qonto.reset_requests();
    let source = qonto.source_builder().build().expect("valid source");
    let sink = OneDriveSink::builder(Arc::new(StaticToken::new("bench-token")))
        .with_base_url(graph.base_url())
        .with_retry(RetryConfig::fast())
        .build()
        .expect("valid sink");
    let syncer = Syncer::new(
        Arc::new(source),
        Arc::new(sink),
        Arc::new(InMemoryStateStore::new()),
        SyncConfig::default()
            .with_concurrency(concurrency)
            .with_retry(RetryConfig::fast()),
    );
    let started = Instant::now();
    let report = syncer.run().await.expect("the pass runs");
    let took = started.elapsed();
    assert!(report.is_complete(), "{report:?}");
    let requests = qonto.api_requests().total()
        + qonto.download_requests().total()
        + qonto.mirror_requests().total()
        + graph.requests().total();
    (took, requests)
}

fn timed_http(rt: &tokio::runtime::Runtime, n: usize, latency: Duration) {
    rt.block_on(async {
        let qonto = seeded_qonto(n).await;
        let bytes: usize = (0..n).map(http_size).sum();
        let mut walls = Vec::new();
        for concurrency in [16, 1] {
            let (wall, requests) = http_pass(&qonto, latency, concurrency).await;
            let floor = latency.as_secs_f64() * 2.0 * n as f64 / concurrency as f64;
            println!(
                "http n={n} ({:.0} MB) latency={latency:?} concurrency={concurrency}: {:.2} s \
                 ({:.0} receipts/s), floor 2N×latency/c = {floor:.2} s, ratio {}; \
                 {requests} requests ({:.3}/receipt)",
                bytes as f64 / 1e6,
                wall.as_secs_f64(),
                n as f64 / wall.as_secs_f64(),
                if floor > 0.0 {
                    format!("{:.2}", wall.as_secs_f64() / floor)
                } else {
                    "n/a".to_owned()
                },
                requests as f64 / n as f64,
            );
            walls.push(wall);
        }
        println!(
            "http n={n}: speed-up 16 vs 1 = {:.2}x",
            walls[1].as_secs_f64() / walls[0].as_secs_f64()
        );
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let benching = args.iter().any(|a| a == "--bench");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let wanted =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // Outside `cargo bench`, a quick smoke run of every part.
    let (latency_mem, latency_http, n_crit, n_mem, n_http) = if benching {
        (
            Duration::from_millis(5),
            Duration::from_millis(30),
            1_000,
            10_000,
            2_000,
        )
    } else {
        (Duration::ZERO, Duration::ZERO, 50, 100, 20)
    };

    let mut c = Criterion::default().configure_from_args();
    criterion_in_memory(&mut c, &rt, n_crit, latency_mem);
    c.final_summary();
    if wanted("timed_in_memory") {
        timed_in_memory(&rt, n_mem, latency_mem);
    }
    if wanted("http") {
        timed_http(&rt, n_http, latency_http);
    }
}
