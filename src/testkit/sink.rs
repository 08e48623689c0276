//! The [`ArchiveSink`] conformance suite: every sink runs it, against an empty archive.
//!
//! ```no_run
//! # async fn demo() {
//! use receipt_sync::sink::InMemorySink;
//! let report = receipt_sync::testkit::sink::run_all(&InMemorySink::new()).await;
//! assert!(report.ran("delta"));
//! # }
//! ```

use super::suite::{SuiteReport, ensure, eq, err, ok};
use crate::error::ErrorKind;
use crate::model::{
    ArchivePath, ArchiveSnapshot, Body, EntryKind, ScanCursor, ScanUpdate, SinkChange, SinkEntry,
    SinkItemId,
};
use crate::sink::ArchiveSink;
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use std::collections::HashSet;

/// Everything the suite creates lives under this folder.
const TOP: &str = "conformance";

/// Runs every check that applies to `sink`'s capabilities, in order, and says which
/// ran and which were skipped.
///
/// # Preconditions
/// The archive is empty. The suite leaves its files and folders behind (the trait
/// cannot delete), all under `conformance/`.
///
/// # Panics
/// At the first failed check, with a message saying what was expected and found.
pub async fn run_all(sink: &dyn ArchiveSink) -> SuiteReport {
    let caps = sink.capabilities();
    let mut report = SuiteReport::default();

    let listing = list(sink, "scan_empty").await;
    ensure("scan_empty", listing.is_empty(), || {
        format!("expected an empty archive, found {listing:?}")
    });
    report.pass("scan_empty");

    folders(sink).await;
    report.pass("folders");
    files(sink).await;
    report.pass("files");
    no_overwrite(sink).await;
    report.pass("no_overwrite");
    body_length(sink).await;
    report.pass("body_length");

    if caps.case_insensitive {
        case_insensitive(sink).await;
        report.pass("case_insensitive");
    } else {
        report.skip("case_insensitive", "the sink is case-sensitive");
    }

    rename(sink, caps.stable_ids).await;
    report.pass("rename_folder");

    if caps.delta {
        delta(sink).await;
        report.pass("delta");
    } else {
        let bogus = ScanCursor::new("conformance-unknown-cursor");
        let answer = ok(
            "no_delta",
            "scan with a cursor",
            sink.scan(Some(&bogus)).await,
        );
        ensure(
            "no_delta",
            matches!(answer, ScanUpdate::Full { .. }),
            || format!("a sink without delta must answer a full listing, found {answer:?}"),
        );
        report.pass("no_delta");
        report.skip("delta", "the sink has no change feed");
    }

    let quota = ok("quota", "quota()", sink.quota().await);
    if caps.quota {
        let Some(q) = quota else {
            panic!("[quota] the sink claims quota: expected Some(quota), found None")
        };
        ensure("quota", q.used <= q.total && q.remaining <= q.total, || {
            format!("expected used and remaining within total, found {q:?}")
        });
        report.pass("quota");
    } else {
        eq("quota", "quota() of a sink without quota", None, quota);
        report.skip("quota", "the sink does not report quota");
    }

    let name_len = caps.max_name_len;
    if caps.root_prefix_len + TOP.len() + 1 + name_len <= caps.max_path_len && name_len > 4 {
        longest_name(sink, name_len).await;
        report.pass("longest_name");
    } else {
        report.skip(
            "longest_name",
            "the longest name does not fit the path limit",
        );
    }

    concurrent_writes(sink).await;
    report.pass("concurrent_writes");
    report
}

fn path(p: &str) -> ArchivePath {
    ArchivePath::parse(p).unwrap_or_else(|e| panic!("the suite built a bad path: {e}"))
}

/// A body of `len` patterned bytes, in chunks of `chunk` bytes.
fn chunked(len: usize, chunk: usize) -> Body {
    let bytes: Bytes = (0..len)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let chunks: Vec<_> = (0..len)
        .step_by(chunk.max(1))
        .map(|start| Ok(bytes.slice(start..len.min(start + chunk))))
        .collect();
    Body::new(len as u64, stream::iter(chunks).boxed())
}

/// A full listing, checked for shape: unique ids, parents that are listed folders.
async fn list(sink: &dyn ArchiveSink, check: &str) -> Vec<SinkEntry> {
    let entries = match ok(check, "scan(None)", sink.scan(None).await) {
        ScanUpdate::Full { entries, .. } => entries,
        other => panic!("[{check}] scan(None): expected a full listing, found {other:?}"),
    };
    let folders: HashSet<&SinkItemId> = entries
        .iter()
        .filter(|e| e.is_folder())
        .map(|e| &e.id)
        .collect();
    let mut ids = HashSet::new();
    for e in &entries {
        ensure(check, ids.insert(&e.id), || {
            format!("id {:?} listed twice", e.id)
        });
        ensure(
            check,
            e.parent.as_ref().is_none_or(|p| folders.contains(p)),
            || format!("{e:?}: expected its parent among the listed folders"),
        );
    }
    entries
}

/// The entry at `p` in a fresh listing.
async fn at(sink: &dyn ArchiveSink, check: &str, p: &str) -> Option<SinkEntry> {
    let entries = list(sink, check).await;
    let snapshot = ArchiveSnapshot::from_entries(entries.iter().cloned());
    let index = snapshot.path_index();
    let (id, _) = index.get(&path(p))?;
    entries.into_iter().find(|e| &e.id == id)
}

async fn must_be_at(sink: &dyn ArchiveSink, check: &str, p: &str) -> SinkEntry {
    match at(sink, check, p).await {
        Some(e) => e,
        None => panic!("[{check}] expected {p} in a full listing, found nothing there"),
    }
}

async fn folders(sink: &dyn ArchiveSink) {
    let c = "folders";
    let top = ok(
        c,
        "create conformance",
        sink.create_folder(&path(TOP)).await,
    );
    eq(
        c,
        "the new folder",
        (None, TOP, EntryKind::Folder),
        (top.parent.as_ref(), top.name.as_str(), top.kind),
    );
    let a = ok(
        c,
        "create conformance/a",
        sink.create_folder(&path("conformance/a")).await,
    );
    let b = ok(
        c,
        "create conformance/a/b",
        sink.create_folder(&path("conformance/a/b")).await,
    );
    eq(
        c,
        "parent of conformance/a",
        Some(&top.id),
        a.parent.as_ref(),
    );
    eq(
        c,
        "parent of conformance/a/b",
        Some(&a.id),
        b.parent.as_ref(),
    );
    eq(
        c,
        "the listed conformance/a/b",
        &b,
        &must_be_at(sink, c, "conformance/a/b").await,
    );

    let again = ok(
        c,
        "create conformance/a again",
        sink.create_folder(&path("conformance/a")).await,
    );
    eq(c, "id of a folder created twice", &a.id, &again.id);

    let missing = sink.create_folder(&path("conformance/missing/child")).await;
    err(
        c,
        "create under a missing parent",
        missing,
        ErrorKind::NotFound,
    );
    ensure(
        c,
        at(sink, c, "conformance/missing").await.is_none(),
        || "expected no conformance/missing after a failed create".into(),
    );
}

async fn files(sink: &dyn ArchiveSink) {
    let c = "files";
    let a = must_be_at(sink, c, "conformance/a").await;
    let hello = ok(
        c,
        "write hello.txt",
        sink.write_file(
            &path("conformance/a/hello.txt"),
            Body::from_bytes("hello world"),
        )
        .await,
    );
    eq(
        c,
        "written entry",
        (Some(&a.id), "hello.txt", EntryKind::File { size: 11 }),
        (hello.parent.as_ref(), hello.name.as_str(), hello.kind),
    );
    eq(
        c,
        "listed hello.txt",
        &hello,
        &must_be_at(sink, c, "conformance/a/hello.txt").await,
    );

    let empty = ok(
        c,
        "write a zero-byte file",
        sink.write_file(&path("conformance/a/empty.txt"), Body::from_bytes(""))
            .await,
    );
    eq(
        c,
        "zero-byte file size",
        EntryKind::File { size: 0 },
        empty.kind,
    );
    eq(
        c,
        "listed zero-byte file",
        &empty,
        &must_be_at(sink, c, "conformance/a/empty.txt").await,
    );

    // 3 MiB in 64 KiB - 1 pieces: many chunks, none aligned on a power of two.
    let len = 3 * 1024 * 1024;
    let large = ok(
        c,
        "write a 3 MiB file in chunks",
        sink.write_file(
            &path("conformance/a/large.bin"),
            chunked(len, 64 * 1024 - 1),
        )
        .await,
    );
    eq(
        c,
        "3 MiB file size",
        EntryKind::File { size: len as u64 },
        large.kind,
    );
    eq(
        c,
        "listed 3 MiB file",
        &large,
        &must_be_at(sink, c, "conformance/a/large.bin").await,
    );

    let missing = sink
        .write_file(&path("conformance/nope/x.txt"), Body::from_bytes("x"))
        .await;
    err(
        c,
        "write under a missing folder",
        missing,
        ErrorKind::NotFound,
    );
}

async fn no_overwrite(sink: &dyn ArchiveSink) {
    let c = "no_overwrite";
    let over = sink
        .write_file(
            &path("conformance/a/hello.txt"),
            Body::from_bytes("other, longer bytes"),
        )
        .await;
    err(
        c,
        "write over an existing file",
        over,
        ErrorKind::AlreadyExists,
    );
    let kept = must_be_at(sink, c, "conformance/a/hello.txt").await;
    eq(
        c,
        "the original file's size",
        EntryKind::File { size: 11 },
        kept.kind,
    );

    let on_folder = sink
        .write_file(&path("conformance/a/b"), Body::from_bytes("x"))
        .await;
    err(
        c,
        "write where a folder is",
        on_folder,
        ErrorKind::AlreadyExists,
    );
    eq(
        c,
        "the folder in the way",
        EntryKind::Folder,
        must_be_at(sink, c, "conformance/a/b").await.kind,
    );
    let folder_on_file = sink.create_folder(&path("conformance/a/hello.txt")).await;
    err(
        c,
        "create a folder where a file is",
        folder_on_file,
        ErrorKind::AlreadyExists,
    );
}

async fn body_length(sink: &dyn ArchiveSink) {
    let c = "body_length";
    let before = list(sink, c).await.len();
    let chunk = || stream::iter([Ok(Bytes::from_static(b"12345"))]).boxed();
    let short = sink
        .write_file(&path("conformance/a/short.txt"), Body::new(10, chunk()))
        .await;
    err(
        c,
        "a body shorter than announced",
        short,
        ErrorKind::Integrity,
    );
    let long = sink
        .write_file(&path("conformance/a/long.txt"), Body::new(3, chunk()))
        .await;
    err(
        c,
        "a body longer than announced",
        long,
        ErrorKind::Integrity,
    );
    let after = list(sink, c).await;
    eq(
        c,
        "items after failed writes (nothing left behind)",
        before,
        after.len(),
    );
    let retry = sink
        .write_file(&path("conformance/a/short.txt"), Body::from_bytes("12345"))
        .await;
    ok(c, "writing again after a failed write", retry);
}

async fn case_insensitive(sink: &dyn ArchiveSink) {
    let c = "case_insensitive";
    ok(
        c,
        "write Case.txt",
        sink.write_file(&path("conformance/a/Case.txt"), Body::from_bytes("1"))
            .await,
    );
    let clash = sink
        .write_file(&path("conformance/a/CASE.TXT"), Body::from_bytes("22"))
        .await;
    err(
        c,
        "write CASE.TXT beside Case.txt",
        clash,
        ErrorKind::AlreadyExists,
    );
    let a = must_be_at(sink, c, "conformance/a").await;
    let upper = ok(
        c,
        "create conformance/A",
        sink.create_folder(&path("conformance/A")).await,
    );
    eq(
        c,
        "id of conformance/A (the existing conformance/a)",
        &a.id,
        &upper.id,
    );
}

async fn rename(sink: &dyn ArchiveSink, stable_ids: bool) {
    let c = "rename_folder";
    let top = must_be_at(sink, c, TOP).await;
    let r = ok(
        c,
        "create conformance/r",
        sink.create_folder(&path("conformance/r")).await,
    );
    ok(
        c,
        "create conformance/r/inner",
        sink.create_folder(&path("conformance/r/inner")).await,
    );
    let f = ok(
        c,
        "write conformance/r/f.txt",
        sink.write_file(&path("conformance/r/f.txt"), Body::from_bytes("abc"))
            .await,
    );
    ok(
        c,
        "create conformance/taken",
        sink.create_folder(&path("conformance/taken")).await,
    );

    let taken = sink
        .rename_folder(&r.id, &path("conformance/r"), "taken")
        .await;
    err(
        c,
        "rename onto an existing name",
        taken,
        ErrorKind::AlreadyExists,
    );

    let renamed = ok(
        c,
        "rename conformance/r to r2",
        sink.rename_folder(&r.id, &path("conformance/r"), "r2")
            .await,
    );
    eq(
        c,
        "renamed entry",
        (Some(&top.id), "r2", EntryKind::Folder),
        (renamed.parent.as_ref(), renamed.name.as_str(), renamed.kind),
    );
    ensure(c, at(sink, c, "conformance/r").await.is_none(), || {
        "expected nothing left at conformance/r".into()
    });
    let moved = must_be_at(sink, c, "conformance/r2/f.txt").await;
    eq(
        c,
        "a child's size after the rename",
        EntryKind::File { size: 3 },
        moved.kind,
    );
    must_be_at(sink, c, "conformance/r2/inner").await;
    if stable_ids {
        eq(
            c,
            "the folder's id across a rename (stable ids)",
            &r.id,
            &renamed.id,
        );
        eq(
            c,
            "a child's id across a rename (stable ids)",
            &f.id,
            &moved.id,
        );
    } else {
        let stale = sink
            .rename_folder(&r.id, &path("conformance/r"), "r3")
            .await;
        err(
            c,
            "rename by an id that no longer exists",
            stale,
            ErrorKind::NotFound,
        );
    }
}

async fn delta(sink: &dyn ArchiveSink) {
    let c = "delta";
    let (entries, cursor) = match ok(c, "scan(None)", sink.scan(None).await) {
        ScanUpdate::Full {
            entries,
            cursor: Some(cursor),
        } => (entries, cursor),
        other => panic!(
            "[{c}] scan(None) of a delta sink: expected a full listing with a cursor, found {other:?}"
        ),
    };
    let mut snapshot = ArchiveSnapshot::from_entries(entries);
    let written = ok(
        c,
        "write conformance/delta.txt",
        sink.write_file(&path("conformance/delta.txt"), Body::from_bytes("delta"))
            .await,
    );
    ok(
        c,
        "create conformance/delta-folder",
        sink.create_folder(&path("conformance/delta-folder")).await,
    );

    let mut cursor = cursor;
    for round in ["after a write", "from the returned cursor"] {
        let update = ok(c, "scan(Some(cursor))", sink.scan(Some(&cursor)).await);
        let ScanUpdate::Changes {
            changes,
            cursor: next,
        } = &update
        else {
            panic!("[{c}] scan {round}: expected changes, found {update:?}")
        };
        if round == "after a write" {
            let seen = changes.iter().any(|ch| matches!(ch, SinkChange::Upsert(e) if e.id == written.id && e.name == "delta.txt"));
            ensure(c, seen, || {
                format!("expected an upsert of delta.txt among {changes:?}")
            });
        }
        snapshot.apply(&update);
        let fresh = ArchiveSnapshot::from_entries(list(sink, c).await);
        eq(
            c,
            &format!("the picture rebuilt from changes {round}"),
            fresh.entries(),
            snapshot.entries(),
        );
        cursor = next.clone();
    }
}

async fn longest_name(sink: &dyn ArchiveSink, max: usize) {
    let c = "longest_name";
    let name = format!("{}.txt", "n".repeat(max - 4));
    let p = format!("{TOP}/{name}");
    let entry = ok(
        c,
        &format!("write a {max}-unit name"),
        sink.write_file(&path(&p), Body::from_bytes("x")).await,
    );
    eq(
        c,
        "the long name as written",
        name.as_str(),
        entry.name.as_str(),
    );
    eq(
        c,
        "the long name as listed",
        name,
        must_be_at(sink, c, &p).await.name,
    );
}

async fn concurrent_writes(sink: &dyn ArchiveSink) {
    let c = "concurrent_writes";
    ok(
        c,
        "create conformance/c",
        sink.create_folder(&path("conformance/c")).await,
    );
    let writes = (0..8).map(|i| async move {
        let body = chunked(1000 + i, 100);
        (
            i,
            sink.write_file(&path(&format!("conformance/c/{i}.bin")), body)
                .await,
        )
    });
    for (i, result) in futures::future::join_all(writes).await {
        ok(c, &format!("concurrent write {i}"), result);
    }
    for i in 0..8 {
        let e = must_be_at(sink, c, &format!("conformance/c/{i}.bin")).await;
        eq(
            c,
            "size of a concurrently written file",
            EntryKind::File {
                size: 1000 + i as u64,
            },
            e.kind,
        );
    }
}
