//! The demo (`cargo run --example demo`) runs here as a test: the same
//! code, included from `examples/demo/`, with its output captured and checked.
#![cfg(feature = "testkit")]

#[path = "../examples/demo/org.rs"]
mod org;
#[path = "../examples/demo/scenario.rs"]
mod scenario;

#[tokio::test]
async fn the_demo_exports_puts_a_deleted_file_back_and_respects_a_deleted_folder() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("demo-archive");
    // A leftover from an earlier run is cleared.
    std::fs::create_dir_all(copy.join("stale")).unwrap();
    std::fs::write(copy.join("stale/old.pdf"), b"old").unwrap();

    let mut out = Vec::new();
    let outcome = scenario::run(&copy, &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();

    assert!(outcome.complete, "{text}");
    assert_eq!(outcome.receipts, 12);
    // Every receipt but the deleted folder's three is in the archive, the deleted file
    // included (put back).
    assert_eq!(outcome.tombstoned, 3, "{text}");
    assert_eq!(outcome.archive.len(), outcome.receipts - 3, "{text}");
    assert!(outcome.archive.contains_key(&outcome.put_back), "{text}");
    assert!(outcome.put_back.contains("🍕 Pizza Napoli"));
    let folder = format!("{}/", outcome.deleted_folder);
    assert!(
        !outcome.archive.keys().any(|p| p.starts_with(&folder)),
        "{text}"
    );
    // The 5 MiB receipt went through an upload session.
    assert_eq!(outcome.upload_sessions, 1);

    // The copy on disk matches the drive, and nothing stale is left.
    assert!(!copy.join("stale").exists());
    for (path, size) in &outcome.archive {
        let file = path.split('/').fold(copy.clone(), |p, n| p.join(n));
        let meta = std::fs::metadata(&file).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(meta.len(), *size, "{path}");
    }
    assert!(!copy.join(&outcome.deleted_folder).exists());

    // The output shows each step's plan with its reasons, and the tree.
    for expected in [
        "== Step 1",
        "Plan: create-folder: 9, upload: 12",
        "(new receipt)",
        "its file was deleted from the archive, its folder was not: putting it back",
        "was deleted from the archive: its receipts stay out until a reset",
        "Plan: skip: already archived: 8, tombstone: 3, upload: put back: 1",
        "Archive (OneDrive, Apps/receipt-sync/):",
        "nothing else to do: every receipt is in place",
        // Awkward names, made valid for OneDrive.
        "AT&T_ roaming_data_",
        "Épargne _ Réserve",
        "Café de l'Été",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // The last sync reads little: no per-receipt or per-folder requests.
    let requests = text
        .lines()
        .find(|l| l.trim_start().starts_with("requests:"))
        .unwrap();
    assert_eq!(requests.trim(), "requests: 3 to Qonto, 1 to Graph");
}
