//! `daemon`: a pass now, then one every day at the chosen local time.

use crate::{Cli, finish, report, syncer};
use chrono::NaiveTime;
use receipt_sync::Result;
use receipt_sync::sync::{SyncReport, run_daily};

pub async fn daemon(cli: &Cli, at: NaiveTime, tz: chrono_tz::Tz) -> Result<u8> {
    let syncer = syncer(cli, false).await?;
    let on_report = |report: Result<SyncReport>| match report {
        Ok(report) => {
            finish(cli, &report);
        }
        Err(error) => eprintln!("qonto-onedrive: {}", report::explain(&error).1),
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    run_daily(&syncer, at, tz, on_report, shutdown).await;
    Ok(report::OK)
}
