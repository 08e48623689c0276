//! A full disk while the state is saved leaves the previous state intact. The disk
//! fills for real: a sync runs in a child process (this test binary, run again) whose
//! file-size limit (`ulimit -f`, with `SIGXFSZ` ignored, so writes fail with `EFBIG` as
//! they would with `ENOSPC`) lets the first state fit but not what a bigger bank makes
//! of it (400 receipts). Then:
//! - the sync stops with `DiskFull`: when the journal cannot take the new receipts, the
//!   run stops there and still saves what it had (a smaller state, which fits), so `run`
//!   returns its report with `stopped` set to `DiskFull` (the command exits with 8, as
//!   for any full disk); when the final save cannot fit, `run` returns `DiskFull`;
//! - `state.bin` is the earlier state, byte for byte, or a complete newer one;
//! - the store loads (a journal line cut by the full disk is never left mid-file);
//! - an unhindered sync archives every receipt exactly once.
#![cfg(all(unix, feature = "testkit"))]

use chrono::NaiveDate;
use receipt_sync::model::AccountId;
use receipt_sync::sink::LocalDirSink;
use receipt_sync::source::InMemorySource;
use receipt_sync::state::{JsonFileStateStore, StateStore};
use receipt_sync::sync::{SyncConfig, SyncReport, Syncer};
use std::path::Path;
use std::sync::Arc;

/// Set in the child: the folder to sync in.
const CHILD: &str = "STATE_DISK_FULL_CHILD";
/// The receipts of the first state, and the child's file-size limit in 512-byte blocks,
/// under which that first state fits. In the first case, appending 380 new receipts to
/// the journal fails part-way. In the second, the journal takes the 100 new receipts
/// (about 200 kB) but the rewrite of the state at the end of the run (about 300 kB,
/// where the first state is about 230 kB) does not.
const CASES: [(usize, u32); 2] = [(20, 96), (300, 520)];

/// The same bank in every process: `count` receipts with long labels.
fn bank(count: usize) -> InMemorySource {
    let bank = InMemorySource::new();
    let account = AccountId::new("acc");
    bank.add_account_named("acc", "Main account");
    for i in 0..count {
        let day = NaiveDate::from_ymd_opt(2026, 1 + (i % 12) as u32, 1 + (i % 28) as u32).unwrap();
        let label = format!("Supplier number {i} with a rather long name for the state");
        let receipt = InMemorySource::receipt(&format!("r{i}"), &account, day, &label, -1234);
        bank.add_receipt(receipt, format!("receipt {i};").into_bytes());
    }
    bank
}

async fn sync(dir: &Path, receipts: usize) -> receipt_sync::Result<SyncReport> {
    Syncer::new(
        Arc::new(bank(receipts)),
        Arc::new(LocalDirSink::new(dir.join("archive")).unwrap()),
        // Rewrites the state at the end of every run (no journal is too small for it),
        // so that the rewrite meets the full disk as well as the journal does.
        Arc::new(JsonFileStateStore::new(dir.join("state")).with_compaction_bytes(0)),
        SyncConfig::default(),
    )
    .run()
    .await
}

/// The child's part (a no-op unless this binary was started as the child).
#[tokio::test]
async fn child_syncs_on_a_full_disk() {
    let Some(dir) = std::env::var_os(CHILD) else {
        return;
    };
    let outcome = sync(Path::new(&dir), 400).await;
    // What the sync says about it; the parent checks the files.
    match outcome {
        Ok(report) => println!(
            "CHILD-REPORT stopped by {:?}: {report}",
            report.stopped.as_ref().map(|e| e.kind())
        ),
        Err(error) => println!("CHILD-ERROR {:?} {error}", error.kind()),
    }
}

#[tokio::test]
async fn a_full_disk_while_saving_leaves_the_previous_state() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    for (first, limit) in CASES {
        full_disk_with(first, limit).await;
    }
}

async fn full_disk_with(first: usize, limit: u32) {
    let dir = tempfile::tempdir().unwrap();
    let first = sync(dir.path(), first).await.unwrap();
    assert!(first.is_complete(), "{first}");
    let store = JsonFileStateStore::new(dir.path().join("state"));
    let before = std::fs::read(store.state_path()).unwrap();
    assert!(before.len() < limit as usize * 512, "the first state fits");

    // The child: this binary, this one test, under the limit.
    let script = format!("trap '' XFSZ; ulimit -f {limit}; exec \"$0\" \"$@\"");
    let out = tokio::process::Command::new("sh")
        .args(["-c", &script])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_syncs_on_a_full_disk",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, dir.path())
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), out)
        .await
        .expect("the child ends")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the child did not panic: {stdout}");
    let expected = if limit == CASES[0].1 {
        // The run stopped at the journal; its report was saved, and says why.
        "CHILD-REPORT stopped by Some(DiskFull)"
    } else {
        "CHILD-ERROR DiskFull"
    };
    assert!(
        stdout.contains(expected),
        "under {limit} blocks the full disk stops the sync ({expected}): {stdout}"
    );

    // The previous state, whole, or a complete newer one (its checksum holds): the store
    // loads either way.
    let loaded = store
        .load()
        .await
        .expect("the state loads")
        .expect("a state");
    assert!(loaded.exported.len() >= 20);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary file is left: {leftovers:?}"
    );

    // Space is back: everything is archived once.
    let last = sync(dir.path(), 400).await.unwrap();
    assert!(last.is_complete(), "{last}");
    let mut files = 0;
    let mut stack = vec![dir.path().join("archive")];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                files += 1;
            }
        }
    }
    assert_eq!(files, 400, "every receipt once");
    let again = sync(dir.path(), 400).await.unwrap();
    assert_eq!(again.count("upload"), 0, "{again}");
}
