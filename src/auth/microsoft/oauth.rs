//! The HTTP transport for oauth2 requests: the configured `reqwest::Client`, with
//! redirects, throttling and server errors turned into transport errors before oauth2
//! tries to read them as token responses.

use futures::future::BoxFuture;
use oauth2::basic::BasicClient;
use oauth2::{AsyncHttpClient, EndpointNotSet, EndpointSet, HttpRequest, HttpResponse};
use std::time::Duration;

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
pub(crate) struct Transport<'a>(pub(crate) &'a reqwest::Client);

impl<'c> AsyncHttpClient<'c> for Transport<'_> {
    type Error = TransportError;
    type Future = BoxFuture<'c, Result<HttpResponse, TransportError>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|e| TransportError::Network(chain(&e)))?;
            let sent_to = request.url().clone();
            let response = self
                .0
                .execute(request)
                .await
                .map_err(|e| TransportError::Network(chain(&e.without_url())))?;
            let status = response.status();
            // A token request must never be forwarded: a redirect would carry the code or
            // refresh token in its body to another host (oauth2 v5 upgrade guide, SSRF). The
            // default client does not follow redirects; a caller's client that did is caught
            // here, because the final URL differs from the one the request was sent to.
            if status.is_redirection() || response.url() != &sent_to {
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
