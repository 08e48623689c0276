//! PostgreSQL's errors, classified into the crate's [`Error`] by what to do next.

use crate::error::Error;
use std::path::PathBuf;
use tokio_postgres::error::SqlState;

/// The name the errors of this store carry as their service.
pub(crate) const SERVICE: &str = "postgresql";

/// A driver error met while doing `operation`, classified: a lost connection, a
/// serialization failure or a server shutting down is retryable; refused credentials
/// or privileges need a person; the rest fails again as it is.
///
/// The message is the server's (which never holds the connection password) or the
/// driver's description of an I/O failure; `password`, when known, is scrubbed anyway.
pub(crate) fn from_pg(
    operation: &str,
    error: &tokio_postgres::Error,
    password: Option<&[u8]>,
) -> Error {
    let message = scrub(&error.to_string(), password);
    let operation = operation.to_owned();
    let Some(code) = error.code() else {
        // No SQLSTATE: the connection broke, timed out or was closed.
        return Error::Transient {
            service: SERVICE,
            operation,
            message,
            retry_after: None,
        };
    };
    let class = code.code().get(..2).unwrap_or_default();
    // Class 08: the connection; 53: the server is out of resources; 57: an operator
    // or the server stopped the statement or is shutting down.
    if retryable(code) || matches!(class, "08" | "53" | "57") {
        return Error::Transient {
            service: SERVICE,
            operation,
            message,
            retry_after: None,
        };
    }
    match class {
        "28" => Error::Unauthorized {
            service: SERVICE,
            hint: format!(
                "check the user and password of the database connection string ({message})"
            ),
        },
        "42" if *code == SqlState::INSUFFICIENT_PRIVILEGE => Error::Forbidden {
            service: SERVICE,
            detail: format!(
                "grant the database user the rights on the sync tables, then run again ({message})"
            ),
        },
        "3D" => Error::Config(format!(
            "the database named in the connection string does not exist: {message}"
        )),
        _ => Error::Permanent {
            service: SERVICE,
            operation,
            message,
        },
    }
}

/// Conflicts between concurrent transactions: trying again succeeds.
fn retryable(code: &SqlState) -> bool {
    [
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::QUERY_CANCELED,
    ]
    .contains(code)
}

/// A pool error (no connection could be had) met while doing `operation`.
pub(crate) fn from_pool(
    operation: &str,
    error: &deadpool_postgres::PoolError,
    password: Option<&[u8]>,
) -> Error {
    use deadpool_postgres::PoolError;
    match error {
        PoolError::Backend(e) => from_pg(operation, e, password),
        PoolError::Closed => Error::Permanent {
            service: SERVICE,
            operation: operation.to_owned(),
            message: "the connection pool was closed".to_owned(),
        },
        other => Error::Transient {
            service: SERVICE,
            operation: operation.to_owned(),
            message: scrub(&other.to_string(), password),
            retry_after: None,
        },
    }
}

/// A stored row or schema this release cannot use: permanent, and never replaced
/// silently. The "path" names the organisation and the table, not a file.
pub(super) fn state(organisation: &str, table: &str, detail: impl Into<String>) -> Error {
    Error::State {
        path: PathBuf::from(format!(
            "postgresql: organisation {organisation:?}, table {table}"
        )),
        detail: detail.into(),
    }
}

/// `text` with every occurrence of `password` replaced, in case a driver message
/// ever quotes a connection string.
pub(super) fn scrub(text: &str, password: Option<&[u8]>) -> String {
    match password.and_then(|p| std::str::from_utf8(p).ok()) {
        Some(p) if !p.is_empty() => text.replace(p, "[redacted]"),
        _ => text.to_owned(),
    }
}
