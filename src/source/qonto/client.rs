//! The Qonto API over HTTP: one function per endpoint, one request path for all.
//!
//! Every request goes through [`QontoClient::get`]: the shared pause, client-side rate
//! limit, the credential, the sandbox header, the request timeout, `RetryConfig` for
//! 429/5xx/transport failures, at most one credential refresh on a 401, HTML
//! detection, and the refusal of any answer from another host than the API's.
//!
//! A 429 (or a 5xx) with `Retry-After` pauses every API request of the source for the
//! full time asked, up to [`RetryConfig::max_retry_after`], as Graph's does for the
//! sink; past it the source refuses every request with [`Error::ThrottledUntil`] until
//! that time, which stops the run ([`crate::http::throttle`]).

use super::auth::{Authenticator, looks_like_html};
use super::error::{QontoError, malformed, network, retry_after};
use super::limiter::RateLimiter;
use super::model::{AttachmentEnvelope, ListPage, Meta, OrganizationEnvelope};
use crate::auth::SecretString;
use crate::error::{Error, Result};
use crate::http::throttle::Throttle;
use crate::http::{RetryConfig, same_origin};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use url::Url;

/// Query parameters, in order; repeated names for `name[]` arrays (qonto.md §2).
pub(crate) type Query = Vec<(&'static str, String)>;

/// The sandbox header (qonto.md §1.4).
pub(crate) const STAGING_HEADER: HeaderName = HeaderName::from_static("x-qonto-staging-token");

/// The API client. Holds the only copy of the credential.
pub(crate) struct QontoClient {
    pub(crate) http: reqwest::Client,
    /// The base URL without a trailing slash.
    pub(crate) base: String,
    pub(crate) auth: Authenticator,
    /// The staging token, marked sensitive.
    pub(crate) staging: Option<HeaderValue>,
    /// The bound on each request, set per request so that it holds for a caller's
    /// client too.
    pub(crate) timeout: Duration,
    pub(crate) retry: RetryConfig,
    pub(crate) limiter: RateLimiter,
    /// The pause every API request waits out after a throttle (shared with the other
    /// sources of a shared rate limiter).
    pub(crate) throttle: std::sync::Arc<Throttle>,
}

// By hand: reqwest's `Debug` prints a client's default headers, which a caller's client
// may fill with credentials; the staging token is left out too.
impl std::fmt::Debug for QontoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QontoClient")
            .field("base", &self.base)
            .field("auth", &self.auth)
            .field("staging", &self.staging.as_ref().map(|_| "[redacted]"))
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Why one attempt failed.
enum Failure {
    /// A 401 answering credential `sent`.
    Refused {
        sent: SecretString,
        error: Error,
    },
    Other(Error),
}

impl QontoClient {
    /// `GET /v2/organization` (qonto.md §2.1).
    pub(crate) async fn organization(&self) -> Result<OrganizationEnvelope> {
        let op = "read the organization";
        let value = self.get(op, self.url("/v2/organization", &[])?, false);
        decode(value.await?.unwrap_or_default(), "organization")
    }

    /// `GET /v2/bank_accounts`, page `page` (qonto.md §2.1); `None` past the last page.
    pub(crate) async fn bank_accounts(&self, query: &Query, page: u32) -> Result<Option<ListPage>> {
        let url = self.url("/v2/bank_accounts", query)?;
        match self.get("list bank accounts", url, page > 1).await? {
            Some(value) => list_page(value, "bank_accounts").map(Some),
            None => Ok(None),
        }
    }

    /// `GET /v2/transactions`, page `page` (qonto.md §2.2); `None` past the last page.
    pub(crate) async fn transactions(&self, query: &Query, page: u32) -> Result<Option<ListPage>> {
        let url = self.url("/v2/transactions", query)?;
        match self.get("list transactions", url, page > 1).await? {
            Some(value) => list_page(value, "transactions").map(Some),
            None => Ok(None),
        }
    }

    /// `GET /v2/attachments/{id}`: fresh metadata and a fresh URL (qonto.md §2.3).
    pub(crate) async fn attachment(&self, id: &str) -> Result<AttachmentEnvelope> {
        let mut url = self.url("/v2/attachments", &[])?;
        url.path_segments_mut()
            .map_err(|()| Error::Config("the Qonto base URL cannot take a path".to_owned()))?
            .push(id);
        let value = self.get("read an attachment", url, false).await?;
        decode(value.unwrap_or_default(), "attachment")
    }

    fn url(&self, path: &str, query: &[(&'static str, String)]) -> Result<Url> {
        let mut url = Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| Error::Config(format!("bad Qonto URL: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    /// GETs `url` as JSON, retrying what is retryable. With `end_on_422` (pages after
    /// the first), a 422 answers `None`: Qonto reportedly answers 422 for a page past
    /// the last one (qonto.md §2.6). On page 1 it is a real validation error.
    async fn get(&self, operation: &str, url: Url, end_on_422: bool) -> Result<Option<Value>> {
        // One refresh and one retry per request at most, never a loop (qonto.md §3).
        let refreshed = AtomicBool::new(false);
        self.retry
            .retry(|_| async {
                match self.get_once(operation, &url, end_on_422).await {
                    Ok(value) => Ok(value),
                    Err(Failure::Other(error)) => Err(error),
                    Err(Failure::Refused { sent, error }) => {
                        if refreshed.swap(true, Ordering::SeqCst)
                            || !self.auth.refused(&sent).await?
                        {
                            return Err(error);
                        }
                        tracing::debug!(
                            operation,
                            "access token refused; retrying once with a new one"
                        );
                        self.get_once(operation, &url, end_on_422)
                            .await
                            .map_err(|failure| match failure {
                                Failure::Refused { error, .. } | Failure::Other(error) => error,
                            })
                    }
                }
            })
            .await
    }

    async fn get_once(
        &self,
        operation: &str,
        url: &Url,
        end_on_422: bool,
    ) -> std::result::Result<Option<Value>, Failure> {
        self.throttle
            .wait(operation)
            .await
            .map_err(Failure::Other)?;
        self.limiter.acquire().await;
        let sent = self.auth.header().await.map_err(Failure::Other)?;
        let mut auth = HeaderValue::from_str(sent.expose()).map_err(|_| {
            Failure::Other(Error::Config(
                "the Qonto credential holds characters a header cannot carry".to_owned(),
            ))
        })?;
        auth.set_sensitive(true);
        let mut request = self
            .http
            .get(url.clone())
            .timeout(self.timeout)
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "application/json");
        if let Some(staging) = &self.staging {
            request = request.header(STAGING_HEADER, staging.clone());
        }
        let fail = |e: QontoError| Failure::Other(e.into());
        let response = request
            .send()
            .await
            .map_err(|e| fail(network(operation, e)))?;
        if !same_origin(response.url(), url) {
            // Only a caller's client follows redirects; what it reached is not Qonto.
            return Err(fail(QontoError::OtherHost {
                operation: operation.to_owned(),
                origin: response.url().origin().ascii_serialization(),
            }));
        }
        let status = response.status();
        let headers = response.headers().clone();
        if status.is_redirection() {
            // The sandbox redirects unauthenticated calls to its login (qonto.md §1.4).
            return Err(fail(QontoError::LoginPage));
        }
        if status.as_u16() == 422 && end_on_422 {
            return Ok(None);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| fail(network(operation, e)));
        let asked = retry_after(&headers);
        match asked {
            Some(wait) if status.as_u16() == 429 || status.is_server_error() => {
                self.throttle
                    .pause(wait, operation)
                    .map_err(Failure::Other)?;
            }
            _ if status.as_u16() == 429 => {}
            _ => self.throttle.served(),
        }
        if !status.is_success() {
            let error: Error = QontoError::Status {
                operation: operation.to_owned(),
                status,
                retry_after: asked,
                body: body.map(|b| b.to_vec()).unwrap_or_default(),
                auth: self.auth.kind(),
            }
            .into();
            return Err(if status.as_u16() == 401 {
                Failure::Refused { sent, error }
            } else {
                Failure::Other(error)
            });
        }
        let body = body?;
        let html = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
        parse_body(operation, html, &body).map(Some).map_err(fail)
    }
}

/// Reads a success body as JSON. HTML is the sandbox login page; a body cut short is a
/// transport failure, retried (not a malformed answer).
pub(super) fn parse_body(
    operation: &str,
    html_content_type: bool,
    body: &[u8],
) -> std::result::Result<Value, QontoError> {
    if html_content_type || looks_like_html(body) {
        return Err(QontoError::LoginPage);
    }
    serde_json::from_slice::<Value>(body).map_err(|e| {
        if e.is_eof() {
            QontoError::Truncated {
                operation: operation.to_owned(),
            }
        } else {
            QontoError::Decode {
                field: "(response body)".to_owned(),
                detail: format!("not JSON: line {} column {}", e.line(), e.column()),
            }
        }
    })
}

/// Reads an envelope; its fields are lenient, so only a non-object fails here.
pub(super) fn decode<T: DeserializeOwned>(value: Value, what: &str) -> Result<T> {
    if !value.is_object() {
        return Err(malformed(what, "expected a JSON object"));
    }
    serde_json::from_value(value).map_err(|_| malformed(what, "unreadable"))
}

/// Splits `{ "<key>": [...], "meta": {...} }` into raw items and paging metadata.
pub(super) fn list_page(value: Value, key: &str) -> Result<ListPage> {
    let Value::Object(mut object) = value else {
        return Err(malformed(key, "expected a JSON object"));
    };
    let items = match object.remove(key) {
        Some(Value::Array(items)) => items,
        // A page without its list is not an empty page: ending here could skip receipts.
        Some(_) | None => return Err(malformed(key, "expected an array")),
    };
    let meta = match object.remove("meta") {
        Some(meta) => serde_json::from_value::<Meta>(meta).unwrap_or_default(),
        None => Meta::default(),
    };
    Ok(ListPage { items, meta })
}
