//! Real crashes: the `qonto-onedrive` example runs `sync` as a process against the fake
//! Qonto, the fake identity platform and the fake Graph, and is killed with SIGKILL at
//! seeded moments (at least 20 kills while it runs: reading, writing folders, uploading,
//! in the middle of an upload session, saving its state). The bank adds receipts between
//! some kills. Then a clean run finishes, and:
//! - every receipt is in the drive exactly once, with its bytes (so no " 1" copies);
//! - the state file loads and records every receipt;
//! - a second clean run writes nothing.
#![cfg(all(unix, feature = "testkit"))]

mod cli_support;

use cli_support::{World, assert_archived_once};
use receipt_sync::state::{JsonFileStateStore, StateStore};
use std::process::Stdio;
use std::time::Duration;

/// Kills to land while the process runs.
const KILLS: usize = 24;
/// The seed of the kill moments; `CRASH_SEED` replays or explores another.
fn seed() -> u64 {
    std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_c0de)
}

/// Starts `sync` and kills it once the fake Graph has answered `requests` more
/// requests, then `delay` later; whether it was still running then.
async fn sync_killed(world: &World, requests: u64, delay: Duration) -> bool {
    let before = world.graph.requests().total();
    let mut child = world
        .env()
        .command(&["sync", "--json"])
        .await
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while world.graph.requests().total() - before < requests
        && child.try_wait().unwrap().is_none()
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(delay).await;
    let running = child.try_wait().unwrap().is_none();
    // `start_kill` sends SIGKILL on Unix.
    let _ = child.start_kill();
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("a killed process ends")
        .unwrap();
    running
}

/// Seeded kill moments (xorshift): after how many more Graph requests, and how long
/// after that. A quarter of them land before any Graph request (starting, reading the
/// bank, scanning), the others anywhere in the writes.
fn kill_moments(seed: u64) -> impl Iterator<Item = (u64, Duration)> {
    let mut state = seed;
    std::iter::from_fn(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        Some(state)
    })
    .enumerate()
    .map(|(i, r)| {
        let requests = if i % 4 == 0 { 0 } else { 1 + r % 14 };
        (requests, Duration::from_millis((r >> 32) % 8))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_moments_then_a_clean_run_archives_everything_once() {
    let mut world = World::start().await;
    cli_support::indexcmd::without_indexes(world.home.path());
    cli_support::binary().await;
    // The sign-in's first refresh (which rotates the refresh token the environment gives)
    // is saved by a clean run first: a kill between Microsoft's rotation and the save
    // would leave no usable token at all, which no sync can repair, and is the sign-in's
    // concern (tests/auth_refresh.rs), not the archive's. The kills below land in syncs.
    let status = world
        .env()
        .command(&["status"])
        .await
        .output()
        .await
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let mut landed = 0;
    let mut log = Vec::new();
    for (attempt, (requests, delay)) in kill_moments(seed()).enumerate() {
        if landed >= KILLS {
            break;
        }
        assert!(attempt < KILLS * 3, "too few kills landed: {log:?}");
        let before = world.graph.requests().total();
        let running = sync_killed(&world, requests, delay).await;
        landed += usize::from(running);
        log.push(format!(
            "{requests}+{}ms:{}:{}",
            delay.as_millis(),
            if running { "killed" } else { "finished" },
            world.graph.requests().total() - before
        ));
        // The bank goes on meanwhile, so every run has receipts to copy.
        for i in 0..8 {
            let size = if (attempt + i) % 20 == 9 {
                5 * 1024 * 1024
            } else {
                900 + 57 * attempt
            };
            world.add_receipt(size);
        }
    }
    eprintln!(
        "seed {}: kills (after requests+delay:outcome:Graph requests): {}",
        seed(),
        log.join(" ")
    );

    let (code, stdout, stderr) = world.sync().await;
    assert_eq!(code, 0, "the clean run: {stdout}\n{stderr}");

    let archived = world.archived();
    assert_archived_once(&world);

    let state = JsonFileStateStore::new(world.home.path().join("state"))
        .load()
        .await
        .expect("the state file reads")
        .expect("a state");
    assert_eq!(state.exported.len(), world.expected.len());

    let (code, stdout, _) = world.sync().await;
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        report["done"],
        serde_json::json!({}),
        "a second run writes nothing"
    );
    assert_eq!(archived, world.archived());
}
