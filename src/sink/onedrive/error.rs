//! Graph error bodies, parsed tolerantly and mapped into the crate's [`Error`] by what the
//! caller should do next.
//!
//! The body is `{"error":{"code","message","innerError":{"code",…,"innerError":{…}}}}`; the
//! inner key is spelled `innererror` in the OneDrive docs and `innerError` in the Graph docs
//! and real responses, so every key is matched case-insensitively, and the nesting is
//! walked to use the most specific code this crate knows (onedrive-graph.md §6). The
//! `message` is kept for people but never branched on.

use crate::error::Error;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::time::Duration;

/// The `service` named in this sink's errors.
pub const SERVICE: &str = "onedrive";

/// How a 403 of the 2026 AppFolder fault ends (see [`super::is_app_folder_refusal`]).
pub(crate) const APP_FOLDER_REFUSAL: &str = "Tokens consented with only \
Files.ReadWrite.AppFolder are refused on every drive endpoint by a known service fault \
(2026); sign in once granting Files.ReadWrite, then sync again";

/// How a refused share ends (see [`super::is_sharing_refusal`]).
pub(crate) const SHARING_NEEDS_FILES_READWRITE: &str = "sharing (a link or an \
invitation) on a personal account needs the Files.ReadWrite permission; \
Files.ReadWrite.AppFolder is not enough: sign in once granting Files.ReadWrite";

/// Codes this crate acts on, lower-cased (onedrive-graph.md §6, top-level and inner codes).
const KNOWN_CODES: &[&str] = &[
    "accessdenied",
    "activitylimitreached",
    "entitytagdoesnotmatch",
    "expiredtoken",
    "fragmentlengthmismatch",
    "fragmentoutoforder",
    "fragmentoverlap",
    "generalexception",
    "insufficientstorage",
    "invalidpath",
    "invalidrange",
    "invalidrequest",
    "itemnotfound",
    "malwaredetected",
    "maxfilesizeexceeded",
    "namealreadyexists",
    "notallowed",
    "notsupported",
    "pathistoolong",
    "quotalimitreached",
    "resourcemodified",
    "resyncapplydifferences",
    "resyncchangesapplydifferences",
    "resyncchangesuploaddifferences",
    "resyncrequired",
    "resyncuploaddifferences",
    "servicenotavailable",
    "servicereadonly",
    "syncstatenotfound",
    "throttledrequest",
    "unauthenticated",
    "upload_name_conflict",
    "uploadsessionfailed",
    "uploadsessionnotfound",
];

/// Nesting deeper than this is not walked (a defence against hostile bodies).
const MAX_NESTING: usize = 16;

/// A failed Graph response, read. Its `Debug` leaves out `location`, which may carry a
/// delta token.
#[derive(Clone)]
pub(crate) struct GraphError {
    pub status: StatusCode,
    /// Error codes from the outermost to the innermost, as sent.
    pub codes: Vec<String>,
    /// The service's message, for people (shortened).
    pub message: String,
    /// `Retry-After`, in seconds, when sent.
    pub retry_after: Option<Duration>,
    /// `Location`, when sent (a 410 on a delta link names where to resync from).
    pub location: Option<String>,
}

impl std::fmt::Debug for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphError")
            .field("status", &self.status)
            .field("codes", &self.codes)
            .field("message", &self.message)
            .field("retry_after", &self.retry_after)
            .finish_non_exhaustive()
    }
}

impl GraphError {
    /// Reads a failed response's status, headers and body (any body, even not JSON).
    pub fn parse(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let retry_after = retry_after(headers);
        let location = headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut codes = Vec::new();
        let mut message = String::new();
        if let Ok(json) = serde_json::from_slice::<Value>(body) {
            let mut node = get_ci(&json, "error");
            while let Some(current) = node {
                if codes.len() >= MAX_NESTING {
                    break;
                }
                if let Some(code) = get_ci(current, "code").and_then(Value::as_str) {
                    codes.push(code.to_owned());
                }
                if message.is_empty()
                    && let Some(text) = get_ci(current, "message").and_then(Value::as_str)
                {
                    message = crate::error::shorten(text, 300);
                }
                node = get_ci(current, "innererror");
            }
        }
        Self {
            status,
            codes,
            message,
            retry_after,
            location,
        }
    }

    /// Whether `code` appears at any level (case-insensitively).
    pub fn has_code(&self, code: &str) -> bool {
        self.codes.iter().any(|c| c.eq_ignore_ascii_case(code))
    }

    /// The most specific code this crate knows, lower-cased: the innermost known one.
    pub fn specific_code(&self) -> Option<String> {
        self.codes
            .iter()
            .rev()
            .map(|c| c.to_ascii_lowercase())
            .find(|c| KNOWN_CODES.contains(&c.as_str()))
    }

    fn describe(&self) -> String {
        let code = self
            .specific_code()
            .or_else(|| self.codes.first().cloned())
            .unwrap_or_else(|| "no error code".to_owned());
        if self.message.is_empty() {
            format!("HTTP {} ({code})", self.status.as_u16())
        } else {
            format!("HTTP {} ({code}): {}", self.status.as_u16(), self.message)
        }
    }

    /// The crate error for this failure during `operation`.
    ///
    /// `app_folder` says whether the sink's root is the app folder, which selects the
    /// consent hint for a 403 (onedrive-graph.md §0 and §9: AppFolder-only consents got
    /// `accessDenied`/`serviceReadOnly` on every drive endpoint in 2026, repaired by one
    /// consent with `Files.ReadWrite`).
    pub fn into_error(self, operation: &str, app_folder: bool) -> Error {
        let code = self.specific_code().unwrap_or_default();
        let status = self.status.as_u16();
        let operation = operation.to_owned();
        match (status, code.as_str()) {
            (429 | 509, _) | (_, "activitylimitreached" | "throttledrequest") => {
                Error::RateLimited {
                    service: SERVICE,
                    operation,
                    retry_after: self.retry_after,
                }
            }
            (503, _) if self.retry_after.is_some() => Error::RateLimited {
                service: SERVICE,
                operation,
                retry_after: self.retry_after,
            },
            // A full drive (onedrive-graph.md §5). The caller fills in the sizes it knows.
            (507, _) | (_, "quotalimitreached" | "insufficientstorage") => Error::QuotaExceeded {
                needed: 0,
                remaining: 0,
            },
            (401, _) => Error::Unauthorized {
                service: SERVICE,
                hint: format!(
                    "sign in again; the access token was refused.\n  {}",
                    self.describe()
                ),
            },
            (403, _) => Error::Forbidden {
                service: SERVICE,
                detail: forbidden_detail(&self, &operation, app_folder),
            },
            (404, _) | (_, "itemnotfound") => Error::NotFound {
                what: format!("{operation}: {}", self.describe()),
            },
            (409, "namealreadyexists" | "upload_name_conflict") => Error::AlreadyExists {
                what: format!("{operation}: {}", self.describe()),
            },
            // Not implemented for this drive or item (createLink of a kind a personal drive
            // does not offer, say): asking again gets the same answer.
            (501, _) | (_, "notsupported") => Error::Permanent {
                service: SERVICE,
                operation,
                message: self.describe(),
            },
            // Invalid names and too-long paths are refused again whatever we do
            // (onedrive-graph.md §7); rclone treats pathIsTooLong as not retryable too.
            (400 | 411 | 413 | 415 | 422, _) => Error::Rejected {
                service: SERVICE,
                operation,
                message: self.describe(),
            },
            (408 | 423, _) | (500..=599, _) => Error::Transient {
                service: SERVICE,
                operation,
                message: self.describe(),
                retry_after: self.retry_after,
            },
            _ => Error::Permanent {
                service: SERVICE,
                operation,
                message: self.describe(),
            },
        }
    }
}

/// The operations of `share.rs` whose 403 means a missing Files.ReadWrite.
pub(crate) const SHARING_OPERATIONS: &[&str] = &["create a sharing link", "invite to a folder"];

fn forbidden_detail(error: &GraphError, operation: &str, app_folder: bool) -> String {
    let base = format!("{operation}: {}", error.describe());
    let known_bug = error.has_code("accessDenied") || error.has_code("serviceReadOnly");
    if SHARING_OPERATIONS.contains(&operation) {
        // createLink and invite need Files.ReadWrite on personal accounts, fault or not.
        format!("{base}. {SHARING_NEEDS_FILES_READWRITE}")
    } else if app_folder && known_bug {
        format!("{base}. {APP_FOLDER_REFUSAL}")
    } else {
        format!("sign in again, granting the access asked for, then sync again.\n  {base}")
    }
}

/// The value of `key` in an object, matching the key case-insensitively.
fn get_ci<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// `Retry-After`: Graph sends seconds, but an HTTP date is read too; an unreadable one
/// is `None`, and the retry policy backs off instead.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    crate::http::retry_after::retry_after(headers, chrono::Utc::now())
}

/// The error for a request that got no answer (refused, reset, timed out, cut).
pub(crate) fn network_error(operation: &str, error: &reqwest::Error) -> Error {
    // reqwest's Display includes the URL; strip it, since upload URLs are secrets.
    let error = error_without_url(error);
    Error::Transient {
        service: SERVICE,
        operation: operation.to_owned(),
        message: error,
        retry_after: None,
    }
}

fn error_without_url(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the response body was cut"
    } else if error.is_request() {
        "the request failed"
    } else {
        "the connection failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

/// A body that does not have the expected shape.
pub(crate) fn malformed(field: &str, detail: impl Into<String>) -> Error {
    Error::Malformed {
        service: SERVICE,
        field: field.to_owned(),
        detail: detail.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn parse(status: u16, body: &str) -> GraphError {
        GraphError::parse(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
        )
    }

    #[test]
    fn walks_both_spellings_of_inner_error() {
        let e = parse(
            429,
            r#"{"error":{"code":"activityLimitReached","message":"m",
               "innerError":{"code":"throttledRequest","innererror":{"code":"quota"}}}}"#,
        );
        assert_eq!(
            e.codes,
            ["activityLimitReached", "throttledRequest", "quota"]
        );
        assert_eq!(e.specific_code().as_deref(), Some("throttledrequest"));
        let e = parse(
            400,
            r#"{"ERROR":{"Code":"invalidRequest","InnerError":{"code":"pathIsTooLong"}}}"#,
        );
        assert_eq!(e.specific_code().as_deref(), Some("pathistoolong"));
        assert_eq!(e.into_error("x", true).kind(), ErrorKind::Rejected);
    }

    #[test]
    fn a_long_service_message_is_shortened_at_a_word_and_says_so() {
        let long = format!("{}tail", "word ".repeat(100));
        let e = parse(
            500,
            &format!(r#"{{"error":{{"code":"generalException","message":"{long}"}}}}"#),
        );
        assert!(e.message.ends_with("word…"), "{}", e.message);
        assert!(e.message.chars().count() <= 301);
        let text = e.into_error("upload x", true).to_string();
        assert!(!text.contains("wor…") && !text.contains("tail"), "{text}");
    }

    #[test]
    fn maps_by_what_to_do() {
        let kind = |status, body| parse(status, body).into_error("op", true).kind();
        assert_eq!(
            kind(409, r#"{"error":{"code":"nameAlreadyExists"}}"#),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            kind(507, r#"{"error":{"code":"quotaLimitReached"}}"#),
            ErrorKind::QuotaExceeded
        );
        assert_eq!(
            kind(404, r#"{"error":{"code":"itemNotFound"}}"#),
            ErrorKind::NotFound
        );
        assert_eq!(kind(502, "<html>bad gateway</html>"), ErrorKind::Transient);
        assert_eq!(kind(503, ""), ErrorKind::Transient);
        assert_eq!(kind(401, ""), ErrorKind::Unauthorized);
        let forbidden = parse(
            403,
            r#"{"error":{"code":"accessDenied","innerError":{"code":"serviceReadOnly"}}}"#,
        )
        .into_error("resolve the app folder", true);
        assert!(
            forbidden.to_string().contains("Files.ReadWrite,"),
            "{forbidden}"
        );
        assert!(super::super::is_app_folder_refusal(&forbidden));
        let elsewhere = parse(403, r#"{"error":{"code":"accessDenied"}}"#)
            .into_error("resolve the root folder", false);
        assert!(!super::super::is_app_folder_refusal(&elsewhere));
    }

    #[test]
    fn a_refused_share_names_files_readwrite_not_the_fault() {
        let refused = parse(403, r#"{"error":{"code":"accessDenied"}}"#)
            .into_error("create a sharing link", true);
        assert!(super::super::is_sharing_refusal(&refused), "{refused}");
        assert!(!super::super::is_app_folder_refusal(&refused), "{refused}");
        assert!(!refused.to_string().contains("fault"), "{refused}");
    }

    #[test]
    fn not_implemented_is_permanent() {
        for (status, body) in [
            (
                501,
                r#"{"error":{"code":"notSupported","message":"not here"}}"#,
            ),
            (501, ""),
            (
                400,
                r#"{"error":{"code":"invalidRequest","innerError":{"code":"notSupported"}}}"#,
            ),
        ] {
            let error = parse(status, body).into_error("create a sharing link", true);
            assert_eq!(error.kind(), ErrorKind::Permanent, "{status} {body}");
            assert!(!error.is_retryable());
        }
    }
}
