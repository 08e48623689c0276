//! Where signed-in tokens live between runs: the [`TokenStore`] trait, an in-memory store
//! and the default [`FileTokenStore`].

use super::tokens::MicrosoftTokens;
use crate::error::{Error, Result};
use crate::fs_util::{blocking, create_owner_only_dirs, sync_dir, write_error};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Keeps a signed-in account's tokens.
///
/// # Contract
/// - [`save`](Self::save) is durable when it returns: a crash afterwards loads what was
///   saved. The provider saves every rotated refresh token before using the new access
///   token (onedrive-graph.md §1 "Refresh tokens": each refresh returns a new one).
/// - [`save`](Self::save) replaces atomically: a crash mid-save loads the old or the new
///   tokens, never a mix.
/// - [`load`](Self::load) returns `None` when nothing was saved (or after
///   [`clear`](Self::clear)).
/// - Stores never show tokens in `Debug`, errors or logs.
#[async_trait]
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// The saved tokens, if any.
    async fn load(&self) -> Result<Option<MicrosoftTokens>>;

    /// Replaces the saved tokens.
    async fn save(&self, tokens: &MicrosoftTokens) -> Result<()>;

    /// Forgets the saved tokens (sign-out).
    async fn clear(&self) -> Result<()>;
}

/// Tokens kept in memory only: for tests, and for callers that persist tokens elsewhere.
#[derive(Default)]
pub struct InMemoryTokenStore {
    inner: Mutex<(Option<MicrosoftTokens>, u64)>,
}

impl fmt::Debug for InMemoryTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryTokenStore")
            .field("saves", &self.saves())
            .finish_non_exhaustive()
    }
}

impl InMemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store already holding `tokens`.
    pub fn with_tokens(tokens: MicrosoftTokens) -> Self {
        Self {
            inner: Mutex::new((Some(tokens), 0)),
        }
    }

    /// What is saved now.
    pub fn snapshot(&self) -> Option<MicrosoftTokens> {
        self.lock().0.clone()
    }

    /// How many times [`TokenStore::save`] was called.
    pub fn saves(&self) -> u64 {
        self.lock().1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<MicrosoftTokens>, u64)> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl TokenStore for InMemoryTokenStore {
    async fn load(&self) -> Result<Option<MicrosoftTokens>> {
        Ok(self.snapshot())
    }

    async fn save(&self, tokens: &MicrosoftTokens) -> Result<()> {
        let mut inner = self.lock();
        inner.0 = Some(tokens.clone());
        inner.1 += 1;
        Ok(())
    }

    async fn clear(&self) -> Result<()> {
        self.lock().0 = None;
        Ok(())
    }
}

/// The file format's version; a newer file is refused rather than misread.
const FILE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct TokenFile {
    version: u32,
    tokens: MicrosoftTokens,
}

/// Tokens in a JSON file, readable by its owner only.
///
/// The file is created with mode 0600 (on Unix) before a byte is written, and replaced
/// atomically: a temporary file created 0600 in the same folder, fsynced, renamed over the
/// old one, then the folder fsynced. A new parent folder is created 0700 (one already
/// there is left as it is). A file found readable by others is warned about and narrowed
/// to 0600 on load. A full disk (or disk quota, or file-size limit) while saving is
/// [`Error::DiskFull`], and the tokens saved before stay whole.
#[derive(Clone, Debug)]
pub struct FileTokenStore {
    path: PathBuf,
}

impl FileTokenStore {
    /// A store in the file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The token file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        }
    }

    fn load_blocking(&self) -> Result<Option<MicrosoftTokens>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", &self.path, e)),
        };
        narrow_permissions(&self.path)?;
        // serde's message could quote a value: say only where the file is broken.
        let file: TokenFile = serde_json::from_slice(&bytes).map_err(|e| Error::State {
            path: self.path.clone(),
            detail: format!(
                "the token file cannot be read (line {}, column {}); sign in again to replace it",
                e.line(),
                e.column()
            ),
        })?;
        if file.version > FILE_VERSION {
            return Err(Error::State {
                path: self.path.clone(),
                detail: format!(
                    "the token file was written by a newer receipt-sync (format {}); upgrade",
                    file.version
                ),
            });
        }
        Ok(Some(file.tokens))
    }

    /// Every step that writes maps a full disk (or quota, or file-size limit) to
    /// [`Error::DiskFull`]: the sync stops and says to free space, and the file saved
    /// before stays whole. (A rotated refresh token that could not be saved is kept in
    /// memory and saved again before the next use, see the provider.)
    fn save_blocking(&self, json: &[u8]) -> Result<()> {
        let dir = self.dir();
        // The folder may be shared (a home or config folder): only folders created here
        // are made the owner's, one already there is left as it is.
        create_owner_only_dirs(&dir)?;
        let mut builder = tempfile::Builder::new();
        builder.prefix(".tokens.").suffix(".tmp");
        // Mode 0600 is given to open(2) itself: the file is never readable by others, not
        // even empty. (Outside Unix it inherits its folder's access control list.)
        #[cfg(unix)]
        builder.permissions(owner_only());
        let mut tmp = builder
            .tempfile_in(&dir)
            .map_err(|e| write_error("create temporary file in", &dir, e))?;
        // On an error `tmp` is dropped, which removes it: the old tokens stay as they were.
        tmp.write_all(json)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| write_error("write", &self.path, e))?;
        tmp.persist(&self.path)
            .map_err(|e| write_error("replace", &self.path, e.error))?;
        sync_dir(&dir)
    }

    fn clear_blocking(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => sync_dir(&self.dir()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(write_error("remove", &self.path, e)),
        }
    }
}

#[async_trait]
impl TokenStore for FileTokenStore {
    async fn load(&self) -> Result<Option<MicrosoftTokens>> {
        let this = self.clone();
        blocking(move || this.load_blocking()).await
    }

    async fn save(&self, tokens: &MicrosoftTokens) -> Result<()> {
        let json = serde_json::to_vec_pretty(&TokenFile {
            version: FILE_VERSION,
            tokens: tokens.clone(),
        })
        .map_err(|e| Error::State {
            path: self.path.clone(),
            detail: format!("cannot encode the tokens ({:?} error)", e.classify()),
        })?;
        let this = self.clone();
        blocking(move || this.save_blocking(&json)).await
    }

    async fn clear(&self) -> Result<()> {
        let this = self.clone();
        blocking(move || this.clear_blocking()).await
    }
}

#[cfg(unix)]
fn owner_only() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o600)
}

/// Warns about, then narrows, a token file that others can read (a refresh token is a
/// 90-day key to the user's files: onedrive-graph.md §1 "Refresh tokens").
#[cfg(unix)]
fn narrow_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| Error::io("inspect", path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", mode & 0o777),
            "the token file was readable by other users; narrowing it to 0600 (consider signing in again if others could have read it)"
        );
        std::fs::set_permissions(path, owner_only())
            .map_err(|e| Error::io("restrict permissions of", path, e))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn narrow_permissions(_path: &Path) -> Result<()> {
    Ok(())
}
