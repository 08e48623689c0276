//! Peak memory of archiving one receipt, by its size: the real `QontoSource` →
//! `OneDriveSink` through `Syncer`, over the fake Qonto and the fake Graph.
//!
//! The fakes keep every byte in memory, so they live in this process and the client runs
//! in a child (`examples/bench_upload.rs`, built here first); the figure is the child's
//! `VmHWM`, its peak resident set. Upload memory should not grow with the file: a session
//! upload holds one fragment (onedrive-graph.md §3), a download streams.
//!
//! `cargo bench --features testkit --bench memory` (Linux). Outside `cargo bench` it only
//! says how to run it.

use receipt_sync::testkit::fake_graph::FakeGraph;
use receipt_sync::testkit::fake_qonto::{FakeQonto, NewTransaction};
use std::path::PathBuf;
use std::process::Command;

const MIB: usize = 1024 * 1024;

/// Builds the child and returns its path.
fn build_child() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--example",
            "bench_upload",
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building examples/bench_upload failed");
    // This binary is target/release/deps/memory-…; the example is target/release/examples/.
    let exe = std::env::current_exe().expect("the bench's own path");
    let release = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/release");
    release.join("examples").join("bench_upload")
}

/// Archives one receipt of `size` bytes in a child process; returns its output line.
async fn one(child: &PathBuf, size: usize) -> serde_json::Value {
    let qonto = FakeQonto::start().await.expect("fake Qonto starts");
    let graph = FakeGraph::start().await.expect("fake Graph starts");
    let account = qonto.add_account("Main");
    let tx = qonto.add_transaction(&account.id, NewTransaction::debit(4200, "Big scan"));
    let bytes: Vec<u8> = (0..size).map(|i| (i * 31 / 7) as u8).collect();
    qonto.add_attachment(&tx, "scan.pdf", "application/pdf", bytes);
    let out = tokio::process::Command::new(child)
        .args([
            "sync",
            &qonto.url(),
            "fake-org-1234",
            "fake-secret-key",
            &graph.base_url(),
        ])
        .output()
        .await
        .expect("the child runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored: Vec<usize> = graph.files().values().map(|b| b.len()).collect();
    assert_eq!(stored, [size], "the receipt arrived whole");
    serde_json::from_slice(&out.stdout).expect("one JSON line")
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("memory: run with `cargo bench --features testkit --bench memory`");
        return;
    }
    let child = build_child();
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let mut peaks = Vec::new();
    for size in [MIB, 20 * MIB, 200 * MIB] {
        let line = rt.block_on(one(&child, size));
        let peak = line["peak_rss_kib"].as_u64().unwrap_or(0);
        println!(
            "memory: one receipt of {} MiB: client peak RSS {:.1} MiB, wall {:.0} ms",
            size / MIB,
            peak as f64 / 1024.0,
            line["wall_ms"].as_f64().unwrap_or(0.0)
        );
        peaks.push(peak);
    }
    if let (Some(small), Some(big)) = (peaks.first(), peaks.last()) {
        println!(
            "memory: 200 MiB vs 1 MiB: +{:.1} MiB peak RSS",
            (*big as f64 - *small as f64) / 1024.0
        );
    }
}
