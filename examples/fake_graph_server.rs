//! The fake Graph (feature `testkit`) as a standalone loopback server, for measuring
//! other OneDrive clients (rclone) against the same server as receipt-sync.
//!
//! ```text
//! cargo run --release --example fake_graph_server
//! ```
//!
//! It prints one JSON line with its URLs (`base_url` for receipt-sync, `tenant_url` and
//! `drive_id` for rclone's `tenant_url` setting, dependencies.md §7), then serves until
//! its standard input closes. Commands, one per line on standard input, each answered by
//! one JSON line: `requests` (served so far, per route), `reset` (forget them), `files`
//! (files stored: count and bytes), `quit`.

use receipt_sync::testkit::fake_graph::FakeGraph;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let graph = FakeGraph::start().await?;
    let api = graph.api_server().url();
    println!(
        "{}",
        json!({
            "base_url": graph.base_url(),
            "sharepoint_url": graph.sharepoint_url(),
            "tenant_url": format!("{api}/_api"),
            "drive_id": graph.drive_id(),
            "upload_url": graph.upload_server().url(),
        })
    );
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let answer = match line.trim() {
            "requests" => {
                let log = graph.requests();
                json!({ "total": log.total(), "per_route": log.per_route })
            }
            "reset" => {
                graph.reset_requests();
                json!({ "reset": true })
            }
            "files" => {
                let files = graph.files();
                let bytes: usize = files.values().map(|b| b.len()).sum();
                json!({ "count": files.len(), "bytes": bytes })
            }
            "quit" => break,
            other => json!({ "error": format!("unknown command {other:?}") }),
        };
        println!("{answer}");
    }
    Ok(())
}
