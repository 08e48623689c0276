//! Shared helpers for the OneDrive tests.
#![allow(dead_code)]

use bytes::Bytes;
use futures::StreamExt;
use receipt_sync::auth::{AccessTokenProvider, SecretString, StaticToken};
use receipt_sync::http::RetryConfig;
use receipt_sync::model::{ArchivePath, Body};
use receipt_sync::sink::onedrive::{OneDriveSink, OneDriveSinkBuilder};
#[cfg(feature = "testkit")]
use receipt_sync::testkit::fake_graph::FakeGraph;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const UNIT: usize = 327_680;

pub fn builder(base_url: &str) -> OneDriveSinkBuilder {
    OneDriveSink::builder(Arc::new(StaticToken::new("test-token")))
        .with_base_url(base_url)
        .with_retry(RetryConfig::fast())
}

#[cfg(feature = "testkit")]
pub fn sink(graph: &FakeGraph) -> OneDriveSink {
    builder(&graph.base_url()).build().unwrap()
}

/// A sink that uses sessions above 64 KiB, with 320 KiB fragments.
#[cfg(feature = "testkit")]
pub fn small_fragment_sink(graph: &FakeGraph) -> OneDriveSink {
    builder(&graph.base_url())
        .with_simple_upload_cutoff(64 * 1024)
        .with_fragment_size(UNIT as u64)
        .build()
        .unwrap()
}

pub fn path(p: &str) -> ArchivePath {
    ArchivePath::parse(p).unwrap()
}

/// A deterministic pattern of `len` bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// A body streaming `data` in chunks of `chunk` bytes.
pub fn chunked(data: &[u8], chunk: usize) -> Body {
    let chunks: Vec<receipt_sync::Result<Bytes>> = data
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Body::new(data.len() as u64, futures::stream::iter(chunks).boxed())
}

/// Hands out `tokens[0]` until invalidated, then `tokens[1]`, …; counts invalidations.
#[derive(Debug)]
pub struct RotatingToken {
    tokens: Vec<&'static str>,
    current: AtomicUsize,
    pub invalidated: AtomicUsize,
}

impl RotatingToken {
    pub fn new(tokens: Vec<&'static str>) -> Arc<Self> {
        Arc::new(Self {
            tokens,
            current: AtomicUsize::new(0),
            invalidated: AtomicUsize::new(0),
        })
    }
}

#[async_trait::async_trait]
impl AccessTokenProvider for RotatingToken {
    async fn access_token(&self) -> receipt_sync::Result<SecretString> {
        let i = self
            .current
            .load(Ordering::SeqCst)
            .min(self.tokens.len() - 1);
        Ok(SecretString::new(self.tokens[i]))
    }

    async fn invalidate(&self, _token: &SecretString) {
        self.invalidated.fetch_add(1, Ordering::SeqCst);
        self.current.fetch_add(1, Ordering::SeqCst);
    }
}

/// The drive prefix of every Graph path in the HTTP tests.
pub const D: &str = "/v1.0/me/drive";

/// A fixture from `tests/fixtures/graph/`, with `{BASE}` and `{UPLOAD}` replaced.
pub fn fixture(name: &str, base: &str, upload: &str) -> serde_json::Value {
    let file = format!(
        "{}/tests/fixtures/graph/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_json::from_str(&text.replace("{BASE}", base).replace("{UPLOAD}", upload))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// A Graph mock and an upload-URL mock, each with a catch-all that fails the test on any
/// request no other mock expected, and an upload host that refuses any Authorization.
pub struct Mocks {
    pub api: wiremock::MockServer,
    pub upload: wiremock::MockServer,
}

impl Mocks {
    pub async fn start() -> Self {
        use wiremock::matchers::{any, header_exists};
        use wiremock::{Mock, ResponseTemplate};
        let api = wiremock::MockServer::start().await;
        let upload = wiremock::MockServer::start().await;
        for server in [&api, &upload] {
            Mock::given(any())
                .respond_with(ResponseTemplate::new(599))
                .with_priority(u8::MAX)
                .named("catch-all: an unexpected request")
                .expect(0)
                .mount(server)
                .await;
        }
        Mock::given(header_exists("authorization"))
            .respond_with(ResponseTemplate::new(401))
            .with_priority(1)
            .named("a bearer token sent to an upload URL")
            .expect(0)
            .mount(&upload)
            .await;
        Self { api, upload }
    }

    pub fn base(&self) -> String {
        format!("{}/v1.0", self.api.uri())
    }

    pub fn fixture(&self, name: &str) -> serde_json::Value {
        fixture(name, &self.api.uri(), &self.upload.uri())
    }

    pub fn json(&self, status: u16, name: &str) -> wiremock::ResponseTemplate {
        wiremock::ResponseTemplate::new(status).set_body_json(self.fixture(name))
    }

    pub fn sink(&self) -> OneDriveSink {
        builder(&self.base()).build().unwrap()
    }

    /// `GET /me/drive/special/approot`, expected exactly `times`.
    pub async fn approot(&self, times: u64) {
        use wiremock::matchers::{header, method, path};
        wiremock::Mock::given(method("GET"))
            .and(path(format!("{D}/special/approot")))
            .and(header("authorization", "Bearer test-token"))
            .respond_with(self.json(200, "approot"))
            .expect(times)
            .named("GET approot")
            .mount(&self.api)
            .await;
    }
}

/// A file driveItem as Graph returns it after an upload of `data`.
pub fn uploaded_item(mocks: &Mocks, data: &[u8]) -> serde_json::Value {
    let mut item = mocks.fixture("file_uploaded");
    let mut hash = receipt_sync::sink::onedrive::QuickXorHash::new();
    hash.update(data);
    item["size"] = serde_json::json!(data.len());
    item["file"]["hashes"]["quickXorHash"] = serde_json::json!(hash.to_base64());
    item
}
