//! What every subcommand needs: the database, the sealing keys, and the factory that
//! builds each organisation's connectors (the real hosts, or the fakes of a `--fakes`
//! file).

use crate::world::FakesInfo;
use receipt_sync::auth::microsoft::{DEFAULT_LOGIN_BASE_URL, MicrosoftAuthConfig};
use receipt_sync::fleet::{Fleet, Keyring, QontoOneDriveFactory, SEALING_KEYS_VAR};
use receipt_sync::http::RetryConfig;
use receipt_sync::state::PgDatabase;
use receipt_sync::{Error, Result};
use std::path::Path;
use std::time::Duration;

/// The connection string, from `DATABASE_URL`.
pub fn database_url() -> Result<String> {
    std::env::var("DATABASE_URL").map_err(|_| {
        Error::Config(
            "set DATABASE_URL to the fleet's PostgreSQL database \
             (postgresql://user:password@host/db)"
                .to_owned(),
        )
    })
}

/// The sealing keys, from `RECEIPT_SYNC_SEALING_KEYS`.
pub fn keyring() -> Result<Keyring> {
    Keyring::from_env()
}

/// The sealing keys from the environment or, when it has none, a throwaway key (said on
/// stderr: whatever it seals cannot be opened once this process ends).
pub fn keyring_or_throwaway() -> Result<Keyring> {
    if std::env::var_os(SEALING_KEYS_VAR).is_some() {
        return keyring();
    }
    eprintln!(
        "fleet: {SEALING_KEYS_VAR} is not set; sealing with a throwaway key made for this run \
         (the demo's credentials cannot be opened after it)"
    );
    Keyring::parse(&format!("demo:{}", Keyring::generate_key_text().expose()))
}

/// The fleet in the database at `url`, its claims lasting `lease`.
pub async fn fleet(url: &str, keyring: Keyring, lease: Option<Duration>) -> Result<Fleet> {
    let database = PgDatabase::connect(url).await?;
    let fleet = Fleet::new(database, keyring);
    Ok(match lease {
        Some(lease) => fleet.with_lease(lease),
        None => fleet,
    })
}

/// Reads a `--fakes` file written by the `fakes` subcommand.
pub fn read_fakes(path: &Path) -> Result<FakesInfo> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::Config(format!(
            "{} is not a file the `fakes` subcommand wrote: {e}",
            path.display()
        ))
    })
}

/// The factory for the fakes: every organisation's drive on its own fake Graph.
pub fn fake_factory(fakes: &FakesInfo) -> Result<QontoOneDriveFactory> {
    let microsoft = MicrosoftAuthConfig::builder(&fakes.client_id)
        .with_login_base_url(&fakes.login_url)
        .with_retry(RetryConfig::fast())
        .build()?;
    let mut factory = QontoOneDriveFactory::new(microsoft)
        .with_qonto_base_url(&fakes.qonto_url)
        .with_retry(RetryConfig::fast());
    for org in &fakes.organisations {
        factory = factory.with_graph_base_url_for(&org.id, &org.graph_url);
    }
    Ok(factory)
}

/// The factory for the real services, configured by the environment: `MS_CLIENT_ID`
/// (required), `MS_LOGIN_BASE`, `GRAPH_API_BASE`, `QONTO_API_BASE`, and
/// `QONTO_CLIENT_ID` with `QONTO_CLIENT_SECRET` for organisations signed in with OAuth.
pub fn env_factory() -> Result<QontoOneDriveFactory> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let client_id = var("MS_CLIENT_ID").ok_or_else(|| {
        Error::Config(
            "set MS_CLIENT_ID (the service's Microsoft app registration), or give --fakes".into(),
        )
    })?;
    let microsoft = MicrosoftAuthConfig::builder(client_id)
        .with_login_base_url(var("MS_LOGIN_BASE").unwrap_or_else(|| DEFAULT_LOGIN_BASE_URL.into()))
        .build()?;
    let mut factory = QontoOneDriveFactory::new(microsoft);
    if let Some(url) = var("GRAPH_API_BASE") {
        factory = factory.with_graph_base_url(url);
    }
    if let Some(url) = var("QONTO_API_BASE") {
        factory = factory.with_qonto_base_url(url);
    }
    if let (Some(id), Some(secret)) = (var("QONTO_CLIENT_ID"), var("QONTO_CLIENT_SECRET")) {
        factory = factory.with_qonto_oauth_app(id, secret, var("QONTO_TOKEN_URL"));
    }
    Ok(factory)
}

/// This worker's default id: the host name and process id.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}
