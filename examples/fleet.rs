//! `fleet`: a service running many organisations on one PostgreSQL database (feature
//! `fleet`; design in docs/service.md).
//!
//! With no subcommand it is a demo that needs no setup on a machine with PostgreSQL's
//! binaries: it starts a throwaway cluster in a temporary folder (or uses
//! `DATABASE_URL`), a fake Qonto and a fake OneDrive per organisation, registers the
//! organisations with their credentials sealed, runs two workers until each has run
//! once, prints the fleet's status and stops the cluster.
//!
//! ```sh
//! cargo run --example fleet --features fleet            # the demo
//! cargo run --example fleet --features fleet -- --json  # the same, one JSON document
//! ```
//!
//! The subcommands of a real service read `DATABASE_URL` and the sealing keys in
//! `RECEIPT_SYNC_SEALING_KEYS` (`k1:<base64 of 32 bytes>`; the demo makes a throwaway
//! one when it is unset, and says so):
//!
//! ```sh
//! QONTO_CREDENTIALS=login:secret-key ONEDRIVE_REFRESH_TOKEN=… \
//!   cargo run --example fleet --features fleet -- add acme --name "ACME SAS" --at 23:30
//! cargo run --example fleet --features fleet -- disable acme     # or enable
//! cargo run --example fleet --features fleet -- run-now acme
//! MS_CLIENT_ID=… cargo run --example fleet --features fleet -- workers   # until SIGTERM
//! cargo run --example fleet --features fleet -- status --json
//! ```
//!
//! `fakes` serves the demo's fakes for workers in other processes (`workers --fakes
//! FILE`), as the process tests do. Exit codes: 0 done; 1 some organisation did not
//! complete; 2 usage or configuration; 7 anything else.

#[path = "fleet/commands.rs"]
mod commands;
#[path = "fleet/demo.rs"]
mod demo;
#[path = "fleet/fakes.rs"]
mod fakes;
#[path = "qonto_onedrive/output.rs"]
mod output;
#[path = "fleet/setup.rs"]
mod setup;
#[path = "fleet/status.rs"]
mod status;
#[path = "fleet/workers.rs"]
mod workers;
#[path = "fleet/world.rs"]
mod world;

use chrono::{NaiveDate, NaiveTime};
use clap::{Parser, Subcommand};
use receipt_sync::auth::SecretString;
use receipt_sync::fleet::{OrganizationFactory, QontoCredentials};
use receipt_sync::{ErrorKind, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The command line.
#[derive(Parser, Debug)]
#[command(name = "fleet", about = "Archives the receipts of many organisations")]
struct CommandLine {
    #[command(subcommand)]
    command: Option<Command>,
    /// Prints one JSON document on stdout; messages go to stderr.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The zero-setup demo (the default).
    Demo(DemoArgs),
    /// Registers an organisation (or updates it), sealing its credentials.
    Add(AddArgs),
    /// Stops running an organisation (a run in progress finishes).
    Disable(IdArg),
    /// Runs an organisation again.
    Enable(IdArg),
    /// Makes an organisation due now.
    RunNow(IdArg),
    /// Runs a worker until SIGTERM or ctrl-c.
    Workers(WorkerArgs),
    /// The fleet at a glance.
    Status,
    /// Serves the demo's fakes for workers in other processes.
    Fakes(FakesArgs),
}

#[derive(clap::Args, Debug)]
struct DemoArgs {
    /// Organisations.
    #[arg(long, default_value_t = 4)]
    organisations: usize,
    /// Receipts per organisation.
    #[arg(long, default_value_t = 8)]
    receipts: usize,
}

#[derive(clap::Args, Debug)]
struct IdArg {
    /// The organisation's id.
    id: String,
}

#[derive(clap::Args, Debug)]
struct AddArgs {
    /// The organisation's id in the service.
    id: String,
    /// Its name for people.
    #[arg(long)]
    name: String,
    /// The time zone of its daily time (IANA name).
    #[arg(long, default_value = "Europe/Paris")]
    tz: chrono_tz::Tz,
    /// Its daily time, on that zone's clock.
    #[arg(long, default_value = "23:30")]
    at: NaiveTime,
    /// The first day archived.
    #[arg(long)]
    since: Option<NaiveDate>,
    /// Its Qonto API key, `login:secret-key`.
    #[arg(long, env = "QONTO_CREDENTIALS", hide_env_values = true)]
    qonto: Option<String>,
    /// Its Microsoft refresh token.
    #[arg(long, env = "ONEDRIVE_REFRESH_TOKEN", hide_env_values = true)]
    refresh_token: Option<String>,
    /// Due at once rather than at its daily time.
    #[arg(long)]
    run_now: bool,
}

#[derive(clap::Args, Debug)]
struct WorkerArgs {
    /// The worker's id (default: host name and process id).
    #[arg(long)]
    id: Option<String>,
    /// Organisations at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// How often an idle worker looks for due organisations, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    poll_ms: u64,
    /// How long a claim lasts, in seconds (default one hour).
    #[arg(long)]
    lease_secs: Option<u64>,
    /// The fakes' description written by `fakes --out`, instead of the real services.
    #[arg(long)]
    fakes: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct FakesArgs {
    /// Organisations.
    #[arg(long, default_value_t = 4)]
    organisations: usize,
    /// Receipts per organisation.
    #[arg(long, default_value_t = 8)]
    receipts: usize,
    /// Delay of every fake response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Where to write the fakes' description.
    #[arg(long)]
    out: PathBuf,
    /// Also registers the organisations in `DATABASE_URL`'s fleet, due at once.
    #[arg(long)]
    register: bool,
}

fn main() -> ExitCode {
    let line = CommandLine::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("fleet: cannot start: {e}");
            return ExitCode::from(7);
        }
    };
    let name = command_name(line.command.as_ref());
    match runtime.block_on(run(line.command, line.json)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let code = match error.kind() {
                ErrorKind::Config => 2,
                _ => 7,
            };
            let message = error.to_string();
            eprintln!("fleet: {message}");
            if line.json {
                output::print(&output::failure(name, code, &error, &message));
            }
            ExitCode::from(code)
        }
    }
}

fn command_name(command: Option<&Command>) -> &'static str {
    match command {
        None | Some(Command::Demo(_)) => "demo",
        Some(Command::Add(_)) => "add",
        Some(Command::Disable(_)) => "disable",
        Some(Command::Enable(_)) => "enable",
        Some(Command::RunNow(_)) => "run-now",
        Some(Command::Workers(_)) => "workers",
        Some(Command::Status) => "status",
        Some(Command::Fakes(_)) => "fakes",
    }
}

async fn run(command: Option<Command>, json: bool) -> Result<u8> {
    let name = command_name(command.as_ref());
    let command = command.unwrap_or(Command::Demo(DemoArgs {
        organisations: 4,
        receipts: 8,
    }));
    match command {
        Command::Demo(args) => {
            let options = demo::DemoOptions {
                organisations: args.organisations,
                receipts: args.receipts,
                workers: 2,
            };
            let outcome = demo::run(options).await?;
            let code = if outcome.succeeded(args.organisations) {
                0
            } else {
                1
            };
            if json {
                let doc = status::document(name, code, &outcome.status, Some(&outcome.drives));
                output::print(&doc);
            } else {
                print!("{}", status::text(&outcome.status));
                print!("{}", status::drives_text(&outcome.drives));
            }
            Ok(code)
        }
        Command::Status => {
            let fleet = setup::fleet(&setup::database_url()?, setup::keyring()?, None).await?;
            let current = fleet.status(1_000).await?;
            if json {
                output::print(&status::document(name, 0, &current, None));
            } else {
                print!("{}", status::text(&current));
            }
            Ok(0)
        }
        Command::Add(args) => {
            let fleet = setup::fleet(&setup::database_url()?, setup::keyring()?, None).await?;
            let mut registration =
                commands::Registration::new(&args.id, &args.name, args.tz, args.at, args.since);
            registration.run_now = args.run_now;
            registration.qonto = match &args.qonto {
                Some(text) => Some(QontoCredentials::parse(&args.id, &SecretString::new(text))?),
                None => None,
            };
            registration.microsoft_refresh_token = args.refresh_token.map(SecretString::new);
            commands::register(&fleet, &registration).await?;
            done(json, name, &args.id)
        }
        Command::Disable(IdArg { id }) | Command::Enable(IdArg { id }) => {
            let fleet = setup::fleet(&setup::database_url()?, setup::keyring()?, None).await?;
            commands::set_enabled(&fleet, &id, name == "enable").await?;
            done(json, name, &id)
        }
        Command::RunNow(IdArg { id }) => {
            let fleet = setup::fleet(&setup::database_url()?, setup::keyring()?, None).await?;
            commands::run_now(&fleet, &id).await?;
            done(json, name, &id)
        }
        Command::Workers(args) => {
            let lease = args.lease_secs.map(Duration::from_secs);
            let fleet = setup::fleet(&setup::database_url()?, setup::keyring()?, lease).await?;
            let factory: Arc<dyn OrganizationFactory> = match &args.fakes {
                Some(path) => Arc::new(setup::fake_factory(&setup::read_fakes(path)?)?),
                None => Arc::new(setup::env_factory()?),
            };
            let settings = workers::WorkerSettings {
                id: args.id.unwrap_or_else(setup::default_worker_id),
                concurrency: args.concurrency,
                poll: Duration::from_millis(args.poll_ms.max(10)),
            };
            workers::run_until_signalled(fleet, factory, &settings).await?;
            if json {
                output::print(&output::document(
                    name,
                    0,
                    serde_json::json!({ "worker": settings.id }),
                ));
            }
            Ok(0)
        }
        Command::Fakes(args) => {
            let fleet = if args.register {
                Some(setup::fleet(&setup::database_url()?, setup::keyring()?, None).await?)
            } else {
                None
            };
            let latency = Duration::from_millis(args.latency_ms);
            fakes::serve(args.organisations, args.receipts, latency, &args.out, fleet).await?;
            Ok(0)
        }
    }
}

/// The answer of a subcommand that changed one organisation.
fn done(json: bool, command: &str, id: &str) -> Result<u8> {
    if json {
        output::print(&output::document(
            command,
            0,
            serde_json::json!({ "organization": id }),
        ));
    } else {
        println!("{command}: {id}");
    }
    Ok(0)
}
