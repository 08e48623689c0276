//! Folder and file creation checks: shape, idempotence, no overwrite, exact lengths.

use super::{TOP, at, chunked, list, must_be_at, path};
use crate::error::ErrorKind;
use crate::model::{Body, EntryKind};
use crate::sink::ArchiveSink;
use crate::testkit::suite::{ensure, eq, err, ok};
use bytes::Bytes;
use futures::stream::{self, StreamExt};

pub(super) async fn folders(sink: &dyn ArchiveSink) {
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

pub(super) async fn files(sink: &dyn ArchiveSink) {
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

pub(super) async fn no_overwrite(sink: &dyn ArchiveSink) {
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

pub(super) async fn body_length(sink: &dyn ArchiveSink) {
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

pub(super) async fn case_insensitive(sink: &dyn ArchiveSink) {
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

/// A small file the sink wrote is replaced in place, whole; a file moved away (or
/// never there) is not replaced, and nothing appears at the place.
pub(super) async fn replace(sink: &dyn ArchiveSink) {
    let c = "replace_small_file";
    let p = path("conformance/index.csv");
    let first = ok(
        c,
        "write conformance/index.csv",
        sink.write_file(&p, Body::from_bytes(Bytes::from_static(b"date,label\r\n")))
            .await,
    );
    let longer = Bytes::from_static(b"date,label\r\n2026-03-01,Caf\xc3\xa9\r\n");
    let replaced = ok(
        c,
        "replace conformance/index.csv",
        sink.replace_file(&first.id, &p, Body::from_bytes(longer.clone()))
            .await,
    );
    eq(
        c,
        "the replaced file",
        (
            first.parent.as_ref(),
            "index.csv",
            EntryKind::File {
                size: longer.len() as u64,
            },
        ),
        (
            replaced.parent.as_ref(),
            replaced.name.as_str(),
            replaced.kind,
        ),
    );
    let listed = must_be_at(sink, c, "conformance/index.csv").await;
    eq(
        c,
        "size after replacing",
        EntryKind::File {
            size: longer.len() as u64,
        },
        listed.kind,
    );
    eq(c, "listed id after replacing", &replaced.id, &listed.id);
    // An id no file has (on sinks whose ids are paths: a path no file is at).
    let elsewhere = path("conformance/not-there.csv");
    let unknown = crate::model::SinkItemId::new(elsewhere.as_str());
    err(
        c,
        "replace a file that is not there",
        sink.replace_file(&unknown, &elsewhere, Body::from_bytes(longer))
            .await,
        ErrorKind::NotFound,
    );
    ensure(
        c,
        at(sink, c, "conformance/not-there.csv").await.is_none(),
        || "expected nothing written at conformance/not-there.csv".into(),
    );
}
