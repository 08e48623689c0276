//! A full disk while a rotated Microsoft token is saved is `DiskFull` (it stops the sync and
//! says to free space), not a bare I/O error, and the tokens saved before stay whole. The
//! disk fills for real: the save runs in a child process (this test binary, run again)
//! whose file-size limit is 0 (`ulimit -f 0`, with `SIGXFSZ` ignored, so a write fails
//! with `EFBIG` as it would with `ENOSPC`).
#![cfg(unix)]

use receipt_sync::auth::SecretString;
use receipt_sync::auth::microsoft::{FileTokenStore, MicrosoftTokens, TokenStore};
use std::path::Path;

/// Set in the child: the token file to save to.
const CHILD: &str = "TOKEN_STORE_DISK_FULL_CHILD";

fn tokens(tag: &str) -> MicrosoftTokens {
    MicrosoftTokens {
        access_token: SecretString::new(format!("AT-{tag}")),
        refresh_token: SecretString::new(format!("RT-{tag}")),
        expires_at: chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap(),
        scopes: vec!["Files.ReadWrite.AppFolder".into(), "offline_access".into()],
    }
}

/// The child's part (a no-op unless this binary was started as the child).
#[tokio::test]
async fn child_saves_on_a_full_disk() {
    let Some(path) = std::env::var_os(CHILD) else {
        return;
    };
    match FileTokenStore::new(Path::new(&path))
        .save(&tokens("new"))
        .await
    {
        Ok(()) => println!("CHILD-SAVED"),
        Err(error) => println!("CHILD-ERROR {:?} {error}", error.kind()),
    }
}

#[tokio::test]
async fn a_full_disk_while_saving_tokens_is_disk_full_and_keeps_the_old_ones() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let store = FileTokenStore::new(&path);
    store.save(&tokens("old")).await.unwrap();

    let script = "trap '' XFSZ; ulimit -f 0; exec \"$0\" \"$@\"";
    let out = tokio::process::Command::new("sh")
        .args(["-c", script])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_saves_on_a_full_disk",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, &path)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), out)
        .await
        .expect("the child ends")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the child did not panic: {stdout}");
    assert!(
        stdout.contains("CHILD-ERROR DiskFull"),
        "a full disk is DiskFull: {stdout}"
    );
    assert!(stdout.contains("free up space"), "{stdout}");
    assert!(
        !stdout.contains("RT-new"),
        "no token in the error: {stdout}"
    );

    let kept = store.load().await.unwrap().expect("the old tokens");
    assert_eq!(kept.refresh_token.expose(), "RT-old");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "tokens.json")
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary file is left: {leftovers:?}"
    );
}
