//! The client side of the memory benchmark and of the rclone comparison, run in its own
//! process so that its peak resident memory (`VmHWM`) is the client's alone, not the
//! fake servers'.
//!
//! Needs: a Graph-compatible server (for example `examples/fake_graph_server.rs`) and,
//! for `sync`, a Qonto-compatible one. Linux only for the memory figure (`/proc`).
//!
//! ```text
//! # archive every receipt of a Qonto into a OneDrive, through the Syncer:
//! cargo run --release --example bench_upload -- sync <qonto-url> <login> <secret-key> <graph-url> [concurrency]
//! # upload every file of a local folder into folder <name> of a OneDrive app folder:
//! cargo run --release --example bench_upload -- dir <folder> <graph-url> <name> [concurrency]
//! ```
//!
//! `<graph-url>` is the Graph base, e.g. `http://127.0.0.1:8080/v1.0`. It prints one JSON
//! line: files uploaded, bytes, wall time in ms and the peak resident memory in KiB.

use futures::{StreamExt, TryStreamExt};
use receipt_sync::auth::StaticToken;
use receipt_sync::http::RetryConfig;
use receipt_sync::model::{ArchivePath, Body};
use receipt_sync::sink::{ArchiveSink, OneDriveSink};
use receipt_sync::source::qonto::{QontoAuth, QontoRateLimit, QontoSourceBuilder};
use receipt_sync::state::InMemoryStateStore;
use receipt_sync::sync::{SyncConfig, Syncer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

type Failure = Box<dyn std::error::Error>;

/// Peak resident set size of this process, in KiB (`VmHWM` in `/proc/self/status`).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn sink(graph_url: &str) -> receipt_sync::Result<OneDriveSink> {
    OneDriveSink::builder(Arc::new(StaticToken::new("bench-token")))
        .with_base_url(graph_url)
        .with_retry(RetryConfig::fast())
        .build()
}

fn concurrency(arg: Option<&String>) -> Result<usize, Failure> {
    Ok(arg.map(|c| c.parse()).transpose()?.unwrap_or(8))
}

/// The Syncer from a Qonto into a OneDrive: returns (files, bytes).
async fn sync(args: &[String]) -> Result<(u64, u64), Failure> {
    let [qonto, login, secret, graph, rest @ ..] = args else {
        return Err("sync <qonto-url> <login> <secret-key> <graph-url> [concurrency]".into());
    };
    let source = QontoSourceBuilder::new(QontoAuth::api_key(login.as_str(), secret.as_str()))
        .with_base_url(qonto)
        .with_retry(RetryConfig::fast())
        .with_rate_limit(QontoRateLimit::unlimited())
        .build()?;
    let syncer = Syncer::new(
        Arc::new(source),
        Arc::new(sink(graph)?),
        Arc::new(InMemoryStateStore::new()),
        SyncConfig::default().with_concurrency(concurrency(rest.first())?),
    );
    let report = syncer.run().await?;
    if !report.is_complete() {
        return Err(format!("the sync did not complete: {report:?}").into());
    }
    Ok((report.count("upload") as u64, report.bytes_written))
}

/// The files directly in `folder`, sorted.
fn files_in(folder: &Path) -> Result<Vec<(PathBuf, String, u64)>, Failure> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_file() {
            let name = entry
                .file_name()
                .into_string()
                .map_err(|_| "a non-UTF-8 name")?;
            files.push((entry.path(), name, meta.len()));
        }
    }
    files.sort();
    Ok(files)
}

/// A file as a streamed body: never all in memory.
async fn body_of(path: &Path, len: u64) -> receipt_sync::Result<Body> {
    let io = |source| receipt_sync::Error::Io {
        operation: "read",
        path: path.to_owned(),
        source,
    };
    let file = tokio::fs::File::open(path).await.map_err(io)?;
    let owned = path.to_owned();
    let stream =
        tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map_err(move |source| {
            receipt_sync::Error::Io {
                operation: "read",
                path: owned.clone(),
                source,
            }
        });
    Ok(Body::new(len, stream.boxed()))
}

/// Every file of a folder into one folder of the archive: returns (files, bytes).
async fn dir(args: &[String]) -> Result<(u64, u64), Failure> {
    let [folder, graph, name, rest @ ..] = args else {
        return Err("dir <folder> <graph-url> <name> [concurrency]".into());
    };
    let sink = sink(graph)?;
    let target = ArchivePath::parse(name.as_str())?;
    sink.create_folder(&target).await?;
    let files = files_in(Path::new(folder))?;
    let bytes = files.iter().map(|(_, _, len)| len).sum();
    let count = files.len() as u64;
    let (sink, target) = (&sink, &target);
    futures::stream::iter(files)
        .map(|(path, file_name, len)| async move {
            let body = body_of(&path, len).await?;
            let path = target
                .join(&file_name)
                .map_err(|e| receipt_sync::Error::Config(e.to_string()))?;
            sink.write_file(&path, body).await
        })
        .buffer_unordered(concurrency(rest.first())?)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok((count, bytes))
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let started = Instant::now();
    let (files, bytes) = match args.split_first() {
        Some((mode, rest)) if mode == "sync" => sync(rest).await?,
        Some((mode, rest)) if mode == "dir" => dir(rest).await?,
        _ => {
            return Err(
                "usage: bench_upload sync … | bench_upload dir … (see the file's docs)".into(),
            );
        }
    };
    let wall = started.elapsed();
    println!(
        "{}",
        serde_json::json!({
            "files": files,
            "bytes": bytes,
            "wall_ms": wall.as_secs_f64() * 1000.0,
            "peak_rss_kib": peak_rss_kib(),
        })
    );
    Ok(())
}
