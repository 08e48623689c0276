//! The HTTP transport for oauth2 requests: the configured `reqwest::Client`, with
//! redirects, throttling and server errors turned into transport errors before oauth2
//! tries to read them as token responses.
//!
//! A token request's body holds a grant (a refresh token, an authorization code with its
//! PKCE verifier, a device code). It must reach the token endpoint and nothing else, whatever
//! client the caller configured:
//! 1. The body is sent as a one-shot stream. reqwest re-sends on a 307/308 only a body it
//!    can copy, so even a client that follows redirects stops there and hands back the 307/308.
//! 2. A 301/302/303 turns the POST into a bodiless GET in such a client; the answer of that
//!    GET comes from another URL and is refused, as is any 3xx answer.

use futures::future::BoxFuture;
use oauth2::basic::BasicClient;
use oauth2::{AsyncHttpClient, EndpointNotSet, EndpointSet, HttpRequest, HttpResponse};
use std::convert::Infallible;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The oauth2 client with its authorize, device-code and token endpoints set.
pub(crate) type OAuthClient =
    BasicClient<EndpointSet, EndpointSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// A request that got no usable answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    /// No answer: connection refused or cut, timeout, TLS failure.
    #[error("{0}")]
    Network(String),
    /// HTTP 429 or 5xx: try again later.
    #[error("HTTP {status}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// A 3xx answer, or a client that followed one.
    #[error("the identity endpoint answered with a redirect")]
    Redirected,
}

/// `reqwest::Client` as an oauth2 HTTP client.
pub(crate) struct Transport<'a> {
    http: &'a reqwest::Client,
    /// Cancelled once an answer was a redirect, for loops that would otherwise retry it.
    redirected: CancellationToken,
}

impl<'a> Transport<'a> {
    pub(crate) fn new(http: &'a reqwest::Client) -> Self {
        Self {
            http,
            redirected: CancellationToken::new(),
        }
    }

    /// Completes once a request through this transport was answered with a redirect
    /// (at once if one already was). oauth2's device-code polling treats every transport
    /// error as a network hiccup and polls on until the code expires; a redirect is a
    /// wrong endpoint, which no amount of polling fixes.
    pub(crate) async fn redirected(&self) {
        self.redirected.cancelled().await;
    }

    /// Whether a request through this transport was answered with a redirect.
    pub(crate) fn was_redirected(&self) -> bool {
        self.redirected.is_cancelled()
    }
}

impl<'c> AsyncHttpClient<'c> for Transport<'_> {
    type Error = TransportError;
    type Future = BoxFuture<'c, Result<HttpResponse, TransportError>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let mut request =
                reqwest::Request::try_from(oauth2::http::Request::from_parts(parts, Vec::new()))
                    .map_err(|e| TransportError::Network(chain(&e)))?;
            // The length is known: say it, so the one-shot body is not sent chunked.
            request.headers_mut().insert(
                reqwest::header::CONTENT_LENGTH,
                reqwest::header::HeaderValue::from(body.len()),
            );
            *request.body_mut() = Some(one_shot(body));
            let sent_to = request.url().clone();
            let response = self
                .http
                .execute(request)
                .await
                .map_err(|e| TransportError::Network(chain(&e.without_url())))?;
            let status = response.status();
            // A token request must never be forwarded: a redirect would carry the code or
            // refresh token in its body to another host (oauth2 v5 upgrade guide, SSRF). The
            // default client does not follow redirects; a caller's client that does stops at
            // a 307/308 (the body cannot be replayed) and is caught here after a 301/302/303,
            // because the final URL differs from the one the request was sent to.
            if status.is_redirection() || response.url() != &sent_to {
                self.redirected.cancel();
                return Err(TransportError::Redirected);
            }
            // Throttling and server errors are retried; oauth2 would read their bodies as
            // token errors or fail to parse an HTML page.
            if status.as_u16() == 429 || status.is_server_error() {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                return Err(TransportError::Status {
                    status: status.as_u16(),
                    retry_after,
                });
            }
            let mut builder = oauth2::http::Response::builder().status(status.as_u16());
            for (name, value) in response.headers() {
                builder = builder.header(name.as_str(), value.as_bytes());
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| TransportError::Network(chain(&e.without_url())))?;
            builder
                .body(body.to_vec())
                .map_err(|e| TransportError::Network(e.to_string()))
        })
    }
}

/// `body` as a stream that can be read once: reqwest follows a 307/308 only with a body it
/// can copy, so a grant in this body is never replayed to a redirect target.
fn one_shot(body: Vec<u8>) -> reqwest::Body {
    reqwest::Body::wrap_stream(futures::stream::once(
        async move { Ok::<_, Infallible>(body) },
    ))
}

/// An error and its causes on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
