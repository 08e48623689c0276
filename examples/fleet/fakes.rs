//! `fakes`: the fake Qonto, identity and Graph drives of N demo organisations, served by
//! this process for workers in others; and registering those organisations.

use crate::commands::{Registration, register};
use crate::world::{FakesInfo, World};
use chrono::NaiveTime;
use receipt_sync::auth::SecretString;
use receipt_sync::fleet::{Fleet, QontoCredentials};
use receipt_sync::{Error, Result};
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Registers every organisation of `fakes`, with its credentials, due at once.
pub async fn register_all(fleet: &Fleet, fakes: &FakesInfo) -> Result<()> {
    // The daily time the crate uses everywhere: 23:30, on the organisation's clock.
    let at = NaiveTime::from_hms_opt(23, 30, 0).unwrap_or_default();
    for org in &fakes.organisations {
        let mut registration = Registration::new(
            &org.id,
            &org.display_name,
            chrono_tz::Europe::Paris,
            at,
            None,
        );
        registration.qonto = Some(QontoCredentials::api_key(
            org.qonto_login.as_str(),
            org.qonto_secret_key.as_str(),
        ));
        registration.microsoft_refresh_token = Some(SecretString::new(&*org.refresh_token));
        register(fleet, &registration).await?;
    }
    Ok(())
}

/// Serves the fakes until standard input closes or says `quit`. Writes their
/// description to `out` first (for `workers --fakes`), then prints `{"ready":true}`.
/// Each `report` line on standard input is answered by one JSON line: every drive's
/// files, missing and duplicated receipts, and uploads received.
pub async fn serve(
    organisations: usize,
    receipts: usize,
    latency: Duration,
    out: &Path,
    fleet: Option<Fleet>,
) -> Result<()> {
    let world = World::start("demo-org", organisations, receipts, latency)
        .await
        .map_err(|e| Error::io("start the fakes", out, e))?;
    let info = world.info();
    if let Some(fleet) = &fleet {
        register_all(fleet, &info).await?;
    }
    let text = serde_json::to_string_pretty(&info)
        .map_err(|e| Error::Config(format!("cannot describe the fakes: {e}")))?;
    // Written whole, then renamed: a reader never sees half a file.
    let partial = out.with_extension("partial");
    std::fs::write(&partial, text).map_err(|e| Error::io("write", &partial, e))?;
    std::fs::rename(&partial, out).map_err(|e| Error::io("rename", out, e))?;
    println!("{}", json!({ "ready": true }));
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = match line.trim() {
            "report" => json!({ "drives": world.report() }),
            "quit" => break,
            other => json!({ "error": format!("unknown command {other:?}: report, quit") }),
        };
        println!("{answer}");
    }
    Ok(())
}
