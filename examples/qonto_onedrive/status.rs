//! `status`: where the archive goes, the start date, the accountant's index, what the state says is archived,
//! tombstoned and pending, the last run, and the space left. Times are local, in the
//! zone of `--tz` (Europe/Paris unless told, like the daemon).

use crate::binding::ArchiveBinding;
use crate::index_setting::{self, IndexSetting};
use crate::{Cli, output, report};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use receipt_sync::layout::{Layout, NameLimits};
use receipt_sync::model::TransactionId;
use receipt_sync::plan::{PlanOptions, plan};
use receipt_sync::sink::ArchiveSink;
use receipt_sync::state::{StateStore, SyncState};
use receipt_sync::{Error, Result};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

/// What the next sync does with the receipts not archived yet, as the state knows the
/// archive: files already in place are adopted (after a reset, or an interrupted run),
/// the others uploaded.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// Files in the archive the next sync records for their receipt, without writing.
    pub to_adopt: usize,
    /// Receipts the next sync uploads.
    pub to_upload: usize,
}

pub async fn status(cli: &Cli, tz: Tz) -> Result<u8> {
    let state = cli.env.state_store()?.load().await?.unwrap_or_default();
    let home = cli.env.home()?;
    let archive = bound_archive(&home)?;
    let index = index_setting::read(&home)?;
    let archived = state.exported.len();
    let tombstoned = state.tombstones.len();
    let sink = cli.env.sink().ok();
    let pending = pending(&state, sink.as_ref());
    let space = match &sink {
        Some(sink) => match sink.quota().await {
            Ok(Some(q)) => Some(q.remaining),
            Ok(None) => None,
            Err(e) => {
                eprintln!(
                    "qonto-onedrive: drive space unknown: {}",
                    report::explain(&e).1
                );
                None
            }
        },
        None => None,
    };
    let last = state.last_run.as_ref();
    // Listed only while indexes are on: the sync keeps receipt-less transactions then.
    let missing = if index.is_some_and(|i| i.enabled) {
        missing_receipts(&state)
    } else {
        Vec::new()
    };
    if cli.json {
        let fields = serde_json::json!({
            "archive": archive,
            "start_date": state.settings.as_ref().and_then(|s| s.start_date).map(|d| d.to_string()),
            "index": index.map(|i| i.json()),
            "archived": archived, "tombstoned": tombstoned,
            "pending": pending.to_adopt + pending.to_upload,
            "to_adopt": pending.to_adopt, "to_upload": pending.to_upload,
            "last_run": last.map(|r| serde_json::json!({
                "finished_at": r.finished_at, "uploaded": r.uploaded, "failed": r.failed, "stopped": r.stopped,
            })),
            "space_left": space,
            "without_receipt": missing.iter().map(|(period, n)| (period.clone(), serde_json::json!(n)))
                .collect::<serde_json::Map<_, _>>(),
        });
        output::print(&output::document("status", report::OK, fields));
        return Ok(report::OK);
    }
    println!(
        "Archive:    {}",
        archive
            .as_deref()
            .unwrap_or("not chosen yet (the first sync stores it)")
    );
    println!("Start date: {}", stored_start_date(&state));
    println!("Index:      {}", stored_index(index, &home)?);
    println!("Archived:   {archived}");
    println!(
        "Tombstoned: {tombstoned} (deleted with their folder; `reset --yes` brings them back)"
    );
    println!("Pending:    {}", describe_pending(&pending));
    match last {
        Some(r) => println!(
            "Last run:   {} ({} uploaded, {} failed{})",
            r.finished_at
                .map_or_else(|| "unfinished".to_owned(), |t| local_time(t, tz)),
            r.uploaded,
            r.failed,
            r.stopped
                .as_ref()
                // The reason's first line: what to do; its details are in the log.
                .map(|s| format!("; stopped: {}", s.lines().next().unwrap_or_default()))
                .unwrap_or_default()
        ),
        None => println!("Last run:   never"),
    }
    if let Some(left) = space {
        println!("Space left: {}", report::human(left));
    }
    if !missing.is_empty() {
        println!("Without a receipt (transactions, per period):");
        for (period, n) in &missing {
            println!("  {period}: {n}");
        }
    }
    Ok(report::OK)
}

/// How many transactions have no receipt at the bank, per account and period
/// (`<account name> <period>`), as the accountant's index lists them; periods where
/// every transaction has one are left out.
pub fn missing_receipts(state: &SyncState) -> Vec<(String, usize)> {
    let Some(settings) = state.settings.clone() else {
        return Vec::new();
    };
    let layout = Layout::new(settings.layout, NameLimits::default());
    let with_receipt: HashSet<&TransactionId> =
        state.receipts.values().map(|r| &r.transaction.id).collect();
    receipt_sync::index::collect(state, &layout, settings.start_date, false)
        .into_iter()
        .filter_map(|((account, _), period)| {
            let n = period
                .rows
                .iter()
                .filter(|row| !with_receipt.contains(&row.transaction_id))
                .count();
            let name = state
                .accounts
                .get(&account)
                .map_or_else(|| account.to_string(), |a| a.account.name.clone());
            (n > 0).then(|| (format!("{name} {}", layout.period_folder(period.day)), n))
        })
        .collect()
}

/// The archive this state is bound to, in words; `None` before the first sync.
///
/// Read from `<home>/archive-binding.json`, or from `<home>/archive-place`, the sentence
/// earlier releases wrote (the first run that matches it replaces it).
pub fn bound_archive(home: &Path) -> Result<Option<String>> {
    let read = |name: &str| {
        let file = home.join(name);
        match std::fs::read_to_string(&file) {
            Ok(text) => Ok(Some((file, text))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", &file, e)),
        }
    };
    if let Some((file, text)) = read("archive-binding.json")? {
        let binding: ArchiveBinding = serde_json::from_str(&text).map_err(|e| {
            Error::Config(format!(
                "restore {} or run `sync --rebind`: it cannot be read ({e})",
                file.display()
            ))
        })?;
        return Ok(Some(binding.to_string()));
    }
    Ok(read("archive-place")?
        .map(|(_, place)| place.trim().to_owned())
        .filter(|place| !place.is_empty()))
}

/// What the plan of the state as it stands adopts and uploads (no source or archive is
/// read: the archive is as the last sync saw it). Before the first sync, or without a
/// sink to lay out paths for, every receipt not archived counts as to upload.
pub fn pending(state: &SyncState, sink: Option<&Arc<dyn ArchiveSink>>) -> Pending {
    let (Some(sink), Some(settings)) = (sink, state.settings.clone()) else {
        let to_upload = state
            .receipts
            .keys()
            .filter(|id| {
                !state.exported.contains_key(*id)
                    && !state.tombstones.contains_key(*id)
                    && !state.vanished.contains_key(*id)
            })
            .count();
        return Pending {
            to_adopt: 0,
            to_upload,
        };
    };
    let caps = sink.capabilities();
    let layout = Layout::new(
        settings.layout,
        NameLimits {
            max_name_len: caps.max_name_len,
            max_path_len: caps.max_path_len,
            root_prefix_len: caps.root_prefix_len,
        },
    );
    let options = PlanOptions::default().with_start_date(settings.start_date);
    let plan = plan(state, &layout, &options);
    let count = |kind: &str| {
        plan.actions
            .iter()
            .filter(|a| a.kind_name() == kind)
            .count()
    };
    Pending {
        to_adopt: count("adopt"),
        to_upload: count("upload"),
    }
}

/// "N files in the archive will be adopted at the next sync, M receipts to upload".
pub fn describe_pending(pending: &Pending) -> String {
    let uploads = match pending.to_upload {
        1 => "1 receipt to upload".to_owned(),
        n => format!("{n} receipts to upload"),
    };
    match pending.to_adopt {
        0 => uploads,
        1 => format!("1 file in the archive will be adopted at the next sync, {uploads}"),
        n => format!("{n} files in the archive will be adopted at the next sync, {uploads}"),
    }
}

/// A moment for a person: local time in `tz`, to the minute, with the zone's
/// abbreviation (`2026-12-02 23:30 CET`).
pub fn local_time(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// The stored index setting, for a person; before it is stored, what the next sync
/// chooses.
pub fn stored_index(index: Option<IndexSetting>, home: &Path) -> Result<String> {
    Ok(match index {
        Some(index) => index.to_string(),
        None if index_setting::is_new_archive(home)? => {
            "not set yet (the first sync turns it on, with `,`; `--index off` keeps it off)"
                .to_owned()
        }
        None => "off (this archive was made before the setting; `sync --index on` turns it on)"
            .to_owned(),
    })
}

/// The stored start date, for a person.
pub fn stored_start_date(state: &SyncState) -> String {
    match &state.settings {
        None => "not set yet (the first sync stores the `--since` day)".to_owned(),
        Some(s) => s
            .start_date
            .map_or_else(|| "none (every receipt)".to_owned(), |d| d.to_string()),
    }
}
