//! The request loop every Graph call goes through: it waits out the shared pause, attaches
//! the bearer token only for the Graph host, retries a 401 once with a fresh token, and
//! retries throttling, 5xx and dropped connections through [`RetryConfig`].
//!
//! A 429 or 503 with `Retry-After` pauses every request of the sink for the full time
//! asked, up to [`RetryConfig::max_retry_after`]; past it, the sink refuses every request
//! with [`Error::ThrottledUntil`] until that time, which stops the run
//! ([`crate::http::throttle`]).

use super::error::{GraphError, SERVICE, malformed, network_error};
use crate::auth::AccessTokenProvider;
use crate::error::{Error, ErrorKind, Result};
use crate::http::RetryConfig;
use crate::http::throttle::Throttle;
use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, USER_AGENT};
use reqwest::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// What a builder hands over.
pub(crate) struct ClientParts {
    pub api: reqwest::Client,
    pub upload: reqwest::Client,
    pub base: Url,
    pub drive_path: String,
    pub request_timeout: Duration,
    pub tokens: Arc<dyn AccessTokenProvider>,
    pub retry: RetryConfig,
    pub user_agent: HeaderValue,
    pub app_folder: bool,
}

/// The Graph client of one sink.
pub(crate) struct GraphClient {
    api: reqwest::Client,
    /// Never given a bearer token: upload-session URLs are pre-authenticated, and
    /// sending `Authorization` to them may get a 401 (onedrive-graph.md §3).
    upload: reqwest::Client,
    base: Url,
    /// `{base}/me/drive` or `{base}/drives/{id}`.
    pub(super) drive: String,
    /// The bound on each request, set per request so that it holds for a caller's
    /// client too.
    request_timeout: Duration,
    tokens: Arc<dyn AccessTokenProvider>,
    pub retry: RetryConfig,
    pub throttle: Throttle,
    user_agent: HeaderValue,
    pub app_folder: bool,
}

/// Why a call did not succeed: an error answer from Graph, or no usable answer at all.
#[derive(Debug)]
pub(crate) enum Failure {
    Graph(GraphError),
    Other(Error),
}

impl Failure {
    pub fn status(&self) -> Option<u16> {
        match self {
            Failure::Graph(g) => Some(g.status.as_u16()),
            Failure::Other(_) => None,
        }
    }

    pub fn into_error(self, operation: &str, app_folder: bool) -> Error {
        match self {
            Failure::Graph(g) => g.into_error(operation, app_folder),
            Failure::Other(e) => e,
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Other(e)
    }
}

/// A request body that can be produced again for a retry.
pub(crate) trait BodySource: Send {
    /// The body for the next attempt, with its length.
    fn next_body(&mut self) -> impl Future<Output = Result<Option<(reqwest::Body, u64)>>> + Send;

    /// Its media type, if it has a body.
    fn content_type(&self) -> Option<&'static str> {
        None
    }
}

/// A small in-memory body (JSON), cheap to resend.
pub(crate) struct Fixed(pub Option<(Bytes, &'static str)>);

impl BodySource for Fixed {
    async fn next_body(&mut self) -> Result<Option<(reqwest::Body, u64)>> {
        Ok(self
            .0
            .as_ref()
            .map(|(b, _)| (reqwest::Body::from(b.clone()), b.len() as u64)))
    }

    fn content_type(&self) -> Option<&'static str> {
        self.0.as_ref().map(|(_, t)| *t)
    }
}

pub(super) fn json_body(value: &impl serde::Serialize) -> Result<Fixed> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Permanent {
        service: SERVICE,
        operation: "encode a request".into(),
        message: e.to_string(),
    })?;
    Ok(Fixed(Some((Bytes::from(bytes), "application/json"))))
}

impl GraphClient {
    pub fn new(parts: ClientParts) -> Self {
        let base_str = parts.base.as_str().trim_end_matches('/').to_owned();
        Self {
            api: parts.api,
            upload: parts.upload,
            drive: format!("{base_str}{}", parts.drive_path),
            base: parts.base,
            request_timeout: parts.request_timeout,
            tokens: parts.tokens,
            retry: parts.retry,
            throttle: Throttle::new(SERVICE, parts.retry.max_retry_after),
            user_agent: parts.user_agent,
            app_folder: parts.app_folder,
        }
    }

    /// Whether `url` is on the Graph host (same scheme, host and port as the base URL):
    /// the only place the bearer token may go.
    pub fn is_graph_host(&self, url: &Url) -> bool {
        url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
    }

    pub(super) fn parse_api_url(&self, url: &str) -> Result<Url> {
        let parsed = Url::parse(url).map_err(|e| malformed("link", e.to_string()))?;
        if !self.is_graph_host(&parsed) {
            // A nextLink/deltaLink/Location elsewhere would take our token with it.
            return Err(malformed(
                "link",
                format!(
                    "a link points away from the Graph host ({})",
                    parsed.host_str().unwrap_or("?")
                ),
            ));
        }
        Ok(parsed)
    }

    /// An API call with the full policy, returning the body of a 2xx answer; any other
    /// answer is a [`Failure`].
    pub async fn call<B: BodySource>(
        &self,
        operation: &str,
        method: Method,
        url: &str,
        body: &mut B,
    ) -> Result<Bytes, Failure> {
        let url = self.parse_api_url(url)?;
        let body = tokio::sync::Mutex::new(body);
        // Retryable failures go back to the retry policy as errors; the others come out as
        // `Ok(Err(failure))`, keeping the Graph details (status, codes, Location) for callers.
        let outcome = self
            .retry
            .retry(|_attempt| async {
                let mut body = body.lock().await;
                match self.exchange(operation, &method, &url, &mut **body).await {
                    // The answer is read inside the loop, so a cut body is retried too.
                    Ok(response) if response.status().is_success() => {
                        self.throttle.served();
                        response
                            .bytes()
                            .await
                            .map(Ok)
                            .map_err(|e| network_error(operation, &e))
                    }
                    Ok(response) => {
                        let failure = read_failure(response).await;
                        self.note_throttling(&failure, operation)?;
                        let error = failure.clone().into_error(operation, self.app_folder);
                        if error.is_retryable() {
                            Err(error)
                        } else {
                            Ok(Err(Failure::Graph(failure)))
                        }
                    }
                    // Dropped connections and token-service hiccups are retried; an
                    // Integrity error from a body source is the caller's to handle.
                    Err(error)
                        if matches!(
                            error.kind(),
                            ErrorKind::Transient | ErrorKind::RateLimited
                        ) =>
                    {
                        Err(error)
                    }
                    Err(error) => Ok(Err(Failure::Other(error))),
                }
            })
            .await;
        match outcome {
            Ok(answer) => answer,
            Err(error) => Err(Failure::Other(error)),
        }
    }

    /// Pauses every request of this sink for the `Retry-After` of a throttling answer
    /// (429, 503, 509), in full (onedrive-graph.md §6, Throttling); any other answer ends
    /// a storm.
    ///
    /// # Errors
    /// [`Error::ThrottledUntil`] when the wait passes the ceiling.
    pub(crate) fn note_throttling(&self, failure: &GraphError, operation: &str) -> Result<()> {
        match failure.retry_after {
            Some(wait) if matches!(failure.status.as_u16(), 429 | 503 | 509) => {
                self.throttle.pause(wait, operation)
            }
            // A throttle without a readable `Retry-After` is backed off per request
            // by the retry policy.
            _ if matches!(failure.status.as_u16(), 429 | 503 | 509) => Ok(()),
            _ => {
                self.throttle.served();
                Ok(())
            }
        }
    }

    /// One attempt: wait out a pause, send with the bearer, and on a 401 invalidate the
    /// token and send once more with a fresh one.
    pub async fn exchange<B: BodySource>(
        &self,
        operation: &str,
        method: &Method,
        url: &Url,
        body: &mut B,
    ) -> Result<Response> {
        let mut refreshed = false;
        loop {
            self.throttle.wait(operation).await?;
            let token = self.tokens.access_token().await?;
            let mut request = self
                .api
                .request(method.clone(), url.clone())
                .timeout(self.request_timeout)
                .header(USER_AGENT, self.user_agent.clone());
            if self.is_graph_host(url) {
                request = request.bearer_auth(token.expose());
            }
            match body.next_body().await? {
                Some((b, len)) => {
                    request = request.header(CONTENT_LENGTH, len).body(b);
                }
                None if *method == Method::POST || *method == Method::PUT => {
                    request = request.header(CONTENT_LENGTH, 0);
                }
                None => {}
            }
            if let Some(content_type) = body.content_type() {
                request = request.header(CONTENT_TYPE, content_type);
            }
            let response = request
                .send()
                .await
                .map_err(|e| network_error(operation, &e))?;
            if response.status() == StatusCode::UNAUTHORIZED && !refreshed {
                // The token may have expired or been revoked early: get a fresh one, once.
                tracing::debug!(operation, "token refused; refreshing once");
                self.tokens.invalidate(&token).await;
                refreshed = true;
                continue;
            }
            return Ok(response);
        }
    }

    /// A request to an upload-session URL: never with `Authorization`
    /// (onedrive-graph.md §3, "Don't send an Authorization header to uploadUrl"), and
    /// only once the sink's pause is over.
    ///
    /// # Errors
    /// [`Error::ThrottledUntil`] while the sink is throttled past the ceiling.
    pub async fn upload_request(
        &self,
        method: Method,
        url: &Url,
    ) -> Result<reqwest::RequestBuilder> {
        self.throttle.wait("upload a file").await?;
        Ok(self
            .upload
            .request(method, url.clone())
            .timeout(self.request_timeout)
            .header(USER_AGENT, self.user_agent.clone()))
    }
}

/// Reads a failed response into a [`GraphError`] (a cut body reads as empty).
pub(crate) async fn read_failure(response: Response) -> GraphError {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap_or_default();
    GraphError::parse(status, &headers, &body)
}

/// Parses a JSON body; one of the wrong shape is malformed.
pub(crate) fn parse_json<T: DeserializeOwned>(operation: &str, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| malformed(operation, e.to_string()))
}

/// Reads a JSON body; a cut body is transient, a body of the wrong shape is malformed.
pub(crate) async fn read_json<T: DeserializeOwned>(
    operation: &str,
    response: Response,
) -> Result<T> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| network_error(operation, &e))?;
    serde_json::from_slice(&bytes).map_err(|e| malformed(operation, e.to_string()))
}

/// Percent-encodes one path segment: everything but RFC 3986 unreserved characters and
/// `!` (which item ids contain) is escaped, so `+`, `#`, `%`, `:` and spaces survive
/// (onedrive-graph.md §2 "Path addressing and encoding": encode each segment separately).
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'!') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Encodes a `/`-separated path segment by segment.
pub(crate) fn encode_path(path: &str) -> String {
    path.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}
