//! The fleet end to end: workers in two processes of their own claiming organisations
//! from a real PostgreSQL (a throwaway cluster), each organisation synced from the fake
//! Qonto into its own fake Graph drive through the real `QontoSource` and
//! `OneDriveSink` (`QontoOneDriveFactory`), every request delayed by 30 ms.
//!
//! ```text
//! cargo bench --features testkit,fleet --bench fleet
//! FLEET_BENCH_ORGS=200 cargo bench --features testkit,fleet --bench fleet   # smaller
//! ```
//!
//! Scenarios, printed as a table:
//! - quiet day: 1,000 organisations already archived, all due at once, nothing new;
//! - export: 100 organisations × 200 receipts, first sync, against the latency floor;
//! - kill: a worker killed (SIGKILL) mid-fleet; the other finishes its organisations
//!   once their lease runs out.
//!
//! The bench runs itself again as each worker (`FLEET_BENCH_WORKER` set): the fakes and
//! the measurements stay in this process. Workers reach PostgreSQL through a relay here
//! that counts round trips (each time a client speaks after the server did);
//! `pg_stat_statements` counts statements and transactions.

use chrono::NaiveTime;
use receipt_sync::auth::SecretString;
use receipt_sync::auth::microsoft::MicrosoftAuthConfig;
use receipt_sync::fleet::{
    Fleet, Keyring, NewOrganization, QontoCredentials, QontoOneDriveFactory, Worker,
};
use receipt_sync::http::RetryConfig;
use receipt_sync::source::qonto::{QontoRateLimit, SharedQontoRateLimiter};
use receipt_sync::state::PgDatabase;
use receipt_sync::sync::{SyncConfig, UploadBudget};
use receipt_sync::testkit::fake_graph::FakeGraph;
use receipt_sync::testkit::fake_identity::{FakeIdentity, FakeIdentityConfig};
use receipt_sync::testkit::fake_qonto::{FakeQonto, NewTransaction};
use receipt_sync::testkit::postgres::{TestCluster, counting_relay};
use receipt_sync::testkit::server::FakeServer;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

const LATENCY: Duration = Duration::from_millis(30);
const CLIENT_ID: &str = "fleet-bench-client";
const WORKER_VAR: &str = "FLEET_BENCH_WORKER";
/// Organisations each worker runs at once.
const CONCURRENCY: usize = 16;
/// Uploads each worker has in flight at most.
const UPLOAD_BUDGET: usize = CONCURRENCY * 4;
/// Transfers one pass has in flight at most: more than its share of the budget, so
/// that the last passes of a fleet, running alone, still fill it.
const PASS_CONCURRENCY: usize = 16;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    if std::env::var_os(WORKER_VAR).is_some() {
        runtime.block_on(worker_main());
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: then only
    // check that the bench starts.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    runtime.block_on(bench_main());
}

/// What a worker process reads from its environment.
async fn worker_main() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let id = var(WORKER_VAR);
    let keyring = Keyring::parse(&var("FLEET_BENCH_KEYS")).expect("keys");
    let lease = Duration::from_secs(var("FLEET_BENCH_LEASE").parse().expect("lease"));
    let database = PgDatabase::connect_with_pool_size(&var("FLEET_BENCH_URL"), CONCURRENCY)
        .await
        .expect("the database");
    let fleet = Fleet::new(database, keyring).with_lease(lease);
    let microsoft = MicrosoftAuthConfig::builder(CLIENT_ID)
        .with_login_base_url(var("FLEET_BENCH_LOGIN"))
        .with_retry(RetryConfig::fast())
        .build()
        .expect("the Microsoft configuration");
    let mut factory = QontoOneDriveFactory::new(microsoft)
        .with_qonto_base_url(var("FLEET_BENCH_QONTO"))
        .with_retry(RetryConfig::fast());
    let graphs = std::fs::read_to_string(var("FLEET_BENCH_GRAPHS")).expect("the drives");
    for line in graphs.lines() {
        if let Some((org, url)) = line.split_once(' ') {
            factory = factory.with_graph_base_url_for(org, url);
        }
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = Worker::new(
        fleet,
        Arc::new(factory),
        id,
        CONCURRENCY,
        // The fakes do not limit: the figures are the fleet's own costs, not Qonto's
        // rate limit (15 requests/s per address by default).
        SharedQontoRateLimiter::new(QontoRateLimit::unlimited()),
        UploadBudget::new(UPLOAD_BUDGET),
    )
    .with_config(SyncConfig::default().with_concurrency(PASS_CONCURRENCY))
    .with_poll_interval(Duration::from_millis(100))
    .with_cancellation(stop.clone());
    // Standard input closing (the bench done with it) stops the worker.
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(_)) = lines.next_line().await {}
        stop.cancel();
    });
    worker.run().await.expect("the worker");
}

/// The fakes of a scenario: one Qonto for every organisation, one identity, one Graph
/// drive per organisation.
struct World {
    qonto: FakeQonto,
    login: FakeServer,
    identity: Arc<FakeIdentity>,
    orgs: Vec<Org>,
}

struct Org {
    id: String,
    graph: FakeGraph,
    receipts: usize,
    login: String,
    secret: SecretString,
}

impl World {
    async fn start(count: usize, receipts: usize) -> Self {
        let qonto = FakeQonto::start().await.expect("fake Qonto");
        let identity = FakeIdentity::new(FakeIdentityConfig::default().with_client_id(CLIENT_ID));
        let login = FakeServer::start(identity.clone())
            .await
            .expect("fake identity");
        let mut orgs = Vec::with_capacity(count);
        for n in 0..count {
            let organisation = qonto.add_organisation(&format!("bench-{n}"));
            let account = organisation.add_account("Compte principal");
            for r in 0..receipts {
                let tx = organisation.add_transaction(
                    &account.id,
                    NewTransaction::debit(1_000 + r as i64, &format!("Supplier {r}")),
                );
                let mut bytes = format!("%PDF-1.7 organisation {n} receipt {r};").into_bytes();
                bytes.resize(bytes.len() + 2_000, b'.');
                organisation.add_attachment(
                    &tx,
                    &format!("receipt-{r}.pdf"),
                    "application/pdf",
                    bytes,
                );
            }
            let graph = FakeGraph::start().await.expect("fake Graph");
            graph.api_server().set_latency(LATENCY);
            graph.upload_server().set_latency(LATENCY);
            graph.check_token_scopes(identity.token_scopes());
            let (login, secret) = organisation.credentials();
            orgs.push(Org {
                id: format!("org-{n:04}"),
                graph,
                receipts,
                login,
                secret,
            });
        }
        qonto.set_latency(LATENCY);
        Self {
            qonto,
            login,
            identity,
            orgs,
        }
    }

    /// HTTP requests received since the last reset: Qonto (API and downloads), Graph
    /// (every drive), the identity's token endpoint.
    fn requests(&self) -> (u64, u64, u64) {
        let qonto = self.qonto.api_requests().total() + self.qonto.download_requests().total();
        let graph = self.orgs.iter().map(|o| o.graph.requests().total()).sum();
        (qonto, graph, self.identity.token_request_count())
    }

    fn reset_requests(&self) {
        self.qonto.reset_requests();
        for org in &self.orgs {
            org.graph.reset_requests();
        }
    }

    /// Over every drive: upload requests beyond one per receipt (an upload cut short
    /// by the kill is sent again), receipts archived twice, and receipts missing.
    fn duplicates(&self) -> (u64, usize, usize) {
        let (mut resent, mut twice, mut missing) = (0, 0, 0);
        for org in &self.orgs {
            let sent: u64 = org
                .graph
                .requests()
                .per_route
                .iter()
                .filter(|(route, _)| {
                    (route.starts_with("PUT ") && route.ends_with("/content"))
                        || route.ends_with("/createUploadSession")
                })
                .map(|(_, n)| n)
                .sum();
            resent += sent.saturating_sub(org.receipts as u64);
            let root = format!("{}/", org.graph.app_path(""));
            let mut seen: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
            for (path, bytes) in org.graph.files() {
                if path.starts_with(&root) && path.ends_with(".pdf") {
                    *seen.entry(bytes.to_vec()).or_default() += 1;
                }
            }
            twice += seen.values().map(|n| n - 1).sum::<usize>();
            missing += org.receipts.saturating_sub(seen.len());
        }
        (resent, twice, missing)
    }
}

/// A scenario's database (its organisations registered), and the relay the workers go through.
struct Stage {
    admin: tokio_postgres::Client,
    relayed_url: String,
    trips: Arc<AtomicU64>,
    keys: String,
    dir: tempfile::TempDir,
}

impl Stage {
    async fn new(cluster: &TestCluster, world: &World) -> Self {
        let url = cluster.fresh_database().await;
        let keys = format!("k1:{}", Keyring::generate_key_text().expose());
        let database = PgDatabase::connect(&url).await.expect("database");
        let fleet = Fleet::new(database, Keyring::parse(&keys).expect("keys"));
        let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("admin");
        tokio::spawn(connection);
        admin
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await
            .expect("pg_stat_statements");
        let daily = NaiveTime::from_hms_opt(2, 0, 0).expect("a time");
        for org in &world.orgs {
            let new = NewOrganization {
                id: org.id.clone(),
                display_name: org.id.clone(),
                time_zone: chrono_tz::Europe::Paris,
                daily_time: daily,
                start_date: None,
            };
            fleet
                .register(&new, chrono::Utc::now())
                .await
                .expect("register");
            let qonto = QontoCredentials::api_key(org.login.as_str(), org.secret.clone());
            fleet
                .save_qonto_credentials(&org.id, &qonto.encode().expect("encoded"))
                .await
                .expect("credentials");
            let (_, refresh) = world
                .identity
                .issue_tokens(&["Files.ReadWrite.AppFolder", "offline_access"]);
            fleet
                .save_microsoft_refresh_token(&org.id, &SecretString::new(refresh))
                .await
                .expect("token");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let mut graphs = std::fs::File::create(dir.path().join("graphs")).expect("file");
        for org in &world.orgs {
            writeln!(graphs, "{} {}", org.id, org.graph.base_url()).expect("written");
        }
        let mut relayed = url::Url::parse(&url).expect("url");
        let server = std::net::SocketAddr::new(
            relayed
                .host_str()
                .expect("host")
                .parse()
                .expect("an address"),
            relayed.port().unwrap_or(5432),
        );
        let (port, trips) = counting_relay(server).await.expect("a relay");
        relayed.set_port(Some(port)).expect("port");
        Self {
            admin,
            relayed_url: relayed.to_string(),
            trips,
            keys,
            dir,
        }
    }

    fn spawn_worker(&self, world: &World, id: &str, lease: Duration) -> Child {
        Command::new(std::env::current_exe().expect("this bench"))
            .env(WORKER_VAR, id)
            .env("FLEET_BENCH_KEYS", &self.keys)
            .env("FLEET_BENCH_LEASE", lease.as_secs().to_string())
            .env("FLEET_BENCH_URL", &self.relayed_url)
            .env("FLEET_BENCH_LOGIN", world.login.url())
            .env("FLEET_BENCH_QONTO", world.qonto.url())
            .env("FLEET_BENCH_GRAPHS", self.dir.path().join("graphs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("a worker process")
    }

    /// Makes every organisation due now; returns the database's clock.
    async fn all_due(&self) -> chrono::DateTime<chrono::Utc> {
        self.admin
            .query_one(
                "WITH due AS (UPDATE organizations SET next_run_at = now() RETURNING 1)
                 SELECT now()",
                &[],
            )
            .await
            .expect("due")
            .get(0)
    }

    /// Waits until every organisation finished a run after `since`; returns how many
    /// did, with `complete` as their last result.
    async fn wait_for_all(&self, since: chrono::DateTime<chrono::Utc>, limit: Duration) -> i64 {
        let deadline = Instant::now() + limit;
        loop {
            let row = self
                .admin
                .query_one(
                    "SELECT count(*) FILTER (WHERE last_finished_at IS NULL
                                                OR last_finished_at < $1),
                            count(*) FILTER (WHERE last_finished_at >= $1
                                                AND last_result = 'complete')
                     FROM organizations",
                    &[&since],
                )
                .await
                .expect("progress");
            let (left, complete): (i64, i64) = (row.get(0), row.get(1));
            if left == 0 || Instant::now() > deadline {
                return complete;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn reset_counters(&self) {
        self.admin
            .batch_execute("SELECT pg_stat_statements_reset()")
            .await
            .expect("reset");
        self.trips.store(0, Ordering::SeqCst);
    }

    /// Statements (neither `BEGIN` nor `COMMIT`) and transactions, since the reset,
    /// in this database, by every client but this admin connection's reads.
    async fn statements(&self) -> (i64, i64) {
        let row = self
            .admin
            .query_one(
                "SELECT coalesce(sum(calls) FILTER (WHERE query NOT ILIKE 'BEGIN%'
                             AND query NOT ILIKE 'COMMIT%'
                             AND query NOT ILIKE '%organizations%last_finished_at >=%'
                             AND query NOT ILIKE '%pg_stat_statements%'), 0)::bigint,
                        coalesce(sum(calls) FILTER (WHERE query ILIKE 'COMMIT%'), 0)::bigint
                 FROM pg_stat_statements
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[],
            )
            .await
            .expect("statements");
        (row.get(0), row.get(1))
    }
}

fn stop(workers: Vec<Child>) {
    for mut worker in workers {
        drop(worker.stdin.take());
        let _ = worker.wait();
    }
}

/// One row of the table.
struct Figure {
    scenario: String,
    measure: String,
    value: String,
    target: String,
}

fn row(scenario: &str, measure: &str, value: String, target: &str) -> Figure {
    Figure {
        scenario: scenario.to_owned(),
        measure: measure.to_owned(),
        value,
        target: target.to_owned(),
    }
}

async fn bench_main() {
    let Some(cluster) = TestCluster::start() else {
        eprintln!("the fleet bench needs PostgreSQL");
        return;
    };
    let number = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mut figures = Vec::new();
    quiet_day(&cluster, number("FLEET_BENCH_ORGS", 1_000), &mut figures).await;
    export(
        &cluster,
        number("FLEET_BENCH_EXPORT_ORGS", 100),
        number("FLEET_BENCH_RECEIPTS", 200),
        &mut figures,
    )
    .await;
    killed_worker(&cluster, number("FLEET_BENCH_KILL_ORGS", 100), &mut figures).await;
    println!();
    println!("| scenario | measure | value | target |");
    println!("|---|---|---|---|");
    for f in figures {
        println!(
            "| {} | {} | {} | {} |",
            f.scenario, f.measure, f.value, f.target
        );
    }
}

async fn quiet_day(cluster: &TestCluster, count: usize, figures: &mut Vec<Figure>) {
    let scenario = format!("(a) quiet day, {count} orgs, 2 workers");
    let started = Instant::now();
    let world = World::start(count, 2).await;
    eprintln!(
        "{count} organisations' fakes started in {:.1?}",
        started.elapsed()
    );
    let stage = Stage::new(cluster, &world).await;
    let lease = Duration::from_secs(600);
    let workers = vec![
        stage.spawn_worker(&world, "w1", lease),
        stage.spawn_worker(&world, "w2", lease),
    ];
    // The first sync of every organisation, so that the next day is a quiet one.
    let since = stage.all_due().await;
    let started = Instant::now();
    let complete = stage.wait_for_all(since, Duration::from_secs(600)).await;
    eprintln!(
        "first sync of {count} organisations: {:.1?}, {complete} complete",
        started.elapsed()
    );
    world.reset_requests();
    let tokens_before = world.requests().2;
    stage.reset_counters().await;
    let since = stage.all_due().await;
    let started = Instant::now();
    let complete = stage.wait_for_all(since, Duration::from_secs(600)).await;
    let wall = started.elapsed();
    let (qonto, graph, tokens) = world.requests();
    let tokens = tokens - tokens_before;
    let trips = stage.trips.load(Ordering::SeqCst);
    let (statements, transactions) = stage.statements().await;
    stop(workers);
    let per = |n: u64| format!("{:.2}", n as f64 / count as f64);
    figures.push(row(&scenario, "wall", format!("{wall:.1?}"), "< 20 s"));
    figures.push(row(
        &scenario,
        "organisations complete",
        format!("{complete}/{count}"),
        "all",
    ));
    figures.push(row(
        &scenario,
        "HTTP requests / org (Qonto + Graph + token)",
        format!(
            "{} ({} + {} + {})",
            per(qonto + graph + tokens),
            per(qonto),
            per(graph),
            per(tokens)
        ),
        "accounts + 2 = 3",
    ));
    figures.push(row(
        &scenario,
        "DB round trips / org (relay)",
        per(trips),
        "≤ 12",
    ));
    figures.push(row(
        &scenario,
        "DB statements / transactions per org",
        format!(
            "{} / {}",
            per(u64::try_from(statements).unwrap_or(0)),
            per(u64::try_from(transactions).unwrap_or(0))
        ),
        "",
    ));
}

async fn export(cluster: &TestCluster, count: usize, receipts: usize, figures: &mut Vec<Figure>) {
    let scenario = format!("(b) export, {count} orgs × {receipts} receipts, 2 workers");
    let world = World::start(count, receipts).await;
    let stage = Stage::new(cluster, &world).await;
    let lease = Duration::from_secs(600);
    let workers = vec![
        stage.spawn_worker(&world, "w1", lease),
        stage.spawn_worker(&world, "w2", lease),
    ];
    world.reset_requests();
    let tokens_before = world.requests().2;
    let since = stage.all_due().await;
    let started = Instant::now();
    let complete = stage.wait_for_all(since, Duration::from_secs(1_200)).await;
    let wall = started.elapsed();
    stop(workers);
    let (qonto, graph, tokens) = world.requests();
    let requests = qonto + graph + tokens - tokens_before;
    // The floor: every request waits the latency, and at most `in_flight` wait at once:
    // a pass has at most `PASS_CONCURRENCY` transfers in flight, a worker runs
    // `CONCURRENCY` passes and `UPLOAD_BUDGET` uploads at once. The reading before the
    // uploads, one request at a time, and every CPU cost are above it.
    let passes = count.min(2 * CONCURRENCY) as u64;
    let in_flight = (passes * PASS_CONCURRENCY as u64).min(2 * UPLOAD_BUDGET as u64);
    let floor = LATENCY.mul_f64(requests as f64 / in_flight as f64);
    figures.push(row(&scenario, "wall", format!("{wall:.1?}"), ""));
    figures.push(row(
        &scenario,
        "organisations complete",
        format!("{complete}/{count}"),
        "all",
    ));
    figures.push(row(
        &scenario,
        "HTTP requests (Qonto + Graph + token)",
        format!(
            "{requests} ({qonto} + {graph} + {})",
            tokens - tokens_before
        ),
        "",
    ));
    figures.push(row(
        &scenario,
        "latency floor = requests × 30 ms / in flight",
        format!("{floor:.1?} ({requests} × 30 ms / {in_flight})"),
        "",
    ));
    figures.push(row(
        &scenario,
        "wall / floor",
        format!("{:.2}", wall.as_secs_f64() / floor.as_secs_f64()),
        "≤ 1.3",
    ));
}

async fn killed_worker(cluster: &TestCluster, count: usize, figures: &mut Vec<Figure>) {
    let scenario = format!("(c) a worker killed mid-fleet, {count} orgs × 20 receipts");
    let world = World::start(count, 20).await;
    let stage = Stage::new(cluster, &world).await;
    let lease = Duration::from_secs(5);
    let mut doomed = stage.spawn_worker(&world, "doomed", lease);
    let survivor = stage.spawn_worker(&world, "survivor", lease);
    let since = stage.all_due().await;
    // Killed once a third of the organisations are done, with others in flight.
    loop {
        let done: i64 = stage
            .admin
            .query_one(
                "SELECT count(*) FROM organizations WHERE last_finished_at >= $1",
                &[&since],
            )
            .await
            .expect("progress")
            .get(0);
        if done >= i64::try_from(count / 3).unwrap_or(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let in_flight: i64 = stage
        .admin
        .query_one(
            "SELECT count(*) FROM organizations WHERE claimed_by = 'doomed'",
            &[],
        )
        .await
        .expect("claims")
        .get(0);
    doomed.kill().expect("killed");
    let _ = doomed.wait();
    let started = Instant::now();
    let complete = stage.wait_for_all(since, Duration::from_secs(600)).await;
    let after = started.elapsed();
    stop(vec![survivor]);
    let (resent, twice, missing) = world.duplicates();
    figures.push(row(
        &scenario,
        "organisations complete",
        format!("{complete}/{count} ({in_flight} in flight on the killed worker)"),
        "all",
    ));
    figures.push(row(
        &scenario,
        "receipts archived twice / missing",
        format!("{twice} / {missing}"),
        "0 / 0",
    ));
    figures.push(row(
        &scenario,
        "uploads sent again (cut short by the kill)",
        resent.to_string(),
        "",
    ));
    figures.push(row(
        &scenario,
        "converged after the kill (lease 5 s)",
        format!("{after:.1?}"),
        "",
    ));
}
