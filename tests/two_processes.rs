//! Two processes on one `RECEIPT_SYNC_HOME` never sync at once: while one `sync` runs,
//! a second one exits at once with code 6 ("another sync is running") and touches
//! nothing; the first finishes the job alone. A holder killed with SIGKILL releases the
//! lock with its process, so the next sync runs.
#![cfg(all(unix, feature = "testkit"))]

mod cli_support;

use cli_support::{World, assert_archived_once};
use std::process::Stdio;
use std::time::Duration;

/// Starts `sync` and waits until it has begun writing (the Graph has seen requests).
async fn running_sync(world: &World) -> tokio::process::Child {
    let before = world.graph.requests().total();
    let mut child = world
        .env()
        .command(&["sync", "--json"])
        .await
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while world.graph.requests().total() == before {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the first sync ended too soon"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first sync never started"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_on_the_same_home_refuses_to_run() {
    let world = World::start().await;
    cli_support::indexcmd::without_indexes(world.home.path());
    // Slow enough that the first sync is still running when the second starts.
    world
        .graph
        .api_server()
        .set_latency(Duration::from_millis(8));
    let first = running_sync(&world).await;

    let writes_before = world.graph.requests().total();
    let (code, stdout, stderr) = world.sync().await;
    assert_eq!(code, 6, "the second sync: {stdout}\n{stderr}");
    assert!(
        stderr.contains("another sync is running on the same state"),
        "the message says why: {stderr}"
    );
    assert!(stdout.trim().is_empty() || stdout.contains("another sync is running"));
    assert!(
        world.graph.requests().total() - writes_before < 50,
        "only the first sync works meanwhile"
    );

    let out = tokio::time::timeout(Duration::from_secs(120), first.wait_with_output())
        .await
        .expect("the first sync ends")
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_archived_once(&world);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_releases_the_lock() {
    let world = World::start().await;
    cli_support::indexcmd::without_indexes(world.home.path());
    let mut first = running_sync(&world).await;
    // `start_kill` sends SIGKILL on Unix: no destructor runs, the kernel drops the lock.
    first.start_kill().unwrap();
    first.wait().await.unwrap();

    let (code, stdout, stderr) = world.sync().await;
    assert_eq!(code, 0, "the next sync runs: {stdout}\n{stderr}");
    assert_archived_once(&world);
}
