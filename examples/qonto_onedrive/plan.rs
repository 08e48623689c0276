//! `plan`: the dry run, every receipt's fate and why; nothing is written.

use crate::{Cli, report, syncer};
use receipt_sync::Result;

pub async fn plan(cli: &Cli) -> Result<u8> {
    let report = syncer(cli, true).await?.run().await?;
    if report.stopped.is_some() {
        let (code, reason) = report::code_of(&report);
        eprintln!("qonto-onedrive: {}", reason.unwrap_or_default());
        return Ok(code);
    }
    let start_date = report::start_date(&report);
    let change = report.settings_change.as_ref().map(report::settings_change);
    let plan = report.plan.unwrap_or_default();
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
        let out = serde_json::json!({
            "start_date": start_date, "settings_change": change,
            "added_by_start_date": plan.added_by_start_date,
            "counts": plan.counts(), "bytes": plan.bytes_to_write(), "actions": actions,
        });
        println!("{out}");
    } else {
        println!(
            "Start date: {}",
            start_date.as_deref().unwrap_or("none (every receipt)")
        );
        print!("{plan}");
    }
    Ok(report::OK)
}
