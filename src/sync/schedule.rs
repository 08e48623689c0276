//! "Every day at 23:30 in Paris", correct across daylight-saving changes in any zone.

use super::{SyncReport, Syncer};
use crate::error::Result;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use std::future::Future;

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
/// suspend or a clock change, since the next run is recomputed at every wake-up.
const MAX_SLEEP: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Runs `syncer` now (the initial export), then every day at `at` in `tz`, until
/// `shutdown` completes. Each pass's outcome goes to `on_report`; a pass that fails
/// is logged and the schedule goes on.
pub async fn run_daily<F, S>(syncer: &Syncer, at: NaiveTime, tz: Tz, mut on_report: F, shutdown: S)
where
    F: FnMut(Result<SyncReport>),
    S: Future<Output = ()>,
{
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            report = syncer.run() => on_report(report),
            () = &mut shutdown => return,
        }
        let due = next_run(Utc::now(), at, tz);
        tracing::info!(next = %due, "next sync scheduled");
        loop {
            let left = (due - Utc::now()).to_std().unwrap_or_default();
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

    #[tokio::test]
    async fn run_daily_exports_at_once_then_waits_and_stops_on_shutdown() {
        use crate::sink::InMemorySink;
        use crate::source::InMemorySource;
        use crate::state::InMemoryStateStore;
        use crate::sync::{SyncConfig, Syncer};
        use std::sync::Arc;

        let bank = InMemorySource::new();
        let account = bank.add_account_named("acc", "Main");
        let day = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
        bank.add_receipt(
            InMemorySource::receipt("r", &account, day, "Shop", -100),
            &b"pdf"[..],
        );
        let drive = InMemorySink::new();
        let syncer = Syncer::new(
            Arc::new(bank),
            Arc::new(drive.clone()),
            Arc::new(InMemoryStateStore::new()),
            SyncConfig::default(),
        );
        let (ran_tx, ran_rx) = tokio::sync::oneshot::channel::<()>();
        let mut ran_tx = Some(ran_tx);
        let mut reports = Vec::new();
        // Shut down once the first pass has reported: the next one is hours away.
        let shutdown = async {
            let _ = ran_rx.await;
        };
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            run_daily(
                &syncer,
                hm(23, 30),
                chrono_tz::Europe::Paris,
                |report| {
                    reports.push(report.map(|r| r.count("upload")));
                    if let Some(tx) = ran_tx.take() {
                        let _ = tx.send(());
                    }
                },
                shutdown,
            ),
        )
        .await
        .expect("run_daily returns on shutdown");
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].as_ref().ok(), Some(&1));
        assert_eq!(drive.files().len(), 1);
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
