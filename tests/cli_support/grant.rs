//! The fakes for the sign-in and refusal tests of `qonto-onedrive`: a bank with three
//! receipts, a fake identity whose device codes are approved at the first poll, and a fake
//! Graph that knows each token's scopes through the identity's registry.

use super::Env;
use receipt_sync::testkit::fake_graph::{FakeGraph, FakeGraphConfig};
use receipt_sync::testkit::fake_identity::{FakeIdentity, FakeIdentityConfig};
use receipt_sync::testkit::fake_qonto::FakeQonto;
use receipt_sync::testkit::server::FakeServer;
use std::sync::Arc;
use std::time::Duration;

/// Scopes of a sign-in that asked for the app folder only.
pub const APP_FOLDER_ONLY: &[&str] = &["Files.ReadWrite.AppFolder", "offline_access"];

pub struct World {
    pub qonto: FakeQonto,
    pub graph: FakeGraph,
    pub identity: Arc<FakeIdentity>,
    pub login: FakeServer,
    pub refresh_token: String,
    pub home: tempfile::TempDir,
}

/// One run of the command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Everything it printed.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl World {
    /// The fakes, with an app folder named `app_name` and a refresh token for `scopes`.
    pub async fn start(app_name: &str, scopes: &[&str]) -> Self {
        let qonto = FakeQonto::start().await.unwrap();
        let account = qonto.add_account("Main");
        qonto.add_receipts(&account.id, 3, 2_000);
        let graph = FakeGraph::start_with(FakeGraphConfig::default().with_app_name(app_name))
            .await
            .unwrap();
        // Device codes approved at the first poll, one second after they are shown.
        let identity = FakeIdentity::new(FakeIdentityConfig::default().with_device_script(1, &[]));
        graph.check_token_scopes(identity.token_scopes());
        let login = FakeServer::start(identity.clone()).await.unwrap();
        let (_, refresh_token) = identity.issue_tokens(scopes);
        World {
            qonto,
            graph,
            identity,
            login,
            refresh_token,
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs the command with `env` added and the variables `removed` taken away; the
    /// outputs are shown (`--nocapture`) and never carry a secret.
    pub async fn run(&self, args: &[&str], env: &[(&str, &str)], removed: &[&str]) -> Run {
        let fakes = Env {
            qonto_url: self.qonto.url(),
            login_url: self.login.url(),
            graph_url: self.graph.base_url(),
            refresh_token: &self.refresh_token,
            home: self.home.path(),
        };
        let mut cmd = fakes.command(args).await;
        for (k, v) in env {
            cmd.env(k, v);
        }
        for k in removed {
            cmd.env_remove(k);
        }
        let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .expect("the command ends")
            .unwrap();
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!(
            "$ qonto-onedrive {}\n[exit {}]\n--- stdout\n{}--- stderr\n{}",
            args.join(" "),
            run.code,
            run.stdout,
            run.stderr
        );
        for secret in ["fake-secret-key", self.refresh_token.as_str()] {
            assert!(!run.all().contains(secret), "a secret was printed");
        }
        assert!(
            !run.all().contains("receipt-sync's sign-in command"),
            "a library placeholder instead of the command: {}",
            run.all()
        );
        run
    }

    /// The drive's files, by path from the drive root.
    pub fn files(&self) -> Vec<String> {
        self.graph.files().into_keys().collect()
    }
}
