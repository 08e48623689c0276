//! The fleet against a real PostgreSQL (a throwaway cluster, or `DATABASE_URL`):
//! claiming, scheduling, sealed credentials, workers, claims renewed while a pass
//! runs, and a database restart mid-run. Without PostgreSQL they say they
//! did not run, unless `RECEIPT_SYNC_REQUIRE_POSTGRES=1`.
#![cfg(all(feature = "testkit", feature = "fleet"))]

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use receipt_sync::auth::SecretString;
use receipt_sync::error::{Error, Result};
use receipt_sync::fleet::{
    Assignment, Connectors, Fleet, Keyring, NewOrganization, OrganizationFactory, RunOutcome,
    Worker,
};
use receipt_sync::model::{ArchivePath, Body, ScanCursor, ScanUpdate, SinkEntry, SinkItemId};
use receipt_sync::sink::{ArchiveSink, InMemorySink, Quota, SinkCapabilities};
use receipt_sync::source::InMemorySource;
use receipt_sync::source::qonto::{QontoRateLimit, SharedQontoRateLimiter};
use receipt_sync::state::PgDatabase;
use receipt_sync::sync::UploadBudget;
use receipt_sync::testkit::postgres::TestCluster;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// One key for the whole test process, as every worker of a service shares it.
fn keyring() -> Keyring {
    static KEYS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(|| format!("k1:{}", Keyring::generate_key_text().expose()));
    Keyring::parse(keys).unwrap()
}

/// A fleet on a database of its own; `None` without PostgreSQL.
async fn fleet() -> Option<(Fleet, String)> {
    let cluster = TestCluster::shared()?;
    let url = cluster.fresh_database().await;
    let database = PgDatabase::connect(&url).await.unwrap();
    Some((Fleet::new(database, keyring()), url))
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("admin connection");
    tokio::spawn(connection);
    client
}

fn organization(id: &str, zone: Tz, at: (u32, u32)) -> NewOrganization {
    NewOrganization {
        id: id.to_owned(),
        display_name: format!("Company {id}"),
        time_zone: zone,
        daily_time: NaiveTime::from_hms_opt(at.0, at.1, 0).unwrap(),
        start_date: NaiveDate::from_ymd_opt(2026, 1, 1),
    }
}

async fn register_due(fleet: &Fleet, ids: &[String]) {
    for id in ids {
        fleet
            .register(
                &organization(id, chrono_tz::Europe::Paris, (23, 30)),
                Utc::now(),
            )
            .await
            .unwrap();
        fleet.run_now(id).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_claiming_at_once_never_get_the_same_organisation() {
    let Some((fleet, url)) = fleet().await else {
        return;
    };
    let ids: Vec<String> = (0..40).map(|n| format!("org-{n:02}")).collect();
    register_due(&fleet, &ids).await;
    // The second worker on a pool of its own, as another process would be.
    let other = Fleet::new(PgDatabase::connect(&url).await.unwrap(), keyring());
    let claim_all = |fleet: Fleet, worker: &'static str| {
        tokio::spawn(async move {
            let mut claimed = Vec::new();
            // Bounded: a claim handed out again would otherwise loop for ever.
            for _ in 0..100 {
                let batch = fleet.claim_due(worker, 3).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                claimed.extend(batch.into_iter().map(|c| c.organization));
            }
            claimed
        })
    };
    let (a, b) = tokio::join!(claim_all(fleet.clone(), "a"), claim_all(other, "b"));
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut all: Vec<String> = a.iter().chain(&b).cloned().collect();
    all.sort();
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "claimed twice: a {a:?}, b {b:?}");
    assert_eq!(all, ids, "every due organisation is claimed once");
    // Claimed and leased: nobody gets them again until they finish.
    assert!(fleet.claim_due("c", 100).await.unwrap().is_empty());
    let status = fleet.status(5).await.unwrap();
    assert_eq!((status.running, status.due), (40, 0), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_lease_ran_out_is_handed_out_again() {
    let Some((fleet, _url)) = fleet().await else {
        return;
    };
    let fleet = fleet.with_lease(std::time::Duration::from_secs(1));
    register_due(&fleet, &["org-dead".to_owned()]).await;
    let first = fleet.claim_due("dead-worker", 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(fleet.claim_due("live", 10).await.unwrap().is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let second = fleet.claim_due("live", 10).await.unwrap();
    assert_eq!(second.len(), 1);
    // The late finish of the dead worker's run leaves the schedule to the newer run.
    let outcome = RunOutcome {
        finished_at: Utc::now(),
        report: Err(Error::Cancelled),
    };
    fleet.finish(&first[0], &outcome).await.unwrap();
    let status = fleet.status(5).await.unwrap();
    assert_eq!(status.next_runs[0].running_on.as_deref(), Some("live"));
    assert_eq!(status.next_runs[0].last_result, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_run_is_computed_across_a_daylight_saving_change() {
    let Some((fleet, _url)) = fleet().await else {
        return;
    };
    register_due(&fleet, &["org-paris".to_owned()]).await;
    let claim = fleet.claim_due("w", 1).await.unwrap().remove(0);
    // Saturday 28 March 2026, 23:00 UTC: midnight in Paris; the clocks go forward that
    // night, so Sunday's 23:30 is 21:30 UTC, not 22:30.
    let finished_at = Utc.with_ymd_and_hms(2026, 3, 28, 23, 0, 0).unwrap();
    let report = receipt_sync::sync::SyncReport::default();
    fleet
        .finish(
            &claim,
            &RunOutcome {
                finished_at,
                report: Ok(report),
            },
        )
        .await
        .unwrap();
    let status = fleet.status(5).await.unwrap();
    let expected: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 3, 29, 21, 30, 0).unwrap();
    assert_eq!(status.next_runs[0].next_run_at, expected, "{status:?}");
    assert_eq!(status.next_runs[0].last_result.as_deref(), Some("complete"));
    assert_eq!(status.next_runs[0].running_on, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_failure_is_retried_early_and_counted() {
    let Some((fleet, _url)) = fleet().await else {
        return;
    };
    register_due(&fleet, &["org-flaky".to_owned()]).await;
    let claim = fleet.claim_due("w", 1).await.unwrap().remove(0);
    let finished_at = Utc.with_ymd_and_hms(2026, 6, 1, 8, 0, 0).unwrap();
    let report = Err(Error::Transient {
        service: "qonto",
        operation: "listing transactions".to_owned(),
        message: "connection reset".to_owned(),
        retry_after: None,
    });
    fleet
        .finish(
            &claim,
            &RunOutcome {
                finished_at,
                report,
            },
        )
        .await
        .unwrap();
    let status = fleet.status(5).await.unwrap();
    let org = &status.next_runs[0];
    assert_eq!(org.next_run_at, finished_at + chrono::Duration::minutes(5));
    assert_eq!((org.failures_in_a_row, status.failing), (1, 1));
    assert_eq!(org.last_result.as_deref(), Some("failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_go_through_the_table_sealed_and_come_back() {
    let Some((fleet, url)) = fleet().await else {
        return;
    };
    register_due(&fleet, &["org-a".to_owned(), "org-b".to_owned()]).await;
    let qonto = SecretString::new("org-a-login:qonto-secret-5f1e9c");
    let refresh = SecretString::new("M.R3_BAY.refresh-token-first-77aa");
    fleet.save_qonto_credentials("org-a", &qonto).await.unwrap();
    fleet
        .save_microsoft_refresh_token("org-a", &refresh)
        .await
        .unwrap();
    let opened = fleet.credentials("org-a").await.unwrap();
    assert_eq!(opened.qonto.unwrap().expose(), qonto.expose());
    assert_eq!(
        opened.microsoft_refresh_token.unwrap().expose(),
        refresh.expose()
    );
    // A rotated token replaces the old one: the next reader gets the new one.
    let rotated = SecretString::new("M.R3_BAY.refresh-token-second-88bb");
    fleet
        .save_microsoft_refresh_token("org-a", &rotated)
        .await
        .unwrap();
    let again = fleet.credentials("org-a").await.unwrap();
    assert_eq!(
        again.microsoft_refresh_token.unwrap().expose(),
        rotated.expose()
    );
    assert!(fleet.credentials("org-b").await.unwrap().qonto.is_none());
    // Sealed for org-a: copied onto org-b's row by hand, it does not open there.
    let admin = admin(&url).await;
    admin
        .execute(
            "UPDATE organizations SET qonto_credentials =
                 (SELECT qonto_credentials FROM organizations WHERE org_id = 'org-a')
             WHERE org_id = 'org-b'",
            &[],
        )
        .await
        .unwrap();
    let refused = fleet.credentials("org-b").await.unwrap_err();
    assert!(!refused.to_string().contains("qonto-secret"), "{refused}");
    let key_id: String = admin
        .query_one(
            "SELECT qonto_key_id FROM organizations WHERE org_id = 'org-a'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(key_id, "k1");
    // No secret in clear anywhere, nor in a debug print.
    for secret in [
        "qonto-secret-5f1e9c",
        "refresh-token-first",
        "refresh-token-second",
    ] {
        assert_no_column_holds(&admin, secret).await;
    }
    let debug = format!("{:?} {:?}", again_debug(&fleet).await, fleet);
    assert!(!debug.contains("refresh-token"), "{debug}");
}

async fn again_debug(fleet: &Fleet) -> String {
    format!("{:?}", fleet.credentials("org-a").await.unwrap())
}

/// Every text-like column of every table of the database, searched for `needle`.
async fn assert_no_column_holds(admin: &tokio_postgres::Client, needle: &str) {
    let columns = admin
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = 'public'
               AND data_type IN ('text', 'json', 'jsonb', 'character varying', 'bytea')",
            &[],
        )
        .await
        .unwrap();
    assert!(columns.len() > 10, "the scan sees the tables");
    for column in columns {
        let (table, name): (String, String) = (column.get(0), column.get(1));
        let found: i64 = admin
            .query_one(
                &format!(
                    "SELECT count(*) FROM \"{table}\" WHERE \"{name}\"::text LIKE '%' || $1 || '%'"
                ),
                &[&needle],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(found, 0, "{table}.{name} holds a secret in clear");
    }
}

/// Connectors from memory; organisations whose id starts with `broken` cannot be
/// built; records the credentials each organisation was built with.
#[derive(Default)]
struct MemoryFactory {
    seen: Mutex<Vec<(String, Option<String>)>>,
}

#[async_trait]
impl OrganizationFactory for MemoryFactory {
    async fn connectors(&self, assignment: Assignment<'_>) -> Result<Connectors> {
        let org = assignment.claim.organization.clone();
        self.seen.lock().unwrap().push((
            org.clone(),
            assignment.credentials.qonto.map(|s| s.expose().to_owned()),
        ));
        if org.starts_with("broken") {
            return Err(Error::Unauthorized {
                service: "qonto",
                hint: "enter the organisation's API key again".to_owned(),
            });
        }
        let source = InMemorySource::new();
        let account = source.add_account_named("acc-1", "Main");
        let day = NaiveDate::from_ymd_opt(2026, 2, 3).unwrap();
        for n in 0..3 {
            let id = format!("{org}-r{n}");
            source.add_receipt(
                InMemorySource::receipt(&id, &account, day, "Supplier", -1200),
                format!("%PDF {id}").into_bytes(),
            );
        }
        Ok(Connectors {
            source: Arc::new(source),
            sink: Arc::new(InMemorySink::new()),
        })
    }
}

fn worker(fleet: &Fleet, factory: Arc<MemoryFactory>, id: &str) -> Worker {
    Worker::new(
        fleet.clone(),
        factory,
        id,
        4,
        SharedQontoRateLimiter::new(QontoRateLimit::unlimited()),
        UploadBudget::new(8),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_organisation_does_not_stop_the_others() {
    let Some((fleet, _url)) = fleet().await else {
        return;
    };
    let ids: Vec<String> = ["good-1", "broken-1", "good-2", "good-3", "good-4", "good-5"]
        .map(str::to_owned)
        .to_vec();
    register_due(&fleet, &ids).await;
    fleet
        .save_qonto_credentials("good-1", &SecretString::new("login:key-of-good-1"))
        .await
        .unwrap();
    let factory = Arc::new(MemoryFactory::default());
    let worker = worker(&fleet, factory.clone(), "w1");
    let mut ran = 0;
    while ran < ids.len() {
        let round = worker.run_once().await.unwrap();
        assert!(round > 0, "organisations left unclaimed");
        ran += round;
    }
    let status = fleet.status(10).await.unwrap();
    assert_eq!((status.due, status.running, status.failing), (0, 0, 1));
    for org in &status.next_runs {
        if org.id == "broken-1" {
            assert_eq!(org.last_result.as_deref(), Some("failed"), "{org:?}");
            assert!(org.last_error.as_deref().unwrap().contains("API key"));
        } else {
            assert_eq!(org.last_result.as_deref(), Some("complete"), "{org:?}");
            assert!(org.next_run_at > status.at, "{org:?}");
        }
    }
    let seen = factory.seen.lock().unwrap().clone();
    assert!(seen.contains(&("good-1".to_owned(), Some("login:key-of-good-1".to_owned()))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_running_workers_share_the_fleet_and_stop_on_cancellation() {
    let Some((fleet, url)) = fleet().await else {
        return;
    };
    let ids: Vec<String> = (0..12).map(|n| format!("org-{n:02}")).collect();
    register_due(&fleet, &ids).await;
    let other = Fleet::new(PgDatabase::connect(&url).await.unwrap(), keyring());
    let factory = Arc::new(MemoryFactory::default());
    let stop = tokio_util::sync::CancellationToken::new();
    let poll = std::time::Duration::from_millis(100);
    let first = worker(&fleet, factory.clone(), "w1")
        .with_poll_interval(poll)
        .with_cancellation(stop.clone());
    let second = worker(&other, factory.clone(), "w2")
        .with_poll_interval(poll)
        .with_cancellation(stop.clone());
    let first = tokio::spawn(async move { first.run().await });
    let second = tokio::spawn(async move { second.run().await });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = fleet.status(20).await.unwrap();
        if status
            .next_runs
            .iter()
            .all(|o| o.last_result.as_deref() == Some("complete"))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(poll).await;
    }
    stop.cancel();
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    // Each organisation ran exactly once, on one worker or the other.
    let mut built: Vec<String> = factory
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(org, _)| org.clone())
        .collect();
    built.sort();
    assert_eq!(built, ids);
    let runs: i64 = admin(&url)
        .await
        .query_one(
            "SELECT count(*) FROM fleet_runs WHERE outcome = 'complete' AND uploaded = 3",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs, 12);
}

/// Rotates the Microsoft refresh token on every build, the way a sign-in does, and
/// records the token each run was given.
#[derive(Default)]
struct RotatingFactory {
    given: Mutex<Vec<String>>,
}

#[async_trait]
impl OrganizationFactory for RotatingFactory {
    async fn connectors(&self, assignment: Assignment<'_>) -> Result<Connectors> {
        let given = assignment
            .credentials
            .microsoft_refresh_token
            .map(|t| t.expose().to_owned())
            .unwrap_or_default();
        let rotated = {
            let mut seen = self.given.lock().unwrap();
            seen.push(given);
            format!("refresh-token-rotated-{}", seen.len())
        };
        assignment
            .fleet
            .save_microsoft_refresh_token(
                &assignment.claim.organization,
                &SecretString::new(rotated),
            )
            .await?;
        Ok(Connectors {
            source: Arc::new(InMemorySource::new()),
            sink: Arc::new(InMemorySink::new()),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_rotated_during_a_run_is_the_one_the_next_run_gets() {
    let Some((fleet, url)) = fleet().await else {
        return;
    };
    register_due(&fleet, &["org-rot".to_owned()]).await;
    fleet
        .save_microsoft_refresh_token("org-rot", &SecretString::new("refresh-token-initial"))
        .await
        .unwrap();
    let factory = Arc::new(RotatingFactory::default());
    let make = |fleet: &Fleet, id: &str| {
        Worker::new(
            fleet.clone(),
            factory.clone(),
            id,
            1,
            SharedQontoRateLimiter::new(QontoRateLimit::unlimited()),
            UploadBudget::new(1),
        )
    };
    assert_eq!(make(&fleet, "w1").run_once().await.unwrap(), 1);
    // The next run, on another worker with a pool of its own.
    let other = Fleet::new(PgDatabase::connect(&url).await.unwrap(), keyring());
    other.run_now("org-rot").await.unwrap();
    assert_eq!(make(&other, "w2").run_once().await.unwrap(), 1);
    let given = factory.given.lock().unwrap().clone();
    assert_eq!(given, ["refresh-token-initial", "refresh-token-rotated-1"]);
    assert_no_column_holds(&admin(&url).await, "refresh-token-rotated").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_short_by_a_stopping_worker_is_due_again_at_once() {
    let Some((fleet, _url)) = fleet().await else {
        return;
    };
    register_due(&fleet, &["org-cut".to_owned()]).await;
    let claim = fleet.claim_due("stopping", 1).await.unwrap().remove(0);
    let finished_at = Utc::now();
    let report = receipt_sync::sync::SyncReport {
        stopped: Some(Error::Cancelled),
        ..Default::default()
    };
    fleet
        .finish(
            &claim,
            &RunOutcome {
                finished_at,
                report: Ok(report),
            },
        )
        .await
        .unwrap();
    let status = fleet.status(5).await.unwrap();
    let org = &status.next_runs[0];
    assert_eq!(org.last_result.as_deref(), Some("stopped"));
    assert_eq!(org.failures_in_a_row, 0, "a shutdown is not a failure");
    // Not tomorrow's 23:30: another worker takes it up now.
    assert_eq!(
        fleet.claim_due("other", 1).await.unwrap().len(),
        1,
        "{org:?}"
    );
}

/// An archive whose file writes each take `delay`: a pass as long as the test needs.
#[derive(Debug)]
struct SlowSink {
    inner: InMemorySink,
    delay: std::time::Duration,
    /// Receipts written (`.pdf` files; not folders nor indexes).
    receipts: std::sync::atomic::AtomicU64,
}

#[async_trait]
impl ArchiveSink for SlowSink {
    fn capabilities(&self) -> SinkCapabilities {
        self.inner.capabilities()
    }
    async fn scan(&self, cursor: Option<&ScanCursor>) -> Result<ScanUpdate> {
        self.inner.scan(cursor).await
    }
    async fn create_folder(&self, path: &ArchivePath) -> Result<SinkEntry> {
        self.inner.create_folder(path).await
    }
    async fn write_file(&self, path: &ArchivePath, body: Body) -> Result<SinkEntry> {
        tokio::time::sleep(self.delay).await;
        let written = self.inner.write_file(path, body).await?;
        if path.to_string().ends_with(".pdf") {
            self.receipts
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(written)
    }
    async fn rename_folder(
        &self,
        id: &SinkItemId,
        path: &ArchivePath,
        new_name: &str,
    ) -> Result<SinkEntry> {
        self.inner.rename_folder(id, path, new_name).await
    }
    async fn quota(&self) -> Result<Option<Quota>> {
        self.inner.quota().await
    }
}

/// An organisation's bank and archive.
type Archive = (String, Arc<InMemorySource>, Arc<SlowSink>);

/// Organisations of `receipts` receipts each, archived into a [`SlowSink`]; counts
/// the builds and the receipts written. A lasting factory gives an organisation the
/// same bank and archive at every build, as the real services are.
struct SlowFactory {
    receipts: usize,
    delay: std::time::Duration,
    lasting: bool,
    built: Mutex<Vec<String>>,
    archives: Mutex<Vec<Archive>>,
}

impl SlowFactory {
    fn new(receipts: usize, delay: std::time::Duration) -> Arc<Self> {
        Arc::new(Self {
            receipts,
            delay,
            lasting: false,
            built: Mutex::default(),
            archives: Mutex::default(),
        })
    }

    fn lasting(receipts: usize, delay: std::time::Duration) -> Arc<Self> {
        Arc::new(Self {
            lasting: true,
            ..Arc::into_inner(Self::new(receipts, delay)).unwrap()
        })
    }

    fn files_written(&self) -> u64 {
        self.archives
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, sink)| sink.receipts.load(std::sync::atomic::Ordering::SeqCst))
            .sum()
    }

    /// For each organisation: receipts written, and `.pdf` files in its archive.
    fn archived(&self) -> Vec<(String, u64, usize)> {
        let mut archived: Vec<_> = self
            .archives
            .lock()
            .unwrap()
            .iter()
            .map(|(org, _, sink)| {
                let files = sink
                    .inner
                    .files()
                    .iter()
                    .filter(|(p, _)| p.to_string().ends_with(".pdf"))
                    .count();
                let written = sink.receipts.load(std::sync::atomic::Ordering::SeqCst);
                (org.clone(), written, files)
            })
            .collect();
        archived.sort();
        archived
    }

    fn build(&self, org: &str) -> (Arc<InMemorySource>, Arc<SlowSink>) {
        let mut archives = self.archives.lock().unwrap();
        if self.lasting
            && let Some((_, source, sink)) = archives.iter().find(|(o, _, _)| o == org)
        {
            return (source.clone(), sink.clone());
        }
        let source = InMemorySource::new();
        let account = source.add_account_named("acc-1", "Main");
        let day = NaiveDate::from_ymd_opt(2026, 2, 3).unwrap();
        for n in 0..self.receipts {
            let id = format!("{org}-r{n}");
            source.add_receipt(
                InMemorySource::receipt(&id, &account, day, "Supplier", -1200),
                format!("%PDF {id}").into_bytes(),
            );
        }
        let source = Arc::new(source);
        let sink = Arc::new(SlowSink {
            inner: InMemorySink::new(),
            delay: self.delay,
            receipts: Default::default(),
        });
        archives.push((org.to_owned(), source.clone(), sink.clone()));
        (source, sink)
    }
}

#[async_trait]
impl OrganizationFactory for SlowFactory {
    async fn connectors(&self, assignment: Assignment<'_>) -> Result<Connectors> {
        let org = assignment.claim.organization.clone();
        self.built.lock().unwrap().push(org.clone());
        let (source, sink) = self.build(&org);
        Ok(Connectors { source, sink })
    }
}

fn slow_worker(fleet: &Fleet, factory: Arc<SlowFactory>, id: &str) -> Worker {
    Worker::new(
        fleet.clone(),
        factory,
        id,
        2,
        SharedQontoRateLimiter::new(QontoRateLimit::unlimited()),
        // One upload at a time: the pass's length is the receipts times the delay.
        UploadBudget::new(1),
    )
    .with_poll_interval(std::time::Duration::from_millis(100))
}

/// `(run_id, worker_id, outcome, uploaded)` of every run of `org`, oldest first.
async fn runs_of(url: &str, org: &str) -> Vec<(i64, String, Option<String>, Option<i64>)> {
    admin(url)
        .await
        .query(
            "SELECT run_id, worker_id, outcome, uploaded FROM fleet_runs
             WHERE org_id = $1 ORDER BY run_id",
            &[&org],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_three_times_longer_than_the_lease_is_claimed_once_and_finishes_once() {
    let Some((fleet, url)) = fleet().await else {
        return;
    };
    let lease = std::time::Duration::from_secs(1);
    let fleet = fleet.with_lease(lease);
    register_due(&fleet, &["org-long".to_owned()]).await;
    let other = Fleet::new(PgDatabase::connect(&url).await.unwrap(), keyring()).with_lease(lease);
    // One receipt whose upload takes 3.5 leases.
    let factory = SlowFactory::new(1, std::time::Duration::from_millis(3500));
    let stop = tokio_util::sync::CancellationToken::new();
    let workers = [
        slow_worker(&fleet, factory.clone(), "w1").with_cancellation(stop.clone()),
        slow_worker(&other, factory.clone(), "w2").with_cancellation(stop.clone()),
    ]
    .map(|w| tokio::spawn(async move { w.run().await }));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = fleet.status(5).await.unwrap();
        if status.next_runs[0].last_result.is_some() {
            assert_eq!(
                status.next_runs[0].last_result.as_deref(),
                Some("complete"),
                "{status:?}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stop.cancel();
    for worker in workers {
        worker.await.unwrap().unwrap();
    }
    let runs = runs_of(&url, "org-long").await;
    assert_eq!(runs.len(), 1, "claimed more than once: {runs:?}");
    assert_eq!(runs[0].2.as_deref(), Some("complete"), "{runs:?}");
    assert_eq!(runs[0].3, Some(1), "{runs:?}");
    assert_eq!(factory.built.lock().unwrap().len(), 1);
    assert_eq!(factory.files_written(), 1);
}

/// Starts a pass of 20 slow uploads of `org` on a worker, waits until it uploads,
/// then calls `take_away` and returns how long the pass ran on after that, and the
/// files it wrote.
async fn pass_after_losing_its_claim<F, Fut>(
    fleet: &Fleet,
    org: &str,
    take_away: F,
) -> (std::time::Duration, u64)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let fleet = fleet.clone().with_lease(std::time::Duration::from_secs(1));
    register_due(&fleet, &[org.to_owned()]).await;
    let factory = SlowFactory::new(20, std::time::Duration::from_millis(300));
    let worker = slow_worker(&fleet, factory.clone(), "old");
    let pass = tokio::spawn(async move { worker.run_once().await });
    while factory.files_written() < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let lost_at = std::time::Instant::now();
    take_away().await;
    assert_eq!(pass.await.unwrap().unwrap(), 1);
    (lost_at.elapsed(), factory.files_written())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_taken_over_cancels_the_old_pass_and_keeps_the_newer_claim() {
    let Some((fleet, url)) = fleet().await else {
        return;
    };
    // Another run takes the organisation, as after a lease that ran out while the old
    // worker was paused.
    let take_over = || async {
        admin(&url)
            .await
            .execute(
                "WITH run AS (
                     INSERT INTO fleet_runs (org_id, worker_id, started_at)
                     VALUES ('org-taken', 'new', now()) RETURNING run_id
                 )
                 UPDATE organizations SET claimed_by = 'new',
                     claimed_run = (SELECT run_id FROM run),
                     lease_until = now() + interval '1 hour'
                 WHERE org_id = 'org-taken'",
                &[],
            )
            .await
            .unwrap();
    };
    let (ran_on, written) = pass_after_losing_its_claim(&fleet, "org-taken", take_over).await;
    // Noticed at the next renewal (a third of the lease), after the upload in flight.
    assert!(
        ran_on < std::time::Duration::from_secs(2),
        "the old pass ran on for {ran_on:?}"
    );
    assert!(written < 20, "the old pass uploaded everything");
    let runs = runs_of(&url, "org-taken").await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0].2.as_deref(), Some("stopped"), "{runs:?}");
    // The newer claim is untouched: still running, nothing recorded over it.
    let status = fleet.status(5).await.unwrap();
    let org = &status.next_runs[0];
    assert_eq!(org.running_on.as_deref(), Some("new"), "{org:?}");
    assert_eq!(org.last_result, None, "{org:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_an_organisation_stops_its_pass() {
    let Some((fleet, url)) = fleet().await else {
        return;
    };
    let disable = || async {
        fleet.set_enabled("org-off", false).await.unwrap();
    };
    let (ran_on, written) = pass_after_losing_its_claim(&fleet, "org-off", disable).await;
    assert!(
        ran_on < std::time::Duration::from_secs(2),
        "the pass ran on for {ran_on:?}"
    );
    assert!(written < 20, "the pass uploaded everything");
    let runs = runs_of(&url, "org-off").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].2.as_deref(), Some("stopped"), "{runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_mid_fleet_converges_without_duplicate_uploads() {
    // A cluster of its own: the others' tests share theirs.
    let Some(cluster) = TestCluster::start() else {
        return;
    };
    let cluster = Arc::new(cluster);
    let url = cluster.fresh_database().await;
    // Longer than the test: an organisation left claimed by a run that failed to record
    // its result would not be taken up again in time.
    let lease = std::time::Duration::from_secs(120);
    let fleet = Fleet::new(PgDatabase::connect(&url).await.unwrap(), keyring()).with_lease(lease);
    let other = Fleet::new(PgDatabase::connect(&url).await.unwrap(), keyring()).with_lease(lease);
    let ids: Vec<String> = (0..12).map(|n| format!("org-{n:02}")).collect();
    register_due(&fleet, &ids).await;
    let factory = SlowFactory::lasting(10, std::time::Duration::from_millis(100));
    let stop = tokio_util::sync::CancellationToken::new();
    let workers = [
        slow_worker(&fleet, factory.clone(), "w1").with_cancellation(stop.clone()),
        slow_worker(&other, factory.clone(), "w2").with_cancellation(stop.clone()),
    ]
    .map(|w| tokio::spawn(async move { w.run().await }));
    while factory.files_written() < 15 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let restarting = cluster.clone();
    tokio::task::spawn_blocking(move || restarting.restart(std::time::Duration::from_secs(2)))
        .await
        .unwrap();
    // Well before the five minutes of an early retry: the passes the outage cut
    // short run again at once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        // The status is read through the pool that lived through the restart too.
        if let Ok(status) = fleet.status(20).await
            && status
                .next_runs
                .iter()
                .all(|o| o.last_result.as_deref() == Some("complete"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{:?} {:?}",
            fleet.status(20).await,
            factory.archived()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    stop.cancel();
    for worker in workers {
        worker.await.unwrap().unwrap();
    }
    let outcomes: Vec<(String, Option<String>, Option<String>)> = admin(&url)
        .await
        .query(
            "SELECT org_id, outcome, error FROM fleet_runs ORDER BY run_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    // The outage was absorbed inside each run: one run per organisation, recorded.
    assert_eq!(outcomes.len(), ids.len(), "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|(_, outcome, _)| outcome.as_deref() == Some("complete")),
        "{outcomes:?}"
    );
    // Every receipt archived once: none uploaded twice, none missing.
    let archived = factory.archived();
    assert_eq!(archived.len(), ids.len());
    for (org, written, files) in &archived {
        assert_eq!((*written, *files), (10, 10), "{org}: {archived:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_lock_lost_in_a_restart_is_taken_again_before_the_next_write() {
    use receipt_sync::state::{StateStore, SyncState};
    let Some(cluster) = TestCluster::start() else {
        return;
    };
    let cluster = Arc::new(cluster);
    let url = cluster.fresh_database().await;
    let database = PgDatabase::connect(&url).await.unwrap();
    let store = database.store("org-lock");
    let lock = store.lock().await.unwrap();
    store.save(&SyncState::default()).await.unwrap();
    let restarting = cluster.clone();
    tokio::task::spawn_blocking(move || restarting.restart(std::time::Duration::from_millis(500)))
        .await
        .unwrap();
    // The restart released the lock with its connection. The first write after it
    // may still meet a connection not yet known to be gone; a write that succeeds has
    // the lock again.
    let mut saved = false;
    for _ in 0..50 {
        if store.save(&SyncState::default()).await.is_ok() {
            saved = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(saved, "no write went through after the restart");
    let elsewhere = PgDatabase::connect(&url).await.unwrap();
    let refused = elsewhere.store("org-lock").lock().await.unwrap_err();
    assert!(
        matches!(refused, Error::AlreadyRunning { .. }),
        "{refused:?}"
    );
    // Released as usual, for the next holder.
    drop(lock);
    let mut taken = false;
    for _ in 0..50 {
        if elsewhere.store("org-lock").lock().await.is_ok() {
            taken = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(taken, "the lock was not released");
}
