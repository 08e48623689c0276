//! Where a quiet day goes, and its peak memory: `InMemorySource` → `InMemorySink` →
//! `JsonFileStateStore`, concurrency 16, tiny receipts over 3 accounts (as `benches/state.rs`).
//!
//! Each size runs in a child process of its own, so that its peak resident set
//! (`VmHWM` of `/proc/self/status`) is its own. The child makes the first export, then
//! lets the allocator give back what it freed and resets the peak (`5` to
//! `/proc/self/clear_refs`): what stays resident then is the bank and the drive in memory
//! (the baseline). It then times, each with a fresh store that reads the folder as a new
//! process would: loading the state, planning from it, and two whole quiet days (syncs
//! with nothing new), each with its peak resident set and the bytes written
//! (`write_bytes` of `/proc/self/io`). The first quiet day after an export sees the
//! export's own uploads reported back by the archive's change feed (its echoes, which the
//! export's summary expects); the second (`steady_quiet_day`) is what every later day
//! costs. Then a day with one new receipt,
//! and the quiet day after it. One JSON line per size. Each day says whether it started
//! from the settled summary (`from_summary`), reading no whole state.
//!
//! `cargo bench --features testkit --bench state_quiet` (Linux). Arguments: the sizes
//! (default `10000 100000`; `1000000` works, it takes a few minutes). The folder is made
//! under `STATE_BENCH_DIR` (default: the system's temporary folder; give it a folder on a
//! real disk, a tmpfs makes `fdatasync` free). Outside `cargo bench` it only says how to
//! run it.

use chrono::NaiveDate;
use receipt_sync::layout::{Layout, NameLimits};
use receipt_sync::model::AccountId;
use receipt_sync::plan::{PlanOptions, plan};
use receipt_sync::sink::InMemorySink;
use receipt_sync::source::InMemorySource;
use receipt_sync::state::{JsonFileStateStore, StateStore};
use receipt_sync::sync::{SyncConfig, Syncer};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

const CHILD: &str = "STATE_QUIET_CHILD";

fn proc_field(file: &str, name: &str) -> u64 {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Resident and peak resident set, in bytes.
fn rss() -> (u64, u64) {
    (
        proc_field("/proc/self/status", "VmRSS:") * 1024,
        proc_field("/proc/self/status", "VmHWM:") * 1024,
    )
}

/// CPU time of the whole process so far (user + system, every thread), in seconds: on a
/// machine shared with other work, wall times stretch, CPU times much less.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are the 14th and 15th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Clock ticks are 1/100 s on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

fn write_bytes() -> u64 {
    proc_field("/proc/self/io", "write_bytes:")
}

unsafe extern "C" {
    /// glibc: returns freed heap to the system, so that the peak measured next is the
    /// quiet day's and not what the export left in the allocator's free lists.
    fn malloc_trim(pad: usize) -> i32;
}

/// Gives freed memory back and makes the peak resident set start again from now.
fn reset_peak() {
    // SAFETY: malloc_trim takes a plain integer and only walks the allocator's own lists.
    unsafe {
        malloc_trim(0);
    }
    std::fs::write("/proc/self/clear_refs", "5").expect("the peak resets (Linux)");
}

/// With `STATE_QUIET_PERF_CTL` naming the control fifo of `perf record --control
/// fifo:<path> -D -1`, profiles one phase only: `STATE_QUIET_PERF_PHASE`, `quiet` (the
/// steady quiet day, the default), `first` (the quiet day after the export), `one_new`
/// (the day with one new receipt), `after_new`, `load` or `export`.
fn perf_control(phase: &str, command: &str) {
    let chosen = std::env::var("STATE_QUIET_PERF_PHASE").unwrap_or_else(|_| "quiet".into());
    if chosen != phase {
        return;
    }
    if let Some(path) = std::env::var_os("STATE_QUIET_PERF_CTL") {
        let _ = std::fs::write(path, format!("{command}\n"));
    }
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

fn syncer(
    source: &Arc<InMemorySource>,
    sink: &Arc<InMemorySink>,
    store: &JsonFileStateStore,
) -> Syncer {
    Syncer::new(
        source.clone(),
        sink.clone(),
        Arc::new(store.clone()),
        SyncConfig::default().with_concurrency(16),
    )
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

async fn child(count: usize, dir: &Path) -> serde_json::Value {
    let source = Arc::new(bank(count));
    let sink = Arc::new(InMemorySink::new().without_quota());
    let state_dir = dir.join("state");
    perf_control("export", "enable");
    let (started, cpu) = (Instant::now(), cpu_secs());
    let store = JsonFileStateStore::new(&state_dir);
    let report = syncer(&source, &sink, &store).run().await.expect("export");
    perf_control("export", "disable");
    let export_secs = started.elapsed().as_secs_f64();
    let export_cpu = cpu_secs() - cpu;
    assert_eq!(report.count("upload"), count, "{report}");
    drop(store);

    // Load alone, then plan alone, each as a new process would start.
    reset_peak();
    let store = JsonFileStateStore::new(&state_dir);
    perf_control("load", "enable");
    let (started, cpu) = (Instant::now(), cpu_secs());
    let state = store.load().await.expect("load").expect("a state");
    let load_secs = started.elapsed().as_secs_f64();
    let load_cpu = cpu_secs() - cpu;
    perf_control("load", "disable");
    let (_, load_peak) = rss();
    let caps = receipt_sync::sink::ArchiveSink::capabilities(sink.as_ref());
    let settings = state.settings.clone().expect("settings");
    let layout = Layout::new(
        settings.layout,
        NameLimits {
            max_name_len: caps.max_name_len,
            max_path_len: caps.max_path_len,
            root_prefix_len: caps.root_prefix_len,
        },
    );
    let (started, cpu) = (Instant::now(), cpu_secs());
    let planned = plan(
        &state,
        &layout,
        &PlanOptions::default().with_start_date(settings.start_date),
    );
    let plan_secs = started.elapsed().as_secs_f64();
    let plan_cpu = cpu_secs() - cpu;
    drop(planned);
    drop(state);
    drop(store);

    // The first quiet day after the export also takes in the export's own uploads, which
    // the archive's change feed reports back once; the second is every later day's cost.
    let first = day("first", &source, &sink, &state_dir, 0).await;
    let steady = day("quiet", &source, &sink, &state_dir, 0).await;
    // A day with one new receipt loads the whole state (the summary says something
    // changed); the day after it is quiet again.
    let account = AccountId::new("acc-0");
    let day_of = NaiveDate::from_ymd_opt(2025, 6, 15).expect("a day");
    let receipt = InMemorySource::receipt("new-1", &account, day_of, "New shop", -999);
    source.add_receipt(receipt, b"new-1".to_vec());
    let one_new = day("one_new", &source, &sink, &state_dir, 1).await;
    let after_new = day("after_new", &source, &sink, &state_dir, 0).await;
    serde_json::json!({
        "receipts": count,
        "first_export_secs": export_secs,
        "first_export_receipts_per_sec": count as f64 / export_secs,
        "first_export_cpu_secs": export_cpu,
        "quiet_load_secs": load_secs,
        "quiet_load_cpu_secs": load_cpu,
        "quiet_plan_secs": plan_secs,
        "quiet_plan_cpu_secs": plan_cpu,
        "load_peak_rss_bytes": load_peak,
        "state_dir_bytes_after": dir_bytes(&state_dir),
        "first_quiet_day": first.json(count),
        "steady_quiet_day": steady.json(count),
        "one_new_receipt_day": one_new.json(count),
        "quiet_day_after_it": after_new.json(count),
    })
}

/// What one quiet day cost.
struct QuietDay {
    secs: f64,
    cpu_secs: f64,
    write_bytes: u64,
    state_dir_bytes_before: u64,
    baseline_rss: u64,
    peak_rss: u64,
    /// Whether the day started from the settled summary (reading no whole state).
    from_summary: bool,
}

impl QuietDay {
    fn json(&self, count: usize) -> serde_json::Value {
        serde_json::json!({
            "secs": self.secs,
            "cpu_secs": self.cpu_secs,
            "write_bytes": self.write_bytes,
            "state_dir_bytes_before": self.state_dir_bytes_before,
            "baseline_rss_bytes": self.baseline_rss,
            "peak_rss_bytes": self.peak_rss,
            "bytes_per_receipt": self.peak_rss.saturating_sub(self.baseline_rss) as f64 / count as f64,
            "from_summary": self.from_summary,
        })
    }
}

/// A sync that uploads `uploads` receipts (none: a quiet day), from a fresh store as a
/// new process would start it.
async fn day(
    phase: &str,
    source: &Arc<InMemorySource>,
    sink: &Arc<InMemorySink>,
    state_dir: &Path,
    uploads: usize,
) -> QuietDay {
    reset_peak();
    let (baseline_rss, _) = rss();
    let before = write_bytes();
    let state_dir_bytes_before = dir_bytes(state_dir);
    let store = JsonFileStateStore::new(state_dir);
    let from_summary = store.load_settled().await.expect("summary").is_some();
    reset_peak();
    perf_control(phase, "enable");
    let (started, cpu) = (Instant::now(), cpu_secs());
    let report = syncer(source, sink, &store).run().await.expect("quiet day");
    let secs = started.elapsed().as_secs_f64();
    let cpu_secs = cpu_secs() - cpu;
    perf_control(phase, "disable");
    let (_, peak_rss) = rss();
    assert_eq!(report.count("upload"), uploads, "{report}");
    QuietDay {
        secs,
        cpu_secs,
        write_bytes: write_bytes() - before,
        state_dir_bytes_before,
        baseline_rss,
        peak_rss,
        from_summary,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Ok(spec) = std::env::var(CHILD) {
        let (count, dir) = spec.split_once(':').expect("count:dir");
        let count: usize = count.parse().expect("a count");
        let rt = tokio::runtime::Runtime::new().expect("a runtime");
        println!("{}", rt.block_on(child(count, Path::new(dir))));
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        println!("state_quiet: run with `cargo bench --features testkit --bench state_quiet`");
        return;
    }
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000];
    }
    let base = std::env::var_os("STATE_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let exe = std::env::current_exe().expect("own path");
    for count in sizes {
        let dir = tempfile::tempdir_in(&base).expect("a folder");
        let status = Command::new(&exe)
            .env(CHILD, format!("{count}:{}", dir.path().display()))
            .status()
            .expect("the child runs");
        assert!(status.success(), "size {count} failed");
    }
}
