//! `doctor`: checks the setup in the order a sync needs it, one line per check, and says
//! what to do about each failure.
//!
//! Qonto credentials, each bank account's listing, then the Microsoft sign-in, the app
//! folder and the drive's free space (with `--local DIR`: the folder and its disk), then
//! the state and the schedule. A check whose prerequisite failed is skipped. Exit 0 when
//! nothing failed (warnings pass); otherwise the exit code of the first failure.

use crate::binding::{self, BindMode};
use crate::{Cli, output, report};
use chrono::{NaiveTime, Utc};
use chrono_tz::Tz;
use futures::StreamExt;
use receipt_sync::auth::AccessTokenProvider;
use receipt_sync::sink::{ArchiveSink, LocalDirSink, Quota};
use receipt_sync::source::{ReceiptQuery, ReceiptSource, SourceEvent};
use receipt_sync::state::StateStore;
use receipt_sync::sync::next_run;
use receipt_sync::{Error, ErrorKind, Result};
use std::path::Path;

/// Below this much free space, the space check warns.
const LOW_SPACE: u64 = 200 * 1024 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail,
    Skipped,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skipped => "skipped",
        }
    }
}

struct Check {
    name: String,
    status: Status,
    detail: String,
    /// What to do, for a failure or a warning.
    fix: Option<String>,
    /// The exit code of a failure.
    code: u8,
}

impl Check {
    fn ok(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Ok, detail, None, report::OK)
    }

    fn warn(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Warn, detail, Some(fix.into()), report::OK)
    }

    fn skipped(name: impl Into<String>, because: &str) -> Self {
        let detail = format!("skipped: {because} failed");
        Self::new(name, Status::Skipped, detail, None, report::OK)
    }

    /// A failure from an error: its exit code and one-line reason; `fix` is the command.
    fn failed(name: impl Into<String>, error: &Error, fix: impl Into<String>) -> Self {
        let (code, line) = report::explain(error);
        Self::new(name, Status::Fail, line, Some(fix.into()), code)
    }

    fn new(
        name: impl Into<String>,
        status: Status,
        detail: impl Into<String>,
        fix: Option<String>,
        code: u8,
    ) -> Self {
        Self {
            name: name.into(),
            status,
            detail: detail.into(),
            fix,
            code,
        }
    }

    fn line(&self) -> String {
        let mut line = format!("{:<7} {}: {}", self.status.word(), self.name, self.detail);
        // A message that already names the fixing command is not told it twice.
        let named = |fix: &str| {
            fix.split('`')
                .nth(1)
                .is_some_and(|command| self.detail.contains(command))
        };
        if let Some(fix) = self.fix.as_deref().filter(|fix| !named(fix)) {
            line.push_str(&format!(" (to fix: {fix})"));
        }
        line
    }
}

/// The fix for a refused or missing Qonto key.
const QONTO_FIX: &str = "export QONTO_LOGIN=<organisation slug> QONTO_SECRET_KEY=<secret key> \
     from the Qonto web app (Integrations and Partnerships > API key), then run `qonto-onedrive doctor`";

pub async fn doctor(cli: &Cli, at: NaiveTime, tz: Tz) -> Result<u8> {
    let mut checks = Vec::new();
    bank(cli, &mut checks).await;
    match &cli.env.local {
        Some(dir) => local_folder(dir, &mut checks).await,
        None => onedrive(cli, &mut checks).await,
    }
    checks.push(state(cli, tz).await);
    let next = next_run(Utc::now(), at, tz).with_timezone(&tz);
    checks.push(Check::ok(
        "schedule",
        format!(
            "the daemon's next pass is {} (--at {} --tz {tz})",
            next.format("%Y-%m-%d %H:%M %Z"),
            at.format("%H:%M")
        ),
    ));

    let code = checks
        .iter()
        .find(|c| c.status == Status::Fail)
        .map_or(report::OK, |c| c.code);
    if cli.json {
        let list: Vec<_> = checks
            .iter()
            .map(|c| {
                serde_json::json!({
                    "check": c.name, "status": c.status.word(), "detail": c.detail, "fix": c.fix,
                })
            })
            .collect();
        output::print(&output::document(
            "doctor",
            code,
            serde_json::json!({ "ok": code == report::OK, "checks": list }),
        ));
    } else {
        for check in &checks {
            println!("{}", check.line());
        }
    }
    Ok(code)
}

/// The Qonto credentials (the organisation), then a first page of each account.
async fn bank(cli: &Cli, checks: &mut Vec<Check>) {
    const NAME: &str = "Qonto credentials";
    let found = match cli.env.source() {
        Ok(source) => source.accounts().await.map(|accounts| (source, accounts)),
        Err(error) => Err(error),
    };
    let (source, accounts) = match found {
        Ok(found) => found,
        Err(error) => {
            let fix = match error.kind() {
                ErrorKind::Unauthorized | ErrorKind::Forbidden | ErrorKind::Config => QONTO_FIX,
                _ => "check the network, then run `qonto-onedrive doctor` again",
            };
            checks.push(Check::failed(NAME, &error, fix));
            checks.push(Check::skipped("bank accounts", NAME));
            return;
        }
    };
    checks.push(Check::ok(
        NAME,
        format!("organisation read, {} bank account(s)", accounts.len()),
    ));
    for account in &accounts {
        let name = format!("bank account {}", account.name);
        // One request: the first page of the listing, no attachment downloaded.
        let mut listing = source.receipts(&account.id, &ReceiptQuery::all());
        checks.push(match listing.next().await {
            Some(Ok(SourceEvent::Receipt(_))) => Check::ok(name, "listed, receipts found"),
            None | Some(Ok(_)) => Check::ok(name, "listed"),
            Some(Err(error)) => Check::failed(
                name,
                &error,
                "check that the API key's membership can see this account, then run `qonto-onedrive doctor`",
            ),
        });
    }
}

/// The Microsoft sign-in, the app folder, the drive's free space.
async fn onedrive(cli: &Cli, checks: &mut Vec<Check>) {
    const SIGN_IN: &str = "Microsoft sign-in";
    const FOLDER: &str = "OneDrive app folder";
    const SPACE: &str = "OneDrive space";
    let signed_in = match cli.env.tokens() {
        Err(error) => Err(error),
        // A refresh, not a cached access token: only the refresh says whether the
        // sign-in still holds (consent withdrawn, password changed).
        Ok(tokens) => match tokens.access_token().await {
            Ok(cached) => {
                tokens.invalidate(&cached).await;
                tokens.access_token().await.map(|_| tokens)
            }
            Err(error) => Err(error),
        },
    };
    let tokens = match signed_in {
        Ok(tokens) => tokens,
        Err(error) => {
            let fix = if error.kind() == ErrorKind::Config {
                "export MS_CLIENT_ID=<application id> (docs/getting-started.md), then run `qonto-onedrive login`"
            } else {
                "run `qonto-onedrive login`"
            };
            checks.push(Check::failed(SIGN_IN, &error, fix));
            checks.push(Check::skipped(FOLDER, SIGN_IN));
            checks.push(Check::skipped(SPACE, SIGN_IN));
            return;
        }
    };
    checks.push(Check::ok(SIGN_IN, "signed in, token refreshed"));
    let sink = match cli.env.onedrive_with(tokens) {
        Ok(sink) => sink,
        Err(error) => {
            checks.push(Check::failed(
                FOLDER,
                &error,
                "check --graph-api-base (GRAPH_API_BASE)",
            ));
            checks.push(Check::skipped(SPACE, FOLDER));
            return;
        }
    };
    checks.push(match sink.root_id().await {
        Ok(_) => Check::ok(FOLDER, "reachable"),
        Err(error) if error.kind() == ErrorKind::Forbidden => {
            Check::failed(FOLDER, &error, format!("run `{}`", report::GRANT_COMMAND))
        }
        Err(error) => Check::failed(FOLDER, &error, format!("run `{}`", report::LOGIN_COMMAND)),
    });
    checks.push(space(
        SPACE,
        sink.quota().await,
        "free up or buy OneDrive space",
    ));
}

/// `--local DIR`: the folder can be written to, and its disk has room.
async fn local_folder(dir: &Path, checks: &mut Vec<Check>) {
    const FOLDER: &str = "local folder";
    const SPACE: &str = "local disk space";
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        let probe = dir.join(".qonto-onedrive-doctor");
        std::fs::write(&probe, b"probe")?;
        std::fs::remove_file(&probe)
    });
    if let Err(e) = written {
        let error = Error::io("write into", dir, e);
        let fix = format!(
            "make {} writable by this user, or pass another --local folder",
            dir.display()
        );
        checks.push(Check::failed(FOLDER, &error, fix));
        checks.push(Check::skipped(SPACE, FOLDER));
        return;
    }
    checks.push(Check::ok(FOLDER, format!("{} is writable", dir.display())));
    let quota = match LocalDirSink::new(dir) {
        Ok(sink) => sink.quota().await,
        Err(error) => Err(error),
    };
    checks.push(space(SPACE, quota, "free up disk space"));
}

/// The free space: a failure when none is left, a warning when little is.
fn space(name: &str, quota: Result<Option<Quota>>, fix: &str) -> Check {
    match quota {
        Ok(Some(quota)) if quota.remaining == 0 => {
            let full = Error::QuotaExceeded {
                needed: 1,
                remaining: 0,
            };
            let mut check = Check::failed(name, &full, fix);
            check.detail = format!("full: 0 B left of {}", report::human(quota.total));
            check
        }
        Ok(Some(quota)) if quota.remaining < LOW_SPACE => Check::warn(
            name,
            format!(
                "{} left of {}",
                report::human(quota.remaining),
                report::human(quota.total)
            ),
            fix,
        ),
        Ok(Some(quota)) => Check::ok(
            name,
            format!(
                "{} left of {}",
                report::human(quota.remaining),
                report::human(quota.total)
            ),
        ),
        Ok(None) => Check::ok(name, "not reported by the storage"),
        Err(error) => Check::failed(
            name,
            &error,
            "run `qonto-onedrive doctor` again; if it persists, see docs/troubleshooting.md",
        ),
    }
}

/// The state: bound to this archive, readable, not locked; its last run.
async fn state(cli: &Cli, tz: Tz) -> Check {
    const NAME: &str = "state";
    let store = match cli.env.state_store() {
        Ok(store) => store,
        Err(error) => return Check::failed(NAME, &error, "export RECEIPT_SYNC_HOME=<a folder>"),
    };
    // Bound to another archive: a configuration error. Any other error of the binding
    // check is the archive's, reported by its own checks above.
    if let Err(error) = binding::bind(&cli.env, BindMode::Check).await
        && error.kind() == ErrorKind::Config
    {
        return Check::failed(
            NAME,
            &error,
            "run with the settings of the first sync, `qonto-onedrive sync --rebind`, or export RECEIPT_SYNC_HOME=<another folder>",
        );
    }
    let state = match store.load().await {
        Ok(Some(state)) => state,
        Ok(None) => {
            return Check::warn(
                NAME,
                "no sync yet",
                "run `qonto-onedrive sync --since YYYY-MM-DD`",
            );
        }
        Err(error) => {
            return Check::failed(
                NAME,
                &error,
                "restore a backup of the state folder, or move it aside and run `qonto-onedrive reset --yes`",
            );
        }
    };
    // Taken and given back at once: only whether another sync holds it matters.
    if let Err(error) = store.lock().await {
        let fix =
            "wait for the running sync to finish (or stop it), then run `qonto-onedrive doctor`";
        return Check::failed(NAME, &error, fix);
    }
    match &state.last_run {
        None => Check::ok(NAME, "readable, not locked; no run finished yet"),
        Some(run) => {
            let when = run.finished_at.map_or_else(
                || "?".to_owned(),
                |t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string(),
            );
            let what = format!(
                "readable, not locked; last run {when}: {} uploaded, {} failed",
                run.uploaded, run.failed
            );
            match &run.stopped {
                Some(reason) => Check::warn(
                    NAME,
                    format!("{what}, stopped: {reason}"),
                    "fix what stopped it, then run `qonto-onedrive sync`",
                ),
                None if run.failed > 0 => Check::warn(
                    NAME,
                    what,
                    "run `qonto-onedrive sync`: it retries the failed receipts",
                ),
                None => Check::ok(NAME, what),
            }
        }
    }
}
