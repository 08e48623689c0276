//! The embedded default state store: a JSON file, a journal beside it, and a lock file.
//!
//! - `state.json` holds the whole state. It is replaced atomically: written to a
//!   temporary file in the same folder, fsynced, renamed over the old one, and the
//!   folder fsynced, so a crash leaves either the old or the new file.
//! - `state.journal` holds changes recorded since the last save, one JSON line each,
//!   fsynced as they are appended. A torn last line (a crash mid-append) is ignored,
//!   and cut off before the next append; an append that fails halfway (a full disk)
//!   is cut off at once.
//! - A full disk (or a file-size limit) while writing either file is [`Error::DiskFull`]:
//!   it stops the sync, and what was saved before stays whole.
//! - `state.lock` is held with an exclusive [`std::fs::File::try_lock`] for the length of
//!   a sync, so a second process gets [`Error::AlreadyRunning`].
//!
//! The folder and its files are its owner's only, whatever the umask: on Unix the folder
//! is created 0700 and the files 0600, and a folder or file found wider (made by an
//! older version, or by hand) is narrowed when the store opens it.

use super::{STATE_VERSION, StateChange, StateLock, StateStore, SyncState};
use crate::error::{Error, Result};
use crate::fs_util::{blocking, create_private_dir, open_private, sync_dir};
use async_trait::async_trait;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A [`StateStore`] in a folder on disk; see the module docs for the files it keeps.
///
/// The folder is the store's own: it is made readable by its owner only (0700 on Unix),
/// so give the store a folder of its own rather than a shared one.
#[derive(Clone, Debug)]
pub struct JsonFileStateStore {
    dir: PathBuf,
}

impl JsonFileStateStore {
    /// A store keeping its files in `dir` (created if missing, when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The state file.
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The journal of changes since the last save.
    pub fn journal_path(&self) -> PathBuf {
        self.dir.join("state.journal")
    }

    /// The lock file.
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("state.lock")
    }

    fn ensure_dir(&self) -> Result<()> {
        create_private_dir(&self.dir)
    }

    pub(crate) fn load_blocking(&self) -> Result<Option<SyncState>> {
        let path = self.state_path();
        let mut state = match read_if_present(&path)? {
            Some(bytes) => Some(decode_state(&path, &bytes)?),
            None => None,
        };
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

    fn read_journal(&self) -> Result<Vec<StateChange>> {
        let path = self.journal_path();
        let file = match open_private(OpenOptions::new().read(true), &path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        let mut changes = Vec::new();
        let mut lines = BufReader::new(file).lines().peekable();
        let mut number = 0usize;
        while let Some(line) = lines.next() {
            number += 1;
            let line = line.map_err(|e| Error::io("read", &path, e))?;
            let is_last = lines.peek().is_none();
            match serde_json::from_str::<StateChange>(&line) {
                Ok(change) => changes.push(change),
                // A crash while appending leaves at most one torn line, at the end.
                Err(_) if is_last => break,
                Err(e) => {
                    return Err(Error::State {
                        path,
                        detail: format!(
                            "journal line {number} is corrupt ({e}); move the file aside to start over"
                        ),
                    });
                }
            }
        }
        Ok(changes)
    }

    fn encode(&self, state: &SyncState) -> Result<Vec<u8>> {
        serde_json::to_vec(state).map_err(|e| Error::State {
            path: self.state_path(),
            detail: format!("cannot encode the state: {e}"),
        })
    }

    fn save_blocking(&self, json: &[u8]) -> Result<()> {
        self.ensure_dir()?;
        let path = self.state_path();
        // tempfile creates its files readable by their owner only (mode 0600 given to
        // open(2) on Unix, so whatever the umask); the rename keeps that mode.
        let mut tmp = tempfile::Builder::new()
            .prefix(".state.json.")
            .suffix(".tmp")
            .tempfile_in(&self.dir)
            .map_err(|e| write_error("create temporary file in", &self.dir, e))?;
        // On an error `tmp` is dropped, which removes it: the old state stays as it was.
        tmp.write_all(json)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| write_error("write", &path, e))?;
        tmp.persist(&path)
            .map_err(|e| Error::io("replace", &path, e.error))?;
        sync_dir(&self.dir)?;
        // The saved state holds every recorded change: the journal can go.
        match fs::remove_file(self.journal_path()) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", self.journal_path(), e)),
        }
    }

    fn record_blocking(&self, changes: &[StateChange]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        self.ensure_dir()?;
        let path = self.journal_path();
        let mut buf = Vec::new();
        for change in changes {
            serde_json::to_writer(&mut buf, change).map_err(|e| Error::State {
                path: path.clone(),
                detail: format!("cannot encode a change: {e}"),
            })?;
            buf.push(b'\n');
        }
        let mut file = open_private(
            OpenOptions::new().create(true).read(true).append(true),
            &path,
        )
        .map_err(|e| write_error("open", &path, e))?;
        let start = cut_torn_line(&mut file).map_err(|e| Error::io("repair", &path, e))?;
        if let Err(error) = file.write_all(&buf).and_then(|()| file.sync_data()) {
            // A full disk can take part of the line. Once a later append succeeds, it
            // would sit in the middle of the journal, where a torn line is corruption:
            // cut it off (shrinking needs no space).
            if let Err(cut) = file.set_len(start).and_then(|()| file.sync_data()) {
                tracing::warn!(%cut, "could not cut a partial journal line");
            }
            return Err(write_error("append to", &path, error));
        }
        Ok(())
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
            Ok(()) => Ok(StateLock::new(file)),
            Err(fs::TryLockError::WouldBlock) => Err(Error::AlreadyRunning {
                what: path.display().to_string(),
            }),
            Err(fs::TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
        }
    }
}

fn decode_state(path: &Path, bytes: &[u8]) -> Result<SyncState> {
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        version: u32,
    }
    let corrupt = |e: serde_json::Error| Error::State {
        path: path.to_owned(),
        detail: format!(
            "cannot be read ({e}); it was left as it is: restore a backup or move it aside and reset"
        ),
    };
    let VersionOnly { version } = serde_json::from_slice(bytes).map_err(corrupt)?;
    if version > STATE_VERSION {
        return Err(Error::State {
            path: path.to_owned(),
            detail: format!(
                "was written by a newer receipt-sync (format {version}, this one reads up to {STATE_VERSION}); upgrade receipt-sync"
            ),
        });
    }
    serde_json::from_slice(bytes).map_err(corrupt)
}

/// Cuts off a torn last line of the journal, left by a crash mid-append: `load` ignores
/// it, but an append after it would make it a corrupt line in the middle. Returns the
/// journal's length, which then ends with a whole line (or is zero).
fn cut_torn_line(file: &mut File) -> std::io::Result<u64> {
    const STEP: u64 = 8 * 1024;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = Vec::new();
    while end > 0 {
        // The last byte alone first: almost always a newline, and then all is well.
        let from = if end == len {
            end - 1
        } else {
            end.saturating_sub(STEP)
        };
        chunk.resize(usize::try_from(end - from).unwrap_or(0), 0);
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            end = from + i as u64 + 1;
            break;
        }
        end = from;
    }
    if end < len {
        tracing::warn!(
            dropped = len - end,
            "cutting a torn last line off the state journal"
        );
        file.set_len(end)?;
    }
    Ok(end)
}

/// A failed write of the state's files. A full disk (or a file-size limit) becomes
/// [`Error::DiskFull`], which stops the sync and says what to do; the state saved before
/// is whole, since files are replaced by rename and partial appends are cut off.
fn write_error(operation: &'static str, path: &Path, e: std::io::Error) -> Error {
    if Error::is_disk_full(&e) {
        // The kind says it all; the OS text may repeat a temporary file's name.
        return Error::DiskFull {
            operation,
            path: path.to_owned(),
        };
    }
    Error::io(operation, path, e)
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
        let json = self.encode(state)?;
        let this = self.clone();
        blocking(move || this.save_blocking(&json)).await
    }

    async fn record(&self, changes: &[StateChange]) -> Result<()> {
        let this = self.clone();
        let changes = changes.to_vec();
        blocking(move || this.record_blocking(&changes)).await
    }

    async fn lock(&self) -> Result<StateLock> {
        let this = self.clone();
        blocking(move || this.lock_blocking()).await
    }
}
