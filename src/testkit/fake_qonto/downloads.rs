//! The fake storage host that serves pre-signed attachment URLs.
//!
//! Like S3 (qonto.md §2.3): the signature in the query is the only credential; an
//! expired one answers 403. Unlike S3, any request carrying `Authorization` or the
//! sandbox header is refused *and counted*, so tests can prove none ever arrives.

use super::faults::Fault;
use super::shared::Shared;
use crate::testkit::server::{FakeRequest, FakeResponse, FakeService};
use futures::future::BoxFuture;
use std::sync::Arc;

/// One download host. The primary one may redirect to the mirror.
pub(super) struct DownloadHost {
    pub shared: Arc<Shared>,
    /// Where the primary redirects to when told to; `None` on the mirror itself.
    pub mirror: Option<String>,
}

impl FakeService for DownloadHost {
    fn handle(&self, request: FakeRequest) -> BoxFuture<'_, FakeResponse> {
        Box::pin(async move {
            let mut state = self.shared.lock();
            if request.headers.contains_key("authorization")
                || request.headers.contains_key("x-qonto-staging-token")
            {
                state.credential_leaks += 1;
                return s3_error(400, "InvalidArgument", "Only one auth mechanism allowed");
            }
            let route = self.route(&request);
            let fault = state.faults.next(&route);
            if let Some(fault) = &fault
                && *fault != Fault::Truncated
            {
                return fault.apply(FakeResponse::status(200));
            }
            if let (Some(mirror), true) = (&self.mirror, state.settings.redirect_downloads) {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&request.query)
                    .finish();
                let location = format!("{mirror}{}?{query}", request.raw_path);
                return FakeResponse::status(307).with_header("location", &location);
            }
            let id = request.path.trim_start_matches("/s3/");
            let signature = request.query_param("X-Amz-Signature").unwrap_or_default();
            let lifetime = state.settings.url_lifetime;
            if !state.signer.check(id, signature, lifetime) {
                return s3_error(403, "AccessDenied", "Request has expired");
            }
            let real = match state.attachment(id) {
                Some(att) => FakeResponse::bytes(200, &att.content_type, att.bytes.clone()),
                None => s3_error(404, "NoSuchKey", "The specified key does not exist."),
            };
            match fault {
                Some(fault) => fault.apply(real),
                None => real,
            }
        })
    }

    fn route(&self, request: &FakeRequest) -> String {
        if request.path.starts_with("/s3/") {
            format!("{} /s3/{{id}}", request.method)
        } else {
            format!("{} {}", request.method, request.path)
        }
    }
}

fn s3_error(status: u16, code: &str, message: &str) -> FakeResponse {
    FakeResponse::bytes(
        status,
        "application/xml",
        format!(
            "<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        ),
    )
}
