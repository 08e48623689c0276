//! The app name the user registered (`--app-name` / `MS_APP_NAME`) names the app folder
//! `Apps/<name>/`, which counts in OneDrive's 400-character path limit: a long name makes
//! the archive's names shorter, so that every path fits.
#![cfg(feature = "testkit")]

mod cli_support;

use cli_support::grant::{APP_FOLDER_ONLY, World};
use receipt_sync::testkit::fake_qonto::NewTransaction;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_app_name_shortens_names_so_paths_stay_within_400() {
    let app_name = format!("Receipts archive {}", "x".repeat(222));
    let w = World::start(&app_name, APP_FOLDER_ONLY).await;
    cli_support::indexcmd::without_indexes(w.home.path());
    // Long names everywhere: the account's and the labels'.
    let account = w.qonto.add_account(&"Compte courant principal ".repeat(4));
    for i in 0..3 {
        let label = format!("{} {i}", "Fournisseur de services informatiques ".repeat(3));
        let tx = w
            .qonto
            .add_transaction(&account.id, NewTransaction::debit(1_000 + i, &label));
        w.qonto.add_attachment(
            &tx,
            &format!("long-{i}.pdf"),
            "application/pdf",
            vec![i as u8; 500],
        );
    }
    let run = w.run(&["sync"], &[("MS_APP_NAME", &app_name)], &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    let files = w.files();
    assert_eq!(files.len(), 6, "{files:?}");
    for path in &files {
        assert!(path.starts_with(&format!("Apps/{app_name}/")), "{path}");
        assert!(
            path.encode_utf16().count() < 400,
            "{} units: {path}",
            path.encode_utf16().count()
        );
    }
}
