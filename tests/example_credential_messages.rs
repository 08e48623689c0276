//! Every refusal of `qonto-onedrive` names whose credential it is and the exact command or
//! setting that fixes it: `qonto-onedrive login` (exit 4) for the Microsoft sign-in, the
//! Qonto variables (exit 3) for a refused API key, and never one for the other.
#![cfg(feature = "testkit")]

mod cli_support;

use cli_support::grant::{APP_FOLDER_ONLY, World};

const LOGIN: &str = "`qonto-onedrive login`";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_signed_in_exits_4_and_names_login_not_the_qonto_key() {
    let w = World::start("receipt-sync", APP_FOLDER_ONLY).await;
    for args in [&["sync"][..], &["plan"][..]] {
        let run = w.run(args, &[], &["ONEDRIVE_REFRESH_TOKEN"]).await;
        assert_eq!(run.code, 4, "{args:?}: {}", run.all());
        assert!(run.stderr.contains(LOGIN), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("QONTO"), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("Qonto"), "{args:?}: {}", run.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_consent_exits_4_and_names_login() {
    let w = World::start("receipt-sync", APP_FOLDER_ONLY).await;
    w.identity.revoke_consent();
    let run = w.run(&["sync"], &[], &[]).await;
    assert_eq!(run.code, 4, "{}", run.all());
    assert!(run.stderr.contains(LOGIN), "{}", run.stderr);
    assert!(!run.stderr.contains("QONTO"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_qonto_key_exits_3_and_names_the_key_not_login() {
    let w = World::start("receipt-sync", APP_FOLDER_ONLY).await;
    let run = w
        .run(&["sync"], &[("QONTO_SECRET_KEY", "wrong-key")], &[])
        .await;
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(run.stderr.contains("QONTO_SECRET_KEY"), "{}", run.stderr);
    assert!(run.stderr.contains("API key"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("qonto-onedrive login"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("wrong-key"), "{}", run.stderr);
}
