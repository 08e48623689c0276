//! OneDrive shows the `Apps` folder in the user's language (`Applications`,
//! `Aplicativos`…): after an archive's first sync, `qonto-onedrive` says where it is by its
//! web address; later syncs do not repeat it.
#![cfg(feature = "testkit")]

mod cli_support;

use cli_support::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_sync_prints_the_archive_web_address_and_later_ones_do_not() {
    let world = World::start().await;
    let (code, stdout, stderr) = world.sync().await;
    assert_eq!(code, 0, "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("Archive folder: "))
        .unwrap_or_else(|| panic!("an address on stderr: {stderr}"));
    assert!(line.contains("https://"), "a web address: {line}");
    // stdout keeps exactly the `--json` document.
    serde_json::from_str::<serde_json::Value>(&stdout).expect("one document on stdout");

    let (code, _, stderr) = world.sync().await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("Archive folder: "), "said once: {stderr}");
}
