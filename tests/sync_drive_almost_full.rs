//! A drive that is almost full: the sync archives what fits, the oldest receipts first,
//! stops with `QuotaExceeded` saying how much more the rest needs, and the next sync
//! after space is freed archives the rest, each receipt once. Over the in-memory sink
//! and over the real OneDrive sink against the fake Graph (whose stale free space ends
//! in a 507 half-way through a run).
#![cfg(feature = "testkit")]

mod onedrive_support;

use chrono::NaiveDate;
use proptest::prelude::*;
use receipt_sync::http::RetryConfig;
use receipt_sync::model::{AccountId, ReceiptId};
use receipt_sync::sink::{ArchiveSink, InMemorySink};
use receipt_sync::source::InMemorySource;
use receipt_sync::state::InMemoryStateStore;
use receipt_sync::sync::{SyncConfig, SyncEvent, SyncReport, Syncer};
use receipt_sync::testkit::fake_graph::{FakeGraph, FakeGraphConfig};
use receipt_sync::{Error, ErrorKind};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const RECEIPT: u64 = 300_000;
const FREE: u64 = 350_000;

/// A bank and a state; the drive is the test's.
struct Bank {
    source: InMemorySource,
    store: InMemoryStateStore,
    account: AccountId,
    /// Each receipt's byte (its file is that byte repeated), by receipt id.
    fill: BTreeMap<ReceiptId, u8>,
}

impl Bank {
    fn new() -> Self {
        let source = InMemorySource::new();
        let account = source.add_account_named("acc-main", "Main");
        Self {
            source,
            store: InMemoryStateStore::new(),
            account,
            fill: BTreeMap::new(),
        }
    }

    /// A receipt of `size` bytes dated March `day`.
    fn add(&mut self, id: &str, day: u32, size: u64) {
        let date = NaiveDate::from_ymd_opt(2026, 3, day).unwrap();
        let receipt = InMemorySource::receipt(id, &self.account, date, "Shop", -100);
        let fill = b'a' + self.fill.len() as u8;
        self.source.add_receipt(receipt, vec![fill; size as usize]);
        self.fill.insert(ReceiptId::new(id), fill);
    }

    fn syncer(&self, drive: Arc<dyn ArchiveSink>, concurrency: usize) -> Syncer {
        Syncer::new(
            Arc::new(self.source.clone()),
            drive,
            Arc::new(self.store.clone()),
            SyncConfig::default()
                .with_concurrency(concurrency)
                .with_retry(RetryConfig::none()),
        )
    }

    fn state(&self) -> receipt_sync::state::SyncState {
        self.store.snapshot().unwrap()
    }

    /// The receipts recorded as archived, sorted.
    fn exported(&self) -> Vec<String> {
        self.state()
            .exported
            .keys()
            .map(|id| id.as_str().to_owned())
            .collect()
    }

    /// Which receipts `files` (the archive's file contents) are, sorted; every file
    /// must be one receipt's bytes, whole.
    fn which(&self, files: &[Vec<u8>]) -> Vec<String> {
        let mut ids: Vec<String> = files
            .iter()
            .map(|bytes| {
                let (id, _) = self
                    .fill
                    .iter()
                    .find(|(_, fill)| bytes.first() == Some(fill))
                    .expect("a receipt's bytes");
                assert!(bytes.iter().all(|b| *b == bytes[0]), "whole");
                id.as_str().to_owned()
            })
            .collect();
        ids.sort();
        ids
    }
}

fn ids(list: &[&str]) -> Vec<ReceiptId> {
    list.iter().map(|id| ReceiptId::new(*id)).collect()
}

fn memory_files(drive: &InMemorySink) -> Vec<Vec<u8>> {
    drive.files().into_iter().map(|(_, bytes)| bytes).collect()
}

fn graph_files(graph: &FakeGraph) -> Vec<Vec<u8>> {
    graph.files().into_values().map(|b| b.to_vec()).collect()
}

/// Three receipts of 300,000 bytes, added newest first: `new` (March 20), `old`
/// (March 5), `mid` (March 12).
fn three_receipts() -> Bank {
    let mut bank = Bank::new();
    bank.add("new", 20, RECEIPT);
    bank.add("old", 5, RECEIPT);
    bank.add("mid", 12, RECEIPT);
    bank
}

/// What the first run on 350,000 free bytes must report: the oldest uploaded, the two
/// others waiting in date order, 550,000 bytes more needed, 50,000 left.
fn assert_stopped_after_the_oldest(report: &SyncReport) {
    assert_eq!(report.count("upload"), 1, "{report}");
    assert_eq!(report.bytes_written, RECEIPT, "{report}");
    assert!(report.failures.is_empty(), "not failures: {report}");
    assert_eq!(report.waiting_for_space, ids(&["mid", "new"]), "{report}");
    assert_eq!(report.bytes_waiting, 2 * RECEIPT);
    match &report.stopped {
        Some(Error::QuotaExceeded { needed, remaining }) => {
            assert_eq!(*needed, 3 * RECEIPT - FREE, "the extra, not the total");
            assert_eq!(*remaining, FREE - RECEIPT);
        }
        other => panic!("a full drive stops the run, not {other:?}: {report}"),
    }
    let text = report.to_string();
    assert!(text.contains("uploaded what fits, the oldest first: 1 receipt(s), 293.0 KiB"));
    assert!(text.contains("waiting for space: 2 receipt(s), 585.9 KiB"));
    assert!(
        text.contains("need 537.2 KiB more, 48.8 KiB are left"),
        "{text}"
    );
}

#[tokio::test]
async fn memory_drive_takes_the_oldest_receipt_then_the_rest_once_space_is_freed() {
    let bank = three_receipts();
    let drive = InMemorySink::new().with_quota(FREE);
    let report = bank.syncer(Arc::new(drive.clone()), 8).run().await.unwrap();
    assert_stopped_after_the_oldest(&report);
    assert_eq!(bank.exported(), ["old"]);
    assert_eq!(bank.which(&memory_files(&drive)), ["old"]);
    let state = bank.state();
    assert!(state.tombstones.is_empty() && state.vanished.is_empty());
    let last = state.last_run.expect("the run is recorded");
    assert_eq!((last.uploaded, last.failed), (1, 0));

    // Still full: nothing more, the same numbers.
    let report = bank.syncer(Arc::new(drive.clone()), 8).run().await.unwrap();
    assert_eq!(report.count("upload"), 0, "{report}");
    assert!(matches!(
        report.stopped,
        Some(Error::QuotaExceeded {
            needed: 550_000,
            remaining: 50_000
        })
    ));

    drive.set_quota(3 * RECEIPT);
    let report = bank.syncer(Arc::new(drive.clone()), 8).run().await.unwrap();
    assert!(report.is_complete(), "{report}");
    assert_eq!(report.count("upload"), 2);
    assert!(report.waiting_for_space.is_empty());
    let again = bank.syncer(Arc::new(drive.clone()), 8).run().await.unwrap();
    assert!(again.is_complete() && again.count("upload") == 0, "{again}");
    assert_eq!(bank.which(&memory_files(&drive)), ["mid", "new", "old"]);
}

#[tokio::test]
async fn onedrive_takes_the_oldest_receipt_then_the_rest_once_space_is_freed() {
    let graph = FakeGraph::start_with(FakeGraphConfig::default().with_quota_total(FREE))
        .await
        .unwrap();
    let bank = three_receipts();
    let drive = Arc::new(onedrive_support::sink(&graph));
    let report = bank.syncer(drive.clone(), 8).run().await.unwrap();
    assert_stopped_after_the_oldest(&report);
    assert_eq!(bank.which(&graph_files(&graph)), ["old"]);
    assert_eq!(graph.open_upload_sessions(), 0);

    graph.set_quota_total(10 * FREE);
    let report = bank.syncer(drive.clone(), 8).run().await.unwrap();
    assert!(report.is_complete(), "{report}");
    assert_eq!(report.count("upload"), 2);
    let again = bank.syncer(drive, 8).run().await.unwrap();
    assert!(again.is_complete() && again.count("upload") == 0, "{again}");
    assert_eq!(bank.which(&graph_files(&graph)), ["mid", "new", "old"]);
}

/// The free space was read, then the drive filled up (another device, or a figure
/// that lags): Graph answers 507 to uploads half-way through the run. The run stops
/// cleanly, the refused receipts wait (not failed), and the next run archives them.
#[tokio::test]
async fn a_507_mid_run_from_a_stale_free_space_stops_cleanly_and_loses_nothing() {
    for concurrency in [1, 8] {
        let graph = Arc::new(FakeGraph::start().await.unwrap());
        let bank = three_receipts();
        let drive = Arc::new(onedrive_support::sink(&graph));
        let shrinks = graph.clone();
        let observer = move |event: &SyncEvent| {
            if matches!(event, SyncEvent::Planned { .. }) {
                shrinks.set_quota_total(FREE);
            }
        };
        let syncer = bank
            .syncer(drive.clone(), concurrency)
            .with_observer(Arc::new(observer));
        let report = syncer.run().await.unwrap();
        let stopped = report.stopped.as_ref().map(Error::kind);
        assert_eq!(stopped, Some(ErrorKind::QuotaExceeded), "{report}");
        assert!(report.failures.is_empty(), "waiting, not failed: {report}");
        assert_eq!(report.count("upload"), 1, "{report}");
        assert_eq!(report.waiting_for_space.len(), 2, "{report}");
        let state = bank.state();
        assert_eq!(state.exported.len(), 1);
        assert!(state.tombstones.is_empty() && state.vanished.is_empty());
        assert_eq!(bank.which(&graph_files(&graph)), bank.exported());
        if concurrency == 1 {
            // One at a time, oldest first: the oldest got the room.
            assert_eq!(bank.exported(), ["old"]);
            assert_eq!(report.waiting_for_space, ids(&["mid", "new"]));
        }
        if let Some(Error::QuotaExceeded { needed, remaining }) = &report.stopped {
            assert_eq!(needed + remaining, 2 * RECEIPT, "{report}");
        }
        assert_eq!(graph.open_upload_sessions(), 0);

        graph.set_quota_total(10 * FREE);
        let report = bank.syncer(drive.clone(), concurrency).run().await.unwrap();
        assert!(report.is_complete(), "{report}");
        assert_eq!(report.count("upload"), 2, "{report}");
        assert_eq!(bank.which(&graph_files(&graph)), ["mid", "new", "old"]);
    }
}

/// A sink that cannot tell its free space keeps today's behaviour: no cut up front,
/// the first refused write stops the run; what was refused waits, nothing fails.
#[tokio::test]
async fn a_drive_that_cannot_tell_its_free_space_stops_at_its_first_refusal() {
    let bank = three_receipts();
    let drive = InMemorySink::new().without_quota().with_quota(FREE);
    let report = bank.syncer(Arc::new(drive.clone()), 1).run().await.unwrap();
    assert_eq!(
        report.stopped.as_ref().map(Error::kind),
        Some(ErrorKind::QuotaExceeded),
        "{report}"
    );
    assert!(report.failures.is_empty(), "{report}");
    assert_eq!(bank.exported(), ["old"]);
    assert_eq!(report.waiting_for_space, ids(&["mid", "new"]));
    drive.set_quota(3 * RECEIPT);
    let report = bank.syncer(Arc::new(drive.clone()), 1).run().await.unwrap();
    assert!(report.is_complete(), "{report}");
    assert_eq!(bank.which(&memory_files(&drive)), ["mid", "new", "old"]);
}

/// Uploads in flight at once never add up to more than the free space: with eight at
/// a time and room for exactly five, no write is ever refused.
#[tokio::test]
async fn parallel_uploads_never_overshoot_the_free_space() {
    let mut bank = Bank::new();
    for day in 1..=12 {
        bank.add(&format!("r{day:02}"), day, 1_000);
    }
    let drive = InMemorySink::new().with_quota(5_000);
    let started = Arc::new(AtomicUsize::new(0));
    let counter = started.clone();
    let observer = move |event: &SyncEvent| {
        if matches!(event, SyncEvent::Started { kind: "upload", .. }) {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    };
    let syncer = bank
        .syncer(Arc::new(drive.clone()), 8)
        .with_observer(Arc::new(observer));
    let report = syncer.run().await.unwrap();
    assert_eq!(report.count("upload"), 5, "{report}");
    assert_eq!(started.load(Ordering::SeqCst), 5, "no upload was refused");
    assert_eq!(bank.exported(), ["r01", "r02", "r03", "r04", "r05"]);
    assert!(matches!(
        report.stopped,
        Some(Error::QuotaExceeded {
            needed: 7_000,
            remaining: 0
        })
    ));
}

proptest! {
    /// Over random sizes, dates and free space: what is uploaded is the longest prefix,
    /// by date, of the pending receipts that fits; the rest waits in that order, with
    /// `needed` the exact extra; nothing fails; the next run with room converges.
    #[test]
    fn what_is_uploaded_is_the_oldest_prefix_that_fits(
        receipts in proptest::collection::vec((1u32..=28, 1u64..2_000), 1..8),
        free_share in 0u64..=110,
        concurrency in 1usize..5,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let mut bank = Bank::new();
            for (i, (day, size)) in receipts.iter().enumerate() {
                bank.add(&format!("r{i}"), *day, *size);
            }
            let total: u64 = receipts.iter().map(|(_, size)| size).sum();
            let free = total * free_share / 100;
            let drive = InMemorySink::new().with_quota(free);
            let report = bank.syncer(Arc::new(drive.clone()), concurrency).run().await.unwrap();

            // The model: by date, ties by id, the longest prefix that fits.
            let mut order: Vec<(u32, String, u64)> = receipts
                .iter()
                .enumerate()
                .map(|(i, (day, size))| (*day, format!("r{i}"), *size))
                .collect();
            order.sort();
            let mut used = 0;
            let fitting = order
                .iter()
                .take_while(|(_, _, size)| {
                    used += size;
                    used <= free
                })
                .count();
            let mut expected: Vec<String> =
                order[..fitting].iter().map(|(_, id, _)| id.clone()).collect();
            expected.sort();
            prop_assert_eq!(bank.exported(), expected.clone());
            prop_assert_eq!(bank.which(&memory_files(&drive)), expected);
            prop_assert!(report.failures.is_empty(), "{}", report);
            let waiting: Vec<ReceiptId> =
                order[fitting..].iter().map(|(_, id, _)| ReceiptId::new(id)).collect();
            prop_assert_eq!(&report.waiting_for_space, &waiting);
            let uploaded: u64 = order[..fitting].iter().map(|(_, _, size)| size).sum();
            if waiting.is_empty() {
                prop_assert!(report.is_complete(), "{}", report);
            } else {
                let rest = total - uploaded;
                let left = free - uploaded;
                let stopped = matches!(
                    report.stopped,
                    Some(Error::QuotaExceeded { needed, remaining })
                        if needed == rest - left && remaining == left
                );
                prop_assert!(stopped, "{}", report);
            }

            // Room for everything: the next run archives the rest, each once.
            drive.set_quota(total);
            let report = bank.syncer(Arc::new(drive.clone()), concurrency).run().await.unwrap();
            prop_assert!(report.is_complete(), "{}", report);
            prop_assert_eq!(report.count("upload"), waiting.len());
            let mut all: Vec<String> = (0..receipts.len()).map(|i| format!("r{i}")).collect();
            all.sort();
            prop_assert_eq!(bank.which(&memory_files(&drive)), all);
            Ok(())
        })?;
    }
}
