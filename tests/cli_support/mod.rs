//! The `qonto-onedrive` example as a process, for the tests that run it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
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
