//! Scans against the stateful fake Graph: delta full → changes → 410 → full, tombstones,
//! items leaving the archive, the children listing, renames.
#![cfg(feature = "testkit")]

mod onedrive_support;

use onedrive_support::*;
use receipt_sync::model::{ArchiveSnapshot, Body, EntryKind, ScanUpdate, SinkChange};
use receipt_sync::sink::ArchiveSink;
use receipt_sync::testkit::fake_graph::{FakeGraph, FakeGraphConfig, Fault, FaultRule};

async fn seeded(graph: &FakeGraph) -> receipt_sync::sink::onedrive::OneDriveSink {
    let sink = sink(graph);
    sink.create_folder(&path("Main")).await.unwrap();
    sink.create_folder(&path("Main/2026-11")).await.unwrap();
    sink.create_folder(&path("Main/2026-12")).await.unwrap();
    for name in ["a.pdf", "b.pdf"] {
        let p = path(&format!("Main/2026-11/{name}"));
        sink.write_file(&p, Body::from_bytes(name.as_bytes().to_vec()))
            .await
            .unwrap();
    }
    sink
}

fn full(
    update: ScanUpdate,
) -> (
    Vec<receipt_sync::model::SinkEntry>,
    receipt_sync::model::ScanCursor,
) {
    match update {
        ScanUpdate::Full { entries, cursor } => (entries, cursor.expect("delta gives a cursor")),
        other => panic!("expected a full listing, got {other:?}"),
    }
}

fn changes(update: ScanUpdate) -> (Vec<SinkChange>, receipt_sync::model::ScanCursor) {
    match update {
        ScanUpdate::Changes { changes, cursor } => (changes, cursor),
        other => panic!("expected changes, got {other:?}"),
    }
}

#[tokio::test]
async fn delta_goes_full_then_changes_then_resyncs_to_full() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = seeded(&graph).await;
    let (entries, cursor) = full(sink.scan(None).await.unwrap());
    assert_eq!(entries.len(), 5, "{entries:?}");
    let mut snapshot = ArchiveSnapshot::from_entries(entries.clone());
    assert_eq!(snapshot.len(), 5, "every entry reaches the root");
    let main = entries.iter().find(|e| e.name == "Main").unwrap();
    assert_eq!(main.parent, None, "the root's children have no parent");
    assert!(
        !entries.iter().any(|e| e.name == "receipt-sync"),
        "the root itself is dropped"
    );

    // A user file appears: one change (plus unchanged ancestors reported as upserts).
    graph.add_user_file(&graph.app_path("Main/2026-12/user.txt"), b"mine".to_vec());
    graph.reset_requests();
    let update = sink.scan(Some(&cursor)).await.unwrap();
    snapshot.apply(&update);
    let (found, cursor) = changes(update);
    assert_eq!(graph.requests().total(), 1, "{:?}", graph.requests());
    assert!(found.iter().any(
        |c| matches!(c, SinkChange::Upsert(e) if e.name == "user.txt"
        && e.kind == EntryKind::File { size: 4 })
    ));
    assert_eq!(snapshot.len(), 6);

    // Nothing new: one request, no change.
    graph.reset_requests();
    let (none, cursor) = changes(sink.scan(Some(&cursor)).await.unwrap());
    assert!(none.is_empty(), "{none:?}");
    assert_eq!(graph.requests().total(), 1);

    // The token goes stale: 410 with a Location, answered by a fresh full listing.
    graph.require_resync();
    let (entries, cursor) = full(sink.scan(Some(&cursor)).await.unwrap());
    assert_eq!(entries.len(), 6);
    assert_eq!(graph.requests().matching("GET /items/{id}/delta"), 3);
    let (none, _) = changes(sink.scan(Some(&cursor)).await.unwrap());
    assert!(none.is_empty());
}

#[tokio::test]
async fn a_410_in_the_middle_of_a_listing_starts_over_and_pages_are_followed() {
    let config = FakeGraphConfig::default().with_page_sizes(200, 2, 1000);
    let graph = FakeGraph::start_with(config).await.unwrap();
    let sink = seeded(&graph).await;
    graph.inject(FaultRule::new("GET /items/{id}/delta", Fault::Resync).after(1));
    let (entries, _) = full(sink.scan(None).await.unwrap());
    assert_eq!(entries.len(), 5);
    assert!(graph.requests().matching("GET /items/{id}/delta") >= 4);
}

#[tokio::test]
async fn a_deleted_folder_is_reported_by_its_own_tombstone_only() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = seeded(&graph).await;
    let (entries, cursor) = full(sink.scan(None).await.unwrap());
    let mut snapshot = ArchiveSnapshot::from_entries(entries);
    let month = graph.id_of(&graph.app_path("Main/2026-11")).unwrap();
    assert!(graph.delete_as_user(&graph.app_path("Main/2026-11")));
    let update = sink.scan(Some(&cursor)).await.unwrap();
    snapshot.apply(&update);
    let (found, _) = changes(update);
    let removed: Vec<_> = found
        .iter()
        .filter_map(|c| match c {
            SinkChange::Removed(id) => Some(id.as_str().to_owned()),
            SinkChange::Upsert(_) => None,
        })
        .collect();
    assert_eq!(removed, [month], "only the folder's tombstone: {found:?}");
    assert_eq!(snapshot.len(), 2, "the files went with their folder");
}

#[tokio::test]
async fn cascading_tombstones_are_tolerated_too() {
    let graph = FakeGraph::start_with(FakeGraphConfig::default().with_cascade_tombstones(true))
        .await
        .unwrap();
    let sink = seeded(&graph).await;
    let (entries, cursor) = full(sink.scan(None).await.unwrap());
    let mut snapshot = ArchiveSnapshot::from_entries(entries);
    graph.delete_as_user(&graph.app_path("Main/2026-11"));
    let update = sink.scan(Some(&cursor)).await.unwrap();
    snapshot.apply(&update);
    let (found, _) = changes(update);
    assert_eq!(
        found
            .iter()
            .filter(|c| matches!(c, SinkChange::Removed(_)))
            .count(),
        3
    );
    assert_eq!(snapshot.len(), 2);
}

#[tokio::test]
async fn items_leaving_the_archive_are_removed_and_renames_follow_ids() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = seeded(&graph).await;
    let (entries, cursor) = full(sink.scan(None).await.unwrap());
    let mut snapshot = ArchiveSnapshot::from_entries(entries);
    let a = graph.id_of(&graph.app_path("Main/2026-11/a.pdf")).unwrap();
    let b = graph.id_of(&graph.app_path("Main/2026-11/b.pdf")).unwrap();
    graph.add_user_folder("Elsewhere");
    assert!(graph.move_as_user(&graph.app_path("Main/2026-11/a.pdf"), "Elsewhere"));
    assert!(graph.rename_as_user(&graph.app_path("Main/2026-11"), "November"));
    let update = sink.scan(Some(&cursor)).await.unwrap();
    snapshot.apply(&update);
    let (found, _) = changes(update);
    assert!(
        found.contains(&SinkChange::Removed(a.as_str().into())),
        "{found:?}"
    );
    assert_eq!(
        snapshot.path_of(&b.as_str().into()).unwrap().as_str(),
        "Main/November/b.pdf"
    );
    // The rename made the cached folder paths stale: one lookup by path, then the upload.
    graph.reset_requests();
    sink.write_file(&path("Main/November/c.pdf"), Body::from_bytes(&b"c"[..]))
        .await
        .unwrap();
    let log = graph.requests();
    assert_eq!(log.matching("GET /items/{id}:/{path}:"), 1, "{log:?}");
    assert_eq!(
        log.matching("PUT /items/{id}:/{path}:/content"),
        1,
        "{log:?}"
    );
    assert_eq!(log.total(), 2, "{log:?}");
}

#[tokio::test]
async fn the_children_listing_matches_delta() {
    let graph = FakeGraph::start_with(FakeGraphConfig::default().with_page_sizes(2, 200, 2))
        .await
        .unwrap();
    let with_delta = seeded(&graph).await;
    let (mut by_delta, _) = full(with_delta.scan(None).await.unwrap());
    let listing = builder(&graph.base_url())
        .with_delta(false)
        .build()
        .unwrap();
    assert!(!listing.capabilities().delta);
    let ScanUpdate::Full {
        entries: mut by_listing,
        cursor: None,
    } = listing.scan(None).await.unwrap()
    else {
        panic!("a listing is full, without a cursor");
    };
    by_delta.sort_by(|x, y| x.id.cmp(&y.id));
    by_listing.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(by_delta, by_listing);
    assert!(
        graph.requests().matching("GET /items/{id}/children") >= 4,
        "paged"
    );
}

#[tokio::test]
async fn renaming_a_folder_keeps_its_id() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = seeded(&graph).await;
    let id = graph.id_of(&graph.app_path("Main/2026-12")).unwrap();
    let entry = sink
        .rename_folder(&id.as_str().into(), &path("Main/2026-12"), "December")
        .await
        .unwrap();
    assert_eq!(entry.id.as_str(), id);
    assert_eq!(entry.name, "December");
    assert!(graph.id_of(&graph.app_path("Main/December")).is_some());
    let err = sink
        .rename_folder(&id.as_str().into(), &path("Main/December"), "2026-11")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), receipt_sync::ErrorKind::AlreadyExists);
    sink.write_file(&path("Main/December/x.pdf"), Body::from_bytes(&b"x"[..]))
        .await
        .unwrap();
    assert!(graph.file(&graph.app_path("Main/December/x.pdf")).is_some());
}
