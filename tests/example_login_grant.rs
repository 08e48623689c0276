//! `qonto-onedrive login` against Microsoft's 2026 refusal of app-folder-only apps: the
//! refusal names the fixing command, `login` checks the drive before it says "signed in",
//! `--grant-files-readwrite` repairs it, and the archive still goes only into the app folder.
#![cfg(feature = "testkit")]

mod cli_support;

use cli_support::grant::{APP_FOLDER_ONLY, World};

const GRANT: &str = "qonto-onedrive login --grant-files-readwrite";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2026_refusal_then_the_grant_then_a_sync_inside_the_app_folder() {
    let w = World::start("receipt-sync", APP_FOLDER_ONLY).await;
    cli_support::indexcmd::without_indexes(w.home.path());
    w.graph
        .refuse_app_folder_only_tokens(w.identity.token_scopes());

    let refused = w.run(&["sync"], &[], &[]).await;
    assert_eq!(refused.code, 4, "{}", refused.all());
    assert!(refused.stderr.contains(GRANT), "{}", refused.stderr);
    assert!(!refused.stderr.contains("QONTO"), "{}", refused.stderr);
    for args in [&["plan"][..], &["status"][..]] {
        let run = w.run(args, &[], &[]).await;
        assert!(run.stderr.contains(GRANT), "{args:?}: {}", run.stderr);
    }
    assert!(w.graph.app_folder_refusals() > 0);

    // Without the switch, and with no terminal to ask on, login checks the drive, meets
    // the refusal and says which command repairs it: never "signed in".
    let plain = w.run(&["login", "--device-code"], &[], &[]).await;
    assert_eq!(plain.code, 4, "{}", plain.all());
    assert!(plain.stderr.contains(GRANT), "{}", plain.stderr);
    assert!(!plain.stdout.contains("Signed in"), "{}", plain.stdout);

    let granted = w
        .run(
            &["login", "--device-code", "--grant-files-readwrite"],
            &[],
            &[],
        )
        .await;
    assert_eq!(granted.code, 0, "{}", granted.all());
    assert!(granted.stdout.contains("Signed in"), "{}", granted.stdout);
    assert!(
        granted
            .stdout
            .contains("Archive folder: https://onedrive.live.com/"),
        "the app folder's web address: {}",
        granted.stdout
    );

    let synced = w.run(&["sync"], &[], &[]).await;
    assert_eq!(synced.code, 0, "{}", synced.all());
    let files = w.files();
    assert_eq!(files.len(), 3, "{files:?}");
    let app = format!("{}/", w.graph.app_path(""));
    assert!(
        files.iter().all(|f| f.starts_with(&app)),
        "every file in the app folder: {files:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_checks_the_drive_and_prints_the_app_folder_address() {
    let w = World::start("receipt-sync", APP_FOLDER_ONLY).await;
    cli_support::indexcmd::without_indexes(w.home.path());
    let run = w.run(&["login", "--device-code", "--json"], &[], &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    let doc: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(doc["command"], "login");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["files_readwrite"], false);
    assert!(
        doc["archive_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://onedrive.live.com/")),
        "{doc}"
    );
    assert!(doc["space_left"].as_u64().is_some(), "{doc}");
    // The check itself opened the app folder.
    assert!(
        w.graph
            .requests()
            .per_route
            .keys()
            .any(|r| r.contains("/special/approot"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refuses_before_signing_in_when_it_cannot_save() {
    let w = World::start("receipt-sync", APP_FOLDER_ONLY).await;
    cli_support::indexcmd::without_indexes(w.home.path());
    // A home under a file: no folder can be made there, whoever runs the test.
    let file = w.home.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let home = file.join("home");
    let home = home.to_str().unwrap();
    let run = w
        .run(
            &["login", "--device-code"],
            &[("RECEIPT_SYNC_HOME", home)],
            &[],
        )
        .await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("cannot save the sign-in"),
        "{}",
        run.stderr
    );
    assert_eq!(w.login.requests().total(), 0, "nobody was asked to sign in");
}

/// On a terminal (a pseudo-terminal made by `script`), a plain `login` that meets the 2026
/// refusal asks whether to grant Files.ReadWrite, and on "y" signs in again with it.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_login_asks_and_grants_on_yes() {
    use std::process::Stdio;
    use tokio::io::AsyncWriteExt;

    let w = World::start("receipt-sync", APP_FOLDER_ONLY).await;

    cli_support::indexcmd::without_indexes(w.home.path());
    w.graph
        .refuse_app_folder_only_tokens(w.identity.token_scopes());
    let binary = cli_support::binary().await.to_str().unwrap().to_owned();
    let mut cmd = tokio::process::Command::new("script");
    cmd.args([
        "-q",
        "-e",
        "-c",
        &format!("'{binary}' login --device-code"),
        "/dev/null",
    ])
    .env("QONTO_LOGIN", "fake-org-1234")
    .env("QONTO_SECRET_KEY", "fake-secret-key")
    .env("QONTO_API_BASE", w.qonto.url())
    .env("MS_CLIENT_ID", "fake-client-id")
    .env("MS_LOGIN_BASE", w.login.url())
    .env("GRAPH_API_BASE", w.graph.base_url())
    .env("RECEIPT_SYNC_HOME", w.home.path())
    .env_remove("ONEDRIVE_REFRESH_TOKEN")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("script(1) runs");
    child.stdin.take().unwrap().write_all(b"y\n").await.unwrap();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("login ends")
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    eprintln!("$ qonto-onedrive login --device-code (on a terminal, answering y)\n{shown}");
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("grant Files.ReadWrite? [y/N]"), "{shown}");
    assert!(shown.contains("Files.ReadWrite granted"), "{shown}");
    assert!(shown.contains("Signed in"), "{shown}");

    let synced = w.run(&["sync"], &[], &["ONEDRIVE_REFRESH_TOKEN"]).await;
    assert_eq!(synced.code, 0, "{}", synced.all());
    let app = format!("{}/", w.graph.app_path(""));
    let files = w.files();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.iter().all(|f| f.starts_with(&app)), "{files:?}");
}
