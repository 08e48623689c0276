//! The demo, as a function the example and its test share: the real `QontoSource` and
//! `OneDriveSink` against the fake Qonto and the fake Graph on loopback.

use crate::org;
use chrono::TimeZone;
use chrono::Utc;
use receipt_sync::auth::StaticToken;
use receipt_sync::http::RetryConfig;
use receipt_sync::index::{IndexSettings, Separator};
use receipt_sync::sink::OneDriveSink;
use receipt_sync::source::ReceiptSource;
use receipt_sync::state::JsonFileStateStore;
use receipt_sync::sync::{SyncConfig, Syncer};
use receipt_sync::testkit::fake_graph::FakeGraph;
use receipt_sync::testkit::fake_qonto::FakeQonto;
use receipt_sync::testkit::fake_qonto::NewTransaction;
use std::collections::BTreeMap;
use std::error::Error;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// What the demo ended with, for its test.
#[derive(Debug)]
pub struct Outcome {
    /// Every file of the archive after the last sync, relative to the archive root, with
    /// its size.
    pub archive: BTreeMap<String, u64>,
    /// The file the user deleted (and the second sync put back).
    pub put_back: String,
    /// The period folder the user deleted.
    pub deleted_folder: String,
    /// How many receipts the user's folder deletion tombstoned.
    pub tombstoned: usize,
    /// How many upload sessions OneDrive opened (files over 4 MiB).
    pub upload_sessions: u64,
    /// Receipts the fake bank holds.
    pub receipts: usize,
    /// Whether both syncs reported every receipt where it should be.
    pub complete: bool,
}

type DemoResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Runs the whole story, printing to `out`, and copies the final drive into `copy_to`
/// (cleared first).
pub async fn run(copy_to: &Path, out: &mut dyn Write) -> DemoResult<Outcome> {
    let qonto = FakeQonto::start().await?;
    let graph = FakeGraph::start().await?;
    let seeded = org::seed(&qonto);
    let state_dir = tempfile::tempdir()?;
    writeln!(
        out,
        "Fake Qonto at {}, fake Graph at {}; state in {}",
        qonto.url(),
        graph.base_url(),
        state_dir.path().display()
    )?;
    writeln!(
        out,
        "Seeded {} receipts on 2 accounts ({}), {} bytes in all.\n",
        seeded.len(),
        org::ACCOUNTS.join(", "),
        seeded.iter().sum::<usize>()
    )?;

    // The real connectors. The fake Graph accepts any bearer token, so a static one does;
    // a real run uses `auth::microsoft::MicrosoftTokenProvider` instead.
    let source = Arc::new(qonto.source_builder().build()?);
    let sink = Arc::new(
        OneDriveSink::builder(Arc::new(StaticToken::new("demo-token")))
            .with_base_url(graph.base_url())
            .with_retry(RetryConfig::fast())
            .build()?,
    );
    let store = Arc::new(JsonFileStateStore::new(state_dir.path()));
    let config = SyncConfig::default()
        .with_start_date(chrono::NaiveDate::from_ymd_opt(2025, 10, 1))
        .with_retry(RetryConfig::fast());
    let syncer = Syncer::new(source.clone(), sink.clone(), store.clone(), config.clone());
    let planner = Syncer::new(
        source.clone(),
        sink.clone(),
        store.clone(),
        config.clone().with_dry_run(true),
    );

    writeln!(out, "== Step 1: the first sync exports everything")?;
    show_plan(&planner, out).await?;
    let first = syncer.run().await?;
    write!(out, "{first}")?;
    show_tree(&graph, out)?;

    // The user tidies up in OneDrive: one file, and one whole month of one account.
    let root = graph.app_path("");
    let relative = |p: &str| p.strip_prefix(&format!("{root}/")).unwrap_or(p).to_owned();
    let tree = graph.tree();
    let file = tree
        .iter()
        .find(|p| p.contains("Pizza"))
        .ok_or("the pizza receipt was not archived")?
        .clone();
    let folder = tree
        .iter()
        .find(|p| p.contains(org::ACCOUNTS[0]) && p.ends_with("/2025-11/"))
        .ok_or("the November folder was not created")?
        .trim_end_matches('/')
        .to_owned();
    let in_folder: Vec<String> = tree
        .iter()
        .filter(|p| p.starts_with(&format!("{folder}/")) && !p.ends_with('/'))
        .cloned()
        .collect();
    if !graph.delete_as_user(&file) || !graph.delete_as_user(&folder) {
        return Err("the fake drive refused the user's deletions".into());
    }
    writeln!(out, "\n== The user deletes, in OneDrive:")?;
    writeln!(out, "  the file   {}", relative(&file))?;
    writeln!(
        out,
        "  the folder {}/ ({} receipts)",
        relative(&folder),
        in_folder.len()
    )?;

    writeln!(
        out,
        "\n== Step 2: the next sync puts the file back and leaves the folder out"
    )?;
    show_plan(&planner, out).await?;
    let second = syncer.run().await?;
    write!(out, "{second}")?;
    show_tree(&graph, out)?;
    // Files over 4 MiB go through an upload session (onedrive-graph.md §3).
    let sessions: u64 = graph
        .requests()
        .per_route
        .iter()
        .filter(|(route, _)| route.ends_with("/createUploadSession"))
        .map(|(_, n)| *n)
        .sum();

    writeln!(
        out,
        "\n== Step 3: a sync with nothing new does nothing (a handful of requests)"
    )?;
    graph.reset_requests();
    qonto.reset_requests();
    let third = syncer.run().await?;
    write!(out, "{third}")?;
    writeln!(
        out,
        "  requests: {} to Qonto, {} to Graph",
        qonto.api_requests().total(),
        graph.requests().total()
    )?;

    let archive: BTreeMap<String, u64> = graph
        .files()
        .into_iter()
        .filter(|(p, _)| p.starts_with(&format!("{root}/")))
        .map(|(p, b)| (relative(&p), b.len() as u64))
        .collect();
    copy_drive(&graph, &root, copy_to)?;
    writeln!(
        out,
        "\nA copy of the archive ({} files) is in {}",
        archive.len(),
        copy_to.display()
    )?;

    writeln!(
        out,
        "\n== Step 4: the accountant's index: a transaction without its receipt"
    )?;
    let accounts = source.accounts().await?;
    let main = accounts.first().ok_or("the demo has no account")?;
    let december = Utc
        .with_ymd_and_hms(2025, 12, 18, 9, 0, 0)
        .single()
        .unwrap_or_default();
    qonto.add_transaction(
        main.id.as_str(),
        NewTransaction::debit(4200, "Garage Martin").emitted_at(december),
    );
    let indexing = Syncer::new(
        source,
        sink,
        store,
        config.with_index(IndexSettings::with_separator(Separator::Comma)),
    );
    let fourth = indexing.run().await?;
    writeln!(out, "  index.csv written: {}", fourth.count("index"))?;
    let files = graph.files();
    let (path, index) = files
        .iter()
        .find(|(p, b)| {
            p.ends_with("/index.csv") && String::from_utf8_lossy(b).contains("Garage Martin")
        })
        .ok_or("no index lists the receipt-less transaction")?;
    writeln!(out, "  {}:", relative(path))?;
    for line in String::from_utf8_lossy(index)
        .trim_start_matches('\u{feff}')
        .lines()
    {
        writeln!(out, "    {line}")?;
    }

    Ok(Outcome {
        archive,
        put_back: relative(&file),
        deleted_folder: relative(&folder),
        tombstoned: second.count("tombstone"),
        upload_sessions: sessions,
        receipts: seeded.len(),
        complete: first.is_complete() && second.is_complete() && third.is_complete(),
    })
}

/// Prints the dry run's plan: every action with its reason.
async fn show_plan(planner: &Syncer, out: &mut dyn Write) -> DemoResult<()> {
    let report = planner.run().await?;
    if let Some(stop) = report.stopped {
        return Err(stop.into());
    }
    match report.plan {
        Some(plan) => write!(out, "{plan}")?,
        None => writeln!(out, "(no plan)")?,
    }
    Ok(())
}

/// Prints the archive as an indented tree, with file sizes.
fn show_tree(graph: &FakeGraph, out: &mut dyn Write) -> DemoResult<()> {
    let root = format!("{}/", graph.app_path(""));
    let files = graph.files();
    writeln!(out, "Archive (OneDrive, {root}):")?;
    for path in graph.tree() {
        let Some(rel) = path.strip_prefix(&root) else {
            continue;
        };
        let trimmed = rel.trim_end_matches('/');
        if trimmed.is_empty() {
            continue;
        }
        let depth = trimmed.matches('/').count();
        let name = trimmed.rsplit('/').next().unwrap_or(trimmed);
        let indent = "  ".repeat(depth + 1);
        match files.get(&path) {
            Some(bytes) => writeln!(out, "{indent}{name}  [{}]", human(bytes.len() as u64))?,
            None => writeln!(out, "{indent}{name}/")?,
        }
    }
    Ok(())
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
        b if b >= 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// Writes every file under the archive root to `dir`, which is cleared first.
fn copy_drive(graph: &FakeGraph, root: &str, dir: &Path) -> DemoResult<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    for (path, bytes) in graph.files() {
        let Some(rel) = path.strip_prefix(&format!("{root}/")) else {
            continue;
        };
        let target = rel.split('/').fold(dir.to_path_buf(), |p, n| p.join(n));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(target, &bytes)?;
    }
    Ok(())
}
