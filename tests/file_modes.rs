//! What the crate keeps on disk for itself (the state's folder and files, the token file)
//! is its owner's only whatever the umask: new folders 0700, new files 0600, and a state
//! folder or file found wider is narrowed when the store opens it. The checks run in a
//! child process (this test binary, run again) started under `umask 000`, the umask that
//! would otherwise make everything readable and writable by everyone.
#![cfg(unix)]

use receipt_sync::auth::SecretString;
use receipt_sync::auth::microsoft::{FileTokenStore, MicrosoftTokens, TokenStore};
use receipt_sync::state::{
    JsonFileStateStore, Settled, SettledKey, StateChange, StateHead, StateStore, SyncState,
};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Set in the child: the folder to work in.
const CHILD: &str = "FILE_MODES_CHILD";
/// What the child prints once every check passed.
const DONE: &str = "CHILD-CHECKED-ALL";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn assert_mode(path: &Path, expected: u32) {
    assert_eq!(
        mode(path),
        expected,
        "{} is {:o}, not {expected:o}",
        path.display(),
        mode(path)
    );
}

fn widen(path: &Path, to: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(to)).unwrap();
    assert_mode(path, to);
}

fn tokens() -> MicrosoftTokens {
    MicrosoftTokens {
        access_token: SecretString::new("AT"),
        refresh_token: SecretString::new("RT"),
        expires_at: chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap(),
        scopes: vec!["offline_access".into()],
    }
}

/// The child's part (a no-op unless this binary was started as the child).
#[tokio::test]
async fn child_checks_modes_under_umask_000() {
    let Some(dir) = std::env::var_os(CHILD) else {
        return;
    };
    let dir = Path::new(&dir);

    // The umask really is 000 here: a plain new file is 0666, a plain new folder 0777.
    std::fs::write(dir.join("probe"), b"").unwrap();
    assert_mode(&dir.join("probe"), 0o666);
    std::fs::create_dir(dir.join("probe-folder")).unwrap();
    assert_mode(&dir.join("probe-folder"), 0o777);

    // A new state: its folder (and the missing one above it) and every file.
    let store = JsonFileStateStore::new(dir.join("new").join("state"));
    let lock = store.lock().await.unwrap();
    store.save(&SyncState::default()).await.unwrap();
    store
        .record(&[StateChange::ReceiptsSeen(Vec::new())])
        .await
        .unwrap();
    let settled = Settled {
        head: StateHead::default(),
        key: SettledKey::of(&"modes"),
        skipped: Default::default(),
        catalog: Default::default(),
        echoes: Default::default(),
    };
    store.save_settled(&settled).await.unwrap();
    assert_mode(&dir.join("new"), 0o700);
    assert_mode(&dir.join("new").join("state"), 0o700);
    let files = [
        store.state_path(),
        store.journal_path(),
        store.lock_path(),
        store.settled_path(),
        store.catalog_path(),
    ];
    for file in &files {
        assert_mode(file, 0o600);
    }
    drop(lock);

    // An existing state made wide (by hand, or by a version that followed the umask) is
    // narrowed by what a sync does first: lock, then load.
    let state_dir = dir.join("new").join("state");
    widen(&state_dir, 0o777);
    for file in &files {
        widen(file, 0o666);
    }
    let reopened = JsonFileStateStore::new(&state_dir);
    let _lock = reopened.lock().await.unwrap();
    let summary = reopened.load_settled().await.unwrap();
    assert_eq!(summary, Some(settled), "the summary is read back");
    reopened.load().await.unwrap().expect("the state is there");
    assert_mode(&state_dir, 0o700);
    for file in &files {
        assert_mode(file, 0o600);
    }

    // The token store: a new folder 0700 (each one it creates), the file 0600, and a file
    // made wide is narrowed when it is loaded.
    let token_path = dir.join("config").join("receipt-sync").join("tokens.json");
    let token_store = FileTokenStore::new(&token_path);
    token_store.save(&tokens()).await.unwrap();
    assert_mode(&dir.join("config"), 0o700);
    assert_mode(token_path.parent().unwrap(), 0o700);
    assert_mode(&token_path, 0o600);
    widen(&token_path, 0o666);
    token_store
        .load()
        .await
        .unwrap()
        .expect("the tokens are there");
    assert_mode(&token_path, 0o600);

    println!("{DONE}");
}

#[test]
fn state_and_token_files_are_owner_only_under_umask_000() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("sh")
        .args(["-c", "umask 000; exec \"$0\" \"$@\""])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_checks_modes_under_umask_000",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(DONE),
        "the child's checks failed:\n{stdout}\n{stderr}"
    );
}
