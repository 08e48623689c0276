//! From the environment and the flags to the connectors: where files live, the Qonto
//! source, the Microsoft sign-in and the sink.
//!
//! The flags come in groups ([`HomeArgs`], [`QontoArgs`], [`SignInArgs`], [`GraphArgs`],
//! [`OneDriveArgs`], [`ArchiveArgs`]); each subcommand flattens only the groups it uses, so its `--help`
//! lists only what it reads. [`Env`] gathers what the subcommand was given.

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
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the state and the saved sign-in live.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "State")]
pub struct HomeArgs {
    /// The folder for the state and the saved sign-in [default: `$XDG_DATA_HOME/receipt-sync`,
    /// else `~/.local/share/receipt-sync` (`%APPDATA%\receipt-sync` on Windows)].
    #[arg(long = "home", env = "RECEIPT_SYNC_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
}

/// The Qonto API key. The secrets are parsed straight into [`SecretString`] (through its
/// `From<String>`), so they never sit in a plain `String` and `Debug` prints `[redacted]`.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Qonto")]
pub struct QontoArgs {
    /// The Qonto organisation login (slug). Required.
    #[arg(long, env = "QONTO_LOGIN", hide_env_values = true)]
    pub qonto_login: Option<String>,
    /// The Qonto API secret key. Required.
    #[arg(long, env = "QONTO_SECRET_KEY", hide_env_values = true)]
    pub qonto_secret_key: Option<SecretString>,
    /// The Qonto API.
    #[arg(long, env = "QONTO_API_BASE", default_value = QONTO_BASE_URL)]
    pub qonto_api_base: String,
    /// The sandbox's staging token, for the Qonto sandbox only.
    #[arg(long, env = "QONTO_STAGING_TOKEN", hide_env_values = true)]
    pub qonto_staging_token: Option<SecretString>,
}

/// The Microsoft app registration and sign-in host.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Microsoft sign-in")]
pub struct SignInArgs {
    /// The Microsoft app registration's client id. Required for OneDrive.
    #[arg(long, env = "MS_CLIENT_ID")]
    pub ms_client_id: Option<String>,
    /// The name the app was registered with in Microsoft Entra: OneDrive names the app
    /// folder `Apps/<name>`, which counts in OneDrive's 400-character path limit.
    #[arg(long = "app-name", env = "MS_APP_NAME", default_value = DEFAULT_APP_NAME)]
    pub ms_app_name: String,
    /// The Microsoft tenant (`consumers` for personal accounts).
    #[arg(long, env = "MS_TENANT", default_value = DEFAULT_TENANT)]
    pub ms_tenant: String,
    /// The Microsoft sign-in host.
    #[arg(long, env = "MS_LOGIN_BASE", default_value = DEFAULT_LOGIN_BASE_URL)]
    pub ms_login_base: String,
}

/// The Microsoft Graph API, for the commands that reach the drive.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "OneDrive")]
pub struct GraphArgs {
    /// The Microsoft Graph API.
    #[arg(long, env = "GRAPH_API_BASE", default_value = GRAPH_BASE_URL)]
    pub graph_api_base: String,
}

/// OneDrive: the Graph API, the sign-in, and a refresh token to use instead of the saved one.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "OneDrive")]
pub struct OneDriveArgs {
    #[command(flatten)]
    pub graph: GraphArgs,
    /// A OneDrive refresh token to use instead of the saved sign-in.
    #[arg(long, env = "ONEDRIVE_REFRESH_TOKEN", hide_env_values = true)]
    pub onedrive_refresh_token: Option<SecretString>,
    // Last: its heading would otherwise cover the OneDrive options.
    #[command(flatten)]
    pub sign_in: SignInArgs,
}

/// Where the archive goes: OneDrive (the default), or a local folder.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Archive")]
pub struct ArchiveArgs {
    /// Archive into this folder instead of the OneDrive app folder (the OneDrive options
    /// are then unused). The first sync binds the state to its archive.
    #[arg(long, value_name = "DIR")]
    pub local: Option<PathBuf>,
    #[command(flatten)]
    pub onedrive: OneDriveArgs,
}

/// The settings a subcommand was given: the groups it does not take are `None`.
#[derive(Debug)]
pub struct Env {
    /// `--home` / `RECEIPT_SYNC_HOME`.
    pub home: Option<PathBuf>,
    /// The Qonto API key, for the commands that read the bank.
    pub qonto: Option<QontoArgs>,
    /// The Microsoft sign-in, for `login` and the commands that reach OneDrive.
    pub sign_in: Option<SignInArgs>,
    /// The Graph API, for the commands that reach OneDrive.
    pub graph_api_base: Option<String>,
    /// A refresh token to use instead of the saved sign-in.
    pub refresh_token: Option<SecretString>,
    /// `--local DIR`.
    pub local: Option<PathBuf>,
    /// The app's registered name (`--app-name`), which names its app folder.
    pub ms_app_name: String,
}

impl Default for Env {
    fn default() -> Self {
        Self {
            home: None,
            qonto: None,
            sign_in: None,
            graph_api_base: None,
            refresh_token: None,
            local: None,
            ms_app_name: DEFAULT_APP_NAME.to_owned(),
        }
    }
}

impl Env {
    /// Only the home.
    pub fn new(home: HomeArgs) -> Self {
        Self {
            home: home.home,
            ..Self::default()
        }
    }

    /// Adds the Qonto API key.
    pub fn with_qonto(mut self, qonto: QontoArgs) -> Self {
        self.qonto = Some(qonto);
        self
    }

    /// Adds the Microsoft sign-in.
    pub fn with_sign_in(mut self, sign_in: SignInArgs) -> Self {
        self.ms_app_name = sign_in.ms_app_name.clone();
        self.sign_in = Some(sign_in);
        self
    }

    /// Adds OneDrive.
    /// Adds the Graph API.
    pub fn with_graph(mut self, graph: GraphArgs) -> Self {
        self.graph_api_base = Some(graph.graph_api_base);
        self
    }

    /// Adds OneDrive: the Graph API, the sign-in, a refresh token.
    pub fn with_onedrive(mut self, onedrive: OneDriveArgs) -> Self {
        self.refresh_token = onedrive.onedrive_refresh_token;
        self.with_graph(onedrive.graph)
            .with_sign_in(onedrive.sign_in)
    }

    /// Adds the archive's place: `--local`, or OneDrive.
    pub fn with_archive(mut self, archive: ArchiveArgs) -> Self {
        self.local = archive.local;
        self.with_onedrive(archive.onedrive)
    }

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

    /// Makes sure the home is a folder this user can write, creating it (owner-only)
    /// when missing. Run once at start, before any network work: an unusable home is
    /// a configuration error, said as such, not a failure halfway through a sync.
    pub fn check_home(&self) -> Result<PathBuf> {
        let home = self.home()?;
        let unusable = |what: &str, e: &dyn std::fmt::Display| {
            Error::Config(format!(
                "RECEIPT_SYNC_HOME {} {what} ({e}): cannot save the sign-in or the state \
                 there; set RECEIPT_SYNC_HOME (or --home) to a folder this user can write",
                home.display()
            ))
        };
        match std::fs::metadata(&home) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(unusable("is not a folder", &"a file is there")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                create_private_dir(&home).map_err(|e| unusable("cannot be created", &e))?;
            }
            Err(e) => return Err(unusable("cannot be read", &e)),
        }
        // Whether this user may write there: a probe file, created and removed.
        let probe = home.join(format!(".write-check-{}", std::process::id()));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .map_err(|e| unusable("cannot be written", &e))?;
        let _ = std::fs::remove_file(&probe);
        Ok(home)
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
        let missing = || {
            Error::Config(
                "set QONTO_LOGIN and QONTO_SECRET_KEY (in Qonto's web app: Integrations and \
                 Partnerships > API key)"
                    .into(),
            )
        };
        let qonto = self.qonto.as_ref().ok_or_else(missing)?;
        let (Some(login), Some(secret)) = (&qonto.qonto_login, &qonto.qonto_secret_key) else {
            return Err(missing());
        };
        let auth = QontoAuth::api_key(login.as_str(), secret.clone());
        let mut builder = QontoSource::builder(auth).with_base_url(&qonto.qonto_api_base);
        if let Some(token) = &qonto.qonto_staging_token {
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
        let sign_in = self.sign_in.as_ref();
        let client_id = sign_in
            .and_then(|s| s.ms_client_id.as_deref())
            .ok_or_else(|| {
                Error::Config("set MS_CLIENT_ID (see docs/getting-started.md)".into())
            })?;
        let mut builder = MicrosoftAuthConfig::builder(client_id).with_drive_access(access);
        if let Some(sign_in) = sign_in {
            builder = builder
                .with_tenant(&sign_in.ms_tenant)
                .with_login_base_url(&sign_in.ms_login_base);
        }
        builder.build()
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
        Ok(Arc::new(match &self.refresh_token {
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
        let base = self.graph_api_base.as_deref().unwrap_or(GRAPH_BASE_URL);
        OneDriveSink::builder(tokens)
            .with_base_url(base)
            .with_app_name(self.ms_app_name.trim())
            .build()
    }

    /// The local archive's folder, created if missing.
    pub fn local_dir(&self, dir: &Path) -> Result<LocalDirSink> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create folder", dir, e))?;
        LocalDirSink::new(dir)
    }

    /// The sink: `--local DIR`, or OneDrive.
    pub fn sink(&self) -> Result<Arc<dyn ArchiveSink>> {
        Ok(match &self.local {
            Some(dir) => Arc::new(self.local_dir(dir)?),
            None => Arc::new(self.onedrive()?),
        })
    }
}

/// Creates `dir` and its missing parents, usable by its owner only (0700 on Unix).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}
