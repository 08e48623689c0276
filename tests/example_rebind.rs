//! A state belongs to one archive: `qonto-onedrive` refuses another one (exit 2, before
//! any request), says how to use a separate home or to rebind, and `sync --rebind`
//! moves the state: the new archive gets every receipt once, nothing is tombstoned,
//! the old archive is left as it was. A home of the previous release (its
//! `archive-place` sentence) keeps working.
#![cfg(feature = "testkit")]

mod cli_support;

use cli_support::{World, assert_archived_once};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every file under `dir`, with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

async fn sync(world: &World, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let mut args = vec!["sync", "--json"];
    args.extend_from_slice(extra);
    let out = world.env().command(&args).await.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("one JSON document ({e}): {stderr}"));
    (out.status.code().unwrap_or(-1), doc, stderr)
}

fn done(doc: &serde_json::Value, kind: &str) -> u64 {
    doc["done"][kind].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn a_state_bound_to_a_folder_refuses_onedrive_until_rebound() {
    let world = World::start().await;
    cli_support::indexcmd::without_indexes(world.home.path());
    let local = tempfile::tempdir().unwrap();
    let dir = local.path().to_str().unwrap();
    let (code, doc, stderr) = sync(&world, &["--local", dir]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(done(&doc, "upload"), 60);
    let before = tree(local.path());
    assert_eq!(before.len(), 60);

    // OneDrive with the same home: refused, before any request.
    world.qonto.reset_requests();
    world.graph.reset_requests();
    let (code, doc, stderr) = sync(&world, &[]).await;
    assert_eq!(code, 2, "{stderr}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("RECEIPT_SYNC_HOME="), "{message}");
    assert!(message.contains("sync --rebind"), "{message}");
    assert!(message.contains(dir), "names the bound folder: {message}");
    assert_eq!(world.graph.requests().total(), 0);
    assert_eq!(world.qonto.api_requests().total(), 0);
    assert!(world.archived().is_empty(), "nothing written");

    // The explicit rebind: every receipt once in OneDrive, nothing tombstoned.
    let (code, doc, stderr) = sync(&world, &["--rebind"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(done(&doc, "tombstone"), 0, "{doc}");
    assert_eq!(done(&doc, "upload"), 60, "{doc}");
    assert_archived_once(&world);
    assert_eq!(tree(local.path()), before, "the local archive is untouched");

    // Bound to OneDrive now: a plain sync has nothing to do, the folder is refused.
    let (code, doc, stderr) = sync(&world, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(done(&doc, "upload") + done(&doc, "tombstone"), 0, "{doc}");
    let (code, _, stderr) = sync(&world, &["--local", dir]).await;
    assert_eq!(code, 2, "{stderr}");
    // A rebind to where the state already is changes nothing.
    let (code, doc, stderr) = sync(&world, &["--rebind"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(done(&doc, "upload") + done(&doc, "adopt"), 0, "{doc}");
    assert_archived_once(&world);
}

#[tokio::test]
async fn a_rebind_adopts_what_the_new_archive_already_holds() {
    let world = World::start().await;
    cli_support::indexcmd::without_indexes(world.home.path());
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let (code, _, stderr) = sync(&world, &["--local", first.path().to_str().unwrap()]).await;
    assert_eq!(code, 0, "{stderr}");
    // The user copies the archive elsewhere and moves the state to the copy.
    for (path, bytes) in tree(first.path()) {
        let to = second.path().join(path.strip_prefix(first.path()).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, bytes).unwrap();
    }
    let copy = second.path().to_str().unwrap();
    let (code, doc, stderr) = sync(&world, &["--local", copy, "--rebind"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(done(&doc, "adopt"), 60, "{doc}");
    assert_eq!(done(&doc, "upload") + done(&doc, "tombstone"), 0, "{doc}");
    assert_eq!(tree(second.path()).len(), 60);
}

#[tokio::test]
async fn a_home_of_the_previous_release_keeps_syncing() {
    let mut world = World::start().await;
    cli_support::indexcmd::without_indexes(world.home.path());
    let (code, _, stderr) = sync(&world, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    // The home as the previous release left it: the sentence, no binding.
    let home = world.home.path().to_path_buf();
    std::fs::remove_file(home.join("archive-binding.json")).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy-home");
    std::fs::copy(fixture.join("archive-place"), home.join("archive-place")).unwrap();

    world.add_receipt(1234);
    let (code, doc, stderr) = sync(&world, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(done(&doc, "upload"), 1, "{doc}");
    assert_eq!(done(&doc, "tombstone"), 0, "{doc}");
    assert_archived_once(&world);
    // The sentence is replaced by the precise binding.
    assert!(!home.join("archive-place").exists());
    let binding: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("archive-binding.json")).unwrap())
            .unwrap();
    assert_eq!(binding["kind"], "onedrive");
    assert_eq!(binding["drive_id"], world.graph.drive_id().as_str());

    // A sentence naming another place is still refused, before any request.
    std::fs::remove_file(home.join("archive-binding.json")).unwrap();
    std::fs::write(home.join("archive-place"), "the folder /elsewhere\n").unwrap();
    world.graph.reset_requests();
    let (code, doc, _) = sync(&world, &[]).await;
    assert_eq!(code, 2);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/elsewhere")
    );
    assert_eq!(world.graph.requests().total(), 0);
}

#[tokio::test]
async fn deleting_the_whole_app_folder_follows_the_deletion_rules() {
    let world = World::start().await;
    cli_support::indexcmd::without_indexes(world.home.path());
    let (code, _, stderr) = sync(&world, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    // The app folder is deleted with every account folder in it; OneDrive makes a new
    // one, with another id, at the next request. It is the same app's folder in the same
    // drive: the same archive, whose folders the user deleted.
    assert!(world.graph.delete_as_user(&world.graph.app_path("")));
    let (code, doc, stderr) = sync(&world, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(done(&doc, "upload"), 0, "{doc}");
    assert_eq!(done(&doc, "tombstone"), 60, "{doc}");
    assert!(world.archived().is_empty(), "nothing put back");
    // And it stays so, until a reset.
    let (code, doc, stderr) = sync(&world, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(done(&doc, "upload"), 0, "{doc}");
    assert!(world.archived().is_empty(), "nothing put back");
}
