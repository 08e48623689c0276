//! `plan`: the dry run, every receipt's fate and why; nothing is written.
//!
//! Receipts kept out by the settings (declined transactions, transactions before the
//! start date) are counted apart as "excluded". A sync asks the bank for neither, so
//! only those the state already knows are in the plan; `--show-excluded` also reads
//! the bank in full (declined included) to list every one.
//!
//! The accountant's indexes the sync would write after the receipts, and those it
//! would leave alone (an index the user edited, a deleted period folder), follow, each
//! with its reason.

use crate::index_setting::IndexSetting;
use crate::{Cli, output, report, syncer};
use futures::StreamExt;
use receipt_sync::Result;
use receipt_sync::layout::{Layout, NameLimits};
use receipt_sync::model::{Receipt, ReceiptId, TransactionStatus};
use receipt_sync::plan::{Action, IndexPlan, IndexReason, Plan, SkipReason};
use receipt_sync::source::{ReceiptQuery, ReceiptSource, SourceEvent};
use receipt_sync::state::{StateSettings, StateStore, SyncState};
use std::collections::BTreeMap;

/// Up to this many excluded receipts are listed without `--show-excluded`.
const LISTED_UNASKED: usize = 5;

/// A receipt the settings keep out of the archive, and why.
struct Excluded {
    receipt: ReceiptId,
    /// `2026-01-31 Shop`, when the receipt is known.
    what: Option<String>,
    reason: SkipReason,
}

impl Excluded {
    fn line(&self) -> String {
        let action = Action::Skip {
            receipt: self.receipt.clone(),
            reason: self.reason.clone(),
        };
        match &self.what {
            Some(what) => format!("{what} (receipt {}): {}", self.receipt, action.reason()),
            None => format!("receipt {}: {}", self.receipt, action.reason()),
        }
    }
}

pub async fn plan(cli: &Cli, show_excluded: bool) -> Result<u8> {
    let report = syncer(cli, true).await?.run().await?;
    if report.stopped.is_some() {
        let (code, reason) = report::code_of(&report);
        eprintln!("qonto-onedrive: {}", reason.unwrap_or_default());
        return Ok(code);
    }
    let start_date = report::start_date(&report);
    let change = report.settings_change.as_ref().map(report::settings_change);
    let settings = report.settings.clone();
    let full = report.plan.unwrap_or_default();
    let indexes = report.index_plan.unwrap_or_default();
    let index = cli.take_index();
    let state = cli.env.state_store()?.load().await?.unwrap_or_default();
    let (plan, mut excluded) = split_excluded(full, &state);
    if show_excluded && let Some(settings) = &settings {
        read_excluded(cli, settings, &mut excluded).await?;
    }
    let listed = show_excluded || excluded.len() <= LISTED_UNASKED;
    if cli.json {
        let actions: Vec<_> = plan
            .actions
            .iter()
            .map(|a| {
                serde_json::json!({
                    "action": a.kind_name(),
                    "receipt": a.receipt().map(|r| r.as_str().to_owned()),
                    "path": a.target().map(ToString::to_string),
                    "reason": a.reason(),
                })
            })
            .collect();
        let excluded_list: Option<Vec<_>> = listed.then(|| {
            excluded
                .values()
                .map(|e| {
                    serde_json::json!({
                        "receipt": e.receipt.as_str(),
                        "reason": receipt_sync::plan::skip_reason_name(&e.reason),
                        "message": e.line(),
                    })
                })
                .collect()
        });
        let fields = serde_json::json!({
            "start_date": start_date, "settings_change": change,
            "added_by_start_date": plan.added_by_start_date,
            "counts": plan.counts(), "bytes": plan.bytes_to_write(), "actions": actions,
            "excluded": {
                "count": excluded.len(),
                "bank_read_in_full": show_excluded,
                "receipts": excluded_list,
            },
            "index": index.map(|(setting, _)| setting.json()),
            "index_change": index.and_then(|(_, change)| change).map(|c| c.json()),
            "index_actions": index_actions(&indexes),
        });
        output::print(&output::document("plan", report::OK, fields));
        return Ok(report::OK);
    }
    println!(
        "Start date: {}",
        start_date.as_deref().unwrap_or("none (every receipt)")
    );
    print!("{plan}");
    println!("{}", excluded_summary(&excluded, show_excluded));
    if listed {
        for e in excluded.values() {
            println!("  {}", e.line());
        }
    }
    if let Some((setting, change)) = index {
        print_indexes(&setting, change.is_some(), &indexes);
    }
    Ok(report::OK)
}

/// The index setting and what it would write, for a person.
fn print_indexes(setting: &IndexSetting, changed: bool, indexes: &IndexPlan) {
    let stored = if changed {
        " (not stored yet: the next `sync` stores it)"
    } else {
        ""
    };
    println!("Index:      {setting}{stored}");
    if !setting.enabled {
        return;
    }
    if indexes.writes.is_empty() && indexes.left_alone.is_empty() {
        println!("  no index to write: every one is up to date");
    }
    // Each line with its reason: `index write <path> (<why>)`.
    print!("{indexes}");
}

/// The index writes and the periods left alone, machine-readable.
fn index_actions(indexes: &IndexPlan) -> Vec<serde_json::Value> {
    let writes = indexes.writes.iter().map(|w| {
        serde_json::json!({
            "action": if w.replace.is_some() { "replace" } else { "write" },
            "path": w.path.to_string(),
            "folder": w.folder.to_string(),
            "create_folder": w.create_folder,
            "beside": w.reason == IndexReason::WrittenBeside,
            "reason": w.reason.to_string(),
        })
    });
    let left_alone = indexes.left_alone.iter().map(|(folder, why)| {
        serde_json::json!({
            "action": "skip",
            "path": serde_json::Value::Null,
            "folder": folder.to_string(),
            "create_folder": false,
            "beside": false,
            "reason": why.to_string(),
        })
    });
    writes.chain(left_alone).collect()
}

/// The plan without the receipts the settings exclude, and those receipts.
fn split_excluded(mut plan: Plan, state: &SyncState) -> (Plan, BTreeMap<ReceiptId, Excluded>) {
    let mut excluded = BTreeMap::new();
    plan.actions.retain(|action| match action {
        Action::Skip {
            receipt,
            reason: reason @ (SkipReason::Declined | SkipReason::BeforeStartDate(_)),
        } => {
            let what = state.receipts.get(receipt).map(describe);
            excluded.insert(
                receipt.clone(),
                Excluded {
                    receipt: receipt.clone(),
                    what,
                    reason: reason.clone(),
                },
            );
            false
        }
        _ => true,
    });
    (plan, excluded)
}

/// Adds the receipts a sync does not ask the bank for: every account read in full,
/// declined transactions included, and each receipt the settings exclude kept.
async fn read_excluded(
    cli: &Cli,
    settings: &StateSettings,
    excluded: &mut BTreeMap<ReceiptId, Excluded>,
) -> Result<()> {
    let source = cli.env.source()?;
    let caps = cli.env.sink()?.capabilities();
    let layout = Layout::new(
        settings.layout,
        NameLimits {
            max_name_len: caps.max_name_len,
            max_path_len: caps.max_path_len,
            root_prefix_len: caps.root_prefix_len,
        },
    );
    for account in source.accounts().await? {
        let mut stream = source.receipts(&account.id, &ReceiptQuery::all().include_declined(true));
        while let Some(event) = stream.next().await {
            let receipt = match event {
                Ok(SourceEvent::Receipt(receipt)) => receipt,
                Ok(_) => continue,
                Err(error) if error.stops_sync() => return Err(error),
                // One unreadable receipt does not hide the others; the count says less.
                Err(error) => {
                    tracing::warn!(%error, "a receipt could not be read for the excluded list");
                    continue;
                }
            };
            // The planner's order: declined first, then the start date.
            let reason = if receipt.transaction.status == TransactionStatus::Declined {
                SkipReason::Declined
            } else if let Some(start) = settings.start_date
                && layout.receipt_day(&receipt) < start
            {
                SkipReason::BeforeStartDate(start)
            } else {
                continue;
            };
            excluded.entry(receipt.id.clone()).or_insert(Excluded {
                receipt: receipt.id.clone(),
                what: Some(describe(&receipt)),
                reason,
            });
        }
    }
    Ok(())
}

/// `2026-01-31 Shop`: the transaction's day and label.
fn describe(receipt: &Receipt) -> String {
    format!(
        "{} {}",
        receipt.transaction.emitted_at.date_naive(),
        receipt.transaction.label
    )
}

/// How many receipts are excluded, by reason, and how to see them all.
fn excluded_summary(excluded: &BTreeMap<ReceiptId, Excluded>, read_in_full: bool) -> String {
    let declined = excluded
        .values()
        .filter(|e| e.reason == SkipReason::Declined)
        .count();
    let early = excluded.len() - declined;
    let counts = match excluded.len() {
        0 => "none".to_owned(),
        1 => format!("1 receipt not archived ({declined} declined, {early} before the start date)"),
        n => format!(
            "{n} receipts not archived ({declined} declined, {early} before the start date)"
        ),
    };
    if read_in_full {
        format!("Excluded:   {counts}.")
    } else if excluded.is_empty() {
        "Excluded:   none among the receipts read so far; `plan --show-excluded` reads the bank \
         in full to find declined ones and those before the start date."
            .to_owned()
    } else {
        format!(
            "Excluded:   {counts}, among the receipts read so far; `plan --show-excluded` reads \
             the bank in full and lists every one."
        )
    }
}
