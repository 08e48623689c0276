//! What the tool tells the user: progress, the report (text or JSON), the exit code.

use indicatif::{ProgressBar, ProgressStyle};
use receipt_sync::auth::microsoft::is_microsoft_error;
use receipt_sync::plan::SettingsChange;
use receipt_sync::sink::onedrive::{is_app_folder_refusal, is_sharing_refusal};
use receipt_sync::sync::{SyncEvent, SyncObserver, SyncReport};
use receipt_sync::{Error, ErrorKind};
use std::io::IsTerminal;

/// Every receipt is where it should be.
pub const OK: u8 = 0;
/// Some receipts failed; the next run retries them.
pub const INCOMPLETE: u8 = 1;
/// Bad usage or configuration (clap also exits with 2 on a bad command line).
pub const CONFIG: u8 = 2;
/// Qonto refused the credentials (the API key).
pub const BAD_CREDENTIALS: u8 = 3;
/// The OneDrive sign-in is missing, no longer valid, or refused (the 2026 AppFolder
/// refusal, sharing without Files.ReadWrite): run `login`, as the message says.
pub const CONSENT_REVOKED: u8 = 4;
/// The drive is full.
pub const DRIVE_FULL: u8 = 5;
/// Another sync is running on the same state.
pub const ALREADY_RUNNING: u8 = 6;
/// Anything else stopped the run (network, service errors).
pub const FAILED: u8 = 7;
/// The local disk (the state's folder, or a local archive) is full.
pub const DISK_FULL: u8 = 8;

/// The exit code and a one-line reason a person can act on.
pub fn explain(error: &Error) -> (u8, String) {
    match error {
        // `needed` is the extra beyond what is left (rounded up: freeing that much is
        // enough); the report's "stopped:" line says the same, in the same units.
        Error::QuotaExceeded { needed, remaining } => (
            DRIVE_FULL,
            format!(
                "the drive is full: the receipts left need {} more, {} are left; what fits was archived, the oldest first; free up or buy space, then run sync again",
                receipt_sync::error::human_bytes_up(*needed),
                human(*remaining)
            ),
        ),
        // The error's own text says what to do and that nothing was lost.
        Error::DiskFull { .. } => (DISK_FULL, error.to_string()),
        // Said once, in the command's words (the state is the sync's, not a file to fix).
        Error::AlreadyRunning { what } => (
            ALREADY_RUNNING,
            format!(
                "wait for the other sync to finish, then run again: another sync is running on the same state ({what})"
            ),
        ),
        _ => match error.kind() {
            ErrorKind::Unauthorized | ErrorKind::Forbidden | ErrorKind::ConsentRevoked => {
                refused(error)
            }
            ErrorKind::Config => (CONFIG, error.to_string()),
            _ => (FAILED, error.to_string()),
        },
    }
}

/// The command that signs in to OneDrive again.
pub const LOGIN_COMMAND: &str = "qonto-onedrive login";
/// The command that grants Files.ReadWrite once (the 2026 AppFolder refusal; sharing).
pub const GRANT_COMMAND: &str = "qonto-onedrive login --grant-files-readwrite";

/// A refused or missing credential: whose it is (Microsoft's sign-in or Qonto's key), and
/// the one command or setting that mends it. Everything `login` mends exits 4.
fn refused(error: &Error) -> (u8, String) {
    if is_app_folder_refusal(error) {
        return (
            CONSENT_REVOKED,
            format!(
                "OneDrive refused access to the app folder: since August 2026 Microsoft refuses \
                 apps that hold only the Files.ReadWrite.AppFolder permission until \
                 Files.ReadWrite is granted once; run `{GRANT_COMMAND}` (archives still go \
                 only into the app folder)"
            ),
        );
    }
    if is_sharing_refusal(error) {
        return (
            CONSENT_REVOKED,
            format!("sharing needs the one-time Files.ReadWrite grant: run `{GRANT_COMMAND}`"),
        );
    }
    // What the service said, without repeating the service's name and kind.
    let said = match error {
        Error::Unauthorized { hint, .. } | Error::ConsentRevoked { hint, .. } => hint.as_str(),
        Error::Forbidden { detail, .. } => detail.as_str(),
        _ => "",
    };
    // A hint's first line is its advice; the service's own words follow on later lines,
    // and stay there: after the command, not inside the parentheses.
    let (said, details) = match said.split_once('\n') {
        Some((advice, details)) => (advice, format!("\n{details}")),
        None => (said, String::new()),
    };
    let said = said.trim_end_matches('.');
    if is_microsoft_error(error) {
        let what = match error.kind() {
            ErrorKind::ConsentRevoked => "OneDrive access is no longer granted",
            ErrorKind::Forbidden => "OneDrive refused access",
            _ => "not signed in to OneDrive, or the sign-in is no longer valid",
        };
        return (
            CONSENT_REVOKED,
            format!("{what} ({said}); run `{LOGIN_COMMAND}`{details}"),
        );
    }
    // Qonto's own hint repeats the advice below; a refused permission's detail does not.
    let what = match error.kind() {
        ErrorKind::Forbidden => format!("Qonto refused access with this API key ({said})"),
        _ => "Qonto refused the API key".to_owned(),
    };
    (
        BAD_CREDENTIALS,
        format!(
            "{what}: check QONTO_LOGIN (the organisation's login) and QONTO_SECRET_KEY (the \
             key is in Qonto's web app, under Integrations and Partnerships > API key){details}"
        ),
    )
}

/// The exit code of a finished pass.
pub fn code_of(report: &SyncReport) -> (u8, Option<String>) {
    match &report.stopped {
        Some(error) => {
            let (code, line) = explain(error);
            (code, Some(line))
        }
        None if report.is_complete() => (OK, None),
        // Partial: some accounts or receipts were left for the next run, the rest is archived.
        None => {
            let mut left = Vec::new();
            if !report.unread_accounts.is_empty() {
                let names: Vec<&str> = report
                    .unread_accounts
                    .iter()
                    .map(|unread| unread.name.as_str())
                    .collect();
                left.push(format!(
                    "{} bank account(s) could not be read in full ({})",
                    names.len(),
                    names.join(", ")
                ));
            }
            // A failure with neither receipt nor path is a listing's: an account's (named
            // above) or the account list's.
            let (not_archived, listings): (Vec<_>, Vec<_>) = report
                .failures
                .iter()
                .partition(|f| f.receipt.is_some() || f.path.is_some());
            let not_archived = not_archived.len();
            if left.is_empty() && !listings.is_empty() {
                left.push("the bank could not be read in full".to_owned());
            }
            if not_archived > 0 || left.is_empty() {
                left.push(format!(
                    "{} receipt(s) could not be archived this time",
                    not_archived.max(1)
                ));
            }
            (
                INCOMPLETE,
                Some(format!("{}; the next sync retries them", left.join("; "))),
            )
        }
    }
}

/// The machine-readable report: a pass's own fields, which go in the document's
/// envelope (`output::document`, which adds the exit code).
pub fn json(report: &SyncReport) -> serde_json::Value {
    let (_, reason) = code_of(report);
    serde_json::json!({
        "complete": report.is_complete(),
        "reason": reason,
        "receipts_read": report.receipts_read,
        "planned": report.planned,
        "done": report.done,
        "bytes_written": report.bytes_written,
        "failures": report.failures.iter().map(|f| serde_json::json!({
            "receipt": f.receipt.as_ref().map(|r| r.as_str().to_owned()),
            "path": f.path.as_ref().map(ToString::to_string),
            "message": f.message,
        })).collect::<Vec<_>>(),
        "unread_accounts": report.unread_accounts.iter().map(|a| serde_json::json!({
            "account": a.account.as_str(),
            "name": a.name,
            "kind": format!("{:?}", a.kind),
            "message": a.message,
        })).collect::<Vec<_>>(),
        "duration_ms": report.duration.as_millis() as u64,
        "start_date": start_date(report),
        "settings_change": report.settings_change.as_ref().map(settings_change),
        // What stopped the pass, in the shape of a failed command's `error`.
        "error": report.stopped.as_ref().map(|error| serde_json::json!({
            "kind": format!("{:?}", error.kind()),
            "message": explain(error).1,
        })),
    })
}

/// The start date the run used, if it has one.
pub fn start_date(report: &SyncReport) -> Option<String> {
    report
        .settings
        .as_ref()
        .and_then(|s| s.start_date)
        .map(|d| d.to_string())
}

/// A change of the stored settings, machine-readable.
pub fn settings_change(change: &SettingsChange) -> serde_json::Value {
    serde_json::json!({
        "start_date_before": change.from.as_ref().and_then(|s| s.start_date).map(|d| d.to_string()),
        "start_date_after": change.to.start_date.map(|d| d.to_string()),
        "widens": change.widens(),
        "narrows": change.narrows(),
        "message": change.to_string(),
    })
}

/// Bytes for a person, in binary units: the library's own form, so that the command's
/// lines and the report's agree to the digit.
pub fn human(bytes: u64) -> String {
    receipt_sync::error::human_bytes(bytes)
}

/// Progress: a bar on a terminal, plain lines otherwise (none with `--json`).
pub struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
}

impl Progress {
    /// Picks the form from where stderr goes.
    pub fn new(quiet: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = (terminal && !quiet).then(|| {
            let bar = ProgressBar::new(0);
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes} {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Self {
            bar,
            lines: !terminal && !quiet,
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// "OneDrive asked to wait 5 min (until 14:05 UTC); waiting": a long pause would
    /// otherwise look like a hang. The minute shown is rounded up.
    fn waiting_line(
        service: &str,
        wait: std::time::Duration,
        until: chrono::DateTime<chrono::Utc>,
    ) -> String {
        let who = match service {
            "onedrive" => "OneDrive",
            "qonto" => "Qonto",
            other => other,
        };
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let minutes = secs.div_ceil(60);
        let wait = if secs < 60 {
            format!("{secs} s")
        } else if minutes < 120 {
            format!("{minutes} min")
        } else {
            format!("{} h {} min", minutes / 60, minutes % 60)
        };
        let until = until
            .checked_add_signed(chrono::TimeDelta::seconds(59))
            .unwrap_or(until);
        format!(
            "{who} asked to wait {wait} (until {} UTC); waiting",
            until.format("%H:%M")
        )
    }
}

impl SyncObserver for Progress {
    fn on_event(&self, event: &SyncEvent) {
        match (event, &self.bar) {
            (SyncEvent::Planned { bytes, .. }, Some(bar)) => bar.set_length(*bytes),
            (SyncEvent::Bytes { bytes, .. }, Some(bar)) => bar.inc(*bytes),
            (SyncEvent::Finished { kind, path }, Some(bar)) => {
                bar.set_message(format!("{kind} {}", path.file_name()));
            }
            (SyncEvent::Finished { kind, path }, None) if self.lines => {
                eprintln!("{kind} {path}");
            }
            (
                SyncEvent::Waiting {
                    service,
                    wait,
                    until,
                },
                _,
            ) if self.lines || self.bar.is_some() => {
                let line = Self::waiting_line(service, *wait, *until);
                match &self.bar {
                    // Above the bar, which keeps drawing.
                    Some(bar) => bar.println(line),
                    None => eprintln!("{line}"),
                }
            }
            (SyncEvent::Failed { path, error, .. }, _) if self.lines || self.bar.is_some() => {
                let path = path.as_ref().map(ToString::to_string).unwrap_or_default();
                eprintln!("failed {path}: {error}");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod progress_tests {
    use super::Progress;
    use chrono::TimeZone;
    use std::time::Duration;

    #[test]
    fn a_pause_reads_as_one_line() {
        let until = chrono::Utc.with_ymd_and_hms(2026, 3, 2, 14, 4, 30).unwrap();
        assert_eq!(
            Progress::waiting_line("onedrive", Duration::from_secs(300), until),
            "OneDrive asked to wait 5 min (until 14:05 UTC); waiting"
        );
        assert_eq!(
            Progress::waiting_line("qonto", Duration::from_secs(42), until),
            "Qonto asked to wait 42 s (until 14:05 UTC); waiting"
        );
        assert_eq!(
            Progress::waiting_line("onedrive", Duration::from_secs(3 * 3600 + 61), until),
            "OneDrive asked to wait 3 h 2 min (until 14:05 UTC); waiting"
        );
    }
}
