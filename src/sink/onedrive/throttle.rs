//! One "not before" instant shared by every request of a sink.
//!
//! Graph asks a throttled client to wait `Retry-After` seconds and to pause **all** its
//! requests, across threads, not only the one that was refused; apps that keep sending
//! "will be blocked" (onedrive-graph.md §6, Throttling). Every request of an
//! [`OneDriveSink`](super::OneDriveSink) awaits [`Throttle::wait`] before it is sent, and a
//! 429 or 503 moves the shared instant forward with [`Throttle::pause_for`].

use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// The farthest a pause reaches, as tokio caps its own `sleep` (about 30 years; a
/// longer one overflows the clock on some systems): `Instant + Duration::MAX` panics,
/// and the delay comes from a server's `Retry-After` bounded only by configuration.
const FARTHEST: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// The shared pause.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    not_before: Mutex<Option<Instant>>,
}

impl Throttle {
    /// Waits until no pause is in force (returns at once when none is).
    pub(crate) async fn wait(&self) {
        // Loop: another task may extend the pause while this one sleeps.
        loop {
            let until = *self
                .not_before
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match until {
                Some(instant) if instant > Instant::now() => {
                    tokio::time::sleep_until(instant).await
                }
                _ => return,
            }
        }
    }

    /// Holds every request back for `delay` from now, [`FARTHEST`] at most (never
    /// shortens a longer pause).
    pub(crate) fn pause_for(&self, delay: Duration) {
        let now = Instant::now();
        let until = now.checked_add(delay.min(FARTHEST)).unwrap_or(now);
        let mut slot = self
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none_or(|current| current < until) {
            *slot = Some(until);
        }
    }

    /// When the current pause ends, if one is in force.
    #[cfg(test)]
    pub(crate) fn paused_until(&self) -> Option<Instant> {
        let until = *self
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        until.filter(|i| *i > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_longest_pause_does_not_overflow_the_clock() {
        let throttle = Throttle::default();
        throttle.pause_for(Duration::MAX);
        let until = throttle.paused_until().expect("a pause is in force");
        assert!(until > Instant::now() + Duration::from_secs(365 * 24 * 3600));
        // A shorter one later does not cut it short.
        throttle.pause_for(Duration::from_secs(1));
        assert_eq!(throttle.paused_until(), Some(until));
    }

    #[tokio::test]
    async fn every_waiter_waits_for_the_longest_pause() {
        let throttle = std::sync::Arc::new(Throttle::default());
        throttle.pause_for(Duration::from_millis(60));
        throttle.pause_for(Duration::from_millis(20));
        let started = Instant::now();
        let a = tokio::spawn({
            let t = throttle.clone();
            async move { t.wait().await }
        });
        let b = tokio::spawn({
            let t = throttle.clone();
            async move { t.wait().await }
        });
        a.await.unwrap();
        b.await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(59));
        assert!(throttle.paused_until().is_none());
    }
}
