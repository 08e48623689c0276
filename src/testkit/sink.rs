//! The [`ArchiveSink`] conformance suite: every sink runs it, against an empty archive.
//!
//! ```no_run
//! # async fn demo() {
//! use receipt_sync::sink::InMemorySink;
//! let report = receipt_sync::testkit::sink::run_all(&InMemorySink::new()).await;
//! assert!(report.ran("delta"));
//! # }
//! ```

mod changes;
mod writes;

use super::suite::{SuiteReport, ensure, eq, ok};
use crate::model::{
    ArchivePath, ArchiveSnapshot, Body, ScanCursor, ScanUpdate, SinkEntry, SinkItemId,
};
use crate::sink::ArchiveSink;
use bytes::Bytes;
use changes::{concurrent_writes, delta, longest_name, rename};
use futures::stream::{self, StreamExt};
use std::collections::HashSet;
use writes::{body_length, case_insensitive, files, folders, no_overwrite, replace};

/// Everything the suite creates lives under this folder.
const TOP: &str = "conformance";

/// Runs every check that applies to `sink`'s capabilities, in order, and says which
/// ran and which were skipped.
///
/// # Preconditions
/// The archive is empty. The suite leaves its files and folders behind (the trait
/// cannot delete), all under `conformance/`.
///
/// # Panics
/// At the first failed check, with a message saying what was expected and found.
pub async fn run_all(sink: &dyn ArchiveSink) -> SuiteReport {
    let caps = sink.capabilities();
    let mut report = SuiteReport::default();

    let listing = list(sink, "scan_empty").await;
    ensure("scan_empty", listing.is_empty(), || {
        format!("expected an empty archive, found {listing:?}")
    });
    report.pass("scan_empty");

    folders(sink).await;
    report.pass("folders");
    files(sink).await;
    report.pass("files");
    no_overwrite(sink).await;
    report.pass("no_overwrite");
    body_length(sink).await;
    report.pass("body_length");

    if caps.case_insensitive {
        case_insensitive(sink).await;
        report.pass("case_insensitive");
    } else {
        report.skip("case_insensitive", "the sink is case-sensitive");
    }

    rename(sink, caps.stable_ids).await;
    report.pass("rename_folder");
    if caps.replace {
        replace(sink).await;
        report.pass("replace_small_file");
    } else {
        report.skip("replace_small_file", "the sink does not replace files");
    }

    if caps.delta {
        delta(sink).await;
        report.pass("delta");
    } else {
        let bogus = ScanCursor::new("conformance-unknown-cursor");
        let answer = ok(
            "no_delta",
            "scan with a cursor",
            sink.scan(Some(&bogus)).await,
        );
        ensure(
            "no_delta",
            matches!(answer, ScanUpdate::Full { .. }),
            || format!("a sink without delta must answer a full listing, found {answer:?}"),
        );
        report.pass("no_delta");
        report.skip("delta", "the sink has no change feed");
    }

    let quota = ok("quota", "quota()", sink.quota().await);
    if caps.quota {
        let Some(q) = quota else {
            panic!("[quota] the sink claims quota: expected Some(quota), found None")
        };
        ensure("quota", q.used <= q.total && q.remaining <= q.total, || {
            format!("expected used and remaining within total, found {q:?}")
        });
        report.pass("quota");
    } else {
        eq("quota", "quota() of a sink without quota", None, quota);
        report.skip("quota", "the sink does not report quota");
    }

    let name_len = caps.max_name_len;
    if caps.root_prefix_len + TOP.len() + 1 + name_len <= caps.max_path_len && name_len > 4 {
        longest_name(sink, name_len).await;
        report.pass("longest_name");
    } else {
        report.skip(
            "longest_name",
            "the longest name does not fit the path limit",
        );
    }

    concurrent_writes(sink).await;
    report.pass("concurrent_writes");
    report
}

fn path(p: &str) -> ArchivePath {
    ArchivePath::parse(p).unwrap_or_else(|e| panic!("the suite built a bad path: {e}"))
}

/// A body of `len` patterned bytes, in chunks of `chunk` bytes.
fn chunked(len: usize, chunk: usize) -> Body {
    let bytes: Bytes = (0..len)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let chunks: Vec<_> = (0..len)
        .step_by(chunk.max(1))
        .map(|start| Ok(bytes.slice(start..len.min(start + chunk))))
        .collect();
    Body::new(len as u64, stream::iter(chunks).boxed())
}

/// A full listing, checked for shape: unique ids, parents that are listed folders.
async fn list(sink: &dyn ArchiveSink, check: &str) -> Vec<SinkEntry> {
    let entries = match ok(check, "scan(None)", sink.scan(None).await) {
        ScanUpdate::Full { entries, .. } => entries,
        other => panic!("[{check}] scan(None): expected a full listing, found {other:?}"),
    };
    let folders: HashSet<&SinkItemId> = entries
        .iter()
        .filter(|e| e.is_folder())
        .map(|e| &e.id)
        .collect();
    let mut ids = HashSet::new();
    for e in &entries {
        ensure(check, ids.insert(&e.id), || {
            format!("id {:?} listed twice", e.id)
        });
        ensure(
            check,
            e.parent.as_ref().is_none_or(|p| folders.contains(p)),
            || format!("{e:?}: expected its parent among the listed folders"),
        );
    }
    entries
}

/// The entry at `p` in a fresh listing.
async fn at(sink: &dyn ArchiveSink, check: &str, p: &str) -> Option<SinkEntry> {
    let entries = list(sink, check).await;
    let snapshot = ArchiveSnapshot::from_entries(entries.iter().cloned());
    let index = snapshot.path_index();
    let (id, _) = index.get(&path(p))?;
    entries.into_iter().find(|e| &e.id == id)
}

async fn must_be_at(sink: &dyn ArchiveSink, check: &str, p: &str) -> SinkEntry {
    match at(sink, check, p).await {
        Some(e) => e,
        None => panic!("[{check}] expected {p} in a full listing, found nothing there"),
    }
}
