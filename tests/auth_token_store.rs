//! FileTokenStore: owner-only permissions from creation, atomic replacement, a round trip,
//! a widened file narrowed back, a corrupt file refused without echoing it.

use receipt_sync::ErrorKind;
use receipt_sync::auth::SecretString;
use receipt_sync::auth::microsoft::{FileTokenStore, MicrosoftTokens, TokenStore};

fn tokens(tag: &str) -> MicrosoftTokens {
    MicrosoftTokens {
        access_token: SecretString::new(format!("AT-{tag}")),
        refresh_token: SecretString::new(format!("RT-{tag}")),
        expires_at: chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap(),
        scopes: vec!["Files.ReadWrite.AppFolder".into(), "offline_access".into()],
    }
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn round_trip_is_owner_only_and_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config").join("tokens.json");
    let store = FileTokenStore::new(&path);
    assert!(store.load().await.unwrap().is_none());

    store.save(&tokens("1")).await.unwrap();
    store.save(&tokens("2")).await.unwrap();
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.access_token.expose(), "AT-2");
    assert_eq!(loaded.refresh_token.expose(), "RT-2");
    assert_eq!(loaded.expires_at, tokens("2").expires_at);
    assert_eq!(loaded.scopes, tokens("2").scopes);
    #[cfg(unix)]
    {
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }
    // Only the token file is left: no temporary file behind.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["tokens.json"]);

    store.clear().await.unwrap();
    assert!(store.load().await.unwrap().is_none());
    store.clear().await.unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn a_file_readable_by_others_is_narrowed_on_load() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let store = FileTokenStore::new(&path);
    store.save(&tokens("1")).await.unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(store.load().await.unwrap().is_some());
    assert_eq!(mode(&path), 0o600);
}

#[tokio::test]
async fn a_corrupt_file_is_refused_without_quoting_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    std::fs::write(
        &path,
        r#"{"version":1,"tokens":{"access_token":"AT-LEAK","refresh_token":7}}"#,
    )
    .unwrap();
    let err = FileTokenStore::new(&path).load().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::State);
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("AT-LEAK"), "{shown}");
    assert!(shown.contains("sign in again"), "{shown}");

    std::fs::write(&path, r#"{"version":99,"tokens":{"access_token":"a","refresh_token":"r","expires_at":"2030-01-01T00:00:00Z","scopes":[]}}"#).unwrap();
    let err = FileTokenStore::new(&path).load().await.unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}
