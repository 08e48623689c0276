//! From the environment and the flags to the connectors: where files live, the Qonto
//! source, the Microsoft sign-in and the sink.

use receipt_sync::auth::AccessTokenProvider;
use receipt_sync::auth::SecretString;
use receipt_sync::auth::microsoft::{
    DEFAULT_LOGIN_BASE_URL, DEFAULT_TENANT, DriveAccess, FileTokenStore, MicrosoftAuthConfig,
    MicrosoftTokenProvider, TokenStore,
};
use receipt_sync::sink::onedrive::{DEFAULT_APP_NAME, DEFAULT_BASE_URL as GRAPH_BASE_URL};
use receipt_sync::sink::{ArchiveSink, LocalDirSink, OneDriveSink};
use receipt_sync::source::qonto::{QONTO_BASE_URL, QontoAuth, QontoSource};
use receipt_sync::state::JsonFileStateStore;
use receipt_sync::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// Every setting that can come from the environment (flags may override).
///
/// The secrets are parsed straight into [`SecretString`] (through its `From<String>`), so
/// they never sit in a plain `String` and the derived `Debug` prints them as `[redacted]`.
#[derive(clap::Args, Debug)]
pub struct Env {
    /// The Qonto organisation login (slug).
    #[arg(long, env = "QONTO_LOGIN", global = true, hide_env_values = true)]
    pub qonto_login: Option<String>,
    /// The Qonto API secret key.
    #[arg(long, env = "QONTO_SECRET_KEY", global = true, hide_env_values = true)]
    pub qonto_secret_key: Option<SecretString>,
    /// The Qonto API.
    #[arg(long, env = "QONTO_API_BASE", global = true, default_value = QONTO_BASE_URL)]
    pub qonto_api_base: String,
    /// The sandbox's staging token, for the Qonto sandbox only.
    #[arg(
        long,
        env = "QONTO_STAGING_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub qonto_staging_token: Option<SecretString>,
    /// The Microsoft app registration's client id.
    #[arg(long, env = "MS_CLIENT_ID", global = true)]
    pub ms_client_id: Option<String>,
    /// The name the app was registered with in Microsoft Entra: OneDrive names the app
    /// folder `Apps/<name>`, which counts in OneDrive's 400-character path limit.
    #[arg(long = "app-name", env = "MS_APP_NAME", global = true, default_value = DEFAULT_APP_NAME)]
    pub ms_app_name: String,
    /// The Microsoft tenant (`consumers` for personal accounts).
    #[arg(long, env = "MS_TENANT", global = true, default_value = DEFAULT_TENANT)]
    pub ms_tenant: String,
    /// The Microsoft sign-in host.
    #[arg(long, env = "MS_LOGIN_BASE", global = true, default_value = DEFAULT_LOGIN_BASE_URL)]
    pub ms_login_base: String,
    /// The Microsoft Graph API.
    #[arg(long, env = "GRAPH_API_BASE", global = true, default_value = GRAPH_BASE_URL)]
    pub graph_api_base: String,
    /// A OneDrive refresh token to use instead of the saved sign-in.
    #[arg(
        long,
        env = "ONEDRIVE_REFRESH_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub onedrive_refresh_token: Option<SecretString>,
    /// The folder for the state and the saved sign-in.
    #[arg(long, env = "RECEIPT_SYNC_HOME", global = true)]
    pub home: Option<PathBuf>,
    /// Archive into this folder instead of OneDrive.
    #[arg(long, global = true, value_name = "DIR")]
    pub local: Option<PathBuf>,
}

impl Env {
    /// The folder for the state and the tokens: `RECEIPT_SYNC_HOME`, or a per-user data
    /// folder (`$XDG_DATA_HOME/receipt-sync`, `~/.local/share/receipt-sync`,
    /// `%APPDATA%\receipt-sync`).
    pub fn home(&self) -> Result<PathBuf> {
        if let Some(home) = &self.home {
            return Ok(home.clone());
        }
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let base = var("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| var("APPDATA").map(PathBuf::from))
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .ok_or_else(|| {
                Error::Config("no per-user data folder: set RECEIPT_SYNC_HOME".into())
            })?;
        Ok(base.join("receipt-sync"))
    }

    /// The state store (`<home>/state/`).
    pub fn state_store(&self) -> Result<JsonFileStateStore> {
        Ok(JsonFileStateStore::new(self.home()?.join("state")))
    }

    /// The saved sign-in (`<home>/onedrive-tokens.json`).
    pub fn token_store(&self) -> Result<Arc<FileTokenStore>> {
        Ok(Arc::new(FileTokenStore::new(
            self.home()?.join("onedrive-tokens.json"),
        )))
    }

    /// The Qonto source, with the API key.
    pub fn source(&self) -> Result<QontoSource> {
        let (Some(login), Some(secret)) = (&self.qonto_login, &self.qonto_secret_key) else {
            return Err(Error::Config(
                "set QONTO_LOGIN and QONTO_SECRET_KEY (in Qonto's web app: Integrations and \
                 Partnerships > API key)"
                    .into(),
            ));
        };
        let auth = QontoAuth::api_key(login.as_str(), secret.clone());
        let mut builder = QontoSource::builder(auth).with_base_url(&self.qonto_api_base);
        if let Some(token) = &self.qonto_staging_token {
            builder = builder.with_staging_token(token.clone());
        }
        builder.build()
    }

    /// The Microsoft sign-in settings.
    pub fn auth_config(&self) -> Result<MicrosoftAuthConfig> {
        self.auth_config_for(DriveAccess::AppFolder)
    }

    /// The Microsoft sign-in settings, asking for `access` to the drive.
    pub fn auth_config_for(&self, access: DriveAccess) -> Result<MicrosoftAuthConfig> {
        let client_id = self.ms_client_id.as_deref().ok_or_else(|| {
            Error::Config("set MS_CLIENT_ID (see docs/getting-started.md)".into())
        })?;
        MicrosoftAuthConfig::builder(client_id)
            .with_tenant(&self.ms_tenant)
            .with_login_base_url(&self.ms_login_base)
            .with_drive_access(access)
            .build()
    }

    /// Checks, before anyone signs in, that the sign-in can be saved: the token file's
    /// folder exists (or can be made) and a file can be written in it.
    pub fn check_token_folder_writable(&self) -> Result<PathBuf> {
        let store = self.token_store()?;
        let folder = store
            .path()
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let cannot = |e: std::io::Error| {
            Error::Config(format!(
                "cannot save the sign-in in {}: {e}; make that folder writable, or set \
                 RECEIPT_SYNC_HOME to a writable folder",
                folder.display()
            ))
        };
        std::fs::create_dir_all(&folder).map_err(cannot)?;
        let probe = folder.join(format!(".write-check-{}", std::process::id()));
        std::fs::write(&probe, b"").map_err(cannot)?;
        // A probe left behind is harmless; the sign-in itself is what matters.
        let _ = std::fs::remove_file(&probe);
        Ok(store.path().to_path_buf())
    }

    /// The token provider: from `ONEDRIVE_REFRESH_TOKEN` when set, else the saved sign-in.
    pub fn tokens(&self) -> Result<Arc<MicrosoftTokenProvider>> {
        let config = self.auth_config()?;
        let store: Arc<dyn TokenStore> = self.token_store()?;
        Ok(Arc::new(match &self.onedrive_refresh_token {
            Some(token) => MicrosoftTokenProvider::from_refresh_token(config, store, token.clone()),
            None => MicrosoftTokenProvider::new(config, store),
        }))
    }

    /// The OneDrive sink.
    pub fn onedrive(&self) -> Result<OneDriveSink> {
        self.onedrive_with(self.tokens()?)
    }

    /// The OneDrive sink, signing its requests with `tokens`. The app name sizes the
    /// app-folder prefix the layout counts in the path limit.
    pub fn onedrive_with(&self, tokens: Arc<dyn AccessTokenProvider>) -> Result<OneDriveSink> {
        OneDriveSink::builder(tokens)
            .with_base_url(&self.graph_api_base)
            .with_app_name(self.ms_app_name.trim())
            .build()
    }

    /// Where the archive goes, in words: the folder of `--local`, or the OneDrive app
    /// folder, whose name (`Apps/<app name>`) comes from the app registration.
    fn archive_place(&self) -> Result<String> {
        Ok(match &self.local {
            Some(dir) => {
                let dir = std::path::absolute(dir).map_err(|e| Error::io("resolve", dir, e))?;
                format!("the folder {}", dir.display())
            }
            None => format!(
                "the OneDrive app folder of app {}",
                self.ms_client_id.as_deref().unwrap_or("(no MS_CLIENT_ID)")
            ),
        })
    }

    /// Checks that the archive goes where the state's archive is (`<home>/archive-place`),
    /// storing the place the first time when `store` is set. The state's records describe
    /// one archive: read against another, every archived file would look deleted by the
    /// user, and the deletion rules would tombstone them all.
    pub fn check_archive_place(&self, store: bool) -> Result<()> {
        let home = self.home()?;
        let file = home.join("archive-place");
        let place = self.archive_place()?;
        match std::fs::read_to_string(&file) {
            Ok(stored) if stored.trim() == place => Ok(()),
            Ok(stored) => Err(Error::Config(format!(
                "this state archives into {}, not {place}: run with the same settings, or \
                 set RECEIPT_SYNC_HOME to another folder for another archive",
                stored.trim()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if store {
                    std::fs::create_dir_all(self.home()?).map_err(|e| {
                        Error::io("create folder", self.home().unwrap_or_default(), e)
                    })?;
                    std::fs::write(&file, format!("{place}\n"))
                        .map_err(|e| Error::io("write", &file, e))?;
                }
                Ok(())
            }
            Err(e) => Err(Error::io("read", &file, e)),
        }
    }

    /// The sink: `--local DIR`, or OneDrive.
    pub fn sink(&self) -> Result<Arc<dyn ArchiveSink>> {
        Ok(match &self.local {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| Error::io("create folder", dir, e))?;
                Arc::new(LocalDirSink::new(dir)?)
            }
            None => Arc::new(self.onedrive()?),
        })
    }
}
