//! Receipt bytes: pre-signed URLs, cached, refreshed, downloaded without credentials.
//!
//! qonto.md §2.3: an attachment's `url` is a pre-signed storage URL valid for 30
//! minutes. It is fetched with a plain GET and no Qonto `Authorization` (nor the
//! sandbox header); an expired one answers 403 (some clients also see 410), and
//! `GET /v2/attachments/{id}` hands out a fresh one.
//!
//! Each download may wait for the storage host only so long, scaled to its size
//! ([`DownloadDeadline`]): a host that drips bytes must not hold an upload slot forever.

use super::Inner;
use super::convert::{fresh_url, required};
use super::error::{SERVICE, download_failure, malformed, network, retry_after};
use crate::auth::SecretString;
use crate::error::{Error, Result};
use crate::http::is_secure_or_loopback;
use crate::model::{Body, Receipt, ReceiptId};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::HashMap;
use std::future::Future;
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

/// How long a download may spend waiting for the storage host: `base`, plus the time
/// its `file_size` takes at `min_bytes_per_second`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DownloadDeadline {
    pub(crate) base: Duration,
    pub(crate) min_bytes_per_second: u64,
}

impl Default for DownloadDeadline {
    /// 60 s plus 1 s per 32 KiB: a 10 MiB receipt may take 6 minutes and 20 seconds.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(60),
            min_bytes_per_second: 32 * 1024,
        }
    }
}

impl DownloadDeadline {
    /// The waiting allowed for `size` bytes; it saturates instead of overflowing, since
    /// the size comes from the server.
    pub(crate) fn for_size(&self, size: u64) -> Duration {
        let rate = self.min_bytes_per_second.max(1);
        let nanos = u128::from(size % rate) * 1_000_000_000 / u128::from(rate);
        let scaled = Duration::new(size / rate, u32::try_from(nanos).unwrap_or(999_999_999));
        self.base.saturating_add(scaled)
    }
}

/// What is left of one download attempt's waiting time. Only time spent awaiting the
/// storage host is counted: a consumer that is slow to take the bytes (an archive that
/// uploads them as they come) never uses it up.
struct Budget {
    allowed: Duration,
    left: Duration,
    size: u64,
}

impl Budget {
    fn new(deadline: DownloadDeadline, size: u64) -> Self {
        let allowed = deadline.for_size(size);
        Self {
            allowed,
            left: allowed,
            size,
        }
    }

    /// Awaits `future` within what is left, and counts the time waited.
    async fn wait<F: Future>(&mut self, future: F) -> Result<F::Output> {
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.left, future).await;
        self.left = self.left.saturating_sub(started.elapsed());
        outcome.map_err(|_| self.spent())
    }

    fn spent(&self) -> Error {
        Error::Transient {
            service: SERVICE,
            operation: "download an attachment".to_owned(),
            message: format!(
                "the storage host sent the file too slowly: {} bytes may take {} s of \
                 waiting (see `with_download_deadline`) and that time ran out",
                self.size,
                self.allowed.as_secs_f64().ceil()
            ),
            retry_after: None,
        }
    }
}

/// What the storage host answered.
enum Answer {
    /// The bytes are coming; the rest of the attempt's waiting budget goes with them.
    Bytes(reqwest::Response, Budget),
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
        match fetch(inner, &current, size).await? {
            Answer::Bytes(response, budget) => return Ok(body(response, size, what, budget)),
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

/// GETs a pre-signed URL of a `size`-byte file with the credential-free client,
/// retrying 429, 5xx and transport failures before the body starts. Each attempt has
/// its own waiting budget.
async fn fetch(inner: &Inner, url: &SecretString, size: u64) -> Result<Answer> {
    let operation = "download an attachment";
    let parsed = Url::parse(url.expose()).map_err(|_| malformed("attachment.url", "not a URL"))?;
    // Receipts travel over https only (loopback aside, for tests).
    if !is_secure_or_loopback(&parsed) {
        return Err(malformed("attachment.url", "not an https URL"));
    }
    inner
        .client
        .retry
        .retry(|_| async {
            let mut budget = Budget::new(inner.download_deadline, size);
            let response = budget
                .wait(inner.download.get(parsed.clone()).send())
                .await?
                .map_err(|e| download_failure(operation, e))?;
            let status = response.status().as_u16();
            let message = format!("HTTP {status}");
            match status {
                200..=299 => Ok(Answer::Bytes(response, budget)),
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
/// stream with [`Error::Integrity`]; a failure mid-body or a spent `budget` ends it
/// with a transient error (the caller opens the receipt again).
fn body(response: reqwest::Response, expected: u64, what: String, budget: Budget) -> Body {
    let chunks: BoxStream<'static, reqwest::Result<Bytes>> = response.bytes_stream().boxed();
    let integrity = move |seen: u64, what: &str| Error::Integrity {
        what: what.to_owned(),
        expected: format!("{expected} bytes (file_size)"),
        actual: format!("{seen} bytes"),
    };
    let stream = futures::stream::unfold(Some((chunks, 0u64, budget)), move |state| {
        let what = what.clone();
        async move {
            let (mut chunks, seen, mut budget) = state?;
            let next = match budget.wait(chunks.next()).await {
                Ok(next) => next,
                Err(spent) => return Some((Err(spent), None)),
            };
            match next {
                Some(Ok(chunk)) => {
                    let seen = seen + chunk.len() as u64;
                    if seen > expected {
                        Some((Err(integrity(seen, &what)), None))
                    } else {
                        Some((Ok(chunk), Some((chunks, seen, budget))))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_grows_with_the_size_and_never_overflows() {
        let deadline = DownloadDeadline {
            base: Duration::from_secs(60),
            min_bytes_per_second: 32 * 1024,
        };
        assert_eq!(deadline.for_size(0), Duration::from_secs(60));
        assert_eq!(
            deadline.for_size(10 * 1024 * 1024),
            Duration::from_secs(380)
        );
        assert_eq!(deadline.for_size(16 * 1024), Duration::from_millis(60_500));
        let slowest = DownloadDeadline {
            base: Duration::MAX,
            min_bytes_per_second: 1,
        };
        assert_eq!(slowest.for_size(u64::MAX), Duration::MAX);
        let no_rate = DownloadDeadline {
            base: Duration::ZERO,
            min_bytes_per_second: 0,
        };
        assert_eq!(no_rate.for_size(5), Duration::from_secs(5));
    }
}
