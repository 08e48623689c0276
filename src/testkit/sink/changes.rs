//! Checks of what changes: folder renames, the change feed, long names, concurrency.

use super::{TOP, at, chunked, list, must_be_at, path};
use crate::error::ErrorKind;
use crate::model::{ArchiveSnapshot, Body, EntryKind, ScanUpdate, SinkChange};
use crate::sink::ArchiveSink;
use crate::testkit::suite::{ensure, eq, err, ok};

pub(super) async fn rename(sink: &dyn ArchiveSink, stable_ids: bool) {
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

pub(super) async fn delta(sink: &dyn ArchiveSink) {
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

pub(super) async fn longest_name(sink: &dyn ArchiveSink, max: usize) {
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

pub(super) async fn concurrent_writes(sink: &dyn ArchiveSink) {
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
