//! A whole sync, Qonto to OneDrive over the HTTP fakes, with every `tracing` event at
//! TRACE and every `log` record (reqwest's) captured: no credential and no pre-signed URL
//! appears in the logs, the events, the report, the errors, or the state file. The run goes
//! through the paths where a secret could slip out: a token refresh and its rotation, stale
//! download URLs refreshed, an upload session, throttling, dropped and cut answers, and
//! refused credentials; the test checks that each injected fault met a request and that
//! reqwest's records were captured. A second test plants a secret through `tracing` and
//! one through `log`, and checks that the same capture and scan find both.
//!
//! What counts as secret: the Qonto secret key and the `login:secret` header value, the
//! sandbox staging token, every Microsoft access and refresh token, the signature of a
//! pre-signed download URL (and the URL itself with its query), and the upload session
//! URLs (whose path stands for a `tempauth` token in real Graph). Hosts, routes and
//! receipt names are not secret.
#![cfg(feature = "testkit")]

mod auth_support;

use auth_support::{Idp, capture_trace, leaked};
use receipt_sync::auth::microsoft::{FileTokenStore, MicrosoftTokenProvider, TokenStore};
use receipt_sync::http::RetryConfig;
use receipt_sync::sink::onedrive::OneDriveSink;
use receipt_sync::source::qonto::{QontoAuth, QontoSourceBuilder};
use receipt_sync::state::JsonFileStateStore;
use receipt_sync::sync::{SyncConfig, SyncEvent, Syncer};
use receipt_sync::testkit::fake_graph::{FakeGraph, Fault as GraphFault, FaultRule};
use receipt_sync::testkit::fake_qonto::{
    FakeQonto, FakeQontoConfig, Fault as QontoFault, NewTransaction,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LOGIN: &str = "org-login-4e1d9a";
const SECRET_KEY: &str = "qsk_Z7pW3rT9vY2xK5mN8bQ4cL6hJ1fD0gS";
const STAGING_TOKEN: &str = "stg_V9aB3nM7kQ2wE5rT8yU1iO4pL6jH0gF";

fn source(qonto: &FakeQonto, secret: &str) -> QontoSourceBuilder {
    QontoSourceBuilder::new(QontoAuth::api_key(LOGIN, secret))
        .with_base_url(qonto.url())
        .with_staging_token(STAGING_TOKEN)
        .with_retry(RetryConfig::fast())
        .with_rate_limit(receipt_sync::source::qonto::QontoRateLimit::unlimited())
        // Every URL counts as stale: each download first asks for a fresh one.
        .with_url_max_age(Duration::ZERO)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_shows_anywhere_during_a_whole_sync() {
    let logs = capture_trace();
    let mut config = FakeQontoConfig::default();
    config.login = LOGIN.to_owned();
    config.secret_key = SECRET_KEY.to_owned();
    config.staging_token = Some(STAGING_TOKEN.to_owned());
    let qonto = FakeQonto::start_with(config).await.unwrap();
    let account = qonto.add_account("Main");
    qonto.add_receipts(&account.id, 6, 3_000);
    let big = qonto.add_transaction(&account.id, NewTransaction::debit(99_00, "Big invoice"));
    qonto.add_attachment(&big, "big.pdf", "application/pdf", vec![7u8; 700 * 1024]);
    // Routes are named as the fake's request log names them: method, then path.
    let qonto_faults = [
        ("GET /v2/transactions", QontoFault::too_many_requests()),
        ("GET /v2/attachments/", QontoFault::Truncated),
        ("GET /s3/", QontoFault::Drop),
    ];
    for (route, fault) in &qonto_faults {
        qonto.inject(route, fault.clone());
    }

    let graph = FakeGraph::start().await.unwrap();
    graph.inject(FaultRule::new("", GraphFault::Throttle(None)).times(1));
    graph.inject(FaultRule::new("", GraphFault::Truncate).after(3).times(1));
    graph.inject(FaultRule::new("PUT /upload", GraphFault::DropAfter).times(1));

    let idp = Idp::default().await;
    let first_tokens = idp.expired_tokens();
    let home = tempfile::tempdir().unwrap();
    let token_store = Arc::new(FileTokenStore::new(home.path().join("tokens.json")));
    token_store.save(&first_tokens).await.unwrap();
    let tokens = Arc::new(MicrosoftTokenProvider::new(
        idp.config(),
        token_store.clone(),
    ));
    let sink = OneDriveSink::builder(tokens)
        .with_base_url(graph.base_url())
        .with_retry(RetryConfig::fast())
        .with_simple_upload_cutoff(64 * 1024)
        .with_fragment_size(327_680)
        .build()
        .unwrap();
    let store = JsonFileStateStore::new(home.path().join("state"));
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = events.clone();
    let syncer = Syncer::new(
        Arc::new(source(&qonto, SECRET_KEY).build().unwrap()),
        Arc::new(sink.clone()),
        Arc::new(store.clone()),
        SyncConfig::default().with_retry(RetryConfig::fast()),
    )
    .with_observer(Arc::new(move |e: &SyncEvent| {
        seen.lock().unwrap().push(format!("{e:?} {e:?}"))
    }));

    let mut shown = Vec::new();
    for _ in 0..2 {
        let report = syncer.run().await.unwrap();
        shown.push(format!("{report}\n{report:?}"));
    }
    assert_eq!(graph.files().len(), 7, "the sync went through: {shown:?}");
    assert!(graph.upload_auth_violations() == 0 && qonto.credential_leaks() == 0);
    // The paths this test is about were taken.
    assert!(idp.token_requests("refresh_token") >= 1, "a refresh");
    assert!(
        qonto.api_requests().matching("GET /v2/attachments") >= 7,
        "URLs refreshed"
    );
    // Each injected fault met a request.
    let fired = qonto.fault_log();
    for (route, fault) in &qonto_faults {
        let count = fired
            .iter()
            .filter(|(r, f)| r.starts_with(route) && f == fault)
            .count();
        assert!(count > 0, "{fault:?} on {route} never fired: {fired:?}");
    }
    let fired = graph.fault_log();
    for (route, fault) in [
        ("", GraphFault::Throttle(None)),
        ("", GraphFault::Truncate),
        ("PUT /upload", GraphFault::DropAfter),
    ] {
        let count = fired
            .iter()
            .filter(|(r, f)| r.starts_with(route) && *f == fault)
            .count();
        assert!(count > 0, "{fault:?} on {route:?} never fired: {fired:?}");
    }
    assert!(
        graph.requests().matching("PUT /upload") >= 3,
        "a session: {:?}",
        graph.requests()
    );
    if std::env::var_os("SHOW_TRACE").is_some() {
        eprintln!("{}", logs.text());
    }

    // Refused credentials, and their error.
    let refused = Syncer::new(
        Arc::new(source(&qonto, "qsk_wrong_Q8d7F6s5A4").build().unwrap()),
        Arc::new(sink.clone()),
        Arc::new(JsonFileStateStore::new(home.path().join("other"))),
        SyncConfig::default().with_retry(RetryConfig::fast()),
    );
    let report = refused.run().await.unwrap();
    let stopped = report
        .stopped
        .as_ref()
        .expect("refused credentials stop the sync");
    shown.push(format!("{report}\n{report:?}\n{stopped}\n{stopped:?}"));
    shown.push(format!("{:?} {:?} {sink:?} {syncer:?}", store, token_store));

    let rotated = token_store.load().await.unwrap().unwrap();
    let mut secrets = vec![
        SECRET_KEY.to_owned(),
        format!("{LOGIN}:{SECRET_KEY}"),
        "qsk_wrong_Q8d7F6s5A4".to_owned(),
        STAGING_TOKEN.to_owned(),
        first_tokens.access_token.expose().to_owned(),
        first_tokens.refresh_token.expose().to_owned(),
        rotated.access_token.expose().to_owned(),
        rotated.refresh_token.expose().to_owned(),
        "X-Amz-Signature".to_owned(),
        format!("{}/s3/", qonto.download_url()),
        format!("{}/upload/", graph.upload_server().url()),
    ];
    assert_ne!(
        first_tokens.refresh_token.expose(),
        rotated.refresh_token.expose(),
        "the refresh token rotated during the run"
    );
    secrets.retain(|s| !s.is_empty());

    assert!(
        logs.log_records("reqwest") > 0,
        "reqwest's `log` records are captured"
    );
    let logs = logs.text();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "the capture works"
    );
    assert!(
        logs.len() > 1_000,
        "the capture holds the run: {} bytes",
        logs.len()
    );
    // The base file is binary; the strings in it are kept as they are, so read as text.
    let state = String::from_utf8_lossy(&std::fs::read(store.state_path()).unwrap()).into_owned();
    let events = events.lock().unwrap().join("\n");
    for (place, text) in [
        ("the logs", &logs),
        ("the events", &events),
        ("the reports and errors", &shown.join("\n")),
        ("the state file", &state),
    ] {
        let found = leaked(text, &secrets);
        assert!(found.is_empty(), "{found:?} in {place}");
    }
}

#[tokio::test]
async fn the_capture_and_the_scan_find_a_planted_secret() {
    let logs = capture_trace();
    let through_tracing = "planted-through-tracing-6b1e0f".to_owned();
    let through_log = "planted-through-log-0c9d47".to_owned();
    let innocent = "never-logged-2f8a53".to_owned();
    tracing::trace!(token = %through_tracing, "a careless event");
    log::trace!(target: "careless_crate", "a careless record: {through_log}");

    assert_eq!(logs.log_records("careless_crate"), 1);
    let secrets = [through_tracing.clone(), through_log.clone(), innocent];
    let found = leaked(&logs.text(), &secrets);
    assert_eq!(found, [through_tracing.as_str(), through_log.as_str()]);
}
