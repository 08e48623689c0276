//! An unusable `RECEIPT_SYNC_HOME` is a configuration error (exit 2), found at start,
//! before any request reaches Qonto, Microsoft or OneDrive; a missing one is created,
//! owner-only.
#![cfg(feature = "testkit")]

mod cli_support;

use cli_support::{Env, World};
use std::path::Path;

/// Requests served by every fake.
fn requests(world: &World) -> u64 {
    world.qonto.api_requests().total()
        + world.qonto.download_requests().total()
        + world.graph.requests().total()
        + world.login.requests().total()
}

fn env_with_home<'a>(world: &'a World, home: &'a Path) -> Env<'a> {
    Env {
        home,
        ..world.env()
    }
}

/// Every command, with what it needs to get past its own arguments.
const COMMANDS: &[&[&str]] = &[
    &["sync"],
    &["sync", "--local", "archive"],
    &["plan"],
    &["status"],
    &["reset", "--yes"],
    &["share", "Main"],
    &["login", "--device-code"],
    &["disconnect"],
    &["daemon"],
];

async fn assert_refused_before_any_request(world: &World, home: &Path, why: &str) {
    for args in COMMANDS {
        let mut args = args.to_vec();
        args.push("--json");
        let out = env_with_home(world, home)
            .command(&args)
            .await
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} ({why}): {stderr}");
        assert!(stderr.contains("RECEIPT_SYNC_HOME"), "{args:?}: {stderr}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["error"]["kind"], "Config", "{doc}");
        assert_eq!(requests(world), 0, "{args:?} ({why}) reached a fake");
    }
}

#[tokio::test]
async fn a_file_in_the_home_path_is_a_configuration_error_found_before_any_request() {
    let world = World::start().await;
    let file = world.home.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    world.qonto.reset_requests();
    world.graph.reset_requests();
    world.login.reset_requests();
    assert_refused_before_any_request(&world, &file.join("home"), "a file in the path").await;
    assert_refused_before_any_request(&world, &file, "a file as the home").await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_home_without_write_permission_is_a_configuration_error() {
    use std::os::unix::fs::PermissionsExt;
    let world = World::start().await;
    let home = world.home.path().join("read-only");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o500)).unwrap();
    // Root writes anywhere: permissions cannot be tested then.
    if std::fs::write(home.join("probe"), "").is_ok() {
        eprintln!("running as root: permissions are not enforced, nothing to test");
        return;
    }
    world.qonto.reset_requests();
    world.graph.reset_requests();
    world.login.reset_requests();
    assert_refused_before_any_request(&world, &home, "no permission").await;
}

#[tokio::test]
async fn a_missing_home_is_created_for_its_owner_only() {
    let world = World::start().await;
    let home = world.home.path().join("new").join("home");
    let out = env_with_home(&world, &home)
        .command(&["disconnect"])
        .await
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(home.is_dir());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&home).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    }
    let left: Vec<_> = std::fs::read_dir(&home).unwrap().collect();
    assert!(left.is_empty(), "the write check leaves nothing: {left:?}");
}
