//! A full disk under a `LocalDirSink` stops the sync, as a full OneDrive does, rather
//! than failing every receipt on its own. The disk fills for real: a sync runs in a
//! child process (this test binary, run again) whose file-size limit (`ulimit -f`,
//! with `SIGXFSZ` ignored, so writes fail with `EFBIG` as they would with `ENOSPC`)
//! holds the small receipts and the state but not the large receipts. Then:
//! - the child's sync stopped with [`ErrorKind::DiskFull`];
//! - no temporary file is left, and every file in the archive is whole;
//! - a sync with room archives every receipt, each exactly once, and the next one
//!   has nothing left to do.
#![cfg(all(unix, feature = "testkit"))]

use chrono::NaiveDate;
use receipt_sync::model::AccountId;
use receipt_sync::sink::LocalDirSink;
use receipt_sync::source::InMemorySource;
use receipt_sync::state::JsonFileStateStore;
use receipt_sync::sync::{SyncConfig, SyncReport, Syncer};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Set in the child: the folder to sync in.
const CHILD: &str = "LOCAL_DIR_DISK_FULL_CHILD";
/// The child's file-size limit, in 512-byte blocks: 64 KiB.
const LIMIT_BLOCKS: u32 = 128;
const RECEIPTS: usize = 24;

/// Receipt `i`'s bytes: its number, repeated. Every fourth is 200 KiB (more than the
/// limit); the others are 2 KiB.
fn content(i: usize) -> Vec<u8> {
    let size = if i % 4 == 3 { 200 << 10 } else { 2 << 10 };
    let mut bytes = format!("receipt {i:03};")
        .repeat(size / 13 + 1)
        .into_bytes();
    bytes.truncate(size);
    bytes
}

/// The receipt a file holds, read from its first bytes.
fn receipt_number(bytes: &[u8]) -> Option<usize> {
    let head = std::str::from_utf8(bytes.get(..12)?).ok()?;
    head.strip_prefix("receipt ")?
        .strip_suffix(';')?
        .parse()
        .ok()
}

/// The same bank in every process.
fn bank() -> InMemorySource {
    let bank = InMemorySource::new();
    let account = AccountId::new("acc");
    bank.add_account_named("acc", "Main account");
    for i in 0..RECEIPTS {
        let day = NaiveDate::from_ymd_opt(2026, 1 + (i % 3) as u32, 1 + i as u32).unwrap();
        let receipt = InMemorySource::receipt(&format!("r{i}"), &account, day, "Shop", -1234);
        bank.add_receipt(receipt, content(i));
    }
    bank
}

async fn sync(dir: &Path) -> receipt_sync::Result<SyncReport> {
    Syncer::new(
        Arc::new(bank()),
        Arc::new(LocalDirSink::new(dir.join("archive")).unwrap()),
        Arc::new(JsonFileStateStore::new(dir.join("state"))),
        SyncConfig::default(),
    )
    .run()
    .await
}

/// Every file under the archive: path → bytes. Temporary files included.
fn files(archive: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![archive.to_owned()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                let rel = entry.path().strip_prefix(archive).unwrap().to_owned();
                out.insert(
                    rel.display().to_string(),
                    std::fs::read(entry.path()).unwrap(),
                );
            }
        }
    }
    out
}

/// The child's part (a no-op unless this binary was started as the child).
#[tokio::test]
async fn child_syncs_into_a_full_disk() {
    let Some(dir) = std::env::var_os(CHILD) else {
        return;
    };
    match sync(Path::new(&dir)).await {
        Ok(report) => {
            let stopped = report.stopped.as_ref().map(|e| e.kind());
            let failed: Vec<_> = report.failures.iter().map(|f| f.kind).collect();
            println!("CHILD-REPORT stopped={stopped:?} failed={failed:?}");
        }
        Err(error) => println!("CHILD-ERROR {:?} {error}", error.kind()),
    }
}

#[tokio::test]
async fn a_full_disk_stops_the_sync_and_a_later_one_archives_everything_once() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = format!("trap '' XFSZ; ulimit -f {LIMIT_BLOCKS}; exec \"$0\" \"$@\"");
    let out = tokio::process::Command::new("sh")
        .args(["-c", &script])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_syncs_into_a_full_disk",
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
    assert!(
        stdout.contains("CHILD-REPORT stopped=Some(DiskFull)"),
        "the full disk stops the sync: {stdout}"
    );

    // Nothing half-written: no temporary file, and each file is its receipt, whole.
    let archive = dir.path().join("archive");
    let after_child = files(&archive);
    for (path, bytes) in &after_child {
        let number = receipt_number(bytes);
        assert!(
            number.is_some_and(|i| *bytes == content(i)),
            "{path} is a whole receipt"
        );
    }
    assert!(
        after_child.len() < RECEIPTS,
        "the large receipts did not fit"
    );

    // Room again: every receipt once, and nothing left to do after.
    let last = sync(dir.path()).await.unwrap();
    assert!(last.is_complete(), "{last}");
    let mut seen: Vec<usize> = files(&archive)
        .values()
        .map(|bytes| receipt_number(bytes).expect("a receipt"))
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..RECEIPTS).collect::<Vec<_>>(),
        "every receipt once"
    );
    let again = sync(dir.path()).await.unwrap();
    assert_eq!(again.count("upload"), 0, "{again}");
}
