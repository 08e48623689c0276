//! `daemon`: a pass now, then one every day at the chosen local time, as a service.
//!
//! - Each pass logs one plain line on stderr (when it started, what it did, how it
//!   ended, when the next one is); with `--json`, one document per pass on stdout
//!   (JSON Lines).
//! - A stop that needs a person (a refusal, revoked consent, a configuration error, a
//!   full drive or disk) ends the daemon with that stop's exit code, so that the service
//!   manager shows the failure; see [`NEEDS_A_PERSON`].
//! - A pass stopped by a passing failure (network, 5xx, throttling, another sync) is
//!   tried again sooner: 5 minutes, 15 minutes, then hourly, until the daily time.
//! - SIGTERM or Ctrl-C: the uploads in flight finish and are recorded, then exit 0.

use crate::{Cli, output, report, syncer};
use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use receipt_sync::sync::{NextPass, Pass, SyncReport, next_pass, run_daily};
use receipt_sync::{Error, Result};
use std::ops::ControlFlow;

/// The exit codes of a stop that needs a person: the daemon ends with them (a service
/// manager should not restart it: `RestartPreventExitStatus=` in docs/running-daily.md).
/// Any other outcome keeps the schedule.
pub const NEEDS_A_PERSON: [u8; 5] = [
    report::CONFIG,
    report::BAD_CREDENTIALS,
    report::CONSENT_REVOKED,
    report::DRIVE_FULL,
    report::DISK_FULL,
];

pub async fn daemon(cli: &Cli, at: NaiveTime, tz: Tz) -> Result<u8> {
    // Listen before the first pass, so that a stop request is never the default "die now".
    let shutdown = shutdown_signal()?;
    tokio::pin!(shutdown);
    // Binding the archive needs the services: a passing failure at start is retried
    // like a pass's, anything else ends the daemon with its code.
    let mut failed_in_a_row = 0;
    let syncer = loop {
        let error = match syncer(cli, false).await {
            Ok(syncer) => break syncer,
            Err(error) if error.is_retryable() => error,
            Err(error) => return Err(error),
        };
        failed_in_a_row += 1;
        let next = next_pass(Utc::now(), at, tz, failed_in_a_row);
        let pass = Pass::new(Err(error), Some(next));
        log_pass(cli, &pass, tz, pass_code(&pass), false);
        let left = (next.at - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(left) => {}
            () = &mut shutdown => return Ok(report::OK),
        }
    };
    let mut exit = report::OK;
    let on_pass = |pass: Pass| {
        let code = pass_code(&pass);
        let stops = pass.next.is_some() && NEEDS_A_PERSON.contains(&code);
        log_pass(cli, &pass, tz, code, stops);
        if stops {
            exit = code;
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    run_daily(&syncer, at, tz, Utc::now, on_pass, shutdown).await;
    Ok(exit)
}

/// The pass's exit code: its report's, or its error's; 0 for a pass cut short on request.
fn pass_code(pass: &Pass) -> u8 {
    match (&pass.report, &pass.next) {
        (Ok(report), None) if matches!(report.stopped, Some(Error::Cancelled) | None) => report::OK,
        (Ok(report), _) => report::code_of(report).0,
        (Err(error), _) => report::explain(error).0,
    }
}

/// One line on stderr; with `--json`, one document on stdout.
fn log_pass(cli: &Cli, pass: &Pass, tz: Tz, code: u8, stops: bool) {
    // A pass that could not start (the lock, the state) started and ended now.
    let started = match &pass.report {
        Ok(report) => report.started_at.unwrap_or_else(Utc::now),
        Err(_) => Utc::now(),
    };
    let result = match &pass.report {
        Ok(report) if pass.next.is_none() => format!(
            "stopped on request, {} (the receipts in flight were recorded)",
            counts(report)
        ),
        Ok(report) => {
            let outcome = match report::code_of(report) {
                (_, None) => "complete".to_owned(),
                (_, Some(reason)) => reason,
            };
            format!("{}; {outcome}", counts(report))
        }
        Err(error) => report::explain(error).1,
    };
    let then = match (&pass.next, stops) {
        (_, true) => format!("the daemon stops (exit {code}): a person has to act"),
        (None, false) => "the daemon stops".to_owned(),
        (Some(next), false) => format!("next pass: {}", when(next, tz)),
    };
    eprintln!(
        "qonto-onedrive: pass of {}: {result}; {then}",
        local(started, tz)
    );
    if cli.json {
        let mut fields = match &pass.report {
            Ok(report) => report::json(report),
            Err(error) => serde_json::json!({
                "error": { "kind": format!("{:?}", error.kind()), "message": report::explain(error).1 },
            }),
        };
        fields["started_at"] = serde_json::json!(started.with_timezone(&tz).to_rfc3339());
        fields["next_run"] = serde_json::json!(
            pass.next
                .filter(|_| !stops)
                .map(|next| next.at.with_timezone(&tz).to_rfc3339())
        );
        fields["retry"] = serde_json::json!(pass.next.and_then(|next| next.retry));
        if let Some((setting, change)) = cli.take_index() {
            fields["index"] = setting.json();
            fields["index_change"] = serde_json::json!(change.map(|c| c.json()));
        }
        output::print(&output::document("daemon", code, fields));
    }
}

/// What a pass did, in a few numbers.
fn counts(report: &SyncReport) -> String {
    let mut parts = vec![
        format!("read {}", report.receipts_read),
        format!("uploaded {}", report.count("upload")),
        format!("failed {}", report.failures.len()),
    ];
    for (kind, count) in &report.done {
        if kind != "upload" {
            parts.push(format!("{kind} {count}"));
        }
    }
    parts.join(", ")
}

/// The next pass, for a person: its local time, and why it is early if it is.
fn when(next: &NextPass, tz: Tz) -> String {
    match next.retry {
        Some(n) => format!("{} (early retry {n})", local(next.at, tz)),
        None => local(next.at, tz),
    }
}

/// An instant on the local clock of `tz`, with the zone's abbreviation.
fn local(instant: DateTime<Utc>, tz: Tz) -> String {
    instant
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// Completes on SIGTERM (what service managers send) or SIGINT (Ctrl-C). The handlers
/// are installed at once, not at the first poll.
fn shutdown_signal() -> Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind| {
            signal(kind).map_err(|e| Error::Config(format!("cannot listen for signals: {e}")))
        };
        let mut terminate = listen(SignalKind::terminate())?;
        let mut interrupt = listen(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
