//! `Retry-After` against the fake Graph and the fake Qonto: a throttling service's wait is
//! honoured in full with every request of the connector held, up to the retry policy's
//! ceiling; above it the run stops cleanly, says when to run again, and the next run
//! converges without duplicates. Both forms of the header are read; a malformed one falls
//! back to the backoff. Long waits reach the syncer's observer.
#![cfg(feature = "testkit")]

#[allow(dead_code)]
mod common;
mod onedrive_support;

use chrono::{NaiveDate, Utc};
use common::drives::listing;
use onedrive_support::*;
use receipt_sync::http::RetryConfig;
use receipt_sync::model::{AccountId, Body};
use receipt_sync::sink::ArchiveSink;
use receipt_sync::sink::onedrive::OneDriveSink;
use receipt_sync::source::InMemorySource;
use receipt_sync::state::InMemoryStateStore;
use receipt_sync::sync::{SyncConfig, SyncEvent, SyncObserver, SyncReport, Syncer};
use receipt_sync::testkit::fake_graph::{FakeGraph, Fault, FaultRule};
use receipt_sync::testkit::fake_qonto::{FakeQonto, Fault as QontoFault};
use receipt_sync::{Error, ErrorKind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PUT_CONTENT: &str = "PUT /items/{id}:/{path}:/content";
const RECEIPTS: usize = 6;

/// A source of `RECEIPTS` small receipts in one account and month.
fn source() -> InMemorySource {
    let source = InMemorySource::new();
    let account: AccountId = source.add_account_named("acc-1", "Main");
    let day = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
    for n in 0..RECEIPTS {
        let receipt = InMemorySource::receipt(&format!("r{n}"), &account, day, "Shop", 1000);
        source.add_receipt(receipt, format!("%PDF receipt {n}").into_bytes());
    }
    source
}

/// The events a run sent, kept.
#[derive(Default)]
struct Events(Mutex<Vec<SyncEvent>>);

impl SyncObserver for Events {
    fn on_event(&self, event: &SyncEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Events {
    fn waits(&self) -> Vec<(&'static str, Duration)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                SyncEvent::Waiting { service, wait, .. } => Some((*service, *wait)),
                _ => None,
            })
            .collect()
    }
}

fn syncer(
    source: &InMemorySource,
    sink: OneDriveSink,
    store: &InMemoryStateStore,
    events: &Arc<Events>,
) -> Syncer {
    Syncer::new(
        Arc::new(source.clone()),
        Arc::new(sink),
        Arc::new(store.clone()),
        SyncConfig::default()
            .with_concurrency(2)
            .with_retry(RetryConfig::fast()),
    )
    .with_observer(events.clone())
}

/// The default policy (its one-hour ceiling) with millisecond backoff.
fn default_ceiling() -> RetryConfig {
    RetryConfig::default().with_backoff(Duration::from_millis(1), Duration::from_millis(10))
}

/// Lets the runtime run I/O and tasks for `ms` of real time, the paused clock standing still.
async fn spin(ms: u64) {
    let end = std::time::Instant::now() + Duration::from_millis(ms);
    while std::time::Instant::now() < end {
        tokio::task::yield_now().await;
    }
}

/// Every receipt is in the archive once, and nothing else is: as many files as
/// receipts, each with its own name and its own content.
async fn assert_archived_once(graph: &FakeGraph, sink: &OneDriveSink) {
    let (_, files) = listing(sink).await;
    assert_eq!(files.len(), RECEIPTS, "{files:?}");
    let mut contents: Vec<Vec<u8>> = files
        .iter()
        .map(|f| {
            graph
                .file(&graph.app_path(&f.to_string()))
                .unwrap_or_else(|| panic!("{f} is not a file"))
                .to_vec()
        })
        .collect();
    contents.sort();
    contents.dedup();
    assert_eq!(
        contents.len(),
        RECEIPTS,
        "a receipt archived twice: {files:?}"
    );
}

/// Graph's observed five-minute `Retry-After` is waited in full (not cut to a shorter
/// cap), and no request of the sink goes out meanwhile; the observer hears of the wait.
///
/// The clock is paused and moved by hand: a blocking task held for the whole test stops
/// tokio from jumping the paused clock to the next timer while a request is on the wire
/// (which would fire request timeouts at once).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_five_minute_retry_after_holds_every_request_for_all_of_it() {
    let graph = FakeGraph::start().await.unwrap();
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let holder = tokio::task::spawn_blocking(move || {
        let _ = hold.recv();
    });
    let sink = builder(&graph.base_url())
        .with_retry(default_ceiling())
        .with_timeouts(
            Duration::from_secs(7200),
            Duration::from_secs(7200),
            Duration::from_secs(7200),
        )
        .build()
        .unwrap();
    graph.inject(FaultRule::new(PUT_CONTENT, Fault::Throttle(Some(300))));
    let events = Arc::new(Events::default());
    let run = {
        let syncer = syncer(&source(), sink.clone(), &InMemoryStateStore::new(), &events);
        tokio::spawn(async move { syncer.run().await })
    };

    // Until the sink has read the 429 and paused, then until what was already on the
    // wire has come back.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while events.waits().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no pause began");
        spin(5).await;
    }
    let mut sent = graph.requests().total();
    loop {
        spin(200).await;
        let now = graph.requests().total();
        if now == sent {
            break;
        }
        sent = now;
    }
    let throttled_at = tokio::time::Instant::now();
    assert!(
        graph.requests().matching(PUT_CONTENT) < RECEIPTS as u64,
        "some uploads are left to hold"
    );

    // A second short of the five minutes: nothing was sent.
    tokio::time::advance(Duration::from_secs(299)).await;
    spin(300).await;
    assert_eq!(
        graph.requests().total(),
        sent,
        "a request went out during the pause"
    );

    // Then the run goes on to the end (time moving on slowly, for the backoffs).
    tokio::time::advance(Duration::from_secs(1)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !run.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not finish"
        );
        tokio::time::advance(Duration::from_millis(10)).await;
        spin(2).await;
    }
    let report = run.await.unwrap().unwrap();
    assert!(report.is_complete(), "{report}");
    assert!(throttled_at.elapsed() >= Duration::from_secs(300));
    assert_eq!(events.waits(), vec![("onedrive", Duration::from_secs(300))]);
    assert_eq!(graph.requests().matching(PUT_CONTENT), RECEIPTS as u64 + 1);
    drop(release);
    holder.await.unwrap();
    assert_archived_once(&graph, &sink).await;
}

/// A `Retry-After` above the ceiling is not waited: the run stops at once with an error
/// that says when to run again; the sink sends nothing until then; a later run (after
/// that time) archives the rest, nothing twice.
#[tokio::test]
async fn a_retry_after_above_the_ceiling_stops_the_run_and_the_next_run_converges() {
    let graph = FakeGraph::start().await.unwrap();
    let source = source();
    let store = InMemoryStateStore::new();
    let events = Arc::new(Events::default());
    let sink = builder(&graph.base_url())
        .with_retry(default_ceiling())
        .build()
        .unwrap();
    graph.inject(FaultRule::new(PUT_CONTENT, Fault::Throttle(Some(7200))));
    let asked_at = Utc::now();
    let started = std::time::Instant::now();
    let report = syncer(&source, sink.clone(), &store, &events)
        .run()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "it did not wait"
    );
    let stop = report.stopped.as_ref().expect("the run stopped");
    assert_stops_until(stop, "onedrive", asked_at, 7200);
    assert!(events.waits().is_empty(), "{:?}", events.waits());
    // What finished before the stop is recorded; the rest is reported, not lost.
    let done_first = report.count("upload");
    assert!(done_first < RECEIPTS, "{report}");
    assert_eq!(
        graph.requests().matching(PUT_CONTENT) as usize,
        done_first + 1
    );

    // The same sink, before the time given: refused at once, nothing sent.
    let sent = graph.requests().total();
    let again = syncer(&source, sink, &store, &events).run().await.unwrap();
    assert!(
        matches!(again.stopped, Some(Error::ThrottledUntil { .. })),
        "{again}"
    );
    assert_eq!(graph.requests().total(), sent);

    // After that time (a new process, a new sink): the rest, once.
    let sink = builder(&graph.base_url())
        .with_retry(default_ceiling())
        .build()
        .unwrap();
    let report = syncer(&source, sink.clone(), &store, &events)
        .run()
        .await
        .unwrap();
    assert!(report.is_complete(), "{report}");
    assert_eq!(report.count("upload"), RECEIPTS - done_first, "{report}");
    assert_archived_once(&graph, &sink).await;
}

fn assert_stops_until(stop: &Error, service: &str, asked_at: chrono::DateTime<Utc>, secs: i64) {
    assert_eq!(stop.kind(), ErrorKind::RateLimited, "{stop}");
    assert!(stop.is_retryable() && stop.stops_sync(), "{stop}");
    let Error::ThrottledUntil {
        service: said,
        until,
        ..
    } = stop
    else {
        panic!("not a stop until a time: {stop}");
    };
    assert_eq!(*said, service);
    let expected = asked_at + chrono::TimeDelta::seconds(secs);
    assert!(
        (*until - expected).num_seconds().abs() <= 60,
        "{until} vs {expected}"
    );
    let text = stop.to_string();
    assert!(text.contains("asked to wait until"), "{text}");
    assert!(text.contains(" UTC"), "{text}");
    assert!(text.ends_with("run sync again after that"), "{text}");
}

/// A `Retry-After` given as an HTTP date is waited until that date.
#[tokio::test]
async fn an_http_date_retry_after_is_waited_until_that_date() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = sink(&graph);
    sink.create_folder(&path("F")).await.unwrap();
    let at = Utc::now() + chrono::TimeDelta::seconds(2);
    let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    graph.inject(FaultRule::new(PUT_CONTENT, Fault::ThrottleWith(date)));
    graph.reset_requests();
    sink.write_file(&path("F/a.pdf"), Body::from_bytes(&b"a"[..]))
        .await
        .unwrap();
    let puts = graph.arrivals("PUT");
    assert_eq!(puts.len(), 2);
    // The date has whole seconds: at least one of the two went by.
    let waited = puts[1].duration_since(puts[0]);
    assert!(waited >= Duration::from_millis(900), "waited {waited:?}");

    // A date past the ceiling stops, as a number of seconds would.
    let later = (Utc::now() + chrono::TimeDelta::hours(3))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    graph.inject(FaultRule::new(PUT_CONTENT, Fault::ThrottleWith(later)));
    let asked_at = Utc::now();
    let stop = sink
        .write_file(&path("F/b.pdf"), Body::from_bytes(&b"b"[..]))
        .await
        .unwrap_err();
    assert_stops_until(&stop, "onedrive", asked_at, 3 * 3600);
}

/// An unreadable `Retry-After` is as if none was sent: the policy's backoff, no panic,
/// no pause.
#[tokio::test]
async fn a_malformed_retry_after_falls_back_to_the_backoff() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = sink(&graph);
    sink.create_folder(&path("F")).await.unwrap();
    for (n, bad) in [
        "soon",
        "-5",
        "1.5",
        "99999999999999999999999",
        "Mon, 32 Foo 2026 25:61:00 GMT",
        "",
    ]
    .into_iter()
    .enumerate()
    {
        graph.inject(FaultRule::new(PUT_CONTENT, Fault::ThrottleWith(bad.into())).times(2));
        let started = std::time::Instant::now();
        sink.write_file(&path(&format!("F/{n}.pdf")), Body::from_bytes(&b"x"[..]))
            .await
            .unwrap_or_else(|e| panic!("{bad:?}: {e}"));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{bad:?}: waited {:?}",
            started.elapsed()
        );
    }
}

/// Qonto's `Retry-After` follows the same rule: waited in full (the observer told),
/// and above the ceiling the run stops and says when to run again.
#[tokio::test]
async fn qonto_retry_after_is_honoured_up_to_the_same_ceiling() {
    let run = |fake: &FakeQonto, events: &Arc<Events>| {
        let source = fake.source_builder().build().unwrap();
        let drive = receipt_sync::sink::InMemorySink::new();
        let syncer = Syncer::new(
            Arc::new(source),
            Arc::new(drive),
            Arc::new(InMemoryStateStore::new()),
            SyncConfig::default().with_retry(RetryConfig::fast()),
        )
        .with_observer(events.clone());
        async move { syncer.run().await.unwrap() }
    };
    let fake = FakeQonto::start().await.unwrap();
    let main = fake.add_account("Main");
    fake.add_receipts(&main.id, 2, 40);

    // Two seconds asked, below the ceiling (5 s for `RetryConfig::fast`).
    fake.inject(
        "GET /v2/transactions",
        QontoFault::too_many_requests_after(2),
    );
    let events = Arc::new(Events::default());
    let started = std::time::Instant::now();
    let report: SyncReport = run(&fake, &events).await;
    assert!(report.is_complete(), "{report}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(events.waits(), vec![("qonto", Duration::from_secs(2))]);

    // An hour asked, above it: not waited, the run stops.
    fake.inject(
        "GET /v2/transactions",
        QontoFault::too_many_requests_after(3600),
    );
    let asked_at = Utc::now();
    let started = std::time::Instant::now();
    let report = run(&fake, &Arc::new(Events::default())).await;
    assert!(started.elapsed() < Duration::from_secs(60));
    let stop = report.stopped.as_ref().expect("the run stopped");
    assert_stops_until(stop, "qonto", asked_at, 3600);
    assert!(stop.to_string().starts_with("Qonto asked to wait until"));
}

/// A 503 with `Retry-After` is throttling too: the same pause, the same ceiling.
#[tokio::test]
async fn a_503_with_retry_after_follows_the_same_rule() {
    let graph = FakeGraph::start().await.unwrap();
    let sink = sink(&graph);
    sink.create_folder(&path("F")).await.unwrap();
    graph.inject(FaultRule::new(PUT_CONTENT, Fault::Unavailable(Some(1))));
    graph.reset_requests();
    sink.write_file(&path("F/a.pdf"), Body::from_bytes(&b"a"[..]))
        .await
        .unwrap();
    let puts = graph.arrivals("PUT");
    assert_eq!(puts.len(), 2);
    assert!(puts[1].duration_since(puts[0]) >= Duration::from_secs(1));

    graph.inject(FaultRule::new(PUT_CONTENT, Fault::Unavailable(Some(7200))));
    let asked_at = Utc::now();
    let stop = sink
        .write_file(&path("F/b.pdf"), Body::from_bytes(&b"b"[..]))
        .await
        .unwrap_err();
    assert_stops_until(&stop, "onedrive", asked_at, 7200);
    // Nothing more goes out until then.
    let sent = graph.requests().total();
    let again = sink.create_folder(&path("G")).await.unwrap_err();
    assert!(matches!(again, Error::ThrottledUntil { .. }), "{again}");
    assert_eq!(graph.requests().total(), sent);
}
