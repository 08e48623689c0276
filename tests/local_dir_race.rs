//! `LocalDirSink` stays inside its root even when a folder is swapped for a symbolic
//! link between the sink's checks and its writes. A thread keeps exchanging two
//! archive folders (`A`, then `A/B`) with links to a folder outside the root, with
//! `renameat2(RENAME_EXCHANGE)` so that each name always holds one or the other, while
//! tasks write files, create and rename folders and scan through them. Then:
//! - nothing outside the root changed (it is listed after every round of writes);
//! - every write the sink reported done is in the archive, whole, where it was asked;
//! - no temporary file is left behind.
#![cfg(target_os = "linux")]

use bytes::Bytes;
use receipt_sync::error::ErrorKind;
use receipt_sync::model::{ArchivePath, Body, SinkItemId};
use receipt_sync::sink::{ArchiveSink, LocalDirSink};
use rustix::fs::{CWD, RenameFlags, renameat_with};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const WRITERS: usize = 4;
const ROUNDS: usize = 150;

fn p(path: &str) -> ArchivePath {
    ArchivePath::parse(path).unwrap()
}

/// Everything under `dir` as sorted relative paths, links not followed.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(folder) = stack.pop() {
        for item in std::fs::read_dir(&folder).unwrap() {
            let item = item.unwrap();
            if item.file_type().unwrap().is_dir() {
                stack.push(item.path());
            }
            let rel = item.path().strip_prefix(dir).unwrap().to_owned();
            out.push(rel.display().to_string());
        }
    }
    out.sort();
    out
}

fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    Ok(renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE)?)
}

/// Swaps `A` and then `A/B` for links to `outside` (each back again before the
/// next), until told to stop; every name is back in place when it returns.
fn keep_swapping(root: PathBuf, stop: Arc<AtomicBool>) -> std::io::Result<u64> {
    let (a, a_link) = (root.join("A"), root.join("A.link"));
    let (b, b_link) = (root.join("A/B"), root.join("A/B.link"));
    let mut swaps = 0;
    while !stop.load(Ordering::Relaxed) {
        for (real, link) in [(&a, &a_link), (&b, &b_link)] {
            exchange(real, link)?;
            std::thread::yield_now();
            exchange(real, link)?;
            swaps += 1;
        }
    }
    Ok(swaps)
}

/// One writer's round: a file in `A`, one in `A/B`, a folder in `A/B`, renamed.
/// Returns the files the sink said it wrote, and how many steps it refused. Refusals
/// are expected (a link in the way, a folder missing while swapped); nothing else is.
async fn round(sink: &LocalDirSink, writer: usize, n: usize) -> (Vec<(String, Bytes)>, usize) {
    let mut done = Vec::new();
    let mut refused = 0;
    for folder in ["A", "A/B"] {
        let path = format!("{folder}/w{writer} r{n}.pdf");
        let bytes = Bytes::from(format!("receipt {path}").repeat(50));
        match sink
            .write_file(&p(&path), Body::from_bytes(bytes.clone()))
            .await
        {
            Ok(_) => done.push((path, bytes)),
            Err(e) => refused += assert_refused(e.kind(), &path),
        }
    }
    let folder = format!("A/B/d{writer} {n}");
    if let Err(e) = sink.create_folder(&p(&folder)).await {
        refused += assert_refused(e.kind(), &folder);
    }
    let renamed = sink
        .rename_folder(
            &SinkItemId::new(&folder),
            &p(&folder),
            &format!("e{writer} {n}"),
        )
        .await;
    if let Err(e) = renamed {
        refused += assert_refused(e.kind(), &folder);
    }
    (done, refused)
}

fn assert_refused(kind: ErrorKind, path: &str) -> usize {
    assert!(
        matches!(kind, ErrorKind::Rejected | ErrorKind::NotFound),
        "{path}: {kind:?}"
    );
    1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_folder_swapped_for_a_link_mid_write_never_leads_outside() {
    let base = tempfile::tempdir().unwrap();
    let outside = base.path().join("outside");
    std::fs::create_dir_all(outside.join("B")).unwrap();
    let sink = LocalDirSink::new(base.path().join("archive")).unwrap();
    let root = sink.root().to_owned();
    sink.create_folder(&p("A")).await.unwrap();
    sink.create_folder(&p("A/B")).await.unwrap();
    symlink(&outside, root.join("A.link")).unwrap();
    symlink(outside.join("B"), root.join("A/B.link")).unwrap();
    let outside_before = listing(&outside);

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (root, stop) = (root.clone(), stop.clone());
        std::thread::spawn(move || keep_swapping(root, stop))
    };
    let (mut written, mut refused) = (Vec::new(), 0);
    for n in 0..ROUNDS {
        let rounds: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let sink = sink.clone();
                tokio::spawn(async move { round(&sink, writer, n).await })
            })
            .collect();
        let scan = sink.scan(None).await;
        assert!(scan.is_ok(), "a scan ends: {scan:?}");
        for handle in rounds {
            let (done, refusals) = handle.await.expect("no writer panics");
            written.extend(done);
            refused += refusals;
        }
        assert_eq!(
            listing(&outside),
            outside_before,
            "something was written outside the root in round {n}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap().expect("the swaps succeed");
    assert!(swaps > 0);

    // Both sides of the race happened: writes through real folders, and links met.
    assert!(
        !written.is_empty() && refused > 0,
        "{} written, {refused} refused",
        written.len()
    );
    for (path, bytes) in &written {
        let on_disk = std::fs::read(root.join(path)).unwrap_or_default();
        assert_eq!(on_disk, bytes.as_ref(), "{path} is in place, whole");
    }
    let temporary: Vec<_> = listing(&root)
        .into_iter()
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(temporary.is_empty(), "left behind: {temporary:?}");
}
