//! Planning cost: 10k, 100k and 1M receipts against an archive of the same size.
//!
//! Two cases: the daily steady state (everything archived, nothing to do) and the
//! initial export (nothing archived, an empty archive). Besides criterion's timings,
//! it prints the peak heap the planner itself allocates, per receipt, measured by a
//! counting allocator.
//!
//! `cargo bench --bench plan` (add `-- --quick` for a fast pass). `PLAN_BENCH_SIZES=100000`
//! (comma-separated) runs only those sizes, e.g. under `perf record` with `--profile-time 10`.

use chrono::{TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use receipt_sync::layout::Layout;
use receipt_sync::model::{
    AccountId, ArchivePath, ArchiveSnapshot, BankAccount, CurrencyCode, EntryKind, Money, Receipt,
    ReceiptId, SinkEntry, SinkItemId, Transaction, TransactionId, TransactionStatus,
};
use receipt_sync::plan::{PlanOptions, plan};
use receipt_sync::state::{AccountRecord, ExportRecord, StateSettings, SyncState};
use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: AllocLayout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: AllocLayout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ACCOUNTS: usize = 3;

fn receipt(i: usize) -> Receipt {
    let account = i % ACCOUNTS;
    let day = Utc.with_ymd_and_hms(2020, 1, 1, 12, 0, 0).unwrap()
        + chrono::Duration::hours(i as i64 % 50_000);
    Receipt {
        id: ReceiptId::new(format!("{i:08x}-0b7c-4d55-9f16-23c5b1b0d5aa")),
        file_name: format!("invoice-{i}.pdf"),
        content_type: Some("application/pdf".into()),
        size: 20_000 + (i as u64 % 500_000),
        created_at: day,
        transaction: Transaction {
            id: TransactionId::new(format!("tx-{i}")),
            account_id: AccountId::new(format!("acc-{account}")),
            emitted_at: day,
            settled_at: Some(day),
            amount: Money::new(-(i as i64 % 100_000), CurrencyCode::EUR),
            label: format!("Supplier {} SARL", i % 977),
            status: TransactionStatus::Completed,
        },
    }
}

/// A state whose receipts are all archived at their layout paths.
fn archived_state(n: usize) -> SyncState {
    let layout = Layout::default();
    let mut state = SyncState::new(StateSettings {
        start_date: None,
        layout: Default::default(),
    });
    for a in 0..ACCOUNTS {
        let account = BankAccount {
            id: AccountId::new(format!("acc-{a}")),
            name: format!("Account {a}"),
            iban: Some(format!("FR76 0000 000{a}")),
            currency: CurrencyCode::EUR,
        };
        state.accounts.insert(
            account.id.clone(),
            AccountRecord {
                account,
                folder_name: None,
                folder_id: None,
                full_read_at: None,
            },
        );
    }
    let folders = layout.account_folders(state.accounts.values().map(|r| &r.account));
    let mut folder_ids: HashMap<ArchivePath, SinkItemId> = HashMap::new();
    let mut entries = Vec::with_capacity(n + 200);
    for i in 0..n {
        let r = receipt(i);
        let path = layout.receipt_path(&folders[&r.transaction.account_id], &r);
        let ids: Vec<SinkItemId> = path
            .ancestors()
            .map(|folder| {
                let next = folder_ids.len();
                folder_ids
                    .entry(folder)
                    .or_insert_with(|| SinkItemId::new(format!("d{next}")))
                    .clone()
            })
            .collect();
        let file_id = SinkItemId::new(format!("f{i}"));
        entries.push(SinkEntry {
            id: file_id.clone(),
            parent: ids.last().cloned(),
            name: path.file_name().to_owned(),
            kind: EntryKind::File { size: r.size },
        });
        state.exported.insert(
            r.id.clone(),
            ExportRecord {
                path: path.clone(),
                file_id,
                folder_ids: ids,
                size: r.size,
                at: r.created_at,
            },
        );
        state.receipts.insert(r.id.clone(), r);
    }
    for (path, id) in &folder_ids {
        entries.push(SinkEntry {
            id: id.clone(),
            parent: path.parent().and_then(|p| folder_ids.get(&p).cloned()),
            name: path.file_name().to_owned(),
            kind: EntryKind::Folder,
        });
    }
    state.snapshot = ArchiveSnapshot::from_entries(entries);
    state
}

fn new_export_state(n: usize) -> SyncState {
    let mut state = archived_state(0);
    for i in 0..n {
        let r = receipt(i);
        state.receipts.insert(r.id.clone(), r);
    }
    state
}

fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed) - base)
}

/// The sizes to measure: `PLAN_BENCH_SIZES`, else 10k, 100k and 1M.
fn sizes() -> Vec<usize> {
    std::env::var("PLAN_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000])
}

fn bench_plan(c: &mut Criterion) {
    let layout = Layout::default();
    let options = PlanOptions::default();
    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    for n in sizes() {
        let state = archived_state(n);
        let (p, peak) = peak_of(|| plan(&state, &layout, &options));
        assert!(p.is_noop());
        eprintln!(
            "steady state n={n}: planner peak heap {peak} B = {:.0} B/receipt",
            peak as f64 / n as f64
        );
        group.bench_with_input(BenchmarkId::new("steady_state", n), &state, |b, s| {
            b.iter(|| black_box(plan(s, &layout, &options)))
        });
        drop(state);

        let state = new_export_state(n);
        let (p, peak) = peak_of(|| plan(&state, &layout, &options));
        assert_eq!(p.counts()["upload"], n);
        eprintln!(
            "initial export n={n}: planner peak heap {peak} B = {:.0} B/receipt",
            peak as f64 / n as f64
        );
        group.bench_with_input(BenchmarkId::new("initial_export", n), &state, |b, s| {
            b.iter(|| black_box(plan(s, &layout, &options)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_plan);
criterion_main!(benches);
