use super::*;
use crate::model::ArchiveSnapshot;
use futures::stream::{self, StreamExt};

fn p(path: &str) -> ArchivePath {
    ArchivePath::parse(path).unwrap()
}

async fn full(sink: &InMemorySink) -> (ArchiveSnapshot, ScanCursor) {
    match sink.scan(None).await.unwrap() {
        ScanUpdate::Full {
            entries,
            cursor: Some(cursor),
        } => (ArchiveSnapshot::from_entries(entries), cursor),
        other => panic!("expected a full listing with a cursor, found {other:?}"),
    }
}

async fn changes(sink: &InMemorySink, cursor: &ScanCursor) -> (Vec<SinkChange>, ScanCursor) {
    match sink.scan(Some(cursor)).await.unwrap() {
        ScanUpdate::Changes { changes, cursor } => (changes, cursor),
        other => panic!("expected changes, found {other:?}"),
    }
}

async fn seed(sink: &InMemorySink) {
    sink.create_folder(&p("Main")).await.unwrap();
    sink.create_folder(&p("Main/2026-11")).await.unwrap();
    for name in ["a.pdf", "b.pdf"] {
        let path = p("Main/2026-11").join(name).unwrap();
        sink.write_file(&path, Body::from_bytes(name.to_owned()))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_deleted_folder_is_reported_alone() {
    let sink = InMemorySink::new();
    seed(&sink).await;
    let (mut snapshot, cursor) = full(&sink).await;
    let folder = sink.id_of("Main/2026-11").unwrap();
    sink.delete_folder_as_user("main/2026-11").unwrap();

    let (feed, next) = changes(&sink, &cursor).await;
    assert_eq!(feed, vec![SinkChange::Removed(folder)]);
    snapshot.apply(&ScanUpdate::Changes {
        changes: feed,
        cursor: next.clone(),
    });
    assert_eq!(snapshot, full(&sink).await.0);
    assert_eq!(changes(&sink, &next).await.0, vec![]);
    assert_eq!(sink.writes(), 4, "user actions are not the sync's writes");
}

#[tokio::test]
async fn user_actions_show_in_the_feed_and_ids_are_never_reused() {
    let sink = InMemorySink::new();
    seed(&sink).await;
    let (mut snapshot, cursor) = full(&sink).await;
    let a = sink.id_of("Main/2026-11/a.pdf").unwrap();
    sink.rename_as_user("Main/2026-11/a.pdf", "renamed.pdf")
        .unwrap();
    sink.move_as_user("Main/2026-11/b.pdf", "Main").unwrap();
    sink.delete_file_as_user("Main/b.pdf").unwrap();
    sink.add_user_file("Main/2026-11/b.pdf", "user's").unwrap();
    sink.add_user_file("Notes/x/y.txt", "deep").unwrap();
    assert_eq!(sink.id_of("Main/2026-11/renamed.pdf"), Some(a));

    let (feed, next) = changes(&sink, &cursor).await;
    snapshot.apply(&ScanUpdate::Changes {
        changes: feed,
        cursor: next,
    });
    assert_eq!(snapshot, full(&sink).await.0, "{}", sink.tree());
    let ids: Vec<SinkItemId> = snapshot.entries().into_iter().map(|e| e.id).collect();
    assert!(
        !ids.contains(&SinkItemId::new("item-4")),
        "b.pdf's id is gone for good"
    );
    assert_eq!(sink.read("main/2026-11/B.PDF").unwrap(), b"user's");
    assert_eq!(
        sink.tree(),
        "Main/\n  2026-11/\n    b.pdf (6 B)\n    renamed.pdf (5 B)\nNotes/\n  x/\n    y.txt (4 B)\n"
    );
    assert!(sink.move_as_user("Main", "Main/2026-11").is_err());
    assert!(
        sink.rename_as_user("Main/2026-11/b.pdf", "RENAMED.pdf")
            .is_err()
    );
    assert!(sink.delete_file_as_user("Main").is_err());
    assert!(sink.delete_folder_as_user("Main/2026-11/b.pdf").is_err());
}

#[tokio::test]
async fn writes_never_overwrite_and_leave_nothing_behind() {
    let sink = InMemorySink::new().with_quota(10);
    sink.create_folder(&p("F")).await.unwrap();
    let short = Body::new(4, stream::iter([Ok(Bytes::from_static(b"ab"))]).boxed());
    assert!(matches!(
        sink.write_file(&p("F/x"), short).await,
        Err(Error::Integrity { .. })
    ));
    assert!(!sink.exists("F/x"));
    sink.write_file(&p("F/x"), Body::from_bytes("12345"))
        .await
        .unwrap();
    let err = sink
        .write_file(&p("f/X"), Body::from_bytes("1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    let err = sink
        .write_file(&p("F/y"), Body::from_bytes("123456"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::QuotaExceeded {
                needed: 1,
                remaining: 5
            }
        ),
        "{err}"
    );
    assert!(!sink.exists("F/y"));
    let err = sink
        .write_file(&p("Missing/y"), Body::from_bytes("1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let err = sink
        .write_file(&p("F/bad:name"), Body::from_bytes("1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err}");
    assert_eq!(sink.files(), vec![(p("F/x"), b"12345".to_vec())]);
    let quota = sink.quota().await.unwrap().unwrap();
    assert_eq!((quota.total, quota.used, quota.remaining), (10, 5, 5));
}

#[tokio::test]
async fn weaker_sinks_keep_their_claims() {
    let sink = InMemorySink::new().without_ids().without_quota();
    let caps = sink.capabilities();
    assert!(!caps.stable_ids && !caps.delta && !caps.quota);
    seed(&sink).await;
    let folder = sink.id_of("Main/2026-11").unwrap();
    assert_eq!(folder.as_str(), "Main/2026-11");
    let renamed = sink
        .rename_folder(&folder, &p("Main/2026-11"), "Nov")
        .await
        .unwrap();
    assert_eq!(renamed.id.as_str(), "Main/Nov");
    assert_eq!(sink.quota().await.unwrap(), None);
    let scan = sink.scan(Some(&ScanCursor::new("anything"))).await.unwrap();
    assert!(matches!(scan, ScanUpdate::Full { cursor: None, .. }));
}

#[tokio::test]
async fn expired_or_foreign_cursors_fall_back_to_full() {
    let sink = InMemorySink::new();
    seed(&sink).await;
    let (_, cursor) = full(&sink).await;
    let other = InMemorySink::new();
    assert!(matches!(
        other.scan(Some(&cursor)).await.unwrap(),
        ScanUpdate::Full { .. }
    ));
    sink.expire_cursors();
    assert!(matches!(
        sink.scan(Some(&cursor)).await.unwrap(),
        ScanUpdate::Full { .. }
    ));
    let (_, fresh) = full(&sink).await;
    assert_eq!(changes(&sink, &fresh).await.0, vec![]);
    assert_eq!(sink.scans(), 4, "the other sink's scan is its own");
}

#[tokio::test]
async fn a_body_in_one_piece_is_kept_without_a_copy() {
    let sink = InMemorySink::new();
    let sent = Bytes::from_static(b"%PDF-1.7 one piece");
    let entry = sink
        .write_file(&p("r.pdf"), Body::from_bytes(sent.clone()))
        .await
        .unwrap();
    let id = sink.state().find(&entry.id).unwrap();
    let kept = sink.state().drive.node(id).unwrap().bytes.clone().unwrap();
    assert_eq!(kept.as_ptr(), sent.as_ptr(), "the sender's buffer, shared");

    // In several pieces it is joined; too long, it is refused like a short one.
    let pieces = [Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"cd"))];
    let joined = Body::new(4, stream::iter(pieces).boxed());
    sink.write_file(&p("j.pdf"), joined).await.unwrap();
    assert_eq!(sink.read("j.pdf").unwrap(), b"abcd");
    let long = Body::new(3, stream::iter([Ok(Bytes::from_static(b"abcd"))]).boxed());
    let err = sink.write_file(&p("l.pdf"), long).await.unwrap_err();
    assert!(matches!(err, Error::Integrity { .. }), "{err}");
    assert!(!sink.exists("l.pdf"));
}
