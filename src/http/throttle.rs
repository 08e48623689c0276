//! One "not before" instant shared by every request to one service, bounded by a ceiling.
//!
//! Graph asks a throttled client to wait `Retry-After` seconds and to pause **all** its
//! requests, across threads, not only the one that was refused; apps that keep sending
//! "will be blocked", and throttled requests still count (onedrive-graph.md §6,
//! Throttling). So every request of a connector awaits [`Throttle::wait`] before it is
//! sent, and a 429 or 503 with `Retry-After` moves the shared instant forward with
//! [`Throttle::pause`], in full: a shortened wait only earns another 429.
//!
//! The ceiling ([`RetryConfig::max_retry_after`](super::RetryConfig::max_retry_after))
//! bounds how long a run waits:
//! 1. a single `Retry-After` above it is not waited at all;
//! 2. nor is a pause that would bring the time paused since the service last answered
//!    anything but a throttle above it (a storm of short waits adds up).
//!
//! Either way the throttle closes: every request waiting or yet to come fails at once
//! with [`Error::ThrottledUntil`], which stops the run, until the time the service gave.
//!
//! A pause that starts (or grows by a second or more) is announced to the watcher of the
//! task doing the work, if one is set with [`watch_pauses`]: that is how a sync's
//! observer hears of long waits without the connectors knowing about syncs.

use crate::error::{Error, Result};
use chrono::{DateTime, TimeDelta, Utc};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// The farthest a pause reaches, as tokio caps its own `sleep` (about 30 years; a
/// longer one overflows the clock on some systems): `Instant + Duration::MAX` panics,
/// and the delay comes from a server's `Retry-After`.
const FARTHEST: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// A growth of the pause smaller than this is not announced again (many requests in
/// flight are refused together, each with about the same wait).
const ANNOUNCE_STEP: Duration = Duration::from_secs(1);

/// A pause a service asked for, as announced to a watcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pause {
    /// The service, for example `"onedrive"`.
    pub service: &'static str,
    /// How long it asked to wait, from now.
    pub wait: Duration,
    /// When the wait ends.
    pub until: DateTime<Utc>,
}

/// Receives the pauses of the work it watches.
pub(crate) type PauseWatcher = Arc<dyn Fn(&Pause) + Send + Sync>;

tokio::task_local! {
    static WATCHER: PauseWatcher;
}

/// Runs `work` with `watcher` told of every pause a [`Throttle`] starts on its behalf
/// (in this task: work spawned elsewhere is not watched).
pub(crate) async fn watch_pauses<F: Future>(watcher: PauseWatcher, work: F) -> F::Output {
    WATCHER.scope(watcher, work).await
}

fn announce(pause: &Pause) {
    // No watcher (a sink used on its own) is fine: the pause is only logged.
    let _ = WATCHER.try_with(|watcher| watcher(pause));
}

/// The shared pause of one service.
#[derive(Debug)]
pub(crate) struct Throttle {
    service: &'static str,
    ceiling: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    not_before: Option<Instant>,
    /// Time paused since the service last answered something other than a throttle.
    storm: Duration,
    /// Asked to wait past the ceiling: every request is refused until then.
    closed: Option<(Instant, DateTime<Utc>)>,
}

impl Throttle {
    /// A throttle for `service` that waits `ceiling` at most.
    pub(crate) fn new(service: &'static str, ceiling: Duration) -> Self {
        Self {
            service,
            ceiling,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until no pause is in force (returns at once when none is).
    ///
    /// # Errors
    /// [`Error::ThrottledUntil`] while the throttle is closed, even for a request that
    /// was already waiting when it closed: nothing is sent until the service's time.
    pub(crate) async fn wait(&self, operation: &str) -> Result<()> {
        // Loop: another task may extend the pause, or close the throttle, meanwhile.
        loop {
            let until = {
                let mut state = self.lock();
                let now = Instant::now();
                match state.closed {
                    Some((reopens, until)) if reopens > now => {
                        return Err(self.refusal(operation, until));
                    }
                    Some(_) => state.closed = None,
                    None => {}
                }
                state.not_before.filter(|instant| *instant > now)
            };
            match until {
                Some(instant) => tokio::time::sleep_until(instant).await,
                None => return Ok(()),
            }
        }
    }

    /// Holds every request back for `asked` from now, as the service asked (never
    /// shortens a longer pause in force).
    ///
    /// # Errors
    /// [`Error::ThrottledUntil`] when `asked`, or the time paused since the service last
    /// served a request, would pass the ceiling; the throttle is then closed until the
    /// service's time.
    pub(crate) fn pause(&self, asked: Duration, operation: &str) -> Result<()> {
        let asked = asked.min(FARTHEST);
        let now = Instant::now();
        let until = now.checked_add(asked).unwrap_or(now);
        let wall_until = Utc::now()
            .checked_add_signed(TimeDelta::from_std(asked).unwrap_or(TimeDelta::MAX))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let pause = {
            let mut state = self.lock();
            let current = state.not_before.filter(|instant| *instant > now);
            let added = until.saturating_duration_since(current.unwrap_or(now));
            if asked > self.ceiling || state.storm.saturating_add(added) > self.ceiling {
                let reopens = match state.closed {
                    Some((instant, wall)) if instant > until => (instant, wall),
                    _ => (until, wall_until),
                };
                state.closed = Some(reopens);
                tracing::warn!(
                    service = self.service,
                    operation,
                    ?asked,
                    ceiling = ?self.ceiling,
                    "throttled for longer than the ceiling; stopping"
                );
                return Err(self.refusal(operation, reopens.1));
            }
            if added.is_zero() {
                return Ok(());
            }
            state.storm = state.storm.saturating_add(added);
            state.not_before = Some(until);
            (current.is_none() || added >= ANNOUNCE_STEP).then_some(Pause {
                service: self.service,
                wait: asked,
                until: wall_until,
            })
        };
        if let Some(pause) = pause {
            tracing::info!(service = self.service, operation, wait = ?pause.wait, "throttled; pausing every request");
            announce(&pause);
        }
        Ok(())
    }

    /// The service answered something other than a throttle: a storm, if one was
    /// going on, is over.
    pub(crate) fn served(&self) {
        self.lock().storm = Duration::ZERO;
    }

    fn refusal(&self, operation: &str, until: DateTime<Utc>) -> Error {
        Error::ThrottledUntil {
            service: self.service,
            operation: operation.to_owned(),
            until,
        }
    }

    /// When the current pause ends, if one is in force.
    #[cfg(test)]
    pub(crate) fn paused_until(&self) -> Option<Instant> {
        self.lock().not_before.filter(|i| *i > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test(start_paused = true)]
    async fn the_longest_pause_does_not_overflow_the_clock() {
        let throttle = Throttle::new("test", Duration::MAX);
        throttle.pause(Duration::MAX, "op").unwrap();
        let until = throttle.paused_until().expect("a pause is in force");
        assert!(until > Instant::now() + Duration::from_secs(365 * 24 * 3600));
        // A shorter one later does not cut it short.
        throttle.pause(Duration::from_secs(1), "op").unwrap();
        assert_eq!(throttle.paused_until(), Some(until));
        // Past the ceiling, the time shown saturates instead of panicking.
        let capped = Throttle::new("test", HOUR);
        let error = capped.pause(Duration::MAX, "op").unwrap_err();
        assert!(error.stops_sync());
    }

    #[tokio::test(start_paused = true)]
    async fn every_waiter_waits_the_full_pause() {
        let throttle = Arc::new(Throttle::new("test", HOUR));
        throttle.pause(Duration::from_secs(300), "op").unwrap();
        throttle.pause(Duration::from_secs(20), "op").unwrap();
        let started = Instant::now();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let t = throttle.clone();
                tokio::spawn(async move {
                    t.wait("op").await.unwrap();
                    Instant::now()
                })
            })
            .collect();
        for waiter in waiters {
            let released = waiter.await.unwrap();
            assert_eq!(released - started, Duration::from_secs(300));
        }
        assert!(throttle.paused_until().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_above_the_ceiling_closes_the_throttle_until_then() {
        let throttle = Arc::new(Throttle::new("test", Duration::from_secs(60)));
        throttle.pause(Duration::from_secs(30), "op").unwrap();
        let waiting = {
            let t = throttle.clone();
            tokio::spawn(async move { t.wait("waiting op").await })
        };
        tokio::task::yield_now().await;
        let error = throttle.pause(Duration::from_secs(61), "op").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::RateLimited);
        assert!(error.stops_sync());
        // The request already waiting is refused too, when its wait ends.
        let refused = waiting.await.unwrap().unwrap_err();
        assert!(matches!(refused, Error::ThrottledUntil { .. }), "{refused}");
        assert!(throttle.wait("op").await.is_err());
        // At the service's time, requests go again.
        tokio::time::advance(Duration::from_secs(32)).await;
        throttle.wait("op").await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_storm_adds_up_until_the_service_serves_again() {
        let throttle = Throttle::new("test", Duration::from_secs(100));
        for _ in 0..3 {
            throttle.pause(Duration::from_secs(30), "op").unwrap();
            throttle.wait("op").await.unwrap();
        }
        // 90 s paused in a row: another 30 s would make 120.
        assert!(throttle.pause(Duration::from_secs(30), "op").is_err());

        let throttle = Throttle::new("test", Duration::from_secs(100));
        for _ in 0..10 {
            throttle.pause(Duration::from_secs(30), "op").unwrap();
            throttle.wait("op").await.unwrap();
            throttle.served();
        }
        // Concurrent refusals with the same wait count once.
        for _ in 0..8 {
            throttle.pause(Duration::from_secs(90), "op").unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pauses_are_announced_to_the_watcher_of_the_task() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let watcher: PauseWatcher = {
            let seen = seen.clone();
            Arc::new(move |pause: &Pause| seen.lock().unwrap().push(pause.clone()))
        };
        let throttle = Throttle::new("onedrive", HOUR);
        watch_pauses(watcher, async {
            throttle.pause(Duration::from_secs(300), "op").unwrap();
            // About the same wait again: not announced twice.
            throttle.pause(Duration::from_secs(300), "op").unwrap();
            throttle.pause(Duration::ZERO, "op").unwrap();
        })
        .await;
        // Outside the watched work: no one to tell, and no panic.
        throttle.pause(Duration::from_secs(400), "op").unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].service, "onedrive");
        assert_eq!(seen[0].wait, Duration::from_secs(300));
    }
}
