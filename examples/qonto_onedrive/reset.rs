//! `reset`: "reconfigure the integration": the next sync brings back what was deleted.

use crate::{Cli, report, status, syncer};
use receipt_sync::Result;
use receipt_sync::state::StateStore;

pub async fn reset(cli: &Cli, yes: bool) -> Result<u8> {
    if !yes {
        eprintln!(
            "qonto-onedrive: reset brings back every receipt deleted from the archive; run `reset --yes` to confirm"
        );
        return Ok(report::CONFIG);
    }
    syncer(cli, false).await?.reset().await?;
    println!("Reset: the next sync brings back everything deleted from the archive.");
    let state = cli.env.state_store()?.load().await?.unwrap_or_default();
    println!("Start date: {}", status::stored_start_date(&state));
    Ok(report::OK)
}
