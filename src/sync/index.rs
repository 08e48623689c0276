//! Step 6b of a pass: the accountant's indexes, once the receipts are archived.
//!
//! Planned from the state as the receipts' actions left it ([`crate::plan::index`]),
//! so each index names the files just written. Each write is recorded as soon as it
//! lands; one that fails is reported and tried again next run (the state still holds
//! the previous index, so the next plan finds the same work).

use super::events::{Failure, SyncReport};
use super::execute::Recorder;
use crate::error::Result;
use crate::http::RetryConfig;
use crate::model::{Body, EntryKind};
use crate::plan::IndexPlan;
use crate::sink::ArchiveSink;
use crate::state::{IndexRecord, StateChange, SyncState};
use chrono::Utc;

/// Writes the planned indexes, one after the other (they are small, and few).
pub(super) async fn write_indexes(
    plan: IndexPlan,
    sink: &dyn ArchiveSink,
    retry: &RetryConfig,
    state: &mut SyncState,
    recorder: &Recorder,
    report: &mut SyncReport,
) -> Result<()> {
    let can_replace = sink.capabilities().replace;
    for write in plan.writes {
        if write.replace.is_some() && !can_replace {
            // Written once, not updated: nothing to report as failed every day.
            tracing::info!(path = %write.path, "the sink cannot replace a file; the index stays as written");
            continue;
        }
        let mut changes = Vec::with_capacity(3);
        let folder = if write.create_folder {
            match retry.retry(|_| sink.create_folder(&write.folder)).await {
                Ok(entry) => {
                    changes.push(StateChange::ItemWritten(entry.clone()));
                    Some(entry.id)
                }
                Err(error) => {
                    tracing::warn!(folder = %write.folder, %error, "the period folder of an index could not be created");
                    report
                        .failures
                        .push(Failure::new(None, Some(write.folder.clone()), &error));
                    continue;
                }
            }
        } else {
            state
                .snapshot
                .path_index()
                .get(&write.folder)
                .filter(|(_, kind)| *kind == EntryKind::Folder)
                .map(|(id, _)| id.clone())
        };
        let size = write.bytes.len() as u64;
        let written = retry
            .retry(|_| {
                let body = Body::from_bytes(write.bytes.clone());
                let path = &write.path;
                let replace = write.replace.clone();
                async move {
                    match &replace {
                        // Only the sync's own index, unchanged since written.
                        Some(id) => sink.replace_file(id, path, body).await,
                        None => sink.write_file(path, body).await,
                    }
                }
            })
            .await;
        match written {
            Ok(entry) => {
                report.add_done("index");
                report.bytes_written += size;
                changes.push(StateChange::ItemWritten(entry.clone()));
                changes.push(StateChange::IndexWritten {
                    key: write.key,
                    record: IndexRecord {
                        path: write.path,
                        file_id: entry.id,
                        folder_id: folder,
                        size,
                        hash: write.hash,
                        rows: write.rows,
                        at: Utc::now(),
                    },
                });
            }
            Err(error) => {
                tracing::warn!(path = %write.path, %error, "an index could not be written");
                report
                    .failures
                    .push(Failure::new(None, Some(write.path.clone()), &error));
            }
        }
        recorder.record(state, changes).await?;
    }
    Ok(())
}
