//! Group commit: records that arrive close together share one write and one `fdatasync`.
//!
//! Each [`GroupCommit::record`] adds its lines to the *open batch* and waits until that
//! batch is durable. Whoever takes the flush right (a mutex that also holds the open
//! journal file) writes the whole open batch at once; records that arrive meanwhile
//! gather in the next batch. When the batch holds records of more than one caller (a
//! sign that others are finishing too), the flusher lingers up to [`MAX_DELAY`] after
//! the batch's first record, or until it holds [`MAX_RECORDS`], so that more join; a
//! lone caller is written at once and waits for nobody.
//!
//! The contract of [`crate::state::StateStore::record`] holds: a call returns `Ok` only
//! once its own lines are written and synced. A crash loses at most the open batch,
//! whose callers were never answered.
//!
//! The flush itself runs on a blocking thread that owns the flush right until it has
//! told the batch's callers the outcome, so a caller that is cancelled mid-flush leaves
//! neither the file nor the other callers in doubt.

use super::journal;
use crate::error::{Error, Result};
use crate::fs_util::{create_private_dir, write_error};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, OwnedMutexGuard, watch};
use tokio::time::Instant;

/// A batch is written once it holds this many records, lingering or not.
pub(super) const MAX_RECORDS: usize = 256;
/// How long a flusher lingers for more records, counted from the batch's first one.
pub(super) const MAX_DELAY: Duration = Duration::from_millis(5);

/// What became of a batch, as every one of its callers is told it. An [`Error`] is not
/// `Clone`: a failure is kept as what rebuilds it.
#[derive(Clone, Debug)]
enum Outcome {
    Durable,
    DiskFull {
        operation: &'static str,
        path: PathBuf,
    },
    Io {
        operation: &'static str,
        path: PathBuf,
        kind: std::io::ErrorKind,
        message: String,
    },
    State {
        path: PathBuf,
        detail: String,
    },
}

impl Outcome {
    fn of(result: Result<()>, path: &Path) -> Self {
        match result {
            Ok(()) => Self::Durable,
            Err(Error::DiskFull { operation, path }) => Self::DiskFull { operation, path },
            Err(Error::Io {
                operation,
                path,
                source,
            }) => Self::Io {
                operation,
                path,
                kind: source.kind(),
                message: source.to_string(),
            },
            Err(other) => Self::State {
                path: path.to_owned(),
                detail: other.to_string(),
            },
        }
    }

    fn into_result(self) -> Result<()> {
        match self {
            Self::Durable => Ok(()),
            Self::DiskFull { operation, path } => Err(Error::DiskFull { operation, path }),
            Self::Io {
                operation,
                path,
                kind,
                message,
            } => Err(Error::io(
                operation,
                path,
                std::io::Error::new(kind, message),
            )),
            Self::State { path, detail } => Err(Error::State { path, detail }),
        }
    }
}

/// Lines waiting to be written, and how their callers learn the outcome.
struct Batch {
    lines: Vec<u8>,
    records: usize,
    callers: usize,
    first_at: Option<Instant>,
    done: watch::Sender<Option<Outcome>>,
}

impl Batch {
    fn new() -> Self {
        Self {
            lines: Vec::new(),
            records: 0,
            callers: 0,
            first_at: None,
            done: watch::Sender::new(None),
        }
    }
}

/// The journal file, kept open between flushes while the store holds its lock, with
/// where its whole lines end.
#[derive(Default)]
pub(super) struct OpenJournal {
    file: Option<(File, u64)>,
}

impl OpenJournal {
    /// Closes the file (a save is about to remove it, or the lock is gone).
    pub(super) fn close(&mut self) {
        self.file = None;
    }
}

/// The journal's writer, shared by every clone of a store.
pub(super) struct GroupCommit {
    path: PathBuf,
    dir: PathBuf,
    open: Mutex<Batch>,
    /// The flush right, with the open file.
    journal: Arc<tokio::sync::Mutex<OpenJournal>>,
    /// Rung when the open batch fills up, to end a flusher's lingering.
    full: Notify,
    /// Whether the file may stay open between flushes: only while the store holds its
    /// lock, so that no other process can replace the journal under an open handle.
    keep_open: AtomicBool,
    flushes: AtomicU64,
}

impl GroupCommit {
    pub(super) fn new(dir: &Path, path: PathBuf) -> Self {
        Self {
            path,
            dir: dir.to_owned(),
            open: Mutex::new(Batch::new()),
            journal: Arc::new(tokio::sync::Mutex::new(OpenJournal::default())),
            full: Notify::new(),
            keep_open: AtomicBool::new(false),
            flushes: AtomicU64::new(0),
        }
    }

    /// Durable writes made so far (one write and one `fdatasync` each).
    pub(super) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// Lets the file stay open between flushes (the lock is held), or closes it now.
    pub(super) fn keep_open(&self, keep: bool) {
        self.keep_open.store(keep, Ordering::SeqCst);
        if !keep {
            // A flush in progress closes it itself when it sees the flag.
            if let Ok(mut journal) = self.journal.try_lock() {
                journal.close();
            }
        }
    }

    fn lock_batch(&self) -> std::sync::MutexGuard<'_, Batch> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `lines` (holding `records` changes) and returns once they are durable.
    pub(super) async fn record(self: &Arc<Self>, lines: Vec<u8>, records: usize) -> Result<()> {
        let done = {
            let mut batch = self.lock_batch();
            batch.lines.extend_from_slice(&lines);
            batch.records += records;
            batch.callers += 1;
            batch.first_at.get_or_insert_with(Instant::now);
            if batch.records >= MAX_RECORDS {
                self.full.notify_one();
            }
            batch.done.subscribe()
        };
        let mut waiter = done.clone();
        loop {
            tokio::select! {
                biased;
                outcome = outcome_of(&mut waiter) => {
                    // `None`: the flusher's thread died before it could say.
                    return outcome.map_or(Err(Error::Cancelled), Outcome::into_result);
                }
                journal = self.journal.clone().lock_owned() => {
                    // Batches are flushed in order by whoever holds the right: ours is
                    // either done already or still the open one.
                    let pending = done.borrow().is_none();
                    if pending {
                        self.linger().await;
                        self.flush_open_batch(journal).await;
                    }
                }
            }
        }
    }

    /// Waits for more records while others are finishing too (see the module docs).
    async fn linger(&self) {
        let Some(first_at) = ({
            let batch = self.lock_batch();
            (batch.callers > 1).then_some(batch.first_at).flatten()
        }) else {
            return;
        };
        let deadline = first_at + MAX_DELAY;
        loop {
            if self.lock_batch().records >= MAX_RECORDS || Instant::now() >= deadline {
                return;
            }
            if tokio::time::timeout_at(deadline, self.full.notified())
                .await
                .is_err()
            {
                return;
            }
        }
    }

    /// Writes the open batch, if it holds anything, and tells its callers. Waits until
    /// that is done, but the flush finishes even if this future is dropped.
    pub(super) async fn flush_open_batch(&self, mut journal: OwnedMutexGuard<OpenJournal>) {
        let batch = std::mem::replace(&mut *self.lock_batch(), Batch::new());
        if batch.records == 0 {
            return;
        }
        let path = self.path.clone();
        let dir = self.dir.clone();
        let keep_open = self.keep_open.load(Ordering::SeqCst);
        self.flushes.fetch_add(1, Ordering::Relaxed);
        let flushed = tokio::task::spawn_blocking(move || {
            let outcome = Outcome::of(append(&mut journal, &dir, &path, &batch.lines), &path);
            if !keep_open {
                journal.close();
            }
            // Told while the right is still held: the next flusher sees this batch done.
            batch.done.send_replace(Some(outcome));
            drop(journal);
        });
        // A panicked flush drops the sender: its callers see `Cancelled`.
        let _ = flushed.await;
    }

    /// Takes the flush right, writing whatever is waiting first, for a save that is
    /// about to replace the journal.
    pub(super) async fn quiesce(&self) -> OwnedMutexGuard<OpenJournal> {
        let journal = self.journal.clone().lock_owned().await;
        self.flush_open_batch(journal).await;
        let mut journal = self.journal.clone().lock_owned().await;
        journal.close();
        journal
    }
}

/// The outcome of a batch once told, or `None` if its flusher vanished without telling.
async fn outcome_of(waiter: &mut watch::Receiver<Option<Outcome>>) -> Option<Outcome> {
    let told = waiter.wait_for(Option::is_some).await.ok()?;
    told.clone()
}

/// Appends `lines` to the journal, opening it (and cutting a torn last line off) when it
/// is not open yet. After a failure the file is closed, so the next append starts from
/// what the file holds.
fn append(journal: &mut OpenJournal, dir: &Path, path: &Path, lines: &[u8]) -> Result<()> {
    let (mut file, end) = match journal.file.take() {
        Some(open) => open,
        None => {
            create_private_dir(dir)?;
            let mut file = journal::open(path).map_err(|e| write_error("open", path, e))?;
            let end =
                journal::end_of_whole_lines(&mut file).map_err(|e| Error::io("repair", path, e))?;
            (file, end)
        }
    };
    journal::append_at(&mut file, end, lines).map_err(|e| write_error("append to", path, e))?;
    journal.file = Some((file, end + lines.len() as u64));
    Ok(())
}
