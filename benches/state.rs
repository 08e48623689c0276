//! The cost of the state at scale: `InMemorySource` → `InMemorySink` →
//! `JsonFileStateStore`, concurrency 16, tiny receipts over 3 accounts.
//!
//! For 10,000 and 100,000 receipts: the first export (wall time, receipts/s, durable
//! journal writes), then a quiet day after it (a second pass with nothing new: wall
//! time, and the bytes the process wrote, from `/proc/self/io`: `wchar` counts what went
//! through `write(2)`, `write_bytes` what reached the block layer). Each size runs
//! `STATE_BENCH_RUNS` times (default 3) in a fresh folder under `STATE_BENCH_DIR`
//! (default: the system's temporary folder; give it a folder on a real disk, since a
//! tmpfs makes `fdatasync` free); medians are printed, one JSON line per figure.
//!
//! `cargo bench --features testkit --bench state` (Linux). An argument `10000` or
//! `100000` runs that size only. Outside `cargo bench` it only says how to run it.
//! To count system calls, run the built binary under `strace -f -c -e
//! trace=fdatasync,fsync,openat,write`.

use chrono::NaiveDate;
use receipt_sync::model::AccountId;
use receipt_sync::sink::InMemorySink;
use receipt_sync::source::InMemorySource;
use receipt_sync::state::JsonFileStateStore;
use receipt_sync::sync::{SyncConfig, Syncer};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// What the process has written so far: (`wchar`, `write_bytes`) of `/proc/self/io`.
fn written() -> (u64, u64) {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("wchar:"), field("write_bytes:"))
}

fn bank(count: usize) -> InMemorySource {
    let bank = InMemorySource::new();
    for a in 0..3 {
        bank.add_account_named(&format!("acc-{a}"), &format!("Account {a}"));
    }
    let accounts: Vec<AccountId> = (0..3).map(|a| AccountId::new(format!("acc-{a}"))).collect();
    for i in 0..count {
        let day =
            NaiveDate::from_ymd_opt(2025, 1 + (i % 12) as u32, 1 + (i % 28) as u32).expect("a day");
        let receipt = InMemorySource::receipt(
            &format!("r{i}"),
            &accounts[i % 3],
            day,
            &format!("Shop {i}"),
            -1234,
        );
        bank.add_receipt(receipt, format!("r{i}").into_bytes());
    }
    bank
}

struct Figures {
    export_secs: f64,
    flushes: u64,
    quiet_secs: f64,
    quiet_wchar: u64,
    quiet_write_bytes: u64,
    state_bytes: u64,
}

async fn once(count: usize, dir: &Path) -> Figures {
    let source = Arc::new(bank(count));
    let sink = Arc::new(InMemorySink::new().without_quota());
    let store = JsonFileStateStore::new(dir.join("state"));
    let syncer = Syncer::new(
        source,
        sink,
        Arc::new(store.clone()),
        SyncConfig::default().with_concurrency(16),
    );
    let started = Instant::now();
    let report = syncer.run().await.expect("the export runs");
    let export_secs = started.elapsed().as_secs_f64();
    assert_eq!(report.count("upload"), count, "{report}");
    let flushes = store.journal_flushes();

    let (wchar, write_bytes) = written();
    let started = Instant::now();
    let report = syncer.run().await.expect("the quiet day runs");
    let quiet_secs = started.elapsed().as_secs_f64();
    let (wchar_after, write_bytes_after) = written();
    assert_eq!(report.count("upload"), 0, "{report}");
    let state_bytes = std::fs::metadata(store.state_path()).map_or(0, |m| m.len());
    Figures {
        export_secs,
        flushes,
        quiet_secs,
        quiet_wchar: wchar_after - wchar,
        quiet_write_bytes: write_bytes_after - write_bytes,
        state_bytes,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("state: run with `cargo bench --features testkit --bench state`");
        return;
    }
    let sizes: Vec<usize> = match args.iter().find_map(|a| a.parse::<usize>().ok()) {
        Some(size) => vec![size],
        None => vec![10_000, 100_000],
    };
    let runs: usize = std::env::var("STATE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let base = std::env::var_os("STATE_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    for count in sizes {
        let mut all = Vec::new();
        for _ in 0..runs {
            let dir = tempfile::tempdir_in(&base).expect("a folder");
            all.push(rt.block_on(once(count, dir.path())));
        }
        let export = median(all.iter().map(|f| f.export_secs).collect());
        let quiet = median(all.iter().map(|f| f.quiet_secs).collect());
        let pick = |f: fn(&Figures) -> u64| median(all.iter().map(|x| f(x) as f64).collect());
        println!(
            "{}",
            serde_json::json!({
                "receipts": count,
                "runs": runs,
                "first_export_secs": export,
                "first_export_receipts_per_sec": count as f64 / export,
                "first_export_journal_flushes": pick(|f| f.flushes),
                "quiet_day_secs": quiet,
                "quiet_day_wchar_bytes": pick(|f| f.quiet_wchar),
                "quiet_day_write_bytes": pick(|f| f.quiet_write_bytes),
                "state_file_bytes": pick(|f| f.state_bytes),
            })
        );
    }
}
