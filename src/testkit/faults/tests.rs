use super::*;
use crate::error::ErrorKind;
use crate::model::{ArchivePath, Body};
use crate::sink::{ArchiveSink, InMemorySink};
use crate::source::{InMemorySource, ReceiptQuery, ReceiptSource, SourceEvent};
use chrono::NaiveDate;
use futures::StreamExt;

fn p(path: &str) -> ArchivePath {
    ArchivePath::parse(path).unwrap()
}

/// The kinds of error (or success) of a fixed history of 60 writes, each retried once.
async fn history(plan: FaultPlan) -> (Vec<Option<ErrorKind>>, u64, u64) {
    let sink = FaultySink::new(InMemorySink::new(), plan);
    let mut outcomes = Vec::new();
    for i in 0..60 {
        for _attempt in 0..2 {
            let result = sink
                .write_file(&p(&format!("f{i}")), Body::from_bytes("x"))
                .await;
            outcomes.push(result.err().map(|e| e.kind()));
        }
    }
    (outcomes, sink.operations(), sink.faults())
}

fn mixed(seed: u64) -> FaultPlan {
    FaultPlan::seeded(seed)
        .transient(0.2)
        .rate_limited(0.1, Duration::from_secs(3))
        .permanent(0.05)
}

#[tokio::test]
async fn the_same_seed_replays_the_same_faults() {
    let (a, ops, faults) = history(mixed(42)).await;
    assert_eq!(history(mixed(42)).await, (a.clone(), ops, faults));
    assert_ne!(history(mixed(43)).await.0, a, "another seed, other faults");
    assert_eq!(ops, 120);
    let injected = a
        .iter()
        .filter(|k| {
            matches!(
                k,
                Some(ErrorKind::Transient | ErrorKind::RateLimited | ErrorKind::Permanent)
            )
        })
        .count() as u64;
    assert_eq!(injected, faults);
    assert!((10..=60).contains(&faults), "about 35% of 120: {faults}");
    for kind in [
        ErrorKind::Transient,
        ErrorKind::RateLimited,
        ErrorKind::Permanent,
    ] {
        assert!(a.contains(&Some(kind)), "{kind:?} never drawn in {a:?}");
    }
}

#[tokio::test]
async fn faults_do_not_depend_on_the_order_of_operations() {
    // Writes in reverse order meet the same fate per path and attempt.
    let forward = FaultySink::new(InMemorySink::new(), mixed(9));
    let backward = FaultySink::new(InMemorySink::new(), mixed(9));
    let mut f = Vec::new();
    let mut b = Vec::new();
    for i in 0..30 {
        let r = forward
            .write_file(&p(&format!("f{i}")), Body::from_bytes("x"))
            .await;
        f.push(r.err().map(|e| e.kind()));
    }
    for i in (0..30).rev() {
        let r = backward
            .write_file(&p(&format!("f{i}")), Body::from_bytes("x"))
            .await;
        b.push(r.err().map(|e| e.kind()));
    }
    b.reverse();
    assert_eq!(f, b);
}

#[tokio::test]
async fn errors_are_classified() {
    let sink = FaultySink::new(
        InMemorySink::new(),
        FaultPlan::seeded(1).rate_limited(1.0, Duration::from_secs(5)),
    );
    let e = sink.scan(None).await.unwrap_err();
    assert!(e.is_retryable() && !e.stops_sync());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(5)));
    let sink = FaultySink::new(InMemorySink::new(), FaultPlan::seeded(1).permanent(1.0));
    let e = sink.scan(None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn crash_before_or_after_the_effect() {
    for (mode, lands) in [
        (CrashMode::BeforeEffect, false),
        (CrashMode::AfterEffect, true),
    ] {
        let sink = FaultySink::new(
            InMemorySink::new(),
            FaultPlan::seeded(3).crash_after(2, mode),
        );
        sink.create_folder(&p("a")).await.unwrap();
        sink.write_file(&p("a/1"), Body::from_bytes("1"))
            .await
            .unwrap();
        let e = sink
            .write_file(&p("a/2"), Body::from_bytes("22"))
            .await
            .unwrap_err();
        assert!(e.stops_sync(), "{e}");
        assert_eq!(sink.inner().exists("a/2"), lands, "{mode:?}");
        assert!(sink.is_crashed());
        assert!(
            sink.quota().await.is_err(),
            "every call fails after a crash"
        );
        assert_eq!((sink.operations(), sink.faults()), (4, 2));
        sink.recover();
        assert!(sink.scan(None).await.is_ok());
        sink.crash_after(0, CrashMode::BeforeEffect);
        assert!(sink.scan(None).await.is_err(), "scheduled from now");
    }
}

#[tokio::test]
async fn a_crash_on_a_chosen_operation_strikes_its_first_call_only() {
    let sink = FaultySink::new(
        InMemorySink::new(),
        FaultPlan::seeded(5).crash_on("rename_folder", CrashMode::AfterEffect),
    );
    let folder = sink.create_folder(&p("Main")).await.unwrap();
    sink.write_file(&p("Main/1"), Body::from_bytes("1"))
        .await
        .unwrap();
    let e = sink
        .rename_folder(&folder.id, &p("Main"), "Business")
        .await
        .unwrap_err();
    assert!(e.stops_sync(), "{e}");
    assert!(sink.inner().exists("Business/1"), "after the effect");
    assert!(sink.is_crashed());
    sink.recover();
    let renamed = sink.inner().id_of("Business").unwrap();
    sink.rename_folder(&renamed, &p("Business"), "Main")
        .await
        .unwrap();
    assert!(sink.inner().exists("Main/1"), "the next call goes through");
}

#[tokio::test]
async fn a_full_drive_refuses_writes_and_reports_no_space() {
    let sink = FaultySink::new(InMemorySink::new(), FaultPlan::none().drive_full(true));
    sink.create_folder(&p("a")).await.unwrap();
    let e = sink
        .write_file(&p("a/x"), Body::from_bytes("123"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::QuotaExceeded {
                needed: 3,
                remaining: 0
            }
        ),
        "{e}"
    );
    assert_eq!(sink.quota().await.unwrap().unwrap().remaining, 0);
    sink.set_drive_full(false);
    sink.write_file(&p("a/x"), Body::from_bytes("123"))
        .await
        .unwrap();
    assert_eq!(sink.faults(), 1);
}

#[tokio::test]
async fn a_failed_receipt_drops_later_checkpoints() {
    let inner = InMemorySource::new();
    let account = inner.add_account_named("a", "Main");
    let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    for i in 0..20 {
        inner.add_receipt(
            InMemorySource::receipt(&format!("r{i}"), &account, day, "L", -1),
            "x",
        );
    }
    inner.set_checkpoint_every(Some(1));
    let source = FaultySource::new(inner, FaultPlan::seeded(8).transient(0.3));
    let events: Vec<_> = source
        .receipts(&account, &ReceiptQuery::all())
        .collect()
        .await;
    let first_err = events
        .iter()
        .position(Result::is_err)
        .expect("30% of 20 receipts fail");
    assert!(
        events[first_err..]
            .iter()
            .all(|e| !matches!(e, Ok(SourceEvent::Checkpoint(_)))),
        "{events:?}"
    );
    assert!(
        first_err > 0,
        "seed 8 lets the list call and the first receipt through: {events:?}"
    );
    assert!(matches!(
        events[first_err - 1],
        Ok(SourceEvent::Checkpoint(_))
    ));
    assert_eq!(
        events.iter().filter(|e| e.is_err()).count() as u64,
        source.faults()
    );
    assert_eq!(source.operations(), 21, "one list call and 20 receipts");

    source.crash_after(0, CrashMode::AfterEffect);
    let r = source.inner().get(&"r0".into()).unwrap();
    assert!(source.open(&r).await.unwrap_err().stops_sync());
    assert_eq!(source.inner().opens(), 1, "the crash struck after the open");
    assert!(source.accounts().await.is_err());
    source.recover();
    assert_eq!(source.open(&r).await.unwrap().len(), 1);
}
