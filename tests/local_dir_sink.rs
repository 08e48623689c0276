//! What `LocalDirSink` promises beyond the conformance suite: no symbolic link is
//! followed, nothing outside the root is touched, temporary files stay invisible
//! and are cleaned up, nothing is overwritten.
#![cfg(unix)]

use bytes::Bytes;
use futures::StreamExt;
use futures::stream;
use receipt_sync::error::{Error, ErrorKind};
use receipt_sync::model::{ArchivePath, Body, EntryKind, ScanUpdate, SinkEntry, SinkItemId};
use receipt_sync::sink::{ArchiveSink, LocalDirSink};
use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

fn p(path: &str) -> ArchivePath {
    ArchivePath::parse(path).unwrap()
}

/// A root `archive/` and a folder `outside/` beside it holding `secret.txt`.
fn setup() -> (tempfile::TempDir, LocalDirSink) {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("outside")).unwrap();
    fs::write(dir.path().join("outside/secret.txt"), "secret").unwrap();
    let sink = LocalDirSink::new(dir.path().join("archive")).unwrap();
    (dir, sink)
}

async fn listing(sink: &LocalDirSink) -> Vec<SinkEntry> {
    match sink.scan(None).await.unwrap() {
        ScanUpdate::Full { entries, cursor } => {
            assert_eq!(cursor, None, "a local folder has no change feed");
            entries
        }
        other => panic!("expected a full listing, found {other:?}"),
    }
}

async fn names(sink: &LocalDirSink) -> Vec<String> {
    listing(sink)
        .await
        .into_iter()
        .map(|e| e.id.as_str().to_owned())
        .collect()
}

/// Everything under `dir`, as sorted relative paths (links not followed).
fn on_disk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for item in fs::read_dir(&d).unwrap() {
            let item = item.unwrap();
            let rel = item.path().strip_prefix(dir).unwrap().display().to_string();
            if item.file_type().unwrap().is_dir() {
                stack.push(item.path());
            }
            out.push(rel);
        }
    }
    out.sort();
    out
}

fn kind(result: Result<SinkEntry, Error>) -> ErrorKind {
    result.expect_err("expected an error").kind()
}

#[tokio::test]
async fn a_symlinked_folder_is_never_listed_nor_written_through() {
    let (dir, sink) = setup();
    let outside = dir.path().join("outside");
    symlink(&outside, sink.root().join("Link")).unwrap();
    sink.create_folder(&p("Main")).await.unwrap();
    symlink(&outside, sink.root().join("Main/Nested")).unwrap();

    assert_eq!(names(&sink).await, ["Main"], "links are skipped by scans");
    for path in ["Link/x.pdf", "Main/Nested/x.pdf", "Link/secret.txt"] {
        let write = sink.write_file(&p(path), Body::from_bytes("evil")).await;
        assert_eq!(kind(write), ErrorKind::Rejected, "{path}");
    }
    assert_eq!(
        kind(sink.create_folder(&p("Link/sub")).await),
        ErrorKind::Rejected
    );
    // The link itself is in the way of a folder or a file of its name, and is no folder.
    assert_eq!(
        kind(sink.create_folder(&p("Link")).await),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        kind(sink.write_file(&p("Link"), Body::from_bytes("x")).await),
        ErrorKind::AlreadyExists
    );
    let rename = sink
        .rename_folder(&SinkItemId::new("Link"), &p("Link"), "Renamed")
        .await;
    assert_eq!(kind(rename), ErrorKind::NotFound);

    assert_eq!(on_disk(&outside), ["secret.txt"], "nothing written outside");
    assert_eq!(fs::read(outside.join("secret.txt")).unwrap(), b"secret");
    assert!(
        fs::symlink_metadata(sink.root().join("Link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[tokio::test]
async fn a_symlinked_file_is_never_listed_nor_overwritten() {
    let (dir, sink) = setup();
    let secret = dir.path().join("outside/secret.txt");
    sink.create_folder(&p("Main")).await.unwrap();
    symlink(&secret, sink.root().join("Main/evil.pdf")).unwrap();
    symlink(
        dir.path().join("outside/new.txt"),
        sink.root().join("Main/dangling.pdf"),
    )
    .unwrap();

    assert_eq!(names(&sink).await, ["Main"]);
    for path in ["Main/evil.pdf", "Main/dangling.pdf"] {
        let write = sink
            .write_file(&p(path), Body::from_bytes("overwritten"))
            .await;
        assert_eq!(kind(write), ErrorKind::AlreadyExists, "{path}");
    }
    assert_eq!(fs::read(&secret).unwrap(), b"secret");
    assert!(
        !dir.path().join("outside/new.txt").exists(),
        "no file created through a dangling link"
    );
}

#[tokio::test]
async fn the_root_is_resolved_and_dot_dot_cannot_be_expressed() {
    let dir = tempfile::tempdir().unwrap();
    let sink = LocalDirSink::new(dir.path().join("x/../archive")).unwrap();
    assert_eq!(
        sink.root(),
        dir.path().canonicalize().unwrap().join("archive")
    );
    for bad in ["..", "../x", "a/../../x", "a/..", "./x", "a\\..\\x"] {
        assert!(ArchivePath::parse(bad).is_err(), "{bad} must not be a path");
    }
    let json = serde_json::from_str::<ArchivePath>("\"../escape\"");
    assert!(json.is_err(), "nor deserialize into one");
    sink.create_folder(&p("...")).await.unwrap_err(); // a trailing dot: OneDrive refuses it
    sink.write_file(&p("a..b"), Body::from_bytes("ok"))
        .await
        .unwrap();
    // `x` was made on the way to resolving `x/..`.
    assert_eq!(on_disk(dir.path()), ["archive", "archive/a..b", "x"]);
}

#[tokio::test]
async fn temporary_files_stay_invisible_and_are_cleaned_up() {
    let (_dir, sink) = setup();
    sink.create_folder(&p("Main")).await.unwrap();
    fs::write(
        sink.root().join(".receipt-sync-stale.tmp"),
        "left by a crash",
    )
    .unwrap();
    assert_eq!(names(&sink).await, ["Main"]);
    let reserved = sink
        .write_file(&p("Main/.receipt-sync-x.tmp"), Body::from_bytes("x"))
        .await;
    assert_eq!(kind(reserved), ErrorKind::Rejected);

    // A write in progress is not visible; its temporary file lives in the root.
    let (tx, rx) = futures::channel::mpsc::unbounded::<receipt_sync::Result<Bytes>>();
    tx.unbounded_send(Ok(Bytes::from_static(b"half"))).unwrap();
    let writer = {
        let sink = sink.clone();
        tokio::spawn(async move {
            sink.write_file(&p("Main/r.pdf"), Body::new(8, rx.boxed()))
                .await
        })
    };
    let temp_count = |sink: &LocalDirSink| {
        fs::read_dir(sink.root())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".receipt-sync-")
            })
            .count()
    };
    let started = async {
        while temp_count(&sink) < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), started)
        .await
        .expect("the write opens its temporary file");
    assert_eq!(
        names(&sink).await,
        ["Main"],
        "a half-written file is invisible"
    );
    tx.unbounded_send(Err(Error::Transient {
        service: "test",
        operation: "download".into(),
        message: "connection reset".into(),
        retry_after: None,
    }))
    .unwrap();
    let failed = writer.await.unwrap().unwrap_err();
    assert_eq!(
        failed.kind(),
        ErrorKind::Transient,
        "the body's error comes through"
    );
    assert_eq!(temp_count(&sink), 1, "only the stale file is left");

    let short = Body::new(10, stream::iter([Ok(Bytes::from_static(b"12345"))]).boxed());
    let long = Body::new(2, stream::iter([Ok(Bytes::from_static(b"12345"))]).boxed());
    for body in [short, long] {
        let result = sink.write_file(&p("Main/r.pdf"), body).await;
        assert_eq!(kind(result), ErrorKind::Integrity);
    }
    assert_eq!(temp_count(&sink), 1);
    assert_eq!(on_disk(sink.root()), [".receipt-sync-stale.tmp", "Main"]);
}

#[tokio::test]
async fn files_land_whole_in_nested_folders_and_are_never_overwritten() {
    let (_dir, sink) = setup();
    sink.create_folder(&p("Main")).await.unwrap();
    sink.create_folder(&p("Main/2026-11")).await.unwrap();
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let chunks: Vec<_> = bytes
        .chunks(7_001)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let body = Body::new(bytes.len() as u64, stream::iter(chunks).boxed());
    let entry = sink
        .write_file(&p("Main/2026-11/r.pdf"), body)
        .await
        .unwrap();
    assert_eq!(entry.kind, EntryKind::File { size: 200_000 });
    assert_eq!(entry.parent, Some(SinkItemId::new("Main/2026-11")));
    let on_disk_path = sink.root().join("Main/2026-11/r.pdf");
    assert_eq!(fs::read(&on_disk_path).unwrap(), bytes);
    assert_eq!(
        fs::metadata(&on_disk_path).unwrap().nlink(),
        1,
        "the temporary link is gone"
    );

    fs::write(sink.root().join("Main/user.txt"), "mine").unwrap();
    let over = sink
        .write_file(&p("Main/user.txt"), Body::from_bytes("theirs!"))
        .await;
    assert_eq!(kind(over), ErrorKind::AlreadyExists);
    assert_eq!(
        fs::read(sink.root().join("Main/user.txt")).unwrap(),
        b"mine"
    );

    // rename(2) would silently replace an empty folder: the sink refuses instead.
    sink.create_folder(&p("Empty")).await.unwrap();
    let rename = sink
        .rename_folder(&SinkItemId::new("Main"), &p("Main"), "Empty")
        .await;
    assert_eq!(kind(rename), ErrorKind::AlreadyExists);
    let renamed = sink
        .rename_folder(&SinkItemId::new("Main"), &p("Main"), "Renamed")
        .await
        .unwrap();
    assert_eq!(renamed.id, SinkItemId::new("Renamed"));
    assert_eq!(
        fs::read(sink.root().join("Renamed/2026-11/r.pdf")).unwrap(),
        bytes
    );
}

#[tokio::test]
async fn names_the_archive_cannot_hold_are_skipped_or_refused() {
    use std::os::unix::ffi::OsStrExt;
    let (_dir, sink) = setup();
    fs::write(
        sink.root()
            .join(std::ffi::OsStr::from_bytes(b"bad\xff.pdf")),
        "x",
    )
    .unwrap();
    fs::write(sink.root().join("back\\slash.pdf"), "x").unwrap();
    fs::write(sink.root().join("fine.pdf"), "x").unwrap();
    assert_eq!(names(&sink).await, ["fine.pdf"]);

    // 100 'é' are 100 UTF-16 units (within OneDrive's 255) but 200 bytes: fine.
    // 128 'é' are 256 bytes: more than a Linux file name holds.
    sink.write_file(&p(&"é".repeat(100)), Body::from_bytes("x"))
        .await
        .unwrap();
    let long = sink
        .write_file(&p(&"é".repeat(128)), Body::from_bytes("x"))
        .await;
    assert_eq!(kind(long), ErrorKind::Rejected);
    let colon = sink.write_file(&p("a:b.pdf"), Body::from_bytes("x")).await;
    assert_eq!(kind(colon), ErrorKind::Rejected);
}

/// The free space a sync checks up front is the root's file system's, as `statvfs`
/// sees it from the root.
#[tokio::test]
async fn quota_is_the_free_space_of_the_roots_file_system() {
    let (_dir, sink) = setup();
    assert!(sink.capabilities().quota);
    let quota = sink
        .quota()
        .await
        .unwrap()
        .expect("a local disk reports its space");
    let vfs = rustix::fs::statvfs(sink.root()).unwrap();
    let block = vfs.f_frsize;
    assert_eq!(quota.total, vfs.f_blocks * block);
    assert!(quota.used <= quota.total && quota.remaining <= quota.total);
    // Other processes write meanwhile: within a few MiB of what statvfs said.
    let available = vfs.f_bavail * block;
    assert!(
        quota.remaining.abs_diff(available) < 64 << 20,
        "{quota:?} against {available} available"
    );
}

/// A cancelled sync drops its write futures, but work already handed to the blocking
/// pool runs on. A scan right after must already see every file that will land, or
/// the next sync would copy those receipts a second time.
#[tokio::test]
async fn a_scan_after_cancelled_writes_sees_every_file_that_lands() {
    let (_dir, sink) = setup();
    sink.create_folder(&p("a")).await.unwrap();
    for round in 0..20 {
        let writes: Vec<_> = (0..32)
            .map(|i| {
                let sink = sink.clone();
                tokio::spawn(async move {
                    let body = Body::from_bytes(Bytes::from(vec![b'x'; 64]));
                    sink.write_file(&p(&format!("a/{round} {i}.pdf")), body)
                        .await
                })
            })
            .collect();
        // Let the writes reach the blocking pool, then cancel them all.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        writes.iter().for_each(tokio::task::JoinHandle::abort);
        let first = names(&sink).await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(first, names(&sink).await, "a file landed after the scan");
    }
}

/// A process killed mid-write leaves its temporary file in the root; a scan a day
/// later removes it. A fresh one may be a write in progress and stays, and a link with
/// a temporary name is never followed.
#[tokio::test]
async fn temporary_files_a_day_old_are_removed_by_a_scan() {
    let (dir, sink) = setup();
    let stale = sink.root().join(".receipt-sync-old.tmp");
    fs::write(&stale, "left by a killed process").unwrap();
    let two_days = std::time::Duration::from_secs(2 * 24 * 3600);
    fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - two_days)
        .unwrap();
    fs::write(sink.root().join(".receipt-sync-new.tmp"), "being written").unwrap();
    let secret = dir.path().join("outside/secret.txt");
    fs::File::options()
        .write(true)
        .open(&secret)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - two_days)
        .unwrap();
    symlink(&secret, sink.root().join(".receipt-sync-link.tmp")).unwrap();

    assert!(names(&sink).await.is_empty());
    assert_eq!(
        on_disk(sink.root()),
        [".receipt-sync-link.tmp", ".receipt-sync-new.tmp"]
    );
    assert_eq!(fs::read_to_string(&secret).unwrap(), "secret");
}
