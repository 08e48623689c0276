//! The fleet's status, as text for people or as one `--json` document.

use crate::output;
use crate::world::DriveReport;
use receipt_sync::fleet::FleetStatus;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The status as a table.
pub fn text(status: &FleetStatus) -> String {
    let mut out = format!(
        "{} organisations, {} enabled, {} due, {} running, {} failing (at {})\n",
        status.organizations,
        status.enabled,
        status.due,
        status.running,
        status.failing,
        status.at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    out.push_str(&format!(
        "{:<14} {:<20} {:<9} {:<8} {:<20} {}\n",
        "ORGANISATION", "NAME", "LAST", "FAILURES", "NEXT RUN (UTC)", "RUNNING ON"
    ));
    for org in &status.next_runs {
        out.push_str(&format!(
            "{:<14} {:<20} {:<9} {:<8} {:<20} {}\n",
            org.id,
            org.display_name,
            org.last_result.as_deref().unwrap_or("-"),
            org.failures_in_a_row,
            org.next_run_at.format("%Y-%m-%d %H:%M:%S"),
            org.running_on.as_deref().unwrap_or("-"),
        ));
        if let Some(error) = &org.last_error {
            out.push_str(&format!("    {error}\n"));
        }
    }
    out
}

/// The `--json` document of `command`: the status and, from the demo, each drive.
pub fn document(
    command: &str,
    exit_code: u8,
    status: &FleetStatus,
    drives: Option<&BTreeMap<String, DriveReport>>,
) -> Value {
    let mut fields = json!({ "status": status });
    if let (Some(drives), Value::Object(map)) = (drives, &mut fields) {
        map.insert("drives".into(), json!(drives));
    }
    output::document(command, exit_code, fields)
}

/// Each drive in a line: files, receipts, missing, duplicates, uploads.
pub fn drives_text(drives: &BTreeMap<String, DriveReport>) -> String {
    let mut out = String::new();
    for (id, d) in drives {
        out.push_str(&format!(
            "{id}: {} files for {} receipts, {} missing, {} duplicated, {} uploads\n",
            d.files, d.receipts, d.missing, d.duplicates, d.uploads
        ));
    }
    out
}
