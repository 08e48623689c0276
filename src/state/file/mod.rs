//! The embedded default state store: a binary base file, a journal beside it, and a lock
//! file.
//!
//! - `state.bin` holds the whole state, in a compact binary encoding with a checksum (the
//!   `base` module has the format). It is replaced atomically: written to a temporary
//!   file in the same folder, fsynced, renamed over the old one, and the folder fsynced,
//!   so a crash leaves either the old or the new file.
//! - `state.journal` holds changes recorded since the last save, one JSON line each,
//!   fsynced as they are appended. Records that arrive close together share one write
//!   and one `fdatasync` (group commit, see the `commit` module); each `record` returns
//!   once its own lines are durable. While the store holds its lock the journal stays
//!   open between records; it is closed by a save and when the lock is released. A torn
//!   last line (a crash mid-append: cut anywhere, even inside a character) is ignored,
//!   and cut off before the next append; an append that fails halfway (a full disk) is
//!   cut off at once. The `journal` module has the rule.
//! - `state.json` is the base file of format 1 (JSON), which earlier versions wrote. It
//!   is read only when there is no `state.bin`, with the journal on top (whose format
//!   has not changed), and the first checkpoint converts it: `state.bin` is written, then
//!   `state.json` replaced by a marker, `{"version":2}`, which an earlier version refuses
//!   as a newer state rather than starting over without it. A crash in between leaves
//!   both, and `state.bin` wins.
//! - A full disk (or a disk quota, or a file-size limit) at any step that writes, from
//!   creating the folder to the rename and the folder's fsync, is [`Error::DiskFull`]: it
//!   stops the sync, and what was saved before stays whole: files are replaced by rename
//!   and partial appends are cut off.
//! - The end of a run ([`StateStore::checkpoint`]) rewrites `state.bin` only when the
//!   journal has grown large next to it: past [`DEFAULT_COMPACTION_BYTES`] (or what
//!   [`JsonFileStateStore::with_compaction_bytes`] sets) and past a quarter of the state
//!   file, or when there is no `state.bin` yet. A quiet day appends a few lines instead
//!   of rewriting the whole state.
//! - `state.settled` and `state.catalog` summarise the state when its last pass left
//!   nothing to do ([`StateStore::save_settled`]): its head and a digest of its catalog,
//!   so that a quiet day reads a few kilobytes instead of the whole state. The summary
//!   names the base file and the journal length it describes, and is used only while
//!   they match; a save removes it first. Both are a cache, written without `fsync`:
//!   lost or damaged, the next pass loads the whole state (the `settled` module).
//! - `state.lock` is held with an exclusive [`std::fs::File::try_lock`] for the length of
//!   a sync, so a second process gets [`Error::AlreadyRunning`].
//!
//! The folder and its files are its owner's only, whatever the umask: on Unix the folder
//! is created 0700 and the files 0600, and a folder or file found wider (made by an
//! older version, or by hand) is narrowed when the store opens it.

mod base;
mod commit;
mod journal;
mod settled;

use super::{STATE_VERSION, Settled, SettledMeta, StateChange, StateLock, StateStore, SyncState};
use crate::error::{Error, Result};
use crate::fs_util::{blocking, create_private_dir, open_private, sync_dir, write_error};
use async_trait::async_trait;
use commit::GroupCommit;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The journal size below which a checkpoint never rewrites the state (1 MiB).
pub const DEFAULT_COMPACTION_BYTES: u64 = 1024 * 1024;

/// A [`StateStore`] in a folder on disk; see the module docs for the files it keeps.
///
/// Its name is older than its format: the journal is JSON lines, the base file binary
/// (`state.bin`), and a JSON base file of an earlier version is read and converted.
///
/// The folder is the store's own: it is made readable by its owner only (0700 on Unix),
/// so give the store a folder of its own rather than a shared one. Clones share the
/// open journal and its pending records.
#[derive(Clone)]
pub struct JsonFileStateStore {
    dir: PathBuf,
    commit: Arc<GroupCommit>,
    compaction_bytes: u64,
    /// The id of the catalog file this store last read whole (checksum verified) or
    /// wrote, while it holds the lock: a summary whose catalog it is need not write it
    /// again. Forgotten when the lock is taken: another process may have written since.
    catalog_on_disk: Arc<std::sync::Mutex<Option<[u8; 32]>>>,
}

impl fmt::Debug for JsonFileStateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonFileStateStore")
            .field("dir", &self.dir)
            .field("compaction_bytes", &self.compaction_bytes)
            .field("journal_flushes", &self.journal_flushes())
            .finish()
    }
}

impl JsonFileStateStore {
    /// A store keeping its files in `dir` (created if missing, when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let commit = Arc::new(GroupCommit::new(&dir, dir.join("state.journal")));
        Self {
            dir,
            commit,
            compaction_bytes: DEFAULT_COMPACTION_BYTES,
            catalog_on_disk: Arc::default(),
        }
    }

    /// Sets the journal size below which a checkpoint never rewrites the state (default
    /// [`DEFAULT_COMPACTION_BYTES`]); above it, the state is rewritten once the journal
    /// also outgrows a quarter of the state file. `0` rewrites it at every checkpoint
    /// whose journal holds anything.
    pub fn with_compaction_bytes(mut self, bytes: u64) -> Self {
        self.compaction_bytes = bytes;
        self
    }

    /// How many durable writes (one write and one `fdatasync` each) the journal has
    /// made through this store and its clones: records that arrive together share one.
    pub fn journal_flushes(&self) -> u64 {
        self.commit.flushes()
    }

    /// The base file: the whole state as of the last save.
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.bin")
    }

    /// The base file of format 1 (JSON), as earlier versions wrote it: read when there is
    /// no [`state_path`](Self::state_path), and removed once converted.
    pub fn legacy_state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The journal of changes since the last save.
    pub fn journal_path(&self) -> PathBuf {
        self.dir.join("state.journal")
    }

    /// The summary of a settled state ([`StateStore::save_settled`]).
    pub fn settled_path(&self) -> PathBuf {
        self.dir.join("state.settled")
    }

    /// The digest of the catalog a summary goes with.
    pub fn catalog_path(&self) -> PathBuf {
        self.dir.join("state.catalog")
    }

    /// The lock file.
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("state.lock")
    }

    fn ensure_dir(&self) -> Result<()> {
        create_private_dir(&self.dir)
    }

    pub(crate) fn load_blocking(&self) -> Result<Option<SyncState>> {
        let mut state = self.read_base()?;
        let changes = self.read_journal()?;
        if !changes.is_empty() {
            let state = state.get_or_insert_with(|| SyncState {
                version: STATE_VERSION,
                ..SyncState::default()
            });
            for change in &changes {
                state.apply(change);
            }
        }
        Ok(state)
    }

    /// The state of the base file, or of the format-1 one when there is no other.
    fn read_base(&self) -> Result<Option<SyncState>> {
        let path = self.state_path();
        if let Some(bytes) = read_if_present(&path)? {
            return decode_base(&path, &bytes).map(Some);
        }
        let legacy = self.legacy_state_path();
        match read_if_present(&legacy)? {
            Some(bytes) => decode_legacy(&legacy, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn read_journal(&self) -> Result<Vec<StateChange>> {
        let path = self.journal_path();
        match read_if_present(&path)? {
            Some(bytes) => journal::parse(&path, &bytes),
            None => Ok(Vec::new()),
        }
    }

    fn encode(&self, state: &SyncState) -> Result<Vec<u8>> {
        base::encode(state).map_err(|e| Error::State {
            path: self.state_path(),
            detail: format!("cannot encode the state: {e}"),
        })
    }

    fn save_blocking(&self, bytes: &[u8]) -> Result<()> {
        self.ensure_dir()?;
        // The summary describes the state being replaced: gone before it is.
        remove_if_present(&self.settled_path())?;
        replace_file(&self.dir, &self.state_path(), bytes)?;
        // The saved state holds every recorded change: the journal can go. A format-1
        // base file gives way to the marker, which stays (written once).
        let journal = remove_if_present(&self.journal_path())?;
        let legacy = self.legacy_state_path();
        if read_if_present(&legacy)?.as_deref() != Some(LEGACY_MARKER.as_bytes()) {
            replace_file(&self.dir, &legacy, LEGACY_MARKER.as_bytes())?;
        } else if journal {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    fn encode_changes(&self, changes: &[StateChange]) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        for change in changes {
            serde_json::to_writer(&mut buf, change).map_err(|e| Error::State {
                path: self.journal_path(),
                detail: format!("cannot encode a change: {e}"),
            })?;
            buf.push(b'\n');
        }
        Ok(buf)
    }

    /// Whether a checkpoint should rewrite the state: see the module docs.
    fn compaction_is_worthwhile(&self) -> Result<bool> {
        let size = |path: &Path| match fs::metadata(path) {
            Ok(metadata) => Ok(Some(metadata.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("inspect", path, e)),
        };
        let journal = size(&self.journal_path())?.unwrap_or(0);
        Ok(match size(&self.state_path())? {
            // Nothing saved yet, or only in format 1: converted once, at the first chance.
            None => journal > 0 || size(&self.legacy_state_path())?.is_some(),
            Some(state) => journal > self.compaction_bytes.max(state / 4),
        })
    }

    /// The id of the base file, from its header; `None` when there is none of this
    /// format.
    fn base_id(&self) -> Result<Option<settled::FileId>> {
        let header = read_prefix(&self.state_path(), base::HEADER_BYTES)?;
        Ok(header
            .and_then(|header| base::header_id(&header))
            .map(|(len, checksum)| settled::FileId { len, checksum }))
    }

    fn journal_len(&self) -> Result<u64> {
        let path = self.journal_path();
        match fs::metadata(&path) {
            Ok(metadata) => Ok(metadata.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(Error::io("inspect", &path, e)),
        }
    }

    fn set_catalog_on_disk(&self, id: Option<[u8; 32]>) {
        *self
            .catalog_on_disk
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = id;
    }

    fn catalog_on_disk(&self) -> Option<[u8; 32]> {
        *self
            .catalog_on_disk
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn load_settled_blocking(&self) -> Result<Option<Settled>> {
        let Some(bytes) = read_if_present(&self.settled_path())? else {
            return Ok(None);
        };
        let Some(summary) = settled::decode_summary(&bytes) else {
            tracing::debug!("the settled summary cannot be read; loading the whole state");
            return Ok(None);
        };
        if self.base_id()? != Some(summary.base) || self.journal_len()? != summary.journal_len {
            return Ok(None);
        }
        let Some(bytes) = read_if_present(&self.catalog_path())? else {
            return Ok(None);
        };
        match settled::decode_catalog(&bytes) {
            Some((catalog, id)) if id == summary.catalog => {
                self.set_catalog_on_disk(Some(id));
                Ok(Some(summary.meta.with_catalog(catalog)))
            }
            _ => Ok(None),
        }
    }

    fn save_settled_blocking(&self, settled: &Settled) -> Result<()> {
        let Some(base) = self.base_id()? else {
            // Nothing to describe: the state is still in the journal or format 1.
            return Ok(());
        };
        let catalog = settled.catalog.id();
        // Written again unless this store read it whole or wrote it under this lock: a
        // file cut by a crash may still start with the right id.
        if self.catalog_on_disk() != Some(catalog) {
            // The summary names the catalog it goes with: gone before the catalog changes.
            remove_if_present(&self.settled_path())?;
            let bytes = settled::encode_catalog(&settled.catalog);
            write_unsynced(&self.dir, &self.catalog_path(), &bytes)?;
            self.set_catalog_on_disk(Some(catalog));
        }
        let summary = settled::Summary {
            base,
            journal_len: self.journal_len()?,
            catalog,
            meta: SettledMeta::of(settled),
        };
        let body = postcard::to_allocvec(&summary).map_err(|e| Error::State {
            path: self.settled_path(),
            detail: format!("cannot encode the settled summary: {e}"),
        })?;
        let (bytes, _) = settled::frame(settled::SUMMARY_MAGIC, &body);
        write_unsynced(&self.dir, &self.settled_path(), &bytes)
    }

    fn lock_blocking(&self) -> Result<StateLock> {
        self.ensure_dir()?;
        let path = self.lock_path();
        let file = open_private(
            OpenOptions::new().create(true).truncate(false).write(true),
            &path,
        )
        .map_err(|e| write_error("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => {
                self.commit.keep_open(true);
                self.set_catalog_on_disk(None);
                Ok(StateLock::new(HeldLock {
                    _file: file,
                    commit: self.commit.clone(),
                }))
            }
            Err(fs::TryLockError::WouldBlock) => Err(Error::AlreadyRunning {
                what: path.display().to_string(),
            }),
            Err(fs::TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
        }
    }
}

/// The lock file, held; releasing it closes the journal, which another process may
/// replace from then on.
struct HeldLock {
    _file: std::fs::File,
    commit: Arc<GroupCommit>,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        self.commit.keep_open(false);
    }
}

/// What `state.json` holds once the state is in `state.bin`: a state of a later format,
/// and nothing else. A release that reads only format 1 refuses it ("written by a newer
/// receipt-sync"), instead of finding no state file and starting over from the journal
/// alone, which would forget what the user deleted.
const LEGACY_MARKER: &str = "{\"version\":2}";

/// Writes `path` whole or not at all: a temporary file in `dir`, fsynced, renamed over
/// it, and the folder fsynced.
fn replace_file(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    write_by_rename(dir, path, bytes, Durability::Synced)
}

/// Writes `path` whole or not at all, without `fsync`: for the settled summary, a cache
/// whose checksum tells a torn file.
fn write_unsynced(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    write_by_rename(dir, path, bytes, Durability::Cache)
}

/// Whether a file written by rename must survive a crash.
#[derive(PartialEq)]
enum Durability {
    /// The file and the rename are fsynced.
    Synced,
    /// A crash may lose the file or leave one that fails its checksum.
    Cache,
}

fn write_by_rename(dir: &Path, path: &Path, bytes: &[u8], durability: Durability) -> Result<()> {
    let name = path.file_name().map_or_else(
        || "state".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    // tempfile creates its files readable by their owner only (mode 0600 given to
    // open(2) on Unix, so whatever the umask); the rename keeps that mode.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| write_error("create temporary file in", dir, e))?;
    // On an error `tmp` is dropped, which removes it: the old file stays as it was.
    tmp.write_all(bytes)
        .and_then(|()| match durability {
            Durability::Synced => tmp.as_file().sync_all(),
            Durability::Cache => Ok(()),
        })
        .map_err(|e| write_error("write", path, e))?;
    tmp.persist(path)
        .map_err(|e| write_error("replace", path, e.error))?;
    match durability {
        Durability::Synced => sync_dir(dir),
        Durability::Cache => Ok(()),
    }
}

/// The first `len` bytes of a file (fewer if it is shorter), or `None` if it does not
/// exist.
fn read_prefix(path: &Path, len: usize) -> Result<Option<Vec<u8>>> {
    let file = match open_private(OpenOptions::new().read(true), path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let mut prefix = Vec::with_capacity(len);
    file.take(len as u64)
        .read_to_end(&mut prefix)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(Some(prefix))
}

/// Left as it is: the error says what to do.
fn unreadable(path: &Path, why: impl fmt::Display) -> Error {
    Error::State {
        path: path.to_owned(),
        detail: format!(
            "cannot be read ({why}); it was left as it is: restore a backup or move it aside and reset"
        ),
    }
}

fn newer(path: &Path, version: u32) -> Error {
    Error::State {
        path: path.to_owned(),
        detail: format!(
            "was written by a newer receipt-sync (format {version}, this one reads up to {STATE_VERSION}); upgrade receipt-sync"
        ),
    }
}

fn decode_base(path: &Path, bytes: &[u8]) -> Result<SyncState> {
    base::decode(bytes).map_err(|e| match e {
        base::Unreadable::Newer(version) => newer(path, version),
        base::Unreadable::Corrupt(why) => unreadable(path, why),
    })
}

/// A base file of format 1: the state as JSON.
fn decode_legacy(path: &Path, bytes: &[u8]) -> Result<SyncState> {
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        version: u32,
    }
    let corrupt = |e: serde_json::Error| unreadable(path, e);
    let VersionOnly { version } = serde_json::from_slice(bytes).map_err(corrupt)?;
    if version > STATE_VERSION {
        return Err(newer(path, version));
    }
    if version > 1 {
        // The marker: the state itself is in `state.bin`, which is missing.
        return Err(Error::State {
            path: path.to_owned(),
            detail: format!(
                "holds no state: format {version} keeps it in state.bin, which is missing; restore state.bin from a backup, or move this file aside and reset"
            ),
        });
    }
    let mut state: SyncState = serde_json::from_slice(bytes).map_err(corrupt)?;
    state.version = STATE_VERSION;
    Ok(state)
}

/// Removes a file; whether it was there.
fn remove_if_present(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        // Copy-on-write file systems may need room to record a removal.
        Err(e) => Err(write_error("remove", path, e)),
    }
}

/// A file's bytes, or `None` if it does not exist; a file readable by others is narrowed
/// first (see [`open_private`]).
fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>> {
    let mut file = match open_private(OpenOptions::new().read(true), path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(Some(bytes))
}

#[async_trait]
impl StateStore for JsonFileStateStore {
    async fn load(&self) -> Result<Option<SyncState>> {
        let this = self.clone();
        blocking(move || this.load_blocking()).await
    }

    async fn save(&self, state: &SyncState) -> Result<()> {
        let bytes = self.encode(state)?;
        // Records still waiting are written first; the journal is closed, then removed.
        let journal = self.commit.quiesce().await;
        let this = self.clone();
        let saved = blocking(move || this.save_blocking(&bytes)).await;
        drop(journal);
        saved
    }

    async fn record(&self, changes: &[StateChange]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let lines = self.encode_changes(changes)?;
        self.commit.record(lines, changes.len()).await
    }

    /// Rewrites the state (as [`save`](StateStore::save) does) only when the journal
    /// has grown large next to it; see the module docs.
    async fn checkpoint(&self, state: &SyncState) -> Result<()> {
        let journal = self.commit.quiesce().await;
        let this = self.clone();
        let worthwhile = blocking(move || this.compaction_is_worthwhile()).await?;
        drop(journal);
        if worthwhile {
            self.save(state).await?;
        }
        Ok(())
    }

    async fn load_settled(&self) -> Result<Option<Settled>> {
        let this = self.clone();
        blocking(move || this.load_settled_blocking()).await
    }

    async fn save_settled(&self, settled: &Settled) -> Result<()> {
        // Records still waiting are written first: the summary names the journal's length.
        let journal = self.commit.quiesce().await;
        let this = self.clone();
        let settled = settled.clone();
        let saved = blocking(move || this.save_settled_blocking(&settled)).await;
        drop(journal);
        saved
    }

    async fn lock(&self) -> Result<StateLock> {
        let this = self.clone();
        blocking(move || this.lock_blocking()).await
    }
}
