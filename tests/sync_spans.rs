//! The `tracing` spans of a sync: a pass, its phases, its accounts and its uploads, with
//! the embedder's label, and never a secret in a span or an event.
#![cfg(feature = "testkit")]

use receipt_sync::auth::StaticToken;
use receipt_sync::http::RetryConfig;
use receipt_sync::sink::onedrive::OneDriveSink;
use receipt_sync::state::InMemoryStateStore;
use receipt_sync::sync::{SyncConfig, Syncer};
use receipt_sync::testkit::fake_graph::FakeGraph;
use receipt_sync::testkit::fake_qonto::{FakeQonto, FakeQontoConfig};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const LOGIN: &str = "span-login-51c0";
const SECRET_KEY: &str = "qsk_spans_R4nD0mS3cr3tK3y_9f2e";
const GRAPH_TOKEN: &str = "graph-token-spans-8d41b7e2";

/// A span as it was opened: its name, its parent's name, and its fields as `k=v`.
#[derive(Clone, Debug)]
struct SeenSpan {
    name: &'static str,
    parent: Option<&'static str>,
    fields: String,
}

/// Writes every field as ` name=value`.
struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

/// Keeps every span opened (with the fields recorded later) and every event, as text.
#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<(Id, SeenSpan)>>>,
    events: Arc<Mutex<Vec<String>>>,
}

impl Capture {
    fn spans(&self) -> Vec<SeenSpan> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.clone())
            .collect()
    }

    fn named(&self, name: &str) -> Vec<SeenSpan> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    fn everything(&self) -> String {
        let mut all: Vec<String> = self
            .spans()
            .iter()
            .map(|s| format!("{}{}", s.name, s.fields))
            .collect();
        all.extend(self.events.lock().unwrap().iter().cloned());
        all.join("\n")
    }
}

impl<S> tracing_subscriber::Layer<S> for Capture
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = String::new();
        attrs.record(&mut Fields(&mut fields));
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|parent| parent.name());
        let seen = SeenSpan {
            name: attrs.metadata().name(),
            parent,
            fields,
        };
        self.spans.lock().unwrap().push((id.clone(), seen));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut spans = self.spans.lock().unwrap();
        if let Some((_, seen)) = spans.iter_mut().find(|(seen_id, _)| seen_id == id) {
            values.record(&mut Fields(&mut seen.fields));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut line = String::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                let _ = write!(line, "{}:", span.name());
            }
        }
        event.record(&mut Fields(&mut line));
        self.events.lock().unwrap().push(line);
    }
}

#[tokio::test]
async fn a_pass_runs_in_labelled_spans_without_secrets() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(capture.clone())
        .with(tracing_subscriber::filter::LevelFilter::TRACE);
    let _default = tracing::subscriber::set_default(subscriber);

    let mut config = FakeQontoConfig::default();
    config.login = LOGIN.to_owned();
    config.secret_key = SECRET_KEY.to_owned();
    let qonto = FakeQonto::start_with(config).await.unwrap();
    let main = qonto.add_account("Main");
    let savings = qonto.add_account("Savings");
    let receipts = qonto.add_receipts(&main.id, 3, 2_000);
    qonto.add_receipts(&savings.id, 1, 2_000);
    let graph = FakeGraph::start().await.unwrap();
    graph.set_accepted_tokens(&[GRAPH_TOKEN]);
    let sink = OneDriveSink::builder(Arc::new(StaticToken::new(GRAPH_TOKEN)))
        .with_base_url(graph.base_url())
        .with_retry(RetryConfig::fast())
        .build()
        .unwrap();
    let syncer = Syncer::new(
        Arc::new(qonto.source_builder().build().unwrap()),
        Arc::new(sink),
        Arc::new(InMemoryStateStore::new()),
        SyncConfig::default().with_retry(RetryConfig::fast()),
    )
    .with_label("org-42");
    let report = syncer.run().await.unwrap();
    assert!(report.is_complete(), "{report}");
    assert_eq!(report.count("upload"), 4);

    // One run span, labelled, numbered.
    let runs = capture.named("sync_run");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].fields.contains("label=org-42"), "{runs:?}");
    assert!(runs[0].fields.contains(" run="), "{runs:?}");

    // Its phases, in order, each inside it.
    let phases: Vec<String> = capture
        .named("sync_phase")
        .iter()
        .map(|p| {
            assert_eq!(p.parent, Some("sync_run"), "{p:?}");
            p.fields.clone()
        })
        .collect();
    assert_eq!(
        phases,
        [" phase=read", " phase=scan", " phase=plan", " phase=write"]
    );

    // One span per account listing, inside the read phase.
    let accounts = capture.named("sync_account");
    assert_eq!(accounts.len(), 2, "{accounts:?}");
    for (span, account) in accounts.iter().zip([&main, &savings]) {
        assert_eq!(span.parent, Some("sync_phase"));
        assert_eq!(span.fields, format!(" account={}", account.id));
    }

    // One span per upload, inside the write phase, named by its receipt.
    let uploads = capture.named("sync_receipt");
    assert_eq!(uploads.len(), 4, "{uploads:?}");
    assert!(uploads.iter().all(|u| u.parent == Some("sync_phase")));
    for attachment in &receipts {
        assert!(
            uploads
                .iter()
                .any(|u| u.fields.contains(attachment.as_str())),
            "no upload span names {attachment}: {uploads:?}"
        );
    }

    // No credential in any span or event (the capture does hold the events and the
    // label: a secret there would be seen).
    let everything = capture.everything();
    assert!(everything.contains("org-42"));
    assert!(
        capture
            .events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.starts_with("sync_run:")),
        "no event inside the pass was captured"
    );
    for secret in [SECRET_KEY, GRAPH_TOKEN, &format!("{LOGIN}:{SECRET_KEY}")] {
        assert!(!everything.contains(secret), "{secret} was traced");
    }
}

#[tokio::test]
async fn an_unlabelled_pass_still_has_its_run_span() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _default = tracing::subscriber::set_default(subscriber);
    let syncer = Syncer::new(
        Arc::new(receipt_sync::source::InMemorySource::new()),
        Arc::new(receipt_sync::sink::InMemorySink::new()),
        Arc::new(InMemoryStateStore::new()),
        SyncConfig::default(),
    );
    syncer.run().await.unwrap();
    syncer.run().await.unwrap();
    let runs = capture.named("sync_run");
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| !r.fields.contains("label")), "{runs:?}");
    assert_ne!(
        runs[0].fields, runs[1].fields,
        "each pass has its own number"
    );
}
