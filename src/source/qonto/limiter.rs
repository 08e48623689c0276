//! A client-side token bucket, so a sync stays well under Qonto's limits.

use super::error::SERVICE;
use crate::http::RetryConfig;
use crate::http::throttle::Throttle;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How fast [`QontoSource`](super::QontoSource) may call the Qonto API.
///
/// Qonto allows 1,000 requests per 10 s and 10,000 per 10 min, per IP address
/// (qonto.md §3). The default, a burst of 100 then 15 requests a second, stays under
/// both: at most 250 requests in any 10 s and 9,100 in any 10 min. Downloads from
/// pre-signed URLs go to the storage host, not to Qonto, and are not counted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QontoRateLimit {
    burst: u32,
    per_second: f64,
}

impl Default for QontoRateLimit {
    fn default() -> Self {
        Self {
            burst: 100,
            per_second: 15.0,
        }
    }
}

impl QontoRateLimit {
    /// At most `burst` requests at once, then `per_second` a second (both at least 1).
    pub fn new(burst: u32, per_second: f64) -> Self {
        let per_second = if per_second.is_finite() {
            per_second.max(1.0)
        } else {
            1.0
        };
        Self {
            burst: burst.max(1),
            per_second,
        }
    }

    /// No client-side limit (for tests against a local fake).
    pub fn unlimited() -> Self {
        Self {
            burst: u32::MAX,
            per_second: f64::INFINITY,
        }
    }

    fn is_unlimited(&self) -> bool {
        self.per_second.is_infinite()
    }
}

/// One Qonto rate limit, and one Qonto pause, shared by several
/// [`QontoSource`](super::QontoSource)s.
///
/// Qonto counts requests per client IP address (qonto.md §3), not per organisation: a
/// worker that syncs many organisations from one address must keep all of them,
/// together, under the limit. Build one per process (or per outgoing address) and give
/// a clone to each source with
/// [`QontoSourceBuilder::with_shared_rate_limiter`](super::QontoSourceBuilder::with_shared_rate_limiter);
/// clones share one bucket.
///
/// For the same reason they share Qonto's pauses: a `429` (or a `5xx` with
/// `Retry-After`) met by one source holds every API request of them all until the time
/// Qonto gave, since the others would only be refused too. A wait longer than the
/// ceiling (one hour by default; see [`with_retry_after_ceiling`](Self::with_retry_after_ceiling))
/// is not waited: every source sharing the limiter then stops its run with
/// [`Error::ThrottledUntil`](crate::Error::ThrottledUntil), to be run again after it.
///
/// ```
/// use receipt_sync::source::qonto::{QontoAuth, QontoRateLimit, QontoSourceBuilder, SharedQontoRateLimiter};
///
/// let shared = SharedQontoRateLimiter::new(QontoRateLimit::default());
/// let first = QontoSourceBuilder::new(QontoAuth::api_key("org-1", "key-1"))
///     .with_shared_rate_limiter(shared.clone())
///     .build();
/// let second = QontoSourceBuilder::new(QontoAuth::api_key("org-2", "key-2"))
///     .with_shared_rate_limiter(shared)
///     .build();
/// assert!(first.is_ok() && second.is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct SharedQontoRateLimiter {
    pub(crate) limiter: RateLimiter,
    pub(crate) pause: Arc<Throttle>,
}

impl SharedQontoRateLimiter {
    /// One bucket with `limit`, to share, and a pause whose ceiling is
    /// [`RetryConfig::default`]'s `max_retry_after` (one hour).
    pub fn new(limit: QontoRateLimit) -> Self {
        Self::with_retry_after_ceiling(limit, RetryConfig::default().max_retry_after)
    }

    /// Like [`new`](Self::new), with a pause that waits `ceiling` at most (see
    /// [`RetryConfig::max_retry_after`]). It replaces the ceiling of each sharing
    /// source's own [`RetryConfig`] for Qonto's pauses.
    pub fn with_retry_after_ceiling(limit: QontoRateLimit, ceiling: Duration) -> Self {
        Self {
            limiter: RateLimiter::new(limit),
            pause: Arc::new(Throttle::new(SERVICE, ceiling)),
        }
    }

    /// The limit it keeps.
    pub fn limit(&self) -> QontoRateLimit {
        self.limiter.limit
    }
}

/// The bucket itself. Tokens may go negative: each caller reserves its slot and
/// sleeps until it comes, so waiting callers are served in order. Clones share the
/// bucket.
#[derive(Clone, Debug)]
pub(crate) struct RateLimiter {
    limit: QontoRateLimit,
    state: Arc<tokio::sync::Mutex<(f64, Instant)>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: QontoRateLimit) -> Self {
        Self {
            limit,
            state: Arc::new(tokio::sync::Mutex::new((
                f64::from(limit.burst),
                Instant::now(),
            ))),
        }
    }

    /// Waits for a slot.
    pub(crate) async fn acquire(&self) {
        if self.limit.is_unlimited() {
            return;
        }
        let wait = {
            let mut state = self.state.lock().await;
            let now = Instant::now();
            let refill = now.duration_since(state.1).as_secs_f64() * self.limit.per_second;
            state.0 = (state.0 + refill).min(f64::from(self.limit.burst)) - 1.0;
            state.1 = now;
            if state.0 >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-state.0 / self.limit.per_second)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bursts_then_paces() {
        let limiter = RateLimiter::new(QontoRateLimit::new(3, 100.0));
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(5));
        for _ in 0..10 {
            limiter.acquire().await;
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(95) && elapsed < Duration::from_secs(2),
            "{elapsed:?}"
        );
    }

    #[tokio::test]
    async fn clones_share_one_bucket() {
        let shared = SharedQontoRateLimiter::new(QontoRateLimit::new(4, 50.0));
        let (a, b) = (shared.limiter.clone(), shared.clone().limiter);
        let start = Instant::now();
        for _ in 0..2 {
            a.acquire().await;
            b.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(5));
        // The burst of 4 is spent by the two together: the next waits ~20 ms.
        b.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_millis(15),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn unlimited_never_waits() {
        let limiter = RateLimiter::new(QontoRateLimit::unlimited());
        for _ in 0..10_000 {
            limiter.acquire().await;
        }
    }
}
