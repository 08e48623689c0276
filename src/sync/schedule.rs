//! "Every day at 23:30 in Paris", correct across daylight-saving changes in any zone.

use super::{SyncReport, Syncer};
use crate::error::Result;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use std::future::Future;
use std::ops::ControlFlow;

/// The first instant strictly after `now` when the local clock in `tz` shows `at`.
///
/// - When `at` happens twice on a day (the clocks go back across it), the first one is
///   taken, so a day never gets two runs.
/// - When `at` does not happen on a day (the clocks jump over it), the run is at the
///   first local time after the jump, so a day is never skipped.
/// - At the very end of chrono's calendar (the year 262142), where no later day
///   exists, it is a day after `now`, or the last instant chrono holds.
///
/// Pure: no clock is read. Never panics, whatever `now`.
pub fn next_run(now: DateTime<Utc>, at: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let today = local_day(now, tz);
    // Yesterday too: around a gap the resolved instant can fall on the next local day.
    let mut day = today.pred_opt().unwrap_or(today);
    loop {
        if let Some(instant) = occurrence(day, at, tz)
            && instant > now
        {
            return instant;
        }
        match day.succ_opt() {
            Some(next) => day = next,
            // The end of chrono's calendar: nothing later exists.
            None => {
                return now
                    .checked_add_signed(Duration::days(1))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
            }
        }
    }
}

/// `now`'s date on the local clock in `tz`. At the ends of chrono's calendar that
/// clock may show a date chrono cannot hold (`date_naive` would panic): the UTC date
/// stands in.
fn local_day(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    let utc = now.naive_utc();
    let offset = tz.offset_from_utc_datetime(&utc).fix();
    utc.checked_add_offset(offset).unwrap_or(utc).date()
}

/// When the local clock in `tz` shows `at` on `day` (resolving gaps and folds as
/// [`next_run`] documents).
fn occurrence(day: NaiveDate, at: NaiveTime, tz: Tz) -> Option<DateTime<Utc>> {
    let local = day.and_time(at);
    if let Some(instant) = tz.from_local_datetime(&local).earliest() {
        return Some(instant.with_timezone(&Utc));
    }
    // A gap: step forward minute by minute to its end (gaps last at most a few hours;
    // Lord Howe's is 30 minutes).
    (1..=180).find_map(|minutes| {
        let later = local.checked_add_signed(Duration::minutes(minutes))?;
        tz.from_local_datetime(&later)
            .earliest()
            .map(|instant| instant.with_timezone(&Utc))
    })
}

/// The longest single sleep: waking up regularly keeps the schedule right after a
/// suspend or a clock change, since the time left is recomputed at every wake-up.
const MAX_SLEEP: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// How long after a pass that stopped for a passing reason (network, a 5xx, throttling,
/// another sync holding the state) the next one is tried: 5 minutes, 15 minutes, then
/// every hour, never later than the daily pass.
pub const RETRY_DELAYS: [Duration; 3] = [
    Duration::minutes(5),
    Duration::minutes(15),
    Duration::hours(1),
];

/// When the pass after this one starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NextPass {
    /// The instant.
    pub at: DateTime<Utc>,
    /// `Some(n)`: the `n`-th early retry in a row (from 1), sooner than the daily time;
    /// `None`: the daily pass.
    pub retry: Option<u32>,
}

/// When the next pass starts, `failed_in_a_row` passes in a row (this one included)
/// having stopped for a passing reason ([`is_worth_retrying_soon`]): with none, the
/// daily time ([`next_run`]); otherwise after the matching [`RETRY_DELAYS`] entry (the
/// last one from then on), unless the daily time comes first.
///
/// Pure: no clock is read. Never panics, whatever `now`.
pub fn next_pass(now: DateTime<Utc>, at: NaiveTime, tz: Tz, failed_in_a_row: u32) -> NextPass {
    let daily = NextPass {
        at: next_run(now, at, tz),
        retry: None,
    };
    let Some(index) = failed_in_a_row.checked_sub(1) else {
        return daily;
    };
    let delay = RETRY_DELAYS[(index as usize).min(RETRY_DELAYS.len() - 1)];
    match now.checked_add_signed(delay) {
        Some(retry) if retry < daily.at => NextPass {
            at: retry,
            retry: Some(failed_in_a_row),
        },
        _ => daily,
    }
}

/// Whether a pass's outcome is worth another try before the daily time: it stopped, or
/// left receipts behind, for a reason that passes by itself (see
/// [`crate::Error::is_retryable`]), or another sync held the state. A refusal, a full
/// drive or a configuration error is not: it needs a person, and trying sooner only
/// repeats it.
pub fn is_worth_retrying_soon(outcome: &Result<SyncReport>) -> bool {
    use crate::error::ErrorKind;
    // The same kinds as `Error::is_retryable`, read from the report's records.
    let passing = |kind: ErrorKind| {
        matches!(
            kind,
            ErrorKind::Transient | ErrorKind::RateLimited | ErrorKind::Integrity
        )
    };
    match outcome {
        Err(error) => error.is_retryable() || error.kind() == ErrorKind::AlreadyRunning,
        Ok(report) => match &report.stopped {
            Some(error) => error.is_retryable(),
            None => {
                report.failures.iter().any(|f| passing(f.kind))
                    || report.unread_accounts.iter().any(|a| passing(a.kind))
            }
        },
    }
}

/// One pass of [`run_daily`], handed to its `on_pass`.
#[derive(Debug)]
#[non_exhaustive]
pub struct Pass {
    /// What [`Syncer::run`] returned.
    pub report: Result<SyncReport>,
    /// When the next pass starts; `None` when this pass was the last one, cut short by
    /// the shutdown (see [`run_daily`]).
    pub next: Option<NextPass>,
}

impl Pass {
    /// A pass's outcome and the next one, for a caller that reports its own attempts
    /// (a start that failed) the way `run_daily` reports its passes.
    pub fn new(report: Result<SyncReport>, next: Option<NextPass>) -> Self {
        Self { report, next }
    }
}

/// Runs `syncer` now (the initial export), then every day at `at` in `tz`, until
/// `shutdown` completes or `on_pass` breaks.
///
/// - Each pass goes to `on_pass` with the time of the next one; returning
///   [`ControlFlow::Break`] ends the schedule there (for a stop that needs a person).
/// - A pass that stopped for a passing reason ([`is_worth_retrying_soon`]) is tried
///   again sooner ([`next_pass`]); the daily time resumes after a pass without one.
/// - When `shutdown` completes during a pass, the syncer is cancelled
///   ([`Syncer::with_cancellation`]): the uploads in flight finish and are recorded,
///   that pass goes to `on_pass` with no next one, and `run_daily` returns. During a
///   wait, it returns at once.
///
/// `clock` tells the time (`Utc::now` in production); it is read after each pass and at
/// each wake-up, at least every 15 minutes, so a suspend or a clock change is caught up.
pub async fn run_daily<C, F, S>(
    syncer: &Syncer,
    at: NaiveTime,
    tz: Tz,
    clock: C,
    mut on_pass: F,
    shutdown: S,
) where
    C: Fn() -> DateTime<Utc>,
    F: FnMut(Pass) -> ControlFlow<()>,
    S: Future<Output = ()>,
{
    tokio::pin!(shutdown);
    let mut failed_in_a_row = 0u32;
    loop {
        let pass = syncer.run();
        tokio::pin!(pass);
        let (report, stopping) = tokio::select! {
            report = &mut pass => (report, false),
            () = &mut shutdown => {
                // Stop cleanly: what is in flight finishes and is recorded.
                syncer.cancellation().cancel();
                (pass.await, true)
            }
        };
        if stopping {
            let _ = on_pass(Pass { report, next: None });
            return;
        }
        failed_in_a_row = if is_worth_retrying_soon(&report) {
            failed_in_a_row.saturating_add(1)
        } else {
            0
        };
        let next = next_pass(clock(), at, tz, failed_in_a_row);
        tracing::info!(next = %next.at, retry = ?next.retry, "next sync scheduled");
        if on_pass(Pass {
            report,
            next: Some(next),
        })
        .is_break()
        {
            return;
        }
        loop {
            let left = (next.at - clock()).to_std().unwrap_or_default();
            if left.is_zero() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(left.min(MAX_SLEEP)) => {}
                () = &mut shutdown => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn paris_in_winter_and_summer() {
        let paris = chrono_tz::Europe::Paris;
        assert_eq!(
            next_run(utc("2026-01-10T12:00:00Z"), hm(23, 30), paris),
            utc("2026-01-10T22:30:00Z")
        );
        assert_eq!(
            next_run(utc("2026-07-10T21:30:00Z"), hm(23, 30), paris),
            utc("2026-07-11T21:30:00Z")
        );
        assert_eq!(
            next_run(utc("2026-07-10T21:29:59Z"), hm(23, 30), paris),
            utc("2026-07-10T21:30:00Z")
        );
    }

    #[test]
    fn a_skipped_local_time_runs_at_the_end_of_the_gap() {
        // 2026-03-29 02:00 → 03:00 in Paris: 02:30 does not exist that day.
        let paris = chrono_tz::Europe::Paris;
        assert_eq!(
            next_run(utc("2026-03-28T23:00:00Z"), hm(2, 30), paris),
            utc("2026-03-29T01:00:00Z")
        );
    }

    #[test]
    fn a_repeated_local_time_runs_once() {
        // 2026-10-25 03:00 → 02:00 in Paris: 02:30 happens twice.
        let paris = chrono_tz::Europe::Paris;
        let first = next_run(utc("2026-10-24T23:00:00Z"), hm(2, 30), paris);
        assert_eq!(first, utc("2026-10-25T00:30:00Z"));
        let second = next_run(first, hm(2, 30), paris);
        assert_eq!(second, utc("2026-10-26T01:30:00Z"));
    }

    #[test]
    fn lord_howe_half_hour_gap() {
        // Lord Howe goes from +10:30 to +11 at 02:00 local on 2026-10-04.
        let tz = chrono_tz::Australia::Lord_Howe;
        let run = next_run(utc("2026-10-03T14:00:00Z"), hm(2, 15), tz);
        assert_eq!(
            run.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
            "2026-10-04 02:30"
        );
    }

    mod daily {
        use super::*;
        use crate::error::Error;
        use crate::sink::InMemorySink;
        use crate::source::InMemorySource;
        use crate::state::{InMemoryStateStore, StateChange, StateLock, StateStore, SyncState};
        use crate::sync::{SyncConfig, Syncer};
        use async_trait::async_trait;
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::sync::{Arc, Mutex};

        /// A state store whose lock fails with a passing error the first `failures` times.
        #[derive(Debug)]
        struct Flaky {
            inner: InMemoryStateStore,
            failures: AtomicU32,
        }

        #[async_trait]
        impl StateStore for Flaky {
            async fn load(&self) -> Result<Option<SyncState>> {
                self.inner.load().await
            }
            async fn save(&self, state: &SyncState) -> Result<()> {
                self.inner.save(state).await
            }
            async fn record(&self, changes: &[StateChange]) -> Result<()> {
                // Every record lets other tasks run, as a write to disk would.
                tokio::task::yield_now().await;
                self.inner.record(changes).await
            }
            async fn lock(&self) -> Result<StateLock> {
                // Never ready at the first poll, like a real store: a shutdown that is
                // already due is seen while the pass is under way.
                tokio::task::yield_now().await;
                let left = self.failures.load(Ordering::SeqCst);
                if left > 0 {
                    self.failures.store(left - 1, Ordering::SeqCst);
                    return Err(Error::Transient {
                        service: "state",
                        operation: "lock".into(),
                        message: "briefly unavailable".into(),
                        retry_after: None,
                    });
                }
                self.inner.lock().await
            }
        }

        fn syncer(lock_failures: u32) -> (Syncer, InMemorySink, InMemorySource) {
            let bank = InMemorySource::new();
            let account = bank.add_account_named("acc", "Main");
            let day = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
            bank.add_receipt(
                InMemorySource::receipt("r", &account, day, "Shop", -100),
                &b"pdf"[..],
            );
            let drive = InMemorySink::new();
            let store = Flaky {
                inner: InMemoryStateStore::new(),
                failures: AtomicU32::new(lock_failures),
            };
            let syncer = Syncer::new(
                Arc::new(bank.clone()),
                Arc::new(drive.clone()),
                Arc::new(store),
                SyncConfig::default(),
            );
            (syncer, drive, bank)
        }

        /// A wall clock that follows tokio's (paused) clock from `start`.
        fn clock(start: DateTime<Utc>) -> impl Fn() -> DateTime<Utc> {
            let origin = tokio::time::Instant::now();
            move || start + Duration::from_std(origin.elapsed()).unwrap()
        }

        /// Runs the schedule until `passes` passes have reported; returns when each ran,
        /// what it uploaded (or its error kind), and the next time it announced.
        async fn run(
            syncer: &Syncer,
            start: &str,
            passes: usize,
        ) -> Vec<(DateTime<Utc>, std::result::Result<usize, String>, NextPass)> {
            let clock = clock(utc(start));
            let seen = Mutex::new(Vec::new());
            run_daily(
                syncer,
                hm(23, 30),
                chrono_tz::Europe::Paris,
                &clock,
                |pass| {
                    let mut seen = seen.lock().unwrap();
                    let outcome = pass
                        .report
                        .map(|r| r.count("upload"))
                        .map_err(|e| format!("{:?}", e.kind()));
                    seen.push((clock(), outcome, pass.next.expect("not stopping")));
                    if seen.len() == passes {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
                std::future::pending(),
            )
            .await;
            seen.into_inner().unwrap()
        }

        #[tokio::test(start_paused = true)]
        async fn a_pass_now_then_one_at_the_daily_time() {
            let (syncer, drive, bank) = syncer(0);
            let account = crate::model::AccountId::new("acc");
            let day = NaiveDate::from_ymd_opt(2026, 11, 4).unwrap();
            bank.add_receipt(
                InMemorySource::receipt("r2", &account, day, "Shop", -100),
                &b"pdf 2"[..],
            );
            let passes = run(&syncer, "2026-11-03T21:00:00Z", 2).await;
            // 23:30 in Paris in November is 22:30 UTC.
            let times: Vec<_> = passes.iter().map(|p| p.0).collect();
            assert_eq!(
                times,
                [utc("2026-11-03T21:00:00Z"), utc("2026-11-03T22:30:00Z")]
            );
            assert_eq!(passes[0].1, Ok(2));
            assert_eq!(passes[1].1, Ok(0));
            assert_eq!(passes[0].2.retry, None);
            assert_eq!(passes[1].2.at, utc("2026-11-04T22:30:00Z"));
            assert_eq!(drive.files().len(), 2);
        }

        #[tokio::test(start_paused = true)]
        async fn a_passing_failure_is_retried_sooner_then_the_daily_time_resumes() {
            let (syncer, drive, _) = syncer(2);
            let passes = run(&syncer, "2026-11-03T22:00:00Z", 4).await;
            let times: Vec<_> = passes.iter().map(|p| p.0).collect();
            assert_eq!(
                times,
                [
                    utc("2026-11-03T22:00:00Z"),
                    utc("2026-11-03T22:05:00Z"),
                    utc("2026-11-03T22:20:00Z"),
                    utc("2026-11-03T22:30:00Z"),
                ]
            );
            let retries: Vec<_> = passes.iter().map(|p| p.2.retry).collect();
            assert_eq!(retries, [Some(1), Some(2), None, None]);
            assert_eq!(passes[0].1, Err("Transient".to_owned()));
            assert_eq!(passes[2].1, Ok(1));
            assert_eq!(drive.files().len(), 1);
        }

        #[tokio::test(start_paused = true)]
        async fn a_shutdown_during_a_wait_returns_without_a_pass() {
            let (syncer, _, _) = syncer(0);
            let clock = clock(utc("2026-11-03T21:00:00Z"));
            let mut passes = 0;
            let shutdown = tokio::time::sleep(std::time::Duration::from_secs(600));
            run_daily(
                &syncer,
                hm(23, 30),
                chrono_tz::Europe::Paris,
                &clock,
                |_| {
                    passes += 1;
                    ControlFlow::Continue(())
                },
                shutdown,
            )
            .await;
            assert_eq!(passes, 1);
            assert_eq!(clock(), utc("2026-11-03T21:10:00Z"));
        }

        #[tokio::test]
        async fn a_shutdown_during_uploads_lets_those_in_flight_finish_and_records_them() {
            use crate::sync::SyncEvent;
            let (_, _, bank) = syncer(0);
            let account = crate::model::AccountId::new("acc");
            let day = NaiveDate::from_ymd_opt(2026, 11, 4).unwrap();
            for i in 0..20 {
                bank.add_receipt(
                    InMemorySource::receipt(&format!("n{i}"), &account, day, "Shop", -100),
                    format!("pdf {i}").into_bytes(),
                );
            }
            let drive = InMemorySink::new();
            let store = Arc::new(Flaky {
                inner: InMemoryStateStore::new(),
                failures: AtomicU32::new(0),
            });
            let upload_started = Arc::new(tokio::sync::Notify::new());
            let started = Arc::new(AtomicU32::new(0));
            let observer = {
                let (upload_started, started) = (upload_started.clone(), started.clone());
                move |event: &SyncEvent| {
                    if matches!(event, SyncEvent::Started { kind: "upload", .. }) {
                        started.fetch_add(1, Ordering::SeqCst);
                        upload_started.notify_one();
                    }
                }
            };
            let started_at_shutdown = AtomicU32::new(0);
            let syncer = Syncer::new(
                Arc::new(bank.clone()),
                Arc::new(drive.clone()),
                store.clone(),
                SyncConfig::default().with_concurrency(2),
            )
            .with_observer(Arc::new(observer));
            let mut last = None;
            run_daily(
                &syncer,
                hm(23, 30),
                chrono_tz::Europe::Paris,
                Utc::now,
                |pass| {
                    assert_eq!(pass.next, None, "the pass was cut short");
                    last = Some(pass.report.expect("the pass ran"));
                    ControlFlow::Continue(())
                },
                async {
                    upload_started.notified().await;
                    started_at_shutdown.store(started.load(Ordering::SeqCst), Ordering::SeqCst);
                },
            )
            .await;
            let report = last.expect("the cut pass is reported");
            assert_eq!(
                report.stopped.as_ref().map(Error::kind),
                Some(crate::error::ErrorKind::Cancelled)
            );
            let uploaded = report.count("upload");
            let before = started_at_shutdown.load(Ordering::SeqCst) as usize;
            assert!(before < 21, "the shutdown came mid-pass");
            assert_eq!(
                started.load(Ordering::SeqCst) as usize,
                before,
                "no upload started after the shutdown"
            );
            assert_eq!(uploaded, before, "every upload in flight finished");
            assert_eq!(
                drive.files().len(),
                uploaded,
                "every file written was recorded"
            );
            let state = store.load().await.unwrap().unwrap();
            assert_eq!(state.exported.len(), uploaded);

            // The next pass does the rest, nothing twice.
            let again = Syncer::new(
                Arc::new(bank),
                Arc::new(drive.clone()),
                store,
                SyncConfig::default(),
            );
            let rest = again.run().await.unwrap();
            assert_eq!(rest.count("upload"), 21 - uploaded);
            assert_eq!(rest.count("adopt"), 0);
            assert_eq!(drive.files().len(), 21);
        }

        #[tokio::test]
        async fn a_shutdown_during_a_pass_cancels_it_and_reports_it_last() {
            let (syncer, drive, _) = syncer(0);
            // A shutdown due as the first pass starts: it is cancelled, reported without a
            // next one, and nothing is written.
            let mut reports = Vec::new();
            run_daily(
                &syncer,
                hm(23, 30),
                chrono_tz::Europe::Paris,
                Utc::now,
                |pass| {
                    reports.push((pass.report.map(|r| r.stopped.map(|e| e.kind())), pass.next));
                    ControlFlow::Continue(())
                },
                std::future::ready(()),
            )
            .await;
            assert!(syncer.cancellation().is_cancelled());
            assert_eq!(reports.len(), 1);
            let (report, next) = &reports[0];
            assert_eq!(
                report.as_ref().ok(),
                Some(&Some(crate::error::ErrorKind::Cancelled))
            );
            assert_eq!(*next, None);
            assert!(drive.files().is_empty());
        }
    }

    const ZONES: &[Tz] = &[
        chrono_tz::Europe::Paris,
        chrono_tz::America::New_York,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::America::Santiago,
        chrono_tz::Asia::Tehran,
        chrono_tz::Pacific::Chatham,
        chrono_tz::UTC,
    ];

    #[test]
    fn the_ends_of_the_calendar_do_not_panic() {
        for tz in ZONES
            .iter()
            .chain(&[chrono_tz::Pacific::Kiritimati, chrono_tz::Etc::GMTPlus12])
        {
            for at in [hm(0, 0), hm(2, 30), hm(23, 59)] {
                let first = DateTime::<Utc>::MIN_UTC;
                assert!(next_run(first, at, *tz) > first, "{tz} {at}");
                let last = DateTime::<Utc>::MAX_UTC;
                assert_eq!(next_run(last, at, *tz), last, "{tz} {at}");
            }
        }
    }

    /// Any second chrono holds but the last, often near the ends of its calendar.
    fn any_second_but_the_last() -> impl Strategy<Value = i64> {
        let first = DateTime::<Utc>::MIN_UTC.timestamp();
        let last = DateTime::<Utc>::MAX_UTC.timestamp();
        let days = 3 * 86_400;
        prop_oneof![first..first + days, last - days..last, first..last]
    }

    proptest! {
        #[test]
        fn an_early_retry_is_never_later_than_the_daily_pass(
            secs in any_second_but_the_last(),
            zone in 0usize..ZONES.len(),
            hour in 0u32..24,
            failed in 0u32..10,
        ) {
            let now = DateTime::from_timestamp(secs, 0).unwrap();
            let tz = ZONES[zone];
            let at = hm(hour, 0);
            let daily = next_run(now, at, tz);
            let next = next_pass(now, at, tz, failed);
            prop_assert!(next.at > now);
            prop_assert!(next.at <= daily);
            match next.retry {
                None => prop_assert_eq!(next.at, daily),
                Some(n) => {
                    prop_assert_eq!(n, failed);
                    let delay = RETRY_DELAYS[(n as usize - 1).min(RETRY_DELAYS.len() - 1)];
                    prop_assert_eq!(next.at - now, delay);
                }
            }
            if failed == 0 {
                prop_assert_eq!(next.retry, None);
            }
            // Backing off: one more failure never brings an early retry closer.
            prop_assert!(failed == 0 || next_pass(now, at, tz, failed + 1).at >= next.at);
        }

        #[test]
        fn any_instant_chrono_holds_has_a_next_run(
            secs in any_second_but_the_last(),
            zone in 0usize..ZONES.len(),
            hour in 0u32..24,
        ) {
            let now = DateTime::from_timestamp(secs, 0).unwrap();
            prop_assert!(next_run(now, hm(hour, 0), ZONES[zone]) > now);
        }

        #[test]
        fn never_past_never_far_never_twice_a_day(
            secs in 0i64..4_000_000_000,
            zone in 0usize..ZONES.len(),
            hour in 0u32..24,
            minute in prop_oneof![Just(0u32), Just(30), 0u32..60],
        ) {
            let tz = ZONES[zone];
            let at = hm(hour, minute);
            let now = DateTime::from_timestamp(secs, 0).unwrap();
            let next = next_run(now, at, tz);
            prop_assert!(next > now);
            prop_assert!(next - now <= Duration::hours(25), "{now} -> {next}");
            let after = next_run(next, at, tz);
            prop_assert!(
                after.with_timezone(&tz).date_naive() > next.with_timezone(&tz).date_naive(),
                "two runs on one day: {next} and {after}"
            );
        }
    }
}
