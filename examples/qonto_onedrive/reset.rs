//! `reset`: "reconfigure the integration": the next sync brings back what was deleted,
//! and adopts the files still in place.

use crate::{Cli, output, report, status, syncer};
use receipt_sync::state::StateStore;
use receipt_sync::{Error, Result};

pub async fn reset(cli: &Cli, yes: bool) -> Result<u8> {
    if !yes {
        // An error, not a line of its own: with `--json` it is the command's document too.
        return Err(Error::Config(
            "run `reset --yes` to confirm: reset brings back every receipt deleted from the archive"
                .into(),
        ));
    }
    syncer(cli, false).await?.reset().await?;
    let state = cli.env.state_store()?.load().await?.unwrap_or_default();
    let sink = cli.env.sink().ok();
    let pending = status::pending(&state, sink.as_ref());
    let next = status::describe_pending(&pending);
    if cli.json {
        let fields = serde_json::json!({
            "start_date": state.settings.as_ref().and_then(|s| s.start_date).map(|d| d.to_string()),
            "to_adopt": pending.to_adopt, "to_upload": pending.to_upload,
            "message": format!("Reset: the next sync brings back everything deleted from the archive. {next}."),
        });
        output::print(&output::document("reset", report::OK, fields));
        return Ok(report::OK);
    }
    println!("Reset: the next sync brings back everything deleted from the archive.");
    println!("Pending:    {next}");
    println!("Start date: {}", status::stored_start_date(&state));
    Ok(report::OK)
}
