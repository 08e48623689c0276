//! Shared helpers for the OneDrive tests.
#![allow(dead_code)]

use bytes::Bytes;
use futures::StreamExt;
use receipt_sync::auth::{AccessTokenProvider, SecretString, StaticToken};
use receipt_sync::http::RetryConfig;
use receipt_sync::model::{ArchivePath, Body};
use receipt_sync::sink::onedrive::{OneDriveSink, OneDriveSinkBuilder};
use receipt_sync::testkit::fake_graph::FakeGraph;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const UNIT: usize = 327_680;

pub fn builder(base_url: &str) -> OneDriveSinkBuilder {
    OneDriveSink::builder(Arc::new(StaticToken::new("test-token")))
        .with_base_url(base_url)
        .with_retry(RetryConfig::fast())
}

pub fn sink(graph: &FakeGraph) -> OneDriveSink {
    builder(&graph.base_url()).build().unwrap()
}

/// A sink that uses sessions above 64 KiB, with 320 KiB fragments.
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
