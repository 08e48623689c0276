//! `qonto-onedrive`: archives a Qonto organisation's receipts into a personal OneDrive
//! (or a local folder), once or every day. See docs/getting-started.md.
//!
//! ```sh
//! export QONTO_LOGIN=... QONTO_SECRET_KEY=... MS_CLIENT_ID=...
//! cargo run --example qonto-onedrive -- login
//! cargo run --example qonto-onedrive -- sync --since 2025-01-01
//! cargo run --example qonto-onedrive -- sync      # later runs keep the stored start date
//! ```
//!
//! Exit codes: 0 every receipt is where it should be; 1 some receipts failed (the next
//! run retries them); 2 usage or configuration; 3 credentials refused; 4 OneDrive access
//! withdrawn (run `login`); 5 drive full; 6 another sync running; 7 anything else.

#[path = "qonto_onedrive/report.rs"]
mod report;
#[path = "qonto_onedrive/setup.rs"]
mod setup;

use chrono::{NaiveDate, NaiveTime};
use clap::{Parser, Subcommand};
use receipt_sync::auth::microsoft::{
    BrowserSignInOptions, DeviceCodeOptions, MicrosoftTokenProvider, TokenStore,
    sign_in_with_browser, sign_in_with_device_code,
};
use receipt_sync::model::ArchivePath;
use receipt_sync::sink::onedrive::ShareKind;
use receipt_sync::state::{StateStore, SyncState};
use receipt_sync::sync::{SyncConfig, SyncReport, Syncer, run_daily};
use receipt_sync::{Error, Result};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "qonto-onedrive",
    version,
    about = "Archives Qonto receipts into OneDrive"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    env: setup::Env,
    /// Uploads in flight at once.
    #[arg(long, global = true, default_value_t = 8)]
    concurrency: usize,
    /// A machine-readable report on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Archive receipts of transactions since this day. The first sync stores it; when
    /// omitted, every later command (sync, daemon, plan, reset) uses the stored day.
    /// A different day changes it: earlier adds the receipts in between, later stops
    /// archiving older ones (archived files stay).
    #[arg(long, global = true, value_name = "YYYY-MM-DD")]
    since: Option<NaiveDate>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Signs in to OneDrive (a browser on this machine, or a code to enter elsewhere).
    Login {
        /// Show a code to enter on another device instead of opening a browser.
        #[arg(long)]
        device_code: bool,
    },
    /// One sync pass.
    Sync,
    /// A pass now, then every day at a given time.
    Daemon {
        /// The local time of the daily pass.
        #[arg(long, default_value = "23:30")]
        at: NaiveTime,
        /// The time zone of `--at`.
        #[arg(long, default_value = "Europe/Paris")]
        tz: chrono_tz::Tz,
    },
    /// Dry run: every receipt's fate and why; nothing is written.
    Plan,
    /// What is archived, tombstoned, pending; the last run; drive space left.
    Status,
    /// Brings back everything deleted from the archive on the next sync.
    Reset {
        /// Confirms the reset.
        #[arg(long)]
        yes: bool,
    },
    /// Shares an archive folder by a view-only link, or with a person.
    Share {
        /// The folder, relative to the archive root (for example `Main account 1234/2026-03`).
        folder: String,
        /// Invite this e-mail address instead of creating a link.
        #[arg(long)]
        email: Option<String>,
    },
    /// Forgets the saved OneDrive sign-in.
    Disconnect,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("qonto-onedrive: cannot start: {e}");
            return ExitCode::from(report::FAILED);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let (code, line) = report::explain(&error);
            eprintln!("qonto-onedrive: {line}");
            ExitCode::from(code)
        }
    }
}

fn syncer(cli: &Cli, dry_run: bool) -> Result<Syncer> {
    // Like the start date, where the archive goes is stored once (a dry run only checks).
    cli.env.check_archive_place(!dry_run)?;
    let config = SyncConfig::default()
        .with_start_date(cli.since)
        .with_concurrency(cli.concurrency)
        .with_dry_run(dry_run);
    Ok(Syncer::new(
        Arc::new(cli.env.source()?),
        cli.env.sink()?,
        Arc::new(cli.env.state_store()?),
        config,
    ))
}

async fn run(cli: Cli) -> Result<u8> {
    match &cli.command {
        Command::Login { device_code } => login(&cli, *device_code).await,
        Command::Sync => {
            let progress = Arc::new(report::Progress::new(cli.json));
            let syncer = syncer(&cli, false)?.with_observer(progress.clone());
            let outcome = syncer.run().await;
            progress.finish();
            Ok(finish(&cli, &outcome?))
        }
        Command::Daemon { at, tz } => {
            let syncer = syncer(&cli, false)?;
            let on_report = |report: Result<SyncReport>| match report {
                Ok(report) => {
                    finish(&cli, &report);
                }
                Err(error) => eprintln!("qonto-onedrive: {}", report::explain(&error).1),
            };
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            run_daily(&syncer, *at, *tz, on_report, shutdown).await;
            Ok(report::OK)
        }
        Command::Plan => {
            let report = syncer(&cli, true)?.run().await?;
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
        Command::Status => status(&cli).await,
        Command::Reset { yes } => {
            if !yes {
                eprintln!(
                    "qonto-onedrive: reset brings back every receipt deleted from the archive; run `reset --yes` to confirm"
                );
                return Ok(report::CONFIG);
            }
            syncer(&cli, false)?.reset().await?;
            println!("Reset: the next sync brings back everything deleted from the archive.");
            let state = cli.env.state_store()?.load().await?.unwrap_or_default();
            println!("Start date: {}", stored_start_date(&state));
            Ok(report::OK)
        }
        Command::Share { folder, email } => share(&cli, folder, email.as_deref()).await,
        Command::Disconnect => {
            cli.env.token_store()?.clear().await?;
            println!(
                "Signed out: the saved OneDrive sign-in is gone. The app's access stays on the \
                 Microsoft account until removed at https://account.live.com/consent/Manage"
            );
            Ok(report::OK)
        }
    }
}

/// Prints a pass's report; returns its exit code.
fn finish(cli: &Cli, report: &SyncReport) -> u8 {
    let (code, reason) = report::code_of(report);
    if cli.json {
        println!("{}", report::json(report));
    } else {
        print!("{report}");
    }
    if let Some(reason) = reason {
        eprintln!("qonto-onedrive: {reason}");
    }
    code
}

async fn login(cli: &Cli, device_code: bool) -> Result<u8> {
    let config = cli.env.auth_config()?;
    let tokens = if device_code {
        sign_in_with_device_code(&config, &DeviceCodeOptions::default(), |prompt| {
            eprintln!("{}", prompt.instructions())
        })
        .await?
    } else {
        sign_in_with_browser(&config, &BrowserSignInOptions::default(), |url| {
            eprintln!("Open this address in a browser to sign in:\n{url}")
        })
        .await?
    };
    let store = cli.env.token_store()?;
    MicrosoftTokenProvider::from_sign_in(config, store.clone(), tokens).await?;
    println!("Signed in; saved to {}", store.path().display());
    Ok(report::OK)
}

async fn status(cli: &Cli) -> Result<u8> {
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
fn stored_start_date(state: &SyncState) -> String {
    match &state.settings {
        None => "not set yet (the first sync stores the `--since` day)".to_owned(),
        Some(s) => s
            .start_date
            .map_or_else(|| "none (every receipt)".to_owned(), |d| d.to_string()),
    }
}

async fn share(cli: &Cli, folder: &str, email: Option<&str>) -> Result<u8> {
    let path = ArchivePath::parse(folder.trim_matches('/'))
        .map_err(|e| Error::Config(format!("folder {folder:?}: {e}")))?;
    let state = cli.env.state_store()?.load().await?.unwrap_or_default();
    let Some((id, _)) = state
        .snapshot
        .path_index()
        .get(&path)
        .map(|(id, k)| (id.clone(), k))
    else {
        return Err(Error::Config(format!(
            "no folder {path} in the archive as of the last sync; run `sync` first"
        )));
    };
    let sink = cli.env.onedrive()?;
    match email {
        Some(email) => {
            sink.invite(&id, email).await?;
            println!("Invited {email} to read {path}.");
        }
        None => {
            let share = sink.share_link(&id).await?;
            // The link is what the user asked for: printed once, on stdout only.
            match share.kind {
                ShareKind::Link { url: Some(url), .. } => println!("{}", url.expose()),
                _ => println!("Shared {path}; OneDrive returned no link."),
            }
        }
    }
    Ok(report::OK)
}
