//! The `qonto-onedrive` example keeps its secrets secret: its settings print them as
//! `[redacted]` in `Debug`, and a run with every log at TRACE (`RUST_LOG=trace`, which also
//! brings in reqwest's `log` records) prints none of them, nor a pre-signed URL, on stdout
//! or stderr, whether the run succeeds or fails.
#![cfg(feature = "testkit")]

mod cli_support;

#[allow(dead_code)]
#[path = "../examples/qonto_onedrive/setup.rs"]
mod setup;

use clap::Parser;
use cli_support::Env;
use receipt_sync::auth::SecretString;
use receipt_sync::auth::microsoft::{FileTokenStore, TokenStore};
use receipt_sync::testkit::fake_graph::FakeGraph;
use receipt_sync::testkit::fake_identity::{FakeIdentity, FakeIdentityConfig};
use receipt_sync::testkit::fake_qonto::{FakeQonto, FakeQontoConfig, NewTransaction};
use receipt_sync::testkit::server::FakeServer;
use std::time::Duration;

const LOGIN: &str = "fake-org-1234";
const SECRET_KEY: &str = "qsk_cli_R4nD0mK3y9wT2xV7bN5mQ8";
const WRONG_KEY: &str = "qsk_cli_wrong_H6gF5dS4aP3";
const STAGING_TOKEN: &str = "stg_cli_M1nB2vC3xZ4lK5jH6";

/// The example's settings, parsed as its command line parses them.
#[derive(Parser, Debug)]
struct Settings {
    #[command(flatten)]
    qonto: setup::QontoArgs,
    #[command(flatten)]
    onedrive: setup::OneDriveArgs,
}

#[test]
fn the_settings_show_no_secret_in_debug() {
    let settings = Settings::try_parse_from([
        "qonto-onedrive",
        "--qonto-login",
        LOGIN,
        "--qonto-secret-key",
        SECRET_KEY,
        "--qonto-staging-token",
        STAGING_TOKEN,
        "--onedrive-refresh-token",
        "M.C512_refresh_token_from_the_command_line",
    ])
    .unwrap();
    // And as the commands hold them.
    let env = setup::Env::default()
        .with_qonto(settings.qonto.clone())
        .with_onedrive(settings.onedrive.clone());
    let shown = format!("{settings:?} {settings:#?} {env:?}");
    for secret in [
        SECRET_KEY,
        STAGING_TOKEN,
        "M.C512_refresh_token_from_the_command_line",
    ] {
        assert!(!shown.contains(secret), "{secret} is in {shown}");
    }
    assert!(shown.contains("[redacted]"), "{shown}");
    // The values themselves are intact, for the connectors.
    assert_eq!(exposed(&settings.qonto.qonto_secret_key), SECRET_KEY);
    assert_eq!(exposed(&settings.qonto.qonto_staging_token), STAGING_TOKEN);
    assert_eq!(
        exposed(&settings.onedrive.onedrive_refresh_token),
        "M.C512_refresh_token_from_the_command_line"
    );
}

/// A parsed secret's value.
fn exposed<T: Clone + Into<SecretString>>(value: &Option<T>) -> String {
    let secret: SecretString = value.clone().expect("parsed").into();
    secret.expose().to_owned()
}

struct Fakes {
    qonto: FakeQonto,
    graph: FakeGraph,
    identity: std::sync::Arc<FakeIdentity>,
    login: FakeServer,
    access_token: String,
    refresh_token: String,
    home: tempfile::TempDir,
}

impl Fakes {
    /// A sandbox-like Qonto (staging token required), three small receipts and one over
    /// the simple-upload limit (an upload session), a Microsoft sign-in and a drive.
    async fn start() -> Self {
        let mut config = FakeQontoConfig::default();
        config.login = LOGIN.to_owned();
        config.secret_key = SECRET_KEY.to_owned();
        config.staging_token = Some(STAGING_TOKEN.to_owned());
        let qonto = FakeQonto::start_with(config).await.unwrap();
        let account = qonto.add_account("Main");
        qonto.add_receipts(&account.id, 3, 2_000);
        let big = qonto.add_transaction(&account.id, NewTransaction::debit(42_000, "Big one"));
        qonto.add_attachment(&big, "big.pdf", "application/pdf", vec![b'%'; 5 << 20]);
        let graph = FakeGraph::start().await.unwrap();
        let identity = FakeIdentity::new(FakeIdentityConfig::default());
        let login = FakeServer::start(identity.clone()).await.unwrap();
        let (access_token, refresh_token) =
            identity.issue_tokens(&["Files.ReadWrite.AppFolder", "offline_access"]);
        Fakes {
            qonto,
            graph,
            identity,
            login,
            access_token,
            refresh_token,
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs the example with `args` under `RUST_LOG=trace`; its exit code and everything
    /// it printed.
    async fn run(&self, args: &[&str], extra_env: &[(&str, &str)]) -> (i32, String) {
        let env = Env {
            qonto_url: self.qonto.url(),
            login_url: self.login.url(),
            graph_url: self.graph.base_url(),
            refresh_token: &self.refresh_token,
            home: self.home.path(),
        };
        let mut command = env.command(args).await;
        command
            .env("QONTO_SECRET_KEY", SECRET_KEY)
            .env("QONTO_STAGING_TOKEN", STAGING_TOKEN)
            .env("RUST_LOG", "trace");
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let out = tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .expect("the command ends")
            .unwrap();
        let printed = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), printed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_at_trace_print_no_secret() {
    let fakes = Fakes::start().await;
    let mut printed = Vec::new();
    for (args, env, expected) in [
        (&["sync", "--json"][..], &[][..], 0),
        (&["sync"][..], &[][..], 0),
        (&["plan", "--json"][..], &[][..], 0),
        (&["status"][..], &[][..], 0),
        // Refused credentials: the error path, with its own secret.
        (&["sync"][..], &[("QONTO_SECRET_KEY", WRONG_KEY)][..], 3),
    ] {
        let (code, text) = fakes.run(args, env).await;
        assert_eq!(code, expected, "{args:?}: {text}");
        printed.push(text);
    }
    // Consent withdrawn, and the saved access token out of date: the next run refreshes,
    // is refused, and says so.
    let store = FileTokenStore::new(fakes.home.path().join("onedrive-tokens.json"));
    let saved = store
        .load()
        .await
        .unwrap()
        .expect("the rotated tokens were saved");
    let mut stale = saved.clone();
    stale.expires_at = chrono::Utc::now() - chrono::Duration::minutes(5);
    store.save(&stale).await.unwrap();
    fakes.identity.revoke_consent();
    let (code, text) = fakes.run(&["sync"], &[]).await;
    assert_eq!(code, 4, "revoked consent: {text}");
    printed.push(text);

    // The runs took the paths this test is about.
    assert!(
        fakes.graph.requests().matching("PUT /upload") >= 1,
        "a session"
    );
    assert!(fakes.qonto.download_requests().matching("GET /s3/") >= 4);
    assert_ne!(saved.refresh_token.expose(), fakes.refresh_token, "rotated");
    let printed = printed.join("\n");
    assert!(
        printed.contains("TRACE") && printed.contains("reqwest::connect"),
        "TRACE events and reqwest's log records are printed"
    );

    let secrets = [
        SECRET_KEY.to_owned(),
        format!("{LOGIN}:{SECRET_KEY}"),
        WRONG_KEY.to_owned(),
        STAGING_TOKEN.to_owned(),
        fakes.access_token.clone(),
        fakes.refresh_token.clone(),
        saved.access_token.expose().to_owned(),
        saved.refresh_token.expose().to_owned(),
        "X-Amz-Signature".to_owned(),
        format!("{}/s3/", fakes.qonto.download_url()),
        format!("{}/upload/", fakes.graph.upload_server().url()),
    ];
    for secret in &secrets {
        assert!(!secret.is_empty());
        assert!(!printed.contains(secret.as_str()), "{secret:?} was printed");
    }
}
