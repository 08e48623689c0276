//! The `qonto-onedrive` example as a process, for the tests that run it.
#![allow(dead_code)]

use receipt_sync::testkit::fake_graph::FakeGraph;
use receipt_sync::testkit::fake_identity::{FakeIdentity, FakeIdentityConfig};
use receipt_sync::testkit::fake_qonto::{FakeAccount, FakeQonto, NewTransaction};
use receipt_sync::testkit::server::FakeServer;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::OnceCell;

static BINARY: OnceCell<PathBuf> = OnceCell::const_new();

/// Builds the example (a no-op when it is fresh) and returns its path.
pub async fn binary() -> &'static Path {
    BINARY
        .get_or_init(|| async {
            let status = tokio::process::Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--quiet",
                    "--example",
                    "qonto-onedrive",
                    "--features",
                    "testkit",
                ])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .await
                .expect("cargo runs");
            assert!(status.success(), "building the example failed");
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
            target
                .join("debug/examples/qonto-onedrive")
                .with_extension(std::env::consts::EXE_EXTENSION)
        })
        .await
}

/// The example's command with the environment pointing at the fakes.
pub struct Env<'a> {
    pub qonto_url: String,
    pub login_url: String,
    pub graph_url: String,
    pub refresh_token: &'a str,
    pub home: &'a Path,
}

impl Env<'_> {
    pub async fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(binary().await);
        cmd.args(args)
            .env_clear()
            .env("QONTO_LOGIN", "fake-org-1234")
            .env("QONTO_SECRET_KEY", "fake-secret-key")
            .env("QONTO_API_BASE", &self.qonto_url)
            .env("MS_CLIENT_ID", "fake-client-id")
            .env("MS_LOGIN_BASE", &self.login_url)
            .env("GRAPH_API_BASE", &self.graph_url)
            .env("ONEDRIVE_REFRESH_TOKEN", self.refresh_token)
            .env("RECEIPT_SYNC_HOME", self.home);
        cmd
    }
}

/// The fakes the example runs against, on loopback in the test process, with a bank
/// of receipts whose bytes are unique to each.
pub struct World {
    pub qonto: FakeQonto,
    pub accounts: Vec<FakeAccount>,
    pub graph: FakeGraph,
    pub login: FakeServer,
    pub refresh_token: String,
    pub home: tempfile::TempDir,
    /// Every receipt's bytes, unique to it.
    pub expected: Vec<Vec<u8>>,
}

impl World {
    /// The fakes, with 60 receipts (one of 5 MiB) over two accounts.
    pub async fn start() -> Self {
        let qonto = FakeQonto::start().await.unwrap();
        // Some latency, so that a run lasts long enough to be killed at every step.
        qonto.set_latency(Duration::from_millis(2));
        let accounts = vec![qonto.add_account("Main"), qonto.add_account("Travel")];
        let graph = FakeGraph::start().await.unwrap();
        graph.api_server().set_latency(Duration::from_millis(2));
        graph.upload_server().set_latency(Duration::from_millis(2));
        let identity = FakeIdentity::new(FakeIdentityConfig::default());
        let login = FakeServer::start(identity.clone()).await.unwrap();
        let (_, refresh_token) =
            identity.issue_tokens(&["Files.ReadWrite.AppFolder", "offline_access"]);
        let mut world = World {
            qonto,
            accounts,
            graph,
            login,
            refresh_token,
            home: tempfile::tempdir().unwrap(),
            expected: Vec::new(),
        };
        for i in 0..60 {
            // One receipt above the 4 MiB simple-upload limit: an upload session.
            let size = if i == 7 {
                5 * 1024 * 1024
            } else {
                800 + 311 * i
            };
            world.add_receipt(size);
        }
        world
    }

    /// A new receipt of `size` bytes at the bank.
    pub fn add_receipt(&mut self, size: usize) {
        let n = self.expected.len();
        let account = &self.accounts[n % self.accounts.len()];
        // Awkward labels, to go through the name rules.
        let label = format!("Café: {n}/4 <ok>? ");
        let tx = self
            .qonto
            .add_transaction(&account.id, NewTransaction::debit(100 + n as i64, &label));
        let mut bytes = format!("receipt {n};").into_bytes();
        bytes.resize(size.max(bytes.len()), b'.');
        self.qonto
            .add_attachment(&tx, &format!("r{n}.pdf"), "application/pdf", bytes.clone());
        self.expected.push(bytes);
    }

    /// The example's environment.
    pub fn env(&self) -> Env<'_> {
        Env {
            qonto_url: self.qonto.url(),
            login_url: self.login.url(),
            graph_url: self.graph.base_url(),
            refresh_token: &self.refresh_token,
            home: self.home.path(),
        }
    }

    /// A `sync --json` run to its end: exit code, stdout, stderr.
    pub async fn sync(&self) -> (i32, String, String) {
        let out = tokio::time::timeout(
            Duration::from_secs(120),
            self.env().command(&["sync", "--json"]).await.output(),
        )
        .await
        .expect("a clean sync ends")
        .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The files in the app folder, with their bytes.
    pub fn archived(&self) -> Vec<(String, Vec<u8>)> {
        let root = format!("{}/", self.graph.app_path(""));
        self.graph
            .files()
            .into_iter()
            .filter(|(path, _)| path.starts_with(&root))
            .map(|(path, bytes)| (path, bytes.to_vec()))
            .collect()
    }
}

/// Whether every receipt is in the drive exactly once, with its bytes.
pub fn assert_archived_once(world: &World) {
    let archived = world.archived();
    let mut found: Vec<&Vec<u8>> = archived.iter().map(|(_, b)| b).collect();
    found.sort();
    let mut expected: Vec<&Vec<u8>> = world.expected.iter().collect();
    expected.sort();
    assert_eq!(
        found.len(),
        expected.len(),
        "one file per receipt: {:?}",
        archived.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    assert!(found == expected, "the bytes are the bank's");
}
pub mod grant;
pub mod indexcmd;
