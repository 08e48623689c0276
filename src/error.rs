//! The crate's one public error, classified by what the caller should do next.
//!
//! Connectors keep their own private error details and map them into [`Error`]
//! at the boundary. Messages never carry a secret, a token or a pre-signed URL.

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use std::path::PathBuf;
use std::time::Duration;

/// A result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed underlying cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, and so what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A temporary failure (network, 5xx, dropped connection, timeout): retry later.
    #[error(
        "{service}: {operation} failed for now; it is tried again, at the latest by the next sync.\n  {message}"
    )]
    Transient {
        /// The service or component, for example `"qonto"` or `"onedrive"`.
        service: &'static str,
        /// What was being done.
        operation: String,
        /// What happened, without secrets.
        message: String,
        /// How long the service asked to wait, if it said.
        retry_after: Option<Duration>,
    },

    /// The service is throttling (HTTP 429 or 503 with `Retry-After`): wait, then retry.
    #[error("{service} asked to slow down during {operation}: {}.", wait_hint(*retry_after))]
    RateLimited {
        /// The service.
        service: &'static str,
        /// What was being done.
        operation: String,
        /// How long the service asked to wait, if it said.
        retry_after: Option<Duration>,
    },

    /// The service asked to wait longer than the retry policy's ceiling
    /// ([`RetryConfig::max_retry_after`](crate::http::RetryConfig::max_retry_after)), or
    /// kept throttling for longer than that in all: the run stops (work in flight ends,
    /// what was done is recorded) and is retried after `until`. Its kind is
    /// [`ErrorKind::RateLimited`]: retryable, but not within this run.
    #[error("{}", throttled_message(service, operation, until))]
    ThrottledUntil {
        /// The service.
        service: &'static str,
        /// What was being done.
        operation: String,
        /// When the service will accept requests again.
        until: DateTime<Utc>,
    },

    /// The credentials are missing, wrong or expired: fix them; retrying will not help.
    #[error("{service} refused the credentials: {hint}")]
    Unauthorized {
        /// The service.
        service: &'static str,
        /// What to do, for a person.
        hint: String,
    },

    /// The user withdrew consent (or it lapsed): sign in again.
    #[error("{service}: the access was revoked or has expired: {hint}")]
    ConsentRevoked {
        /// The service.
        service: &'static str,
        /// What to do, for a person.
        hint: String,
    },

    /// The credentials are valid but lack a permission.
    #[error("{service} refused the access: {detail}")]
    Forbidden {
        /// The service.
        service: &'static str,
        /// What is missing (a scope name when the service said which), and how to fix it.
        detail: String,
    },

    /// The archive's storage is full: what did not fit waits, nothing is lost.
    ///
    /// The two sizes answer "how much must I free?": the bytes still to write are
    /// `needed + remaining`. Build it with [`Error::quota_exceeded`], which keeps that
    /// rule. Sizes print in binary units ([`human_bytes`]), `needed` rounded up.
    #[error(
        "the archive is full: {} more needed, {} free; free up or buy at least that much, then sync again",
        human_bytes_up(*needed),
        human_bytes(*remaining)
    )]
    QuotaExceeded {
        /// The extra space required beyond `remaining`: how many more bytes must be
        /// free before everything still to write fits (never the total to write, and
        /// at least 1). When the storage refused a write although it reported room for
        /// it (its figure lags behind), that figure is not trusted: `remaining` is 0
        /// and `needed` is every byte still to write.
        needed: u64,
        /// Bytes free on the storage when the writing stopped, as it reported them.
        remaining: u64,
    },

    /// The thing asked for does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },

    /// An item already exists where one was to be created.
    #[error("already exists: {what}")]
    AlreadyExists {
        /// What was in the way.
        what: String,
    },

    /// Bytes did not match what was announced (length or hash): the item is retried.
    #[error(
        "{what} did not arrive intact; it is tried again, at the latest by the next sync.\n  integrity check: expected {expected}, got {actual}"
    )]
    Integrity {
        /// The receipt or file concerned.
        what: String,
        /// What was announced.
        expected: String,
        /// What was seen.
        actual: String,
    },

    /// A service answered something this crate cannot read.
    #[error(
        "{service} sent an answer that cannot be read; the next sync tries again, and if this persists, report it with the detail below.\n  at {field}: {detail}"
    )]
    Malformed {
        /// The service.
        service: &'static str,
        /// The field path inside the response, for example `transactions[3].attachments[0].file_size`.
        field: String,
        /// What is wrong with it.
        detail: String,
    },

    /// The request was refused as invalid and will be refused again (bad name, path too long, …).
    #[error(
        "{service} refused {operation} as invalid; it will be refused again as it is.\n  {message}"
    )]
    Rejected {
        /// The service.
        service: &'static str,
        /// What was being done.
        operation: String,
        /// Why, as the service said it.
        message: String,
    },

    /// The configuration is unusable (a bad URL, an `http://` URL to a remote host, a missing setting).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The state file cannot be used as it is (corrupt, from a newer version) or cannot
    /// be written (the disk is full); what is stored is left as it was.
    #[error("state file {}: {detail}", path.display())]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong (corrupt, written by a newer version, …) and what to do.
        detail: String,
    },

    /// The local disk (the state's folder or a local archive) has no space left: nothing
    /// was lost, and the run stopped before writing more. Free space, then run again.
    #[error("the local disk is full: free up space on it, then run again; nothing was lost.\n  {operation} {}", path.display())]
    DiskFull {
        /// What was being written.
        operation: &'static str,
        /// The file or folder being written.
        path: PathBuf,
    },

    /// Another sync holds the lock on this state.
    #[error(
        "wait for the other sync to finish, then run again: another sync is already running on {what}"
    )]
    AlreadyRunning {
        /// The locked state (a file path, or a description).
        what: String,
    },

    /// A local file operation failed.
    #[error("could not {operation} {}: {source}", path.display())]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The operation was cancelled.
    #[error("cancelled")]
    Cancelled,

    /// Anything else that will fail again if retried as it is.
    #[error("{service}: {operation} failed: {message}")]
    Permanent {
        /// The service.
        service: &'static str,
        /// What was being done.
        operation: String,
        /// What happened, without secrets.
        message: String,
    },
}

/// A number of bytes for a person, in binary units (`512 B`, `293.0 KiB`, `4.8 GiB`),
/// rounded to the nearest tenth. Every size this crate and its command print goes
/// through here or [`human_bytes_up`], so that two messages about the same bytes agree.
pub fn human_bytes(bytes: u64) -> String {
    format_bytes(bytes, false)
}

/// Like [`human_bytes`], rounded up: for a size to free, where the number shown must
/// be enough (550,000 bytes is 537.2 KiB, not 537.1).
pub fn human_bytes_up(bytes: u64) -> String {
    format_bytes(bytes, true)
}

fn format_bytes(bytes: u64, up: bool) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut unit = 1;
    loop {
        // Tenths of the unit, in integers: no float rounding surprises at the boundaries.
        let scale = 1u128 << (10 * unit);
        let tenths = u128::from(bytes) * 10;
        let tenths = if up {
            tenths.div_ceil(scale)
        } else {
            (tenths + scale / 2) / scale
        };
        // A value that rounds to 1024 of a unit is shown as 1.0 of the next one.
        if tenths < 10 * 1024 || unit + 1 == UNITS.len() {
            return format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit]);
        }
        unit += 1;
    }
}

/// "Microsoft asked to wait until 2026-03-02 14:05 UTC …": the minute is rounded up, so
/// that a run started at the time shown is not refused again.
fn throttled_message(service: &str, operation: &str, until: &DateTime<Utc>) -> String {
    let who = match service {
        "onedrive" => "Microsoft (OneDrive)",
        "qonto" => "Qonto",
        other => other,
    };
    let shown = if until.second() > 0 || until.nanosecond() > 0 {
        until
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .and_then(|t| t.checked_add_signed(TimeDelta::minutes(1)))
            .unwrap_or(*until)
    } else {
        *until
    };
    format!(
        "{who} asked to wait until {} UTC ({operation} was throttled for longer than this sync waits); run sync again after that",
        shown.format("%Y-%m-%d %H:%M")
    )
}

fn wait_hint(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!("retry after {} s", d.as_secs_f64().ceil()),
        None => "retry later".to_owned(),
    }
}

/// `text` kept to at most `max` characters for a message: a longer one is cut at a word
/// boundary and ends with `…`, so a reader sees it was shortened (a service's text can be
/// any length, and a message stays readable).
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max).collect();
    let cut = kept
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(kept.len(), |(i, _)| i);
    format!("{}…", kept[..cut].trim_end())
}

/// The kind of an [`Error`], for matching without destructuring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`Error::Transient`].
    Transient,
    /// See [`Error::RateLimited`] and [`Error::ThrottledUntil`].
    RateLimited,
    /// See [`Error::Unauthorized`].
    Unauthorized,
    /// See [`Error::ConsentRevoked`].
    ConsentRevoked,
    /// See [`Error::Forbidden`].
    Forbidden,
    /// See [`Error::QuotaExceeded`].
    QuotaExceeded,
    /// See [`Error::NotFound`].
    NotFound,
    /// See [`Error::AlreadyExists`].
    AlreadyExists,
    /// See [`Error::Integrity`].
    Integrity,
    /// See [`Error::Malformed`].
    Malformed,
    /// See [`Error::Rejected`].
    Rejected,
    /// See [`Error::Config`].
    Config,
    /// See [`Error::State`].
    State,
    /// See [`Error::DiskFull`].
    DiskFull,
    /// See [`Error::AlreadyRunning`].
    AlreadyRunning,
    /// See [`Error::Io`].
    Io,
    /// See [`Error::Cancelled`].
    Cancelled,
    /// See [`Error::Permanent`].
    Permanent,
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Transient { .. } => ErrorKind::Transient,
            Error::RateLimited { .. } | Error::ThrottledUntil { .. } => ErrorKind::RateLimited,
            Error::Unauthorized { .. } => ErrorKind::Unauthorized,
            Error::ConsentRevoked { .. } => ErrorKind::ConsentRevoked,
            Error::Forbidden { .. } => ErrorKind::Forbidden,
            Error::QuotaExceeded { .. } => ErrorKind::QuotaExceeded,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::Integrity { .. } => ErrorKind::Integrity,
            Error::Malformed { .. } => ErrorKind::Malformed,
            Error::Rejected { .. } => ErrorKind::Rejected,
            Error::Config(_) => ErrorKind::Config,
            Error::State { .. } => ErrorKind::State,
            Error::DiskFull { .. } => ErrorKind::DiskFull,
            Error::AlreadyRunning { .. } => ErrorKind::AlreadyRunning,
            Error::Io { .. } => ErrorKind::Io,
            Error::Cancelled => ErrorKind::Cancelled,
            Error::Permanent { .. } => ErrorKind::Permanent,
        }
    }

    /// Whether trying the same operation again, after a pause, may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::Transient | ErrorKind::RateLimited | ErrorKind::Integrity
        )
    }

    /// How long the service asked to wait before retrying, when it said (for
    /// [`Error::ThrottledUntil`], what is left of the wait from now).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Transient { retry_after, .. } | Error::RateLimited { retry_after, .. } => {
                *retry_after
            }
            Error::ThrottledUntil { until, .. } => {
                Some((*until - Utc::now()).to_std().unwrap_or(Duration::ZERO))
            }
            _ => None,
        }
    }

    /// Whether this error stops the whole sync rather than one receipt:
    /// nothing else can succeed until a person acts (credentials, consent,
    /// permissions, a full drive, the state, the configuration), or a service asked
    /// to wait longer than the run waits ([`Error::ThrottledUntil`]).
    pub fn stops_sync(&self) -> bool {
        matches!(self, Error::ThrottledUntil { .. })
            || matches!(
                self.kind(),
                ErrorKind::Unauthorized
                    | ErrorKind::ConsentRevoked
                    | ErrorKind::Forbidden
                    | ErrorKind::QuotaExceeded
                    | ErrorKind::Config
                    | ErrorKind::State
                    | ErrorKind::DiskFull
                    | ErrorKind::AlreadyRunning
                    | ErrorKind::Cancelled
            )
    }

    /// A full storage: `to_write` bytes did not fit in the `free` bytes it reports.
    ///
    /// `needed` is the part of `to_write` beyond `free`. A storage that refused a write
    /// while reporting room for all of it (`free >= to_write`: its figure lags behind)
    /// is taken at its refusal: nothing is known to be free, so `needed` is `to_write`
    /// (at least 1) and `remaining` is 0.
    pub fn quota_exceeded(to_write: u64, free: u64) -> Self {
        if to_write > free {
            Error::QuotaExceeded {
                needed: to_write - free,
                remaining: free,
            }
        } else {
            Error::QuotaExceeded {
                needed: to_write.max(1),
                remaining: 0,
            }
        }
    }

    /// Whether an I/O error means the disk (or the user's disk quota) is full.
    pub fn is_disk_full(error: &std::io::Error) -> bool {
        // ENOSPC (28) and EDQUOT (122) on Linux; `StorageFull` covers the rest of std's
        // platforms. A file-size limit (EFBIG, SIGXFSZ ignored) looks the same to a user.
        matches!(
            error.kind(),
            std::io::ErrorKind::StorageFull
                | std::io::ErrorKind::QuotaExceeded
                | std::io::ErrorKind::FileTooLarge
        )
    }

    /// A [`Error::Io`] for `operation` on `path`.
    pub fn io(operation: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            operation,
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_in_binary_units_and_a_size_to_free_rounds_up() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(300_000), "293.0 KiB");
        assert_eq!(human_bytes(550_000), "537.1 KiB");
        assert_eq!(human_bytes_up(550_000), "537.2 KiB");
        assert_eq!(human_bytes_up(1024), "1.0 KiB");
        assert_eq!(human_bytes(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(human_bytes_up(1024 * 1024 + 1), "1.1 MiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16777216.0 TiB");
        assert_eq!(human_bytes_up(u64::MAX), "16777216.0 TiB");
    }

    #[test]
    fn classification() {
        let throttled = Error::RateLimited {
            service: "onedrive",
            operation: "upload".into(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert!(throttled.is_retryable());
        assert!(!throttled.stops_sync());
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(3)));
        assert!(throttled.to_string().contains("retry after 3 s"));

        let until = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 3, 2, 14, 4, 30).unwrap();
        let too_long = Error::ThrottledUntil {
            service: "onedrive",
            operation: "upload a file".into(),
            until,
        };
        assert_eq!(too_long.kind(), ErrorKind::RateLimited);
        assert!(too_long.is_retryable());
        assert!(too_long.stops_sync());
        assert_eq!(too_long.retry_after(), Some(Duration::ZERO));
        let text = too_long.to_string();
        assert!(
            text.starts_with("Microsoft (OneDrive) asked to wait until 2026-03-02 14:05 UTC"),
            "{text}"
        );
        assert!(text.ends_with("run sync again after that"), "{text}");

        let full = Error::quota_exceeded(10, 4);
        assert!(matches!(
            full,
            Error::QuotaExceeded {
                needed: 6,
                remaining: 4
            }
        ));
        assert!(!full.is_retryable());
        assert!(full.stops_sync());
        assert!(
            full.to_string().contains("6 B more needed, 4 B free"),
            "{full}"
        );
        // A refusal the storage's own figure contradicts: that figure is not trusted.
        assert!(matches!(
            Error::quota_exceeded(10, 4_000),
            Error::QuotaExceeded {
                needed: 10,
                remaining: 0
            }
        ));

        let enospc = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert!(Error::is_disk_full(&enospc));
        assert!(!Error::is_disk_full(&std::io::Error::from(
            std::io::ErrorKind::PermissionDenied
        )));
        let disk = Error::DiskFull {
            operation: "append to",
            path: "/home/me/state.journal".into(),
        };
        assert!(disk.stops_sync());
        assert!(!disk.is_retryable());
        assert!(disk.to_string().contains("free up space"));
    }
}
