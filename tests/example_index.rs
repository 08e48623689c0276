//! The accountant's index through the `qonto-onedrive` command, against the fake Qonto
//! and the fake Graph: a new archive writes indexes (the setting is stored, so later runs
//! keep it without the flag), a new receipt rewrites exactly one, a quiet day writes none
//! and costs what it costs with indexes off, an index the user edited is left alone with
//! the new one beside it (and `plan` says so first), `--index ;` shows in the file, and an
//! archive made before the setting gains no index until `--index on`.
#![cfg(feature = "testkit")]

mod cli_support;

use chrono::{TimeZone, Utc};
use cli_support::Env;
use receipt_sync::testkit::fake_graph::FakeGraph;
use receipt_sync::testkit::fake_identity::{FakeIdentity, FakeIdentityConfig};
use receipt_sync::testkit::fake_qonto::{FakeQonto, NewTransaction};
use receipt_sync::testkit::server::{FakeServer, RequestLog};
use serde_json::Value;

/// The setting's file in the home.
const SETTING_FILE: &str = "accountant-index.json";

struct World {
    qonto: FakeQonto,
    graph: FakeGraph,
    login: FakeServer,
    refresh_token: String,
    home: tempfile::TempDir,
    /// The October transaction without a receipt.
    garage: String,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// What one run asked of the services.
struct Requests {
    graph: RequestLog,
    qonto_api: RequestLog,
    qonto_downloads: u64,
}

impl Requests {
    /// Graph requests that write a file's content (an upload or an index).
    fn content_writes(&self) -> u64 {
        self.graph
            .per_route
            .iter()
            .filter(|(route, _)| route.starts_with("PUT") && route.ends_with("/content"))
            .map(|(_, n)| n)
            .sum()
    }
}

impl World {
    /// One account: in October 2026 a paid office bill with its receipt and a garage
    /// bill without one; in November a hotel with its receipt.
    async fn start() -> Self {
        let qonto = FakeQonto::start().await.unwrap();
        let account = qonto.add_account("Main").id;
        let at = |m, d| Utc.with_ymd_and_hms(2026, m, d, 10, 0, 0).single().unwrap();
        let office = qonto.add_transaction(
            &account,
            NewTransaction::debit(1250, "Office").emitted_at(at(10, 4)),
        );
        qonto.add_attachment(
            &office,
            "office.pdf",
            "application/pdf",
            b"%PDF-office".to_vec(),
        );
        let garage = qonto.add_transaction(
            &account,
            NewTransaction::debit(4200, "Garage").emitted_at(at(10, 9)),
        );
        let hotel = qonto.add_transaction(
            &account,
            NewTransaction::debit(9900, "Hotel").emitted_at(at(11, 2)),
        );
        qonto.add_attachment(
            &hotel,
            "hotel.pdf",
            "application/pdf",
            b"%PDF-hotel".to_vec(),
        );
        let graph = FakeGraph::start().await.unwrap();
        let identity = FakeIdentity::new(FakeIdentityConfig::default());
        let login = FakeServer::start(identity.clone()).await.unwrap();
        let (_, refresh_token) =
            identity.issue_tokens(&["Files.ReadWrite.AppFolder", "offline_access"]);
        World {
            qonto,
            graph,
            login,
            refresh_token,
            home: tempfile::tempdir().unwrap(),
            garage,
        }
    }

    async fn run(&self, args: &[&str]) -> Run {
        let fakes = Env {
            qonto_url: self.qonto.url(),
            login_url: self.login.url(),
            graph_url: self.graph.base_url(),
            refresh_token: &self.refresh_token,
            home: self.home.path(),
        };
        let out = fakes.command(args).await.output().await.unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs the command with `--json`; its document (exit code 0 required).
    async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let run = self.run(&all).await;
        assert_eq!(run.code, 0, "{args:?}\n{}\n{}", run.stdout, run.stderr);
        serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", run.stdout))
    }

    /// A `sync --json` with `extra` flags, and the requests it made.
    async fn sync(&self, extra: &[&str]) -> (Value, Requests) {
        self.graph.reset_requests();
        self.qonto.reset_requests();
        let mut args = vec!["sync"];
        args.extend_from_slice(extra);
        let report = self.json(&args).await;
        let requests = Requests {
            graph: self.graph.requests(),
            qonto_api: self.qonto.api_requests(),
            qonto_downloads: self.qonto.download_requests().total()
                + self.qonto.mirror_requests().total(),
        };
        assert_eq!(report["complete"], true, "{report}");
        (report, requests)
    }

    /// The drive paths of the files named `name` in the archive, sorted.
    fn paths_named(&self, name: &str) -> Vec<String> {
        let suffix = format!("/{name}");
        self.graph
            .files()
            .into_keys()
            .filter(|p| p.ends_with(&suffix))
            .collect()
    }

    /// The text of `<period>/<name>`.
    fn file_in(&self, period: &str, name: &str) -> Option<String> {
        let suffix = format!("/{period}/{name}");
        self.graph
            .files()
            .into_iter()
            .find(|(p, _)| p.ends_with(&suffix))
            .map(|(_, bytes)| String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn index(&self, period: &str) -> Option<String> {
        self.file_in(period, "index.csv")
    }

    /// Attaches the garage's invoice: a new receipt for a receipt-less transaction.
    fn garage_invoice_arrives(&self) {
        self.qonto.add_attachment(
            &self.garage,
            "garage.pdf",
            "application/pdf",
            b"%PDF-garage".to_vec(),
        );
    }
}

fn done(report: &Value, kind: &str) -> u64 {
    report["done"][kind].as_u64().unwrap_or(0)
}

fn garage_row(index: &str) -> &str {
    index
        .lines()
        .find(|l| l.contains("Garage"))
        .unwrap_or_else(|| panic!("no garage row in {index}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_archive_writes_indexes_and_a_new_receipt_rewrites_exactly_one() {
    let w = World::start().await;

    // The dry run first: the indexes the first sync would write, and nothing stored.
    let plan = w.json(&["plan"]).await;
    assert_eq!(plan["index"]["enabled"], true, "{plan}");
    let actions = plan["index_actions"].as_array().unwrap();
    assert_eq!(actions.len(), 2, "{plan}");
    assert!(
        actions
            .iter()
            .all(|a| a["action"] == "write" && a["reason"] == "new period"),
        "{plan}"
    );
    assert!(
        !w.home.path().join(SETTING_FILE).exists(),
        "a dry run stores nothing"
    );

    let (first, _) = w.sync(&[]).await;
    assert_eq!(
        (done(&first, "upload"), done(&first, "index")),
        (2, 2),
        "{first}"
    );
    assert_eq!(first["index"]["enabled"], true);
    assert_eq!(first["index"]["separator"], ",");
    assert!(first["index_change"]["before"].is_null(), "{first}");
    let october = w.index("2026-10").expect("the October index");
    eprintln!("the October index:\n{october}");
    assert!(
        october.starts_with("\u{feff}date,label,amount,"),
        "{october}"
    );
    assert!(
        garage_row(&october).contains("Garage,-42.00,EUR,,,,completed,,,"),
        "the garage has no receipt yet: {october}"
    );
    let november = w.index("2026-11").expect("the November index");

    // `status` shows the setting and the transaction without a receipt.
    let status = w.run(&["status"]).await;
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(
        status.stdout.contains("Index:      on, separator `,`"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("Main 2026-10: 1"),
        "{}",
        status.stdout
    );
    let status = w.json(&["status"]).await;
    assert_eq!(status["index"]["enabled"], true);
    assert_eq!(status["without_receipt"]["Main 2026-10"], 1, "{status}");

    // A quiet day: no index written, no file content sent.
    let (quiet, quiet_requests) = w.sync(&[]).await;
    assert_eq!(done(&quiet, "index"), 0, "{quiet}");
    assert!(
        quiet["index_change"].is_null(),
        "the stored setting is kept: {quiet}"
    );
    assert_eq!(
        quiet_requests.content_writes(),
        0,
        "{:?}",
        quiet_requests.graph
    );
    eprintln!(
        "quiet day: {} Graph requests {:?}; {} Qonto API requests {:?}; {} downloads",
        quiet_requests.graph.total(),
        quiet_requests.graph.per_route,
        quiet_requests.qonto_api.total(),
        quiet_requests.qonto_api.per_route,
        quiet_requests.qonto_downloads,
    );

    // The garage's invoice arrives: its download, its upload, one index write.
    w.garage_invoice_arrives();
    let (day, day_requests) = w.sync(&[]).await;
    eprintln!(
        "one new receipt: {} Graph requests {:?}; {} Qonto API requests {:?}; {} downloads",
        day_requests.graph.total(),
        day_requests.graph.per_route,
        day_requests.qonto_api.total(),
        day_requests.qonto_api.per_route,
        day_requests.qonto_downloads,
    );
    assert_eq!((done(&day, "upload"), done(&day, "index")), (1, 1), "{day}");
    assert_eq!(day_requests.qonto_downloads, 1, "its download");
    assert_eq!(
        day_requests.content_writes(),
        2,
        "its upload and one index write: {:?}",
        day_requests.graph
    );
    assert_eq!(
        day_requests.qonto_api.total(),
        quiet_requests.qonto_api.total(),
        "no Qonto request for the index: {:?}",
        day_requests.qonto_api
    );
    let october = w.index("2026-10").unwrap();
    assert!(
        garage_row(&october).contains("garage.pdf") || garage_row(&october).contains(".pdf,"),
        "the garage's row names its receipt: {october}"
    );
    assert_eq!(
        w.index("2026-11").unwrap(),
        november,
        "November is untouched"
    );
    assert_eq!(w.paths_named("index.csv").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_cost_one_write_on_a_new_receipt_day_and_nothing_on_a_quiet_day() {
    let on = World::start().await;
    let off = World::start().await;
    on.sync(&[]).await;
    let (first_off, _) = off.sync(&["--index", "off"]).await;
    assert_eq!(done(&first_off, "index"), 0, "{first_off}");
    assert!(off.paths_named("index.csv").is_empty());

    // A quiet day: the very same requests.
    let (_, with_indexes) = on.sync(&[]).await;
    let (_, without) = off.sync(&[]).await;
    eprintln!(
        "quiet day, indexes on: {} Graph {:?}, {} Qonto {:?}; off: {} Graph, {} Qonto",
        with_indexes.graph.total(),
        with_indexes.graph.per_route,
        with_indexes.qonto_api.total(),
        with_indexes.qonto_api.per_route,
        without.graph.total(),
        without.qonto_api.total(),
    );
    assert_eq!(with_indexes.graph, without.graph);
    assert_eq!(with_indexes.qonto_api, without.qonto_api);
    assert_eq!(with_indexes.qonto_downloads + without.qonto_downloads, 0);

    // A new receipt: the same requests, and one index write (by id) more.
    on.garage_invoice_arrives();
    off.garage_invoice_arrives();
    let (_, with_indexes) = on.sync(&[]).await;
    let (_, without) = off.sync(&[]).await;
    eprintln!(
        "one new receipt, indexes on: {} Graph {:?}, {} Qonto {:?}, {} download; off: {} Graph \
         {:?}, {} Qonto, {} download",
        with_indexes.graph.total(),
        with_indexes.graph.per_route,
        with_indexes.qonto_api.total(),
        with_indexes.qonto_api.per_route,
        with_indexes.qonto_downloads,
        without.graph.total(),
        without.graph.per_route,
        without.qonto_api.total(),
        without.qonto_downloads,
    );
    let mut expected = without.graph.clone();
    *expected
        .per_route
        .entry("PUT /items/{id}/content".to_owned())
        .or_default() += 1;
    assert_eq!(with_indexes.graph, expected, "one index write more");
    assert_eq!(with_indexes.qonto_api, without.qonto_api);
    assert_eq!(
        (with_indexes.qonto_downloads, without.qonto_downloads),
        (1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_index_is_left_alone_and_the_new_one_goes_beside_it() {
    let w = World::start().await;
    w.sync(&[]).await;
    let index_path = w.paths_named("index.csv")[0].clone();
    assert!(index_path.ends_with("/2026-10/index.csv"), "{index_path}");
    let edited = "date,label,amount,my notes\r\n2026-10-09,Garage,-42.00,ask for the invoice\r\n";
    w.graph
        .add_user_file(&index_path, edited.as_bytes().to_vec())
        .unwrap();
    // The user deletes the November index: a file of ours, written again.
    let november_path = w.paths_named("index.csv")[1].clone();
    assert!(w.graph.delete_as_user(&november_path));

    // Nothing new in October yet: the edit is left alone, nothing goes beside it.
    let (quiet, _) = w.sync(&[]).await;
    assert_eq!(done(&quiet, "index"), 1, "November only: {quiet}");
    assert!(w.index("2026-11").is_some(), "the deleted index came back");
    assert!(w.file_in("2026-10", "index (receipt-sync).csv").is_none());

    // Something new: the plan says the new index goes beside the edited one.
    w.garage_invoice_arrives();
    let plan = w.json(&["plan"]).await;
    let beside: Vec<&Value> = plan["index_actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["beside"] == true)
        .collect();
    assert_eq!(beside.len(), 1, "{plan}");
    assert!(
        beside[0]["path"]
            .as_str()
            .unwrap()
            .ends_with("2026-10/index (receipt-sync).csv"),
        "{plan}"
    );
    let text = w.run(&["plan"]).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    eprintln!("plan:\n{}", text.stdout);
    assert!(text.stdout.contains("index write"), "{}", text.stdout);
    assert!(text.stdout.contains("written beside it"), "{}", text.stdout);

    let (day, _) = w.sync(&[]).await;
    assert_eq!((done(&day, "upload"), done(&day, "index")), (1, 1), "{day}");
    assert_eq!(
        w.index("2026-10").unwrap(),
        edited,
        "the user's edit is never overwritten"
    );
    let beside = w.file_in("2026-10", "index (receipt-sync).csv").unwrap();
    assert!(garage_row(&beside).contains(".pdf,"), "{beside}");
    // The next plan has nothing to write.
    let plan = w.json(&["plan"]).await;
    let writes = plan["index_actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] != "skip")
        .count();
    assert_eq!(writes, 0, "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semicolon_separator_is_stored_and_off_stops_the_writes() {
    let w = World::start().await;
    let (first, _) = w.sync(&["--index", ";"]).await;
    assert_eq!(first["index"]["separator"], ";");
    let october = w.index("2026-10").unwrap();
    assert!(
        october.starts_with("\u{feff}date;label;amount;currency;"),
        "{october}"
    );
    assert!(
        garage_row(&october).contains("Garage;-42.00;EUR;"),
        "{october}"
    );
    let status = w.run(&["status"]).await;
    assert!(
        status.stdout.contains("Index:      on, separator `;`"),
        "{}",
        status.stdout
    );

    // Later runs keep it without the flag.
    let (later, _) = w.sync(&[]).await;
    assert_eq!(later["index"]["separator"], ";", "{later}");
    assert!(later["index_change"].is_null(), "{later}");

    // `--index off`: said, stored; the files written stay, and are no longer updated.
    let off = w.run(&["sync", "--index", "off"]).await;
    assert_eq!(off.code, 0, "{}", off.stderr);
    assert!(
        off.stderr.contains("accountant's index changed from on") && off.stderr.contains("to off"),
        "{}",
        off.stderr
    );
    w.garage_invoice_arrives();
    let (after, _) = w.sync(&[]).await;
    assert_eq!(
        (done(&after, "upload"), done(&after, "index")),
        (1, 0),
        "{after}"
    );
    assert_eq!(w.index("2026-10").unwrap(), october, "kept as it was");
    let status = w.json(&["status"]).await;
    assert_eq!(status["index"]["enabled"], false, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_made_before_the_setting_gains_no_index_until_asked() {
    let w = World::start().await;
    // An archive as an earlier release leaves it: a binding and a state, no setting.
    w.sync(&["--index", "off"]).await;
    std::fs::remove_file(w.home.path().join(SETTING_FILE)).unwrap();
    let status = w.run(&["status"]).await;
    assert!(
        status
            .stdout
            .contains("Index:      off (this archive was made before"),
        "{}",
        status.stdout
    );

    let (quiet, _) = w.sync(&[]).await;
    assert_eq!(done(&quiet, "index"), 0, "{quiet}");
    assert_eq!(quiet["index"]["enabled"], false, "{quiet}");
    assert!(w.paths_named("index.csv").is_empty(), "no file unasked");

    let plan = w.json(&["plan", "--index", "on"]).await;
    assert_eq!(plan["index_actions"].as_array().unwrap().len(), 2, "{plan}");
    let (on, _) = w.sync(&["--index", "on"]).await;
    assert_eq!(done(&on, "index"), 2, "{on}");
    assert_eq!(on["index_change"]["after"]["enabled"], true, "{on}");
    assert_eq!(on["index_change"]["before"]["enabled"], false, "{on}");
    let october = w.index("2026-10").unwrap();
    assert!(october.contains("Office,-12.50,EUR"), "{october}");
}
