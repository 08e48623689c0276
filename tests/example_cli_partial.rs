//! The `qonto-onedrive` example when one bank account cannot be read: the others are
//! archived, and the exit code says "partial" (1), not "bad credentials".
#![cfg(feature = "testkit")]

mod cli_support;

use cli_support::{World, assert_archived_once};
use receipt_sync::testkit::fake_qonto::Fault;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_unreadable_account_exits_1_and_the_other_is_archived() {
    let world = World::start().await;
    cli_support::indexcmd::without_indexes(world.home.path());
    // Whichever account asks first gets a login page instead of its transactions.
    world.qonto.inject("GET /v2/transactions", Fault::HtmlPage);
    let (code, stdout, stderr) = world.sync().await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("1 bank account(s) could not be read in full"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["complete"], false);
    assert_eq!(report["exit_code"], 1);
    let unread = report["unread_accounts"]
        .as_array()
        .expect("unread accounts listed");
    assert_eq!(unread.len(), 1, "{report}");
    assert_eq!(unread[0]["kind"], "Unauthorized", "{report}");
    // The accounts share the receipts half and half; one account's half is in.
    assert_eq!(world.archived().len(), world.expected.len() / 2);

    let (code, stdout, stderr) = world.sync().await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_archived_once(&world);
}
