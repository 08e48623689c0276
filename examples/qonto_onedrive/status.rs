//! `status`: what the state says is archived, tombstoned and pending, and the space left.

use crate::{Cli, report};
use receipt_sync::Result;
use receipt_sync::state::{StateStore, SyncState};

pub async fn status(cli: &Cli) -> Result<u8> {
    let state = cli.env.state_store()?.load().await?.unwrap_or_default();
    let archived = state.exported.len();
    let tombstoned = state.tombstones.len();
    let pending = state
        .receipts
        .keys()
        .filter(|id| {
            !state.exported.contains_key(*id)
                && !state.tombstones.contains_key(*id)
                && !state.vanished.contains_key(*id)
        })
        .count();
    let space = match cli.env.sink() {
        Ok(sink) => match sink.quota().await {
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
        Err(_) => None,
    };
    let last = state.last_run.as_ref();
    if cli.json {
        let out = serde_json::json!({
            "start_date": state.settings.as_ref().and_then(|s| s.start_date).map(|d| d.to_string()),
            "archived": archived, "tombstoned": tombstoned, "pending": pending,
            "last_run": last.map(|r| serde_json::json!({
                "finished_at": r.finished_at, "uploaded": r.uploaded, "failed": r.failed, "stopped": r.stopped,
            })),
            "space_left": space,
        });
        println!("{out}");
    } else {
        println!("Start date: {}", stored_start_date(&state));
        println!("Archived:   {archived}");
        println!(
            "Tombstoned: {tombstoned} (deleted with their folder; `reset --yes` brings them back)"
        );
        println!("Pending:    {pending}");
        match last {
            Some(r) => println!(
                "Last run:   {} ({} uploaded, {} failed{})",
                r.finished_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                r.uploaded,
                r.failed,
                r.stopped
                    .as_ref()
                    .map(|s| format!("; stopped: {s}"))
                    .unwrap_or_default()
            ),
            None => println!("Last run:   never"),
        }
        if let Some(left) = space {
            println!("Space left: {}", report::human(left));
        }
    }
    Ok(report::OK)
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
