//! `qonto-onedrive`: archives a Qonto organisation's receipts into a personal OneDrive
//! (or a local folder), once or every day. See docs/getting-started.md and
//! docs/command-line.md.
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

#[path = "qonto_onedrive/args.rs"]
mod args;
#[path = "qonto_onedrive/binding.rs"]
mod binding;
#[path = "qonto_onedrive/daemon.rs"]
mod daemon;
#[path = "qonto_onedrive/disconnect.rs"]
mod disconnect;
#[path = "qonto_onedrive/doctor.rs"]
mod doctor;
#[path = "qonto_onedrive/index_setting.rs"]
mod index_setting;
#[path = "qonto_onedrive/login.rs"]
mod login;
#[path = "qonto_onedrive/output.rs"]
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

use args::{IndexArg, PassArgs, SinceArg};
use binding::BindMode;
use chrono::{NaiveDate, NaiveTime};
use clap::{CommandFactory, Parser, Subcommand};
use index_setting::{IndexChange, IndexRequest, IndexSetting};
use receipt_sync::sync::{SyncConfig, SyncReport, Syncer};
use receipt_sync::{Error, Result};
use setup::{ArchiveArgs, Env, GraphArgs, HomeArgs, QontoArgs, SignInArgs};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// The command line.
#[derive(Parser, Debug)]
#[command(
    name = "qonto-onedrive",
    version,
    about = "Archives Qonto receipts into OneDrive",
    after_help = "Every option can also be set by the environment variable named in its help. \
                  Exit codes: 0 done; 1 some receipts left for the next run; 2 usage or \
                  configuration; 3 Qonto refused the API key; 4 the OneDrive sign-in is \
                  missing, withdrawn or refused; 5 drive full; 6 another sync running; 7 \
                  anything else; 8 local disk full."
)]
struct CommandLine {
    #[command(subcommand)]
    command: Command,
    /// Prints exactly one JSON document on stdout, on failure too (docs/command-line.md);
    /// progress and messages go to stderr.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Signs in to OneDrive (a browser on this machine, or a code to enter elsewhere).
    Login(LoginArgs),
    /// One sync pass.
    Sync(SyncArgs),
    /// A pass now, then every day at a given time.
    Daemon(DaemonArgs),
    /// Dry run: every receipt's fate and why; nothing is written.
    Plan(PlanArgs),
    /// What is archived, tombstoned, pending; the last run; drive space left.
    Status(StatusArgs),
    /// Brings back everything deleted from the archive on the next sync.
    Reset(ResetArgs),
    /// Shares an archive folder by a view-only link, or with a person.
    Share(ShareArgs),
    /// Forgets the saved OneDrive sign-in.
    Disconnect(DisconnectArgs),
    /// Checks the setup (credentials, sign-in, app folder, space, state, schedule).
    Doctor(DoctorArgs),
}

#[derive(clap::Args, Debug)]
struct LoginArgs {
    /// Show a code to enter on another device instead of opening a browser.
    #[arg(long)]
    device_code: bool,
    /// Grant Files.ReadWrite once: repairs Microsoft's 2026 refusal of apps holding
    /// only the app-folder permission, and allows `share`. Archives still go only
    /// into the app folder.
    #[arg(long)]
    grant_files_readwrite: bool,
    #[command(flatten)]
    graph: GraphArgs,
    #[command(flatten)]
    sign_in: SignInArgs,
    #[command(flatten)]
    home: HomeArgs,
}

#[derive(clap::Args, Debug)]
struct SyncArgs {
    /// Binds the state to the archive given (another OneDrive, or another folder), when
    /// it belongs to another one: what the new archive holds is adopted, the rest
    /// written; nothing is tombstoned and the old archive is left as it is.
    #[arg(long)]
    rebind: bool,
    #[command(flatten)]
    pass: PassArgs,
    #[command(flatten)]
    qonto: QontoArgs,
    #[command(flatten)]
    archive: ArchiveArgs,
    #[command(flatten)]
    home: HomeArgs,
}

#[derive(clap::Args, Debug)]
struct DaemonArgs {
    /// The local time of the daily pass.
    #[arg(long, default_value = "23:30")]
    at: NaiveTime,
    /// The time zone of `--at`, an IANA name.
    #[arg(long, default_value = "Europe/Paris", value_parser = args::parse_tz)]
    tz: chrono_tz::Tz,
    #[command(flatten)]
    pass: PassArgs,
    #[command(flatten)]
    qonto: QontoArgs,
    #[command(flatten)]
    archive: ArchiveArgs,
    #[command(flatten)]
    home: HomeArgs,
}

#[derive(clap::Args, Debug)]
struct PlanArgs {
    /// List every receipt the settings exclude (declined, before the start date),
    /// reading the bank in full to find them.
    #[arg(long)]
    show_excluded: bool,
    #[command(flatten)]
    since: SinceArg,
    #[command(flatten)]
    index: IndexArg,
    #[command(flatten)]
    qonto: QontoArgs,
    #[command(flatten)]
    archive: ArchiveArgs,
    #[command(flatten)]
    home: HomeArgs,
}

#[derive(clap::Args, Debug)]
struct StatusArgs {
    /// The time zone times are shown in (an IANA name), like the daemon's.
    #[arg(long, env = "RECEIPT_SYNC_TZ", default_value = "Europe/Paris", value_parser = args::parse_tz)]
    tz: chrono_tz::Tz,
    #[command(flatten)]
    archive: ArchiveArgs,
    #[command(flatten)]
    home: HomeArgs,
}

#[derive(clap::Args, Debug)]
struct ResetArgs {
    /// Confirms the reset.
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    since: SinceArg,
    #[command(flatten)]
    qonto: QontoArgs,
    #[command(flatten)]
    archive: ArchiveArgs,
    #[command(flatten)]
    home: HomeArgs,
}

#[derive(clap::Args, Debug)]
struct ShareArgs {
    /// The folder, relative to the archive root (for example `Main account 1234 3hq8c1vz/2026-03`).
    folder: String,
    /// Invite this e-mail address instead of creating a link.
    #[arg(long)]
    email: Option<String>,
    // Taken only to refuse it with a reason: OneDrive shares only OneDrive folders.
    #[command(flatten)]
    archive: ArchiveArgs,
    #[command(flatten)]
    home: HomeArgs,
}

#[derive(clap::Args, Debug)]
struct DoctorArgs {
    /// The daemon's daily time, for the schedule check.
    #[arg(long, default_value = "23:30")]
    at: NaiveTime,
    /// The time zone of `--at`, an IANA name.
    #[arg(long, default_value = "Europe/Paris", value_parser = args::parse_tz)]
    tz: chrono_tz::Tz,
    #[command(flatten)]
    qonto: QontoArgs,
    #[command(flatten)]
    archive: ArchiveArgs,
    #[command(flatten)]
    home: HomeArgs,
}

#[derive(clap::Args, Debug)]
struct DisconnectArgs {
    #[command(flatten)]
    home: HomeArgs,
}

/// What a command was given, for the code that runs it.
#[derive(Debug)]
pub(crate) struct Cli {
    /// The subcommand's name, for the JSON documents.
    command: &'static str,
    env: Env,
    json: bool,
    since: Option<NaiveDate>,
    concurrency: usize,
    rebind: bool,
    /// `--index`, when given.
    index: Option<IndexRequest>,
    /// The index setting the pass uses, once resolved, and its change not reported yet.
    index_used: Mutex<Option<(IndexSetting, Option<IndexChange>)>>,
}

impl Cli {
    /// The index setting the passes use, and its change (given once: the first
    /// pass's report carries it).
    pub(crate) fn take_index(&self) -> Option<(IndexSetting, Option<IndexChange>)> {
        let mut used = self.index_used.lock().ok()?;
        let (setting, change) = used.as_mut()?;
        Some((*setting, change.take()))
    }
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Login(_) => "login",
            Command::Sync(_) => "sync",
            Command::Daemon(_) => "daemon",
            Command::Plan(_) => "plan",
            Command::Status(_) => "status",
            Command::Reset(_) => "reset",
            Command::Share(_) => "share",
            Command::Disconnect(_) => "disconnect",
            Command::Doctor(_) => "doctor",
        }
    }

    /// The settings of this subcommand: only the groups it takes.
    fn cli(&self, json: bool) -> Cli {
        let mut cli = Cli {
            command: self.name(),
            env: Env::default(),
            json,
            since: None,
            concurrency: PassArgs::DEFAULT_CONCURRENCY,
            rebind: false,
            index: None,
            index_used: Mutex::new(None),
        };
        cli.env = match self {
            Command::Login(a) => Env::new(a.home.clone())
                .with_graph(a.graph.clone())
                .with_sign_in(a.sign_in.clone()),
            Command::Sync(a) => {
                (cli.since, cli.concurrency, cli.rebind, cli.index) = (
                    a.pass.since.since,
                    a.pass.concurrency,
                    a.rebind,
                    a.pass.index.index,
                );
                Env::new(a.home.clone())
                    .with_qonto(a.qonto.clone())
                    .with_archive(a.archive.clone())
            }
            Command::Daemon(a) => {
                (cli.since, cli.concurrency, cli.index) =
                    (a.pass.since.since, a.pass.concurrency, a.pass.index.index);
                Env::new(a.home.clone())
                    .with_qonto(a.qonto.clone())
                    .with_archive(a.archive.clone())
            }
            Command::Plan(a) => {
                (cli.since, cli.index) = (a.since.since, a.index.index);
                Env::new(a.home.clone())
                    .with_qonto(a.qonto.clone())
                    .with_archive(a.archive.clone())
            }
            Command::Status(a) => Env::new(a.home.clone()).with_archive(a.archive.clone()),
            Command::Reset(a) => {
                cli.since = a.since.since;
                Env::new(a.home.clone())
                    .with_qonto(a.qonto.clone())
                    .with_archive(a.archive.clone())
            }
            Command::Share(a) => Env::new(a.home.clone()).with_archive(a.archive.clone()),
            Command::Disconnect(a) => Env::new(a.home.clone()),
            Command::Doctor(a) => Env::new(a.home.clone())
                .with_qonto(a.qonto.clone())
                .with_archive(a.archive.clone()),
        };
        cli
    }
}

fn main() -> ExitCode {
    let line = match CommandLine::try_parse() {
        Ok(line) => line,
        Err(error) => return usage_error(error),
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = line.command.cli(line.json);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            return ExitCode::from(fail(
                &cli,
                &Error::io("start", std::path::PathBuf::new(), e),
            ));
        }
    };
    match runtime.block_on(run(&cli, &line.command)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => ExitCode::from(fail(&cli, &error)),
    }
}

/// A command line clap refuses: its message on stderr and, with `--json`, the failure
/// document on stdout (exit 2). Help and version are printed as asked.
fn usage_error(error: clap::Error) -> ExitCode {
    let json = std::env::args_os().any(|arg| arg == "--json");
    if !json || !error.use_stderr() {
        error.exit();
    }
    let _ = error.print();
    let names: Vec<String> = CommandLine::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    let command = std::env::args()
        .skip(1)
        .find(|arg| names.contains(arg))
        .unwrap_or_else(|| "qonto-onedrive".to_owned());
    let text = error.to_string();
    let rendered = text
        .lines()
        .next()
        .unwrap_or("bad command line")
        .trim_start_matches("error: ")
        .to_owned();
    let config = Error::Config(rendered.clone());
    output::print(&output::failure(
        &command,
        report::CONFIG,
        &config,
        &rendered,
    ));
    ExitCode::from(report::CONFIG)
}

/// A command that stopped on an error: the reason on stderr and, with `--json`, the
/// failure document on stdout. Returns the exit code.
pub(crate) fn fail(cli: &Cli, error: &Error) -> u8 {
    let (code, line) = report::explain(error);
    eprintln!("qonto-onedrive: {line}");
    if cli.json {
        output::print(&output::failure(cli.command, code, error, &line));
    }
    code
}

/// The syncer of a command: the archive checked against the state's binding (bound at
/// the first sync; moved with `sync --rebind`; only checked by a dry run).
pub(crate) async fn syncer(cli: &Cli, dry_run: bool) -> Result<Syncer> {
    let mode = match (dry_run, cli.rebind) {
        (true, _) => BindMode::Check,
        (false, false) => BindMode::Bind,
        (false, true) => BindMode::Rebind,
    };
    let home = cli.env.home()?;
    // Before the binding: binding a new archive records it.
    let new_archive = index_setting::is_new_archive(&home)?;
    let bound = binding::bind(&cli.env, mode).await?;
    let (index, change) = index_setting::resolve(&home, cli.index, new_archive, dry_run)?;
    if let Some(change) = &change
        && !dry_run
    {
        eprintln!("qonto-onedrive: {change}");
    }
    if let Ok(mut used) = cli.index_used.lock() {
        *used = Some((index, change));
    }
    let config = SyncConfig::default()
        .with_start_date(cli.since)
        .with_concurrency(cli.concurrency)
        .with_index(index.settings())
        .with_dry_run(dry_run);
    let syncer = Syncer::new(
        Arc::new(cli.env.source()?),
        bound.sink.clone(),
        Arc::new(cli.env.state_store()?),
        config,
    );
    if let Some(from) = &bound.rebind_from {
        // The state first, then the binding: see `BoundSink::save`.
        syncer.rebind().await?;
        bound.save(&cli.env)?;
        eprintln!(
            "qonto-onedrive: this state now belongs to {}; {from} is left as it is",
            bound.binding
        );
    }
    Ok(syncer)
}

async fn run(cli: &Cli, command: &Command) -> Result<u8> {
    // Once, before anything else: an unusable home is a configuration error.
    cli.env.check_home()?;
    match command {
        Command::Login(a) => login::login(cli, a.device_code, a.grant_files_readwrite).await,
        Command::Sync(_) => {
            let first = binding::is_unbound(&cli.env)?;
            let progress = Arc::new(report::Progress::new(cli.json));
            let syncer = syncer(cli, false).await?.with_observer(progress.clone());
            let outcome = syncer.run().await;
            progress.finish();
            let code = report_pass(cli, outcome);
            if first && code == report::OK {
                login::print_archive_address(cli).await;
            }
            Ok(code)
        }
        Command::Daemon(a) => daemon::daemon(cli, a.at, a.tz).await,
        Command::Plan(a) => plan::plan(cli, a.show_excluded).await,
        Command::Status(a) => status::status(cli, a.tz).await,
        Command::Reset(a) => reset::reset(cli, a.yes).await,
        Command::Share(a) => share::share(cli, &a.folder, a.email.as_deref()).await,
        Command::Disconnect(_) => disconnect::disconnect(cli).await,
        Command::Doctor(a) => doctor::doctor(cli, a.at, a.tz).await,
    }
}

/// Prints what came of a pass, its report or the error that kept it from running (with
/// `--json`, one document either way: `daemon` prints one per pass, JSON Lines);
/// returns its exit code.
pub(crate) fn report_pass(cli: &Cli, outcome: Result<SyncReport>) -> u8 {
    match outcome {
        Ok(report) => finish(cli, &report),
        Err(error) => fail(cli, &error),
    }
}

/// Prints a pass's report (with `--json`, its document: one per pass); returns its
/// exit code.
pub(crate) fn finish(cli: &Cli, report: &SyncReport) -> u8 {
    let (code, reason) = report::code_of(report);
    let index = cli.take_index();
    if cli.json {
        let mut fields = report::json(report);
        if let Some((setting, change)) = index {
            fields["index"] = setting.json();
            fields["index_change"] = serde_json::json!(change.map(|c| c.json()));
        }
        output::print(&output::document(cli.command, code, fields));
    } else {
        // The change, if any, was said on stderr as the pass began.
        print!("{report}");
    }
    if let Some(reason) = reason {
        eprintln!("qonto-onedrive: {reason}");
    }
    code
}
