//! `qonto-onedrive share`: sharing needs the one-time Files.ReadWrite grant (and says so),
//! a folder that does not exist is answered with those that do, a local archive cannot be
//! shared, and `--json` prints one document.
#![cfg(feature = "testkit")]

mod cli_support;

use cli_support::grant::{APP_FOLDER_ONLY, World};

const GRANT: &str = "qonto-onedrive login --grant-files-readwrite";

/// The fakes after a first sync, and the period folder it made (relative to the archive).
async fn synced() -> (World, String) {
    let w = World::start("receipt-sync", APP_FOLDER_ONLY).await;
    let run = w.run(&["sync"], &[], &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    let app = format!("{}/", w.graph.app_path(""));
    let file = w.files().into_iter().next().unwrap();
    let relative = file.strip_prefix(&app).unwrap().to_owned();
    let (folder, _) = relative.rsplit_once('/').unwrap();
    (w, folder.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_without_files_readwrite_names_the_grant_then_works_after_it() {
    let (w, folder) = synced().await;
    let refused = w.run(&["share", &folder], &[], &[]).await;
    assert_eq!(refused.code, 4, "{}", refused.all());
    assert!(
        refused.stderr.contains(&format!(
            "sharing needs the one-time Files.ReadWrite grant: run `{GRANT}`"
        )),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stderr.contains("2026"),
        "not the 2026 fault: {}",
        refused.stderr
    );

    let json = w.run(&["share", &folder, "--json"], &[], &[]).await;
    assert_eq!(json.code, 4, "{}", json.all());
    let doc: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(
        (doc["command"].as_str(), doc["exit_code"].as_u64()),
        (Some("share"), Some(4))
    );
    assert!(
        doc["error"]["message"].as_str().unwrap().contains(GRANT),
        "{doc}"
    );

    let login = w
        .run(
            &["login", "--device-code", "--grant-files-readwrite"],
            &[],
            &[],
        )
        .await;
    assert_eq!(login.code, 0, "{}", login.all());
    let shared = w.run(&["share", &folder], &[], &[]).await;
    assert_eq!(shared.code, 0, "{}", shared.all());
    assert!(shared.stdout.starts_with("https://"), "{}", shared.stdout);
    let json = w.run(&["share", &folder, "--json"], &[], &[]).await;
    assert_eq!(json.code, 0, "{}", json.all());
    let lines: Vec<&str> = json.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one document: {}", json.stdout);
    let doc: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(doc["command"], "share");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["folder"], folder.as_str());
    assert!(
        doc["link"]
            .as_str()
            .is_some_and(|l| l.starts_with("https://")),
        "{doc}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_folder_is_answered_with_the_folders_there_are() {
    let (w, folder) = synced().await;
    let (account, _) = folder.split_once('/').unwrap();
    let run = w.run(&["share", "Nope/2020-01"], &[], &[]).await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("no folder Nope/2020-01"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(account),
        "the account folder: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&folder),
        "the period folder: {}",
        run.stderr
    );
    assert!(!run.stderr.contains(".pdf"), "folders only: {}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_archive_cannot_be_shared() {
    let w = World::start("receipt-sync", APP_FOLDER_ONLY).await;
    let dir = w.home.path().join("archive");
    let dir = dir.to_str().unwrap();
    let synced = w.run(&["sync", "--local", dir], &[], &[]).await;
    assert_eq!(synced.code, 0, "{}", synced.all());
    let run = w.run(&["share", "Main", "--local", dir], &[], &[]).await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("--local"), "{}", run.stderr);
    assert!(run.stderr.contains("cannot share"), "{}", run.stderr);
    assert_eq!(w.graph.requests().total(), 0, "OneDrive was not asked");
}
