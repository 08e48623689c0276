//! The shared retry policy: honour `Retry-After` in full up to a ceiling, otherwise
//! jittered exponential backoff, always bounded in attempts and in time.

use crate::error::{Error, Result};
use std::future::Future;
use std::time::Duration;

/// How retryable failures are retried.
///
/// Defaults: 6 attempts in all, backoff from 250 ms doubling up to 30 s, "full jitter"
/// (a random delay between half the backoff and the backoff), a server's
/// `Retry-After` honoured in full up to a ceiling of one hour, and no retry once
/// 5 minutes have passed.
///
/// # `Retry-After`
/// A service that throttles (429, or 503 with `Retry-After`) says how long to wait,
/// in seconds or as an HTTP date; both are read, and an unreadable one counts as not
/// said (the backoff applies). The wait is never shortened: a request sent early only
/// earns another refusal, and Graph blocks apps that keep sending
/// (onedrive-graph.md §6, Throttling). The connectors pause **every** request to the
/// throttling service, not only the refused one.
///
/// [`max_retry_after`](Self::max_retry_after) is the ceiling: a `Retry-After` above it
/// is not waited, and neither is a pause that would make the time a connector has
/// spent paused since the service last served a request pass it (a storm of short
/// waits adds up). The run then stops with [`Error::ThrottledUntil`], which says when
/// to run again; what was done is recorded, and the next run picks up from there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Attempts in all, the first included (1 disables retries).
    pub max_attempts: u32,
    /// The backoff before the first retry.
    pub initial_backoff: Duration,
    /// The largest backoff.
    pub max_backoff: Duration,
    /// The ceiling: the longest `Retry-After` waited, and the longest a connector stays
    /// paused by throttling without the service serving a request in between (default
    /// one hour). A longer wait is not shortened: the operation fails instead, and a
    /// connector stops the run with [`Error::ThrottledUntil`].
    pub max_retry_after: Duration,
    /// No retry starts once this much time has passed since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(3600),
            max_elapsed: Duration::from_secs(300),
        }
    }
}

impl RetryConfig {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// A policy for tests: the same attempts, millisecond backoff, and a ceiling of
    /// 5 s on a server's `Retry-After`.
    pub fn fast() -> Self {
        Self {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(10),
            max_retry_after: Duration::from_secs(5),
            ..Self::default()
        }
    }

    /// Sets the number of attempts.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the backoff range.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Sets the ceiling on a server's `Retry-After` (see [`max_retry_after`](Self::max_retry_after)).
    pub fn with_max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// Sets the time budget.
    pub fn with_max_elapsed(mut self, max: Duration) -> Self {
        self.max_elapsed = max;
        self
    }

    /// How long to wait before attempt `attempt + 1` after `error` failed attempt
    /// `attempt` (1-based), `elapsed` after the first one started; `None` means give up.
    ///
    /// `jitter` is a number in `[0, 1)`; pass a random one (tests pass fixed ones).
    /// A `Retry-After` is waited in full; one larger than
    /// [`max_retry_after`](Self::max_retry_after) gives up instead of being shortened,
    /// and so does an error that stops the sync ([`Error::stops_sync`]).
    ///
    /// Any settings are safe, `Duration::MAX` ones included: the time arithmetic
    /// saturates instead of overflowing.
    pub fn delay_after(
        &self,
        attempt: u32,
        error: &Error,
        elapsed: Duration,
        jitter: f64,
    ) -> Option<Duration> {
        if !error.is_retryable()
            || error.stops_sync()
            || attempt >= self.max_attempts
            || elapsed >= self.max_elapsed
        {
            return None;
        }
        let delay = match error.retry_after() {
            Some(asked) if asked > self.max_retry_after => return None,
            Some(asked) => asked,
            None => {
                let exp = self
                    .initial_backoff
                    .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
                    .min(self.max_backoff);
                jittered(exp, jitter)
            }
        };
        let budget = self.max_elapsed.saturating_add(self.max_retry_after);
        if elapsed.saturating_add(delay) > budget {
            return None;
        }
        Some(delay)
    }

    /// Runs `operation` until it succeeds, fails for good, or the policy gives up.
    pub async fn retry<T, F, Fut>(&self, mut operation: F) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let started = tokio::time::Instant::now();
        let mut attempt = 1;
        loop {
            match operation(attempt).await {
                Ok(value) => return Ok(value),
                Err(error) => {
                    let jitter = jitter_from(started, attempt);
                    match self.delay_after(attempt, &error, started.elapsed(), jitter) {
                        Some(delay) => {
                            tracing::debug!(attempt, ?delay, %error, "retrying");
                            tokio::time::sleep(delay).await;
                            attempt += 1;
                        }
                        None => return Err(error),
                    }
                }
            }
        }
    }
}

/// Between half and all of `backoff`, by `jitter` in `[0, 1]`, so many clients spread
/// out. Never more than `backoff`: `Duration::mul_f64` would panic where the float
/// product rounds past `Duration::MAX`, and on a NaN jitter.
fn jittered(backoff: Duration, jitter: f64) -> Duration {
    let share = if jitter.is_nan() {
        0.5
    } else {
        0.5 + 0.5 * jitter.clamp(0.0, 1.0)
    };
    Duration::try_from_secs_f64(backoff.as_secs_f64() * share)
        .map_or(backoff, |delay| delay.min(backoff))
}

/// A cheap jitter source with no RNG dependency: the low bits of the clock mixed
/// with the attempt number.
pub(crate) fn jitter_from(started: tokio::time::Instant, attempt: u32) -> f64 {
    let nanos = started.elapsed().subsec_nanos() as u64 ^ (u64::from(attempt) << 32);
    let mixed = nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    mixed as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient(retry_after: Option<Duration>) -> Error {
        Error::Transient {
            service: "test",
            operation: "op".into(),
            message: "boom".into(),
            retry_after,
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let cfg = RetryConfig::default();
        let e = transient(None);
        let d1 = cfg.delay_after(1, &e, Duration::ZERO, 0.0).unwrap();
        let d2 = cfg.delay_after(2, &e, Duration::ZERO, 0.0).unwrap();
        assert_eq!(d1, Duration::from_millis(125));
        assert_eq!(d2, Duration::from_millis(250));
        let big = RetryConfig::default().with_max_attempts(50);
        let d = big.delay_after(40, &e, Duration::ZERO, 0.999).unwrap();
        assert!(d <= Duration::from_secs(30));
    }

    #[test]
    fn retry_after_is_waited_in_full_up_to_the_ceiling() {
        let cfg = RetryConfig::default();
        let asked = cfg.delay_after(
            1,
            &transient(Some(Duration::from_secs(7))),
            Duration::ZERO,
            0.3,
        );
        assert_eq!(asked, Some(Duration::from_secs(7)));
        // Graph's observed five minutes: waited in full, not cut to a shorter cap.
        let five_minutes = cfg.delay_after(
            1,
            &transient(Some(Duration::from_secs(300))),
            Duration::ZERO,
            0.3,
        );
        assert_eq!(five_minutes, Some(Duration::from_secs(300)));
        let hour = transient(Some(Duration::from_secs(3600)));
        assert_eq!(
            cfg.delay_after(1, &hour, Duration::ZERO, 0.3),
            Some(Duration::from_secs(3600))
        );
        // Above the ceiling: given up, never shortened.
        let huge = cfg.delay_after(
            1,
            &transient(Some(Duration::from_secs(3601))),
            Duration::ZERO,
            0.3,
        );
        assert_eq!(huge, None);
        let stopped = Error::ThrottledUntil {
            service: "test",
            operation: "op".into(),
            until: chrono::Utc::now() + chrono::TimeDelta::seconds(10),
        };
        assert_eq!(cfg.delay_after(1, &stopped, Duration::ZERO, 0.3), None);
    }

    #[test]
    fn gives_up_on_permanent_errors_attempts_and_time() {
        let cfg = RetryConfig::default();
        let perm = Error::NotFound { what: "x".into() };
        assert_eq!(cfg.delay_after(1, &perm, Duration::ZERO, 0.5), None);
        assert_eq!(
            cfg.delay_after(6, &transient(None), Duration::ZERO, 0.5),
            None
        );
        assert_eq!(
            cfg.delay_after(1, &transient(None), Duration::from_secs(301), 0.5),
            None
        );
    }

    #[test]
    fn the_longest_settings_never_overflow() {
        let longest = RetryConfig::default()
            .with_max_attempts(u32::MAX)
            .with_backoff(Duration::MAX, Duration::MAX)
            .with_max_retry_after(Duration::MAX)
            .with_max_elapsed(Duration::MAX);
        let asked = transient(Some(Duration::MAX));
        let elapsed = Duration::from_secs(1);
        assert_eq!(
            longest.delay_after(1, &asked, Duration::ZERO, 0.5),
            Some(Duration::MAX)
        );
        // `elapsed + delay` and `max_elapsed + max_retry_after` both saturate.
        assert_eq!(
            longest.delay_after(1, &asked, elapsed, 0.5),
            Some(Duration::MAX)
        );
        let backoff = transient(None);
        for jitter in [0.0, 0.5, 0.999, 1.0, f64::NAN, f64::INFINITY, -3.0] {
            let delay = longest.delay_after(40, &backoff, elapsed, jitter).unwrap();
            assert!(delay >= Duration::MAX / 2, "{jitter}: {delay:?}");
        }
        let capped = RetryConfig::default().with_max_elapsed(Duration::MAX);
        assert_eq!(
            capped.delay_after(1, &asked, Duration::MAX - elapsed, 0.5),
            None
        );
        let hour = transient(Some(Duration::from_secs(3600)));
        assert_eq!(
            capped.delay_after(1, &hour, Duration::MAX - elapsed, 0.5),
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn a_nan_jitter_is_half_the_backoff() {
        let cfg = RetryConfig::default();
        let d = cfg.delay_after(1, &transient(None), Duration::ZERO, f64::NAN);
        assert_eq!(d, Some(Duration::from_millis(125)));
    }

    #[tokio::test]
    async fn retry_runs_until_success() {
        let cfg = RetryConfig::fast();
        let out = cfg
            .retry(|attempt| async move {
                if attempt < 3 {
                    Err(transient(None))
                } else {
                    Ok(attempt)
                }
            })
            .await
            .unwrap();
        assert_eq!(out, 3);
    }
}
