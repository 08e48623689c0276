//! Receipt bytes: pre-signed URLs, cached, refreshed, downloaded without credentials.
//!
//! qonto.md §2.3: an attachment's `url` is a pre-signed storage URL valid for 30
//! minutes. It is fetched with a plain GET and no Qonto `Authorization` (nor the
//! sandbox header); an expired one answers 403 (some clients also see 410), and
//! `GET /v2/attachments/{id}` hands out a fresh one.

use super::Inner;
use super::builder::is_allowed;
use super::convert::{fresh_url, required};
use super::error::{SERVICE, malformed, network, retry_after};
use crate::auth::SecretString;
use crate::error::{Error, Result};
use crate::model::{Body, Receipt, ReceiptId};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// Entries kept before stale ones are swept out.
const SWEEP_ABOVE: usize = 4096;

/// Listed pre-signed URLs and when they were fetched, by receipt.
#[derive(Default)]
pub(crate) struct UrlCache {
    inner: Mutex<Urls>,
}

#[derive(Default)]
struct Urls {
    by_receipt: HashMap<ReceiptId, (SecretString, Instant)>,
    /// The size at which stale entries are next swept out: doubling, so that sweeps
    /// cost O(1) per insertion however many URLs are fresh.
    sweep_at: usize,
}

impl UrlCache {
    /// Remembers `url` for `id`, fetched now.
    pub(crate) fn put(&self, id: ReceiptId, url: SecretString) {
        let mut urls = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if urls.by_receipt.len() >= urls.sweep_at.max(SWEEP_ABOVE) {
            // Nothing older than the 30-minute life of a URL is worth keeping.
            urls.by_receipt
                .retain(|_, (_, at)| at.elapsed() < Duration::from_secs(30 * 60));
            urls.sweep_at = urls.by_receipt.len() * 2;
        }
        urls.by_receipt.insert(id, (url, Instant::now()));
    }

    /// The URL of `id`, if fetched less than `max_age` ago.
    fn fresh(&self, id: &ReceiptId, max_age: Duration) -> Option<SecretString> {
        let urls = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        urls.by_receipt
            .get(id)
            .filter(|(_, at)| at.elapsed() < max_age)
            .map(|(url, _)| url.clone())
    }
}

/// What the storage host answered.
enum Answer {
    Bytes(reqwest::Response),
    /// 403 or 410: the URL expired (qonto.md §2.3).
    Expired,
}

/// Opens `receipt`'s bytes as a stream of exactly its announced size.
pub(crate) async fn open(inner: &Inner, receipt: &Receipt) -> Result<Body> {
    let what = format!("qonto attachment {}", receipt.id);
    let mut size = receipt.size;
    let mut url = inner.urls.fresh(&receipt.id, inner.url_max_age);
    let mut refreshed = false;
    loop {
        let current = match url.take() {
            Some(url) => url,
            None => {
                let envelope = inner.client.attachment(receipt.id.as_str()).await?;
                let dto = required(envelope.attachment, "", "attachment", "an object")?;
                let (fresh, fresh_size) = fresh_url(dto)?;
                inner.urls.put(receipt.id.clone(), fresh.clone());
                refreshed = true;
                size = fresh_size;
                fresh
            }
        };
        match fetch(inner, &current).await? {
            Answer::Bytes(response) => return Ok(body(response, size, what)),
            Answer::Expired if !refreshed => {
                tracing::debug!(receipt = %receipt.id, "pre-signed URL refused; fetching a fresh one");
            }
            Answer::Expired => {
                return Err(Error::Permanent {
                    service: SERVICE,
                    operation: format!("download {what}"),
                    message: "the storage host refused a freshly signed URL".to_owned(),
                });
            }
        }
    }
}

/// GETs a pre-signed URL with the credential-free client, retrying 429, 5xx and
/// transport failures before the body starts.
async fn fetch(inner: &Inner, url: &SecretString) -> Result<Answer> {
    let operation = "download an attachment";
    let parsed = Url::parse(url.expose()).map_err(|_| malformed("attachment.url", "not a URL"))?;
    // Receipts travel over https only (loopback aside, for tests).
    if !is_allowed(&parsed) {
        return Err(malformed("attachment.url", "not an https URL"));
    }
    inner
        .client
        .retry
        .retry(|_| async {
            let response = inner
                .download
                .get(parsed.clone())
                .send()
                .await
                .map_err(|e| Error::from(network(operation, e)))?;
            let status = response.status().as_u16();
            let message = format!("HTTP {status}");
            match status {
                200..=299 => Ok(Answer::Bytes(response)),
                403 | 410 => Ok(Answer::Expired),
                404 => Err(Error::NotFound {
                    what: "the attachment's file on the storage host".to_owned(),
                }),
                429 => Err(Error::RateLimited {
                    service: SERVICE,
                    operation: operation.to_owned(),
                    retry_after: retry_after(response.headers()),
                }),
                500..=599 => Err(Error::Transient {
                    service: SERVICE,
                    operation: operation.to_owned(),
                    message,
                    retry_after: retry_after(response.headers()),
                }),
                _ => Err(Error::Permanent {
                    service: SERVICE,
                    operation: operation.to_owned(),
                    message,
                }),
            }
        })
        .await
}

/// The response body as a [`Body`] of `expected` bytes: a different count ends the
/// stream with [`Error::Integrity`]; a failure mid-body ends it with a transient
/// error (the caller opens the receipt again).
fn body(response: reqwest::Response, expected: u64, what: String) -> Body {
    let chunks: BoxStream<'static, reqwest::Result<Bytes>> = response.bytes_stream().boxed();
    let integrity = move |seen: u64, what: &str| Error::Integrity {
        what: what.to_owned(),
        expected: format!("{expected} bytes (file_size)"),
        actual: format!("{seen} bytes"),
    };
    let stream = futures::stream::unfold(Some((chunks, 0u64)), move |state| {
        let what = what.clone();
        async move {
            let (mut chunks, seen) = state?;
            match chunks.next().await {
                Some(Ok(chunk)) => {
                    let seen = seen + chunk.len() as u64;
                    if seen > expected {
                        Some((Err(integrity(seen, &what)), None))
                    } else {
                        Some((Ok(chunk), Some((chunks, seen))))
                    }
                }
                Some(Err(e)) => Some((Err(network("download an attachment", e).into()), None)),
                None if seen != expected => Some((Err(integrity(seen, &what)), None)),
                None => None,
            }
        }
    });
    Body::new(expected, stream.boxed())
}
