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
//! run retries them); 2 usage or configuration; 3 Qonto refused the API key; 4 the OneDrive
//! sign-in is missing, withdrawn or refused (run the `login` command the message names);
//! 5 drive full; 6 another sync running; 7 anything else.

#[path = "qonto_onedrive/daemon.rs"]
mod daemon;
#[path = "qonto_onedrive/disconnect.rs"]
mod disconnect;
#[path = "qonto_onedrive/login.rs"]
mod login;
#[path = "qonto_onedrive/output.rs"]
#[allow(dead_code)] // Wired command by command.
mod output;
#[path = "qonto_onedrive/plan.rs"]
mod plan;
#[path = "qonto_onedrive/report.rs"]
mod report;
#[path = "qonto_onedrive/reset.rs"]
mod reset;
#[path = "qonto_onedrive/setup.rs"]
mod setup;
#[path = "qonto_onedrive/share.rs"]
mod share;
#[path = "qonto_onedrive/status.rs"]
mod status;

use chrono::{NaiveDate, NaiveTime};
use clap::{Parser, Subcommand};
use receipt_sync::Result;
use receipt_sync::sync::{SyncConfig, SyncReport, Syncer};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "qonto-onedrive",
    version,
    about = "Archives Qonto receipts into OneDrive"
)]
pub(crate) struct Cli {
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
        /// Grant Files.ReadWrite once: repairs Microsoft's 2026 refusal of apps holding
        /// only the app-folder permission, and allows `share`. Archives still go only
        /// into the app folder.
        #[arg(long)]
        grant_files_readwrite: bool,
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
    Plan {
        /// List every receipt the settings exclude (declined, before the start date),
        /// reading the bank in full to find them.
        #[arg(long)]
        show_excluded: bool,
    },
    /// What is archived, tombstoned, pending; the last run; drive space left.
    Status {
        /// The time zone times are shown in.
        #[arg(long, env = "RECEIPT_SYNC_TZ", default_value = "Europe/Paris")]
        tz: chrono_tz::Tz,
    },
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

pub(crate) fn syncer(cli: &Cli, dry_run: bool) -> Result<Syncer> {
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
        Command::Login {
            device_code,
            grant_files_readwrite,
        } => login::login(&cli, *device_code, *grant_files_readwrite).await,
        Command::Sync => {
            let progress = Arc::new(report::Progress::new(cli.json));
            let syncer = syncer(&cli, false)?.with_observer(progress.clone());
            let outcome = syncer.run().await;
            progress.finish();
            Ok(finish(&cli, &outcome?))
        }
        Command::Daemon { at, tz } => daemon::daemon(&cli, *at, *tz).await,
        Command::Plan { show_excluded } => plan::plan(&cli, *show_excluded).await,
        Command::Status { tz } => status::status(&cli, *tz).await,
        Command::Reset { yes } => reset::reset(&cli, *yes).await,
        Command::Share { folder, email } => share::share(&cli, folder, email.as_deref()).await,
        Command::Disconnect => disconnect::disconnect(&cli).await,
    }
}

/// Prints a pass's report; returns its exit code.
pub(crate) fn finish(cli: &Cli, report: &SyncReport) -> u8 {
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
