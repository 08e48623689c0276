//! Step 6 of a pass: carrying out a plan, recording each finished action at once.

use super::SyncConfig;
use super::events::{Failure, SyncEvent, SyncObserver, SyncReport};
use crate::error::{Error, Result};
use crate::model::{
    ArchivePath, Body, EntryKind, PathIndex, PathKey, Receipt, ReceiptId, SinkEntry, SinkItemId,
};
use crate::plan::fit::upload_order;
use crate::plan::{Action, Plan, folder_ids_of};
use crate::sink::ArchiveSink;
use crate::source::ReceiptSource;
use crate::state::{
    ExportRecord, PendingRename, StateChange, StateStore, SyncState, Tombstone, TombstoneReason,
};
use chrono::Utc;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, future, stream};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::Instrument;

/// At most this many finished uploads are recorded together.
const RECORD_BATCH: usize = 256;

/// Applies changes to the state in memory and records them durably, in that order
/// of importance: a change is applied only once the store has it.
pub(super) struct Recorder {
    store: Arc<dyn StateStore>,
    dry_run: bool,
    /// The items the pass wrote (created, uploaded, renamed), in order: the archive's
    /// change feed reports them back next time (see `super::quiet`).
    written: std::sync::Mutex<Vec<SinkItemId>>,
}

impl Recorder {
    pub fn new(store: Arc<dyn StateStore>, dry_run: bool) -> Self {
        Self {
            store,
            dry_run,
            written: std::sync::Mutex::default(),
        }
    }

    /// The items the pass wrote so far.
    pub fn written(&self) -> Vec<SinkItemId> {
        self.written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub async fn record(&self, state: &mut SyncState, changes: Vec<StateChange>) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        if !self.dry_run {
            self.store.record(&changes).await?;
            let mut written = self
                .written
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            written.extend(changes.iter().filter_map(|change| match change {
                StateChange::ItemWritten(entry) | StateChange::FolderRenamed { entry, .. } => {
                    Some(entry.id.clone())
                }
                _ => None,
            }));
        }
        for change in &changes {
            state.apply(change);
        }
        Ok(())
    }
}

pub(super) struct Executor<'a> {
    pub source: Arc<dyn ReceiptSource>,
    pub sink: Arc<dyn ArchiveSink>,
    pub observer: Arc<dyn SyncObserver>,
    pub config: &'a SyncConfig,
    pub recorder: &'a Recorder,
    /// Once cancelled, no new upload starts; those in flight finish and are recorded.
    pub cancel: &'a tokio_util::sync::CancellationToken,
    /// The cap on uploads in flight shared with other syncers, if any.
    pub budget: Option<&'a super::UploadBudget>,
}

struct UploadJob {
    receipt: Receipt,
    path: ArchivePath,
    folder_ids: Vec<SinkItemId>,
}

enum UploadOutcome {
    Written(SinkEntry),
    /// The source no longer has the receipt.
    Vanished,
    /// Something sits at the path already (an earlier attempt landed after all, or
    /// the user put a file there since the scan): the next run decides.
    Occupied,
}

/// Uploads waiting for space, with their sizes: the storage refused them as full, or
/// the run stopped for a full storage before they started.
pub(super) type Waiting = Vec<(ReceiptId, u64)>;

impl Executor<'_> {
    /// Runs the plan. Stops early, with the reason in `report.stopped`, on an error
    /// that nothing else can get past. Returns the uploads that wait for space: a
    /// full storage is no failure of theirs, they stay pending.
    pub async fn run(
        &self,
        plan: &Plan,
        state: &mut SyncState,
        report: &mut SyncReport,
    ) -> Waiting {
        let mut waiting = None;
        if let Err(error) = self.run_steps(plan, state, report, &mut waiting).await {
            if matches!(error, Error::QuotaExceeded { .. }) && waiting.is_none() {
                // Full before the uploads began: every one of them waits.
                waiting = Some(
                    plan.actions
                        .iter()
                        .filter_map(|action| match action {
                            Action::Upload { receipt, size, .. } => Some((receipt.clone(), *size)),
                            _ => None,
                        })
                        .collect(),
                );
            }
            report.stopped.get_or_insert(error);
        }
        waiting.unwrap_or_default()
    }

    async fn run_steps(
        &self,
        plan: &Plan,
        state: &mut SyncState,
        report: &mut SyncReport,
        waiting: &mut Option<Waiting>,
    ) -> Result<()> {
        self.record_tombstones(plan, state, report).await?;
        let mut index = state.snapshot.path_index();
        if self.rename_folders(plan, state, report).await? {
            index = state.snapshot.path_index();
        }
        let failed_folders = self.create_folders(plan, state, &mut index, report).await?;
        self.record_account_folders(plan, state, &index).await?;
        self.adopt(plan, state, &index, report).await?;
        let waiting = waiting.insert(Vec::new());
        self.upload(plan, state, &index, &failed_folders, report, waiting)
            .await
    }

    fn fail(
        &self,
        report: &mut SyncReport,
        receipt: Option<ReceiptId>,
        path: Option<ArchivePath>,
        error: &Error,
    ) {
        tracing::warn!(receipt = ?receipt, path = ?path, %error, "action failed");
        self.observer.on_event(&SyncEvent::Failed {
            receipt: receipt.clone(),
            path: path.clone(),
            error: error.to_string(),
        });
        report.failures.push(Failure::new(receipt, path, error));
    }

    async fn record_tombstones(
        &self,
        plan: &Plan,
        state: &mut SyncState,
        report: &mut SyncReport,
    ) -> Result<()> {
        let at = Utc::now();
        let changes: Vec<StateChange> = plan
            .actions
            .iter()
            .filter_map(|action| match action {
                Action::Tombstone {
                    receipt,
                    path,
                    folder,
                } => Some(StateChange::Tombstoned {
                    receipt: receipt.clone(),
                    tombstone: Tombstone {
                        reason: TombstoneReason::FolderDeleted {
                            folder: folder.clone(),
                        },
                        path: path.clone(),
                        at,
                    },
                }),
                _ => None,
            })
            .collect();
        for _ in &changes {
            report.add_done("tombstone");
        }
        self.recorder.record(state, changes).await
    }

    /// Returns whether any folder was renamed.
    async fn rename_folders(
        &self,
        plan: &Plan,
        state: &mut SyncState,
        report: &mut SyncReport,
    ) -> Result<bool> {
        let ids_are_paths = !self.sink.capabilities().stable_ids;
        let mut renamed = false;
        for action in &plan.actions {
            let Action::RenameFolder {
                folder, from, to, ..
            } = action
            else {
                continue;
            };
            self.observer.on_event(&SyncEvent::Started {
                kind: "rename-folder",
                path: to.clone(),
            });
            // Recorded before the rename: if its outcome is never recorded (a crash, a
            // failed append), the next scan settles it instead of taking the renamed
            // folder for a deleted one.
            let pending = PendingRename {
                folder: folder.clone(),
                from: from.clone(),
                to: to.clone(),
                ids_are_paths,
            };
            self.recorder
                .record(state, vec![StateChange::FolderRenameStarted(pending)])
                .await?;
            let result = self
                .config
                .retry
                .retry(|_| self.sink.rename_folder(folder, from, to.file_name()))
                .await;
            match result {
                Ok(entry) => {
                    let change = StateChange::FolderRenamed {
                        from: from.clone(),
                        to: to.clone(),
                        entry,
                        ids_are_paths,
                    };
                    self.recorder.record(state, vec![change]).await?;
                    report.add_done("rename-folder");
                    renamed = true;
                    self.observer.on_event(&SyncEvent::Finished {
                        kind: "rename-folder",
                        path: to.clone(),
                    });
                }
                // The rename may have happened all the same (an answer lost on the way):
                // it stays pending, and the next scan settles it.
                Err(error) if error.stops_sync() => return Err(error),
                Err(error) => self.fail(report, None, Some(to.clone()), &error),
            }
        }
        Ok(renamed)
    }

    /// Creates folders, parents first: each level at once (its folders' parents all
    /// exist by then). Returns the ones that could not be created.
    async fn create_folders(
        &self,
        plan: &Plan,
        state: &mut SyncState,
        index: &mut PathIndex,
        report: &mut SyncReport,
    ) -> Result<HashSet<PathKey>> {
        let mut failed = HashSet::new();
        let folders: Vec<&ArchivePath> = plan
            .actions
            .iter()
            .filter_map(|action| match action {
                Action::CreateFolder { path } => Some(path),
                _ => None,
            })
            .collect();
        // The plan lists folders by depth, so each level is one contiguous run.
        for level in folders.chunk_by(|a, b| a.depth() == b.depth()) {
            let (blocked, ready): (Vec<&ArchivePath>, Vec<&ArchivePath>) = level
                .iter()
                .partition(|path| path.ancestors().any(|a| failed.contains(&a.key())));
            failed.extend(blocked.iter().map(|path| path.key()));
            // The futures are made first, then run: a stream that maps borrowed paths
            // through a closure is not provably `Send` (see `create_one_folder`).
            let attempts: Vec<_> = ready
                .into_iter()
                .map(|path| self.create_one_folder(path))
                .collect();
            let results: Vec<(&ArchivePath, Result<SinkEntry>)> = stream::iter(attempts)
                .buffered(self.config.concurrency.max(1))
                .collect()
                .await;
            // Every folder created is recorded before a stop is acted upon: the level's
            // folders together, in one call to the store.
            let created: Vec<StateChange> = results
                .iter()
                .filter_map(|(_, created)| created.as_ref().ok())
                .map(|entry| StateChange::ItemWritten(entry.clone()))
                .collect();
            self.recorder.record(state, created).await?;
            let mut stop = None;
            for (path, created) in results {
                match created {
                    Ok(entry) => {
                        index.insert(path, entry.id.clone(), EntryKind::Folder);
                        report.add_done("create-folder");
                        self.observer.on_event(&SyncEvent::Finished {
                            kind: "create-folder",
                            path: path.clone(),
                        });
                    }
                    Err(error) if error.stops_sync() => {
                        stop.get_or_insert(error);
                    }
                    Err(error) => {
                        failed.insert(path.key());
                        self.fail(report, None, Some(path.clone()), &error);
                    }
                }
            }
            if let Some(error) = stop {
                return Err(error);
            }
        }
        Ok(failed)
    }

    async fn record_account_folders(
        &self,
        plan: &Plan,
        state: &mut SyncState,
        index: &PathIndex,
    ) -> Result<()> {
        let mut changes = Vec::new();
        for folder in &plan.account_folders {
            let Some((id, EntryKind::Folder)) = index.get(&folder.path) else {
                continue;
            };
            let known = state.accounts.get(&folder.account).is_some_and(|rec| {
                rec.folder_id.as_ref() == Some(id)
                    && rec.folder_name.as_deref() == Some(folder.name.as_str())
            });
            if !known {
                changes.push(StateChange::AccountFolder {
                    account: folder.account.clone(),
                    name: folder.name.clone(),
                    id: id.clone(),
                });
            }
        }
        self.recorder.record(state, changes).await
    }

    async fn adopt(
        &self,
        plan: &Plan,
        state: &mut SyncState,
        index: &PathIndex,
        report: &mut SyncReport,
    ) -> Result<()> {
        let at = Utc::now();
        let mut changes = Vec::new();
        for action in &plan.actions {
            let Action::Adopt {
                receipt,
                path,
                size,
                ..
            } = action
            else {
                continue;
            };
            let found = index.get(path);
            let folder_ids = folder_ids_of(index, path);
            match (found, folder_ids) {
                (Some((id, EntryKind::File { size: found_size })), Some(folder_ids))
                    if found_size == *size =>
                {
                    changes.push(StateChange::Exported {
                        receipt: receipt.clone(),
                        record: ExportRecord {
                            path: path.clone(),
                            file_id: id.clone(),
                            folder_ids,
                            size: *size,
                            at,
                        },
                    });
                    report.add_done("adopt");
                }
                _ => {
                    let error = Error::NotFound {
                        what: format!("the file to adopt at {path}"),
                    };
                    self.fail(report, Some(receipt.clone()), Some(path.clone()), &error);
                }
            }
        }
        self.recorder.record(state, changes).await
    }

    /// Uploads, the oldest receipts first, `concurrency` at a time. A full storage
    /// stops the starting of new ones; those in flight finish and are recorded.
    async fn upload(
        &self,
        plan: &Plan,
        state: &mut SyncState,
        index: &PathIndex,
        failed_folders: &HashSet<PathKey>,
        report: &mut SyncReport,
        waiting: &mut Waiting,
    ) -> Result<()> {
        let mut jobs = Vec::new();
        for action in &plan.actions {
            let Action::Upload { receipt, path, .. } = action else {
                continue;
            };
            let Some(receipt) = state.receipts.get(receipt).cloned() else {
                continue;
            };
            let folder_ids = folder_ids_of(index, path);
            match folder_ids {
                Some(folder_ids)
                    if !path.ancestors().any(|a| failed_folders.contains(&a.key())) =>
                {
                    jobs.push(UploadJob {
                        receipt,
                        path: path.clone(),
                        folder_ids,
                    });
                }
                _ => {
                    let error = Error::NotFound {
                        what: format!("the folder of {path}"),
                    };
                    self.fail(report, Some(receipt.id.clone()), Some(path.clone()), &error);
                }
            }
        }
        // Started in date order, so that a storage that fills up on the way (its free
        // space was stale) still takes the oldest receipts first.
        // Each job's place is looked up once, not at every comparison: a first export
        // sorts every receipt, and catalog lookups per comparison dominated it.
        jobs.sort_by_cached_key(|job| {
            let place = state
                .receipts
                .get_key_value(&job.receipt.id)
                .map(|(id, _)| upload_order(&state.receipts, id));
            (place.is_none(), place)
        });
        let stopping = AtomicBool::new(false);
        // Finished uploads wait here for their record. The bound keeps the uploads
        // close behind the records, so that a stop takes effect within one batch of
        // uploads; it is a whole batch so that uploads go on while a batch is made
        // durable: with a bound of a few uploads, each durable write covered only those,
        // and the export ran at the pace of `fdatasync`, not of the uploads.
        let bound = RECORD_BATCH.max(self.config.concurrency.max(1) * 2);
        let (tx, mut rx) = tokio::sync::mpsc::channel(bound);
        let producer = async {
            stream::iter(jobs)
                .map(|job| async {
                    let stopped = || stopping.load(Ordering::SeqCst) || self.cancel.is_cancelled();
                    // Lets whatever shares this task (a shutdown that came due) run before
                    // each upload starts: with a whole batch of room in the channel, a
                    // fast sink no longer makes this task wait between uploads.
                    tokio::task::yield_now().await;
                    if stopped() {
                        return (job, None);
                    }
                    // A place in the shared budget; the wait may outlast a stop.
                    let permit = match self.budget {
                        Some(budget) => match budget.admit(self.cancel).await {
                            Some(permit) if !stopped() => Some(permit),
                            _ => return (job, None),
                        },
                        None => None,
                    };
                    let span = tracing::debug_span!("sync_receipt", receipt = %job.receipt.id);
                    let outcome = self.upload_one(&job).instrument(span).await;
                    drop(permit);
                    (job, Some(outcome))
                })
                .buffer_unordered(self.config.concurrency.max(1))
                .for_each(|done| {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send(done).await;
                    }
                })
                .await;
            drop(tx);
        };
        let consumer = async {
            let mut stop: Option<Error> = None;
            let mut not_started = Vec::new();
            while let Some(first) = rx.recv().await {
                // Every upload that finished meanwhile is recorded with it, in one
                // durable write: each is still recorded as soon as the write before
                // it is done, and a flood of small receipts needs few writes.
                let mut done = vec![first];
                let mut finished = Vec::new();
                while done.len() < RECORD_BATCH {
                    match rx.try_recv() {
                        Ok(next) => done.push(next),
                        Err(_) => break,
                    }
                }
                for (job, outcome) in done {
                    let Some(outcome) = outcome else {
                        not_started.push((job.receipt.id, job.receipt.size));
                        continue;
                    };
                    if let Err(Error::QuotaExceeded { .. }) = &outcome {
                        // Not this receipt's failure: it waits for space, like the rest.
                        waiting.push((job.receipt.id.clone(), job.receipt.size));
                    }
                    finished.push((job, outcome));
                }
                if let Err(error) = self.finish_uploads(finished, state, report).await {
                    stopping.store(true, Ordering::SeqCst);
                    stop.get_or_insert(error);
                }
            }
            if matches!(stop, Some(Error::QuotaExceeded { .. })) {
                waiting.extend(not_started);
            }
            stop
        };
        let ((), stop) = future::join(producer, consumer).await;
        stop.map_or(Ok(()), Err)
    }

    /// Records the outcomes of uploads that finished together:
    /// their changes in one call to the store, then each in the report. An `Err`
    /// stops the run.
    async fn finish_uploads(
        &self,
        finished: Vec<(UploadJob, Result<UploadOutcome>)>,
        state: &mut SyncState,
        report: &mut SyncReport,
    ) -> Result<()> {
        let at = Utc::now();
        let mut changes = Vec::new();
        for (job, outcome) in finished.iter() {
            match outcome {
                Ok(UploadOutcome::Written(entry)) => {
                    let record = ExportRecord {
                        path: job.path.clone(),
                        file_id: entry.id.clone(),
                        folder_ids: job.folder_ids.clone(),
                        size: job.receipt.size,
                        at,
                    };
                    changes.push(StateChange::ItemWritten(entry.clone()));
                    changes.push(StateChange::Exported {
                        receipt: job.receipt.id.clone(),
                        record,
                    });
                }
                Ok(UploadOutcome::Vanished) => changes.push(StateChange::Vanished {
                    receipt: job.receipt.id.clone(),
                    at,
                }),
                Ok(UploadOutcome::Occupied) | Err(_) => {}
            }
        }
        // Nothing is reported done before it is recorded.
        self.recorder.record(state, changes).await?;
        let mut stop = None;
        for (job, outcome) in finished {
            let UploadJob { receipt, path, .. } = job;
            match outcome {
                Ok(UploadOutcome::Written(_)) => {
                    report.add_done("upload");
                    report.bytes_written += receipt.size;
                    self.observer.on_event(&SyncEvent::Finished {
                        kind: "upload",
                        path,
                    });
                }
                Ok(UploadOutcome::Vanished) => report.add_done("vanished"),
                Ok(UploadOutcome::Occupied) => report.deferred += 1,
                // A full storage: the receipt waits for space (the caller keeps it), no failure.
                Err(error @ Error::QuotaExceeded { .. }) => {
                    stop.get_or_insert(error);
                }
                Err(error) if error.stops_sync() => {
                    self.fail(report, Some(receipt.id), Some(path), &error);
                    stop.get_or_insert(error);
                }
                Err(error) => self.fail(report, Some(receipt.id), Some(path), &error),
            }
        }
        stop.map_or(Ok(()), Err)
    }

    /// Creates one folder. Boxed as `Send` and made before it is run: a stream whose
    /// futures come from a closure over borrowed data is not provably `Send` for every
    /// lifetime (a compiler limit with higher-ranked lifetimes), and a sync pass must
    /// be spawnable on a multi-threaded runtime.
    fn create_one_folder<'s>(
        &'s self,
        path: &'s ArchivePath,
    ) -> BoxFuture<'s, (&'s ArchivePath, Result<SinkEntry>)> {
        async move {
            self.observer.on_event(&SyncEvent::Started {
                kind: "create-folder",
                path: path.clone(),
            });
            let created = self
                .config
                .retry
                .retry(|_| self.sink.create_folder(path))
                .await;
            (path, created)
        }
        .boxed()
    }

    async fn upload_one(&self, job: &UploadJob) -> Result<UploadOutcome> {
        self.observer.on_event(&SyncEvent::Started {
            kind: "upload",
            path: job.path.clone(),
        });
        self.config
            .retry
            .retry(|_| async {
                let body = match self.source.open(&job.receipt).await {
                    Ok(body) => body,
                    Err(Error::NotFound { .. }) => return Ok(UploadOutcome::Vanished),
                    Err(error) => return Err(error),
                };
                let body = self.observe_bytes(&job.receipt.id, body);
                match self.sink.write_file(&job.path, body).await {
                    Ok(entry) => Ok(UploadOutcome::Written(entry)),
                    Err(Error::AlreadyExists { .. }) => Ok(UploadOutcome::Occupied),
                    Err(error) => Err(error),
                }
            })
            .await
    }

    fn observe_bytes(&self, receipt: &ReceiptId, body: Body) -> Body {
        let len = body.len();
        let observer = self.observer.clone();
        let receipt = receipt.clone();
        let stream = body.into_stream().inspect(move |chunk| {
            if let Ok(bytes) = chunk {
                observer.on_event(&SyncEvent::Bytes {
                    receipt: receipt.clone(),
                    bytes: bytes.len() as u64,
                });
            }
        });
        Body::new(len, stream.boxed())
    }
}
