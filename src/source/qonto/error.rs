//! Qonto's failures, kept private, mapped into the crate's [`Error`] at the boundary.
//!
//! Nothing here ever prints a URL: request URLs may be pre-signed download links,
//! so reqwest errors are stripped of theirs before they are formatted.

use super::model::{ErrorBody, Lenient};
use crate::error::Error;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use std::time::Duration;

/// The service name in every error.
pub(crate) const SERVICE: &str = "qonto";

/// The hint given with every sandbox-looking answer (qonto.md §1.4, §3).
pub(crate) const STAGING_HINT: &str = "check the staging token and the base URL: Qonto \
    answered an HTML page where JSON was expected, the sandbox login page it shows when the \
    X-Qonto-Staging-Token header is missing or wrong";

/// Which credential was refused, for the 401 hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthKind {
    /// `Authorization: {login}:{secret-key}`.
    ApiKey,
    /// `Authorization: Bearer …`.
    OAuth,
}

/// What went wrong talking to Qonto, before classification.
pub(crate) enum QontoError {
    /// The request could not be sent or its answer not read.
    Network { operation: String, detail: String },
    /// A non-success status.
    Status {
        operation: String,
        status: StatusCode,
        retry_after: Option<Duration>,
        body: Vec<u8>,
        auth: AuthKind,
    },
    /// HTML where JSON was expected, or a redirect (to the sandbox login).
    LoginPage,
    /// An answer from `origin`, not from the API host: the caller's client followed a
    /// redirect. Nothing of it is read.
    OtherHost { operation: String, origin: String },
    /// A JSON body cut short.
    Truncated { operation: String },
    /// A field that cannot be read.
    Decode { field: String, detail: String },
}

impl From<QontoError> for Error {
    fn from(error: QontoError) -> Self {
        match error {
            QontoError::Network { operation, detail } => Error::Transient {
                service: SERVICE,
                operation,
                message: detail,
                retry_after: None,
            },
            QontoError::Status {
                operation,
                status,
                retry_after,
                body,
                auth,
            } => from_status(operation, status, retry_after, &body, auth),
            QontoError::LoginPage => Error::Unauthorized {
                service: SERVICE,
                hint: STAGING_HINT.to_owned(),
            },
            // The client is the caller's to fix, and every request would meet the same
            // redirect: stop the sync rather than fail receipt after receipt.
            QontoError::OtherHost { operation, origin } => Error::Config(format!(
                "build the HTTP client given to `with_http_client` with \
                 `redirect(reqwest::redirect::Policy::none())`: it follows redirects, so \
                 Qonto's answer to `{operation}` came from {origin}, not from the API host, \
                 and was not read (the sandbox redirects to its login page when the staging \
                 token is missing or wrong)"
            )),
            QontoError::Truncated { operation } => Error::Transient {
                service: SERVICE,
                operation,
                message: "the response ended before its JSON did".to_owned(),
                retry_after: None,
            },
            QontoError::Decode { field, detail } => malformed(field, detail),
        }
    }
}

/// An [`Error::Malformed`] at `field`.
pub(crate) fn malformed(field: impl Into<String>, detail: impl Into<String>) -> Error {
    Error::Malformed {
        service: SERVICE,
        field: field.into(),
        detail: detail.into(),
    }
}

/// A transport failure, with the URL removed (it may be pre-signed).
pub(crate) fn network(operation: &str, error: reqwest::Error) -> QontoError {
    QontoError::Network {
        operation: operation.to_owned(),
        detail: describe(error),
    }
}

/// A download that could not be sent. A redirect the download client refused (to a
/// URL that is not https, or one hop too many) is permanent: the same URL redirects
/// the same way every time. Anything else is a transport failure, retried.
pub(crate) fn download_failure(operation: &str, error: reqwest::Error) -> Error {
    if error.is_redirect() {
        return Error::Permanent {
            service: SERVICE,
            operation: operation.to_owned(),
            message: format!("{}; the storage URL is not tried again", describe(error)),
        };
    }
    network(operation, error).into()
}

/// The error and its causes, without the URL.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    detail
}

fn from_status(
    operation: String,
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    auth: AuthKind,
) -> Error {
    let detail = api_detail(body);
    match status.as_u16() {
        // Never retried: Qonto throttles a client after 200 401s in an hour (qonto.md §3).
        401 => Error::Unauthorized {
            service: SERVICE,
            hint: match auth {
                AuthKind::ApiKey => "check the organisation login and the secret key (Qonto \
                    web app: Integrations and Partnerships > API key); Qonto refused them"
                    .to_owned(),
                AuthKind::OAuth => "sign in again; Qonto refused the access token even after \
                    a refresh"
                    .to_owned(),
            },
        },
        // A missing OAuth scope; the body names it when Qonto says which (qonto.md §3).
        403 => Error::Forbidden {
            service: SERVICE,
            detail: match detail {
                Some(d) if d.to_ascii_lowercase().contains("scope") => {
                    format!("grant the scope Qonto names below, then sync again.\n  {d}")
                }
                Some(d) => format!(
                    "grant the organization.read scope (reading receipts needs it), then sync \
                     again.\n  {d}"
                ),
                None => "grant the organization.read scope (reading receipts needs it), then \
                    sync again"
                    .to_owned(),
            },
        },
        404 => Error::NotFound {
            what: format!(
                "{operation}: {}",
                detail.unwrap_or_else(|| "404".to_owned())
            ),
        },
        429 => Error::RateLimited {
            service: SERVICE,
            operation,
            retry_after,
        },
        500..=599 => Error::Transient {
            service: SERVICE,
            operation,
            message: format!("HTTP {}", status.as_u16()),
            retry_after,
        },
        300..=399 => Error::Unauthorized {
            service: SERVICE,
            hint: STAGING_HINT.to_owned(),
        },
        400 | 422 => Error::Rejected {
            service: SERVICE,
            operation,
            message: detail.unwrap_or_else(|| format!("HTTP {}", status.as_u16())),
        },
        other => Error::Permanent {
            service: SERVICE,
            operation,
            message: match detail {
                Some(d) => format!("HTTP {other}: {d}"),
                None => format!("HTTP {other}"),
            },
        },
    }
}

/// The `detail`s of a Qonto error body, with the trace id support asks for.
fn api_detail(body: &[u8]) -> Option<String> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    let mut parts: Vec<String> = Vec::new();
    if let Lenient::Present(items) = parsed.errors {
        for item in items {
            match (item.code.ok(), item.detail.ok()) {
                (Some(code), Some(detail)) => parts.push(format!("{detail} ({code})")),
                (None, Some(detail)) => parts.push(detail),
                (Some(code), None) => parts.push(code),
                (None, None) => {}
            }
        }
    }
    if let Some(message) = parsed.message.ok() {
        parts.push(message);
    }
    if parts.is_empty() {
        return None;
    }
    let mut text = parts.join("; ");
    if let Some(trace) = parsed.trace_id.ok() {
        // For Qonto's support: on a line of its own, after what matters to a person.
        text.push_str(&format!("\n  trace_id {trace}"));
    }
    Some(text)
}

/// `Retry-After` as seconds or as an HTTP date (qonto.md §3: undocumented, so both);
/// an unreadable one is `None`, and the retry policy backs off instead.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    crate::http::retry_after::retry_after(headers, chrono::Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn retry_after_as_seconds_or_date() {
        assert_eq!(retry_after(&headers("7")), Some(Duration::from_secs(7)));
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let parsed = retry_after(&headers(&soon.replace("+0000", "GMT"))).unwrap();
        assert!(parsed > Duration::from_secs(25) && parsed <= Duration::from_secs(30));
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn refusals_say_what_to_do_and_point_to_no_document() {
        for (status, auth) in [
            (StatusCode::UNAUTHORIZED, AuthKind::ApiKey),
            (StatusCode::UNAUTHORIZED, AuthKind::OAuth),
            (StatusCode::FORBIDDEN, AuthKind::OAuth),
        ] {
            let text = from_status("list transactions".into(), status, None, b"", auth).to_string();
            assert!(!text.contains(".md") && !text.contains('§'), "{text}");
            let first = text.lines().next().unwrap();
            assert!(
                first.contains("check the")
                    || first.contains("sign in again")
                    || first.contains("grant the"),
                "{text}"
            );
        }
        // The trace id is for support: on a line of its own.
        let body = br#"{"errors":[{"code":"bad","detail":"refused"}],"trace_id":"t-42"}"#;
        let text = from_status(
            "x".into(),
            StatusCode::CONFLICT,
            None,
            body,
            AuthKind::ApiKey,
        )
        .to_string();
        assert!(text.lines().any(|l| l.trim() == "trace_id t-42"), "{text}");
    }

    #[test]
    fn forbidden_names_the_scope() {
        let body = br#"{"errors":[{"code":"forbidden","detail":"missing required OAuth scope: attachment.read"}],"trace_id":"t1"}"#;
        let e = from_status(
            "x".into(),
            StatusCode::FORBIDDEN,
            None,
            body,
            AuthKind::OAuth,
        );
        assert!(
            matches!(&e, Error::Forbidden { detail, .. } if detail.contains("attachment.read") && detail.contains("t1"))
        );
    }
}
