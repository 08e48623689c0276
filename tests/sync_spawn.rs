//! A sync pass is a `Send + 'static` future once it owns its syncer: it can be
//! spawned on a multi-threaded runtime, several at once, and so can `reset` and the
//! daily schedule. These tests fail to compile when that stops being true.
#![cfg(feature = "testkit")]

use chrono::{NaiveDate, NaiveTime};
use receipt_sync::sink::InMemorySink;
use receipt_sync::source::InMemorySource;
use receipt_sync::state::{InMemoryStateStore, StateStore};
use receipt_sync::sync::{SyncConfig, Syncer, run_daily};
use std::sync::Arc;
use std::time::Duration;

/// One organisation: its bank with `receipts` receipts, its drive, its state.
struct Org {
    drive: InMemorySink,
    store: InMemoryStateStore,
    syncer: Syncer,
}

fn org(receipts: usize) -> Org {
    let bank = InMemorySource::new();
    let account = bank.add_account_named("acc", "Main");
    let day = NaiveDate::from_ymd_opt(2026, 4, 7).unwrap_or_default();
    for i in 0..receipts {
        let receipt = InMemorySource::receipt(&format!("r{i}"), &account, day, "Shop", -100);
        bank.add_receipt(receipt, format!("bytes of r{i}"));
    }
    let drive = InMemorySink::new();
    let store = InMemoryStateStore::new();
    let syncer = Syncer::new(
        Arc::new(bank),
        Arc::new(drive.clone()),
        Arc::new(store.clone()),
        SyncConfig::default().with_concurrency(3),
    );
    Org {
        drive,
        store,
        syncer,
    }
}

/// Spawns `future` on the runtime: the compile-time check that it is `Send + 'static`.
fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_passes_run_at_once_on_a_multi_threaded_runtime() {
    let orgs: Vec<Org> = (1..=6).map(|n| org(n * 5)).collect();
    let mut passes = Vec::new();
    let mut checks = Vec::new();
    for (n, org) in orgs.into_iter().enumerate() {
        let Org {
            drive,
            store,
            syncer,
        } = org;
        passes.push(spawn(async move { syncer.run().await }));
        checks.push(((n + 1) * 5, drive, store));
    }
    for (pass, (expected, drive, store)) in passes.into_iter().zip(checks) {
        let report = pass
            .await
            .expect("the pass ran to its end")
            .expect("a report");
        assert!(report.is_complete(), "{report}");
        assert_eq!(report.count("upload"), expected);
        assert_eq!(drive.files().len(), expected);
        let state = store.load().await.unwrap().expect("a saved state");
        assert_eq!(state.exported.len(), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_and_the_daily_schedule_are_spawnable_too() {
    let Org {
        drive,
        store,
        syncer,
    } = org(3);
    let syncer = Arc::new(syncer);

    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<usize>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daily = {
        let syncer = syncer.clone();
        let mut first_tx = Some(first_tx);
        spawn(async move {
            let at = NaiveTime::from_hms_opt(23, 30, 0).unwrap_or_default();
            let on_pass = move |pass: receipt_sync::sync::Pass| {
                let uploads = pass.report.map(|r| r.count("upload"));
                if let Some(tx) = first_tx.take() {
                    let _ = tx.send(uploads.unwrap_or(0));
                }
                std::ops::ControlFlow::Continue(())
            };
            let shutdown = async {
                let _ = stop_rx.await;
            };
            run_daily(
                &syncer,
                at,
                chrono_tz::Europe::Paris,
                chrono::Utc::now,
                on_pass,
                shutdown,
            )
            .await;
        })
    };
    let uploaded = tokio::time::timeout(Duration::from_secs(10), first_rx)
        .await
        .expect("the first pass runs at once")
        .expect("it reports");
    assert_eq!(uploaded, 3);
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), daily)
        .await
        .expect("the schedule stops on shutdown")
        .expect("it did not panic");

    let reset = {
        let syncer = syncer.clone();
        spawn(async move { syncer.reset().await })
    };
    reset.await.expect("reset ran").expect("reset succeeded");
    let state = store.load().await.unwrap().expect("a saved state");
    assert!(state.exported.is_empty(), "reset forgot the export records");
    assert_eq!(drive.files().len(), 3, "and touched no file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edges_futures_are_spawnable() {
    use receipt_sync::model::{ArchivePath, Body};
    use receipt_sync::sink::ArchiveSink;
    use receipt_sync::source::{ReceiptQuery, ReceiptSource};

    let bank = InMemorySource::new();
    let account = bank.add_account_named("acc", "Main");
    let day = NaiveDate::from_ymd_opt(2026, 4, 7).unwrap_or_default();
    let receipt = bank.add_receipt(
        InMemorySource::receipt("r0", &account, day, "Shop", -100),
        "bytes of r0",
    );
    let source: Arc<dyn ReceiptSource> = Arc::new(bank);
    let sink: Arc<dyn ArchiveSink> = Arc::new(InMemorySink::new());
    let store: Arc<dyn StateStore> = Arc::new(InMemoryStateStore::new());

    let accounts = {
        let source = source.clone();
        spawn(async move { source.accounts().await })
    };
    assert_eq!(accounts.await.unwrap().unwrap().len(), 1);
    let listing = source.receipts(&account, &ReceiptQuery::all());
    let events = spawn(async move { futures::StreamExt::collect::<Vec<_>>(listing).await });
    assert!(!events.await.unwrap().is_empty());
    let bytes = {
        let source = source.clone();
        spawn(async move { source.open(&receipt).await?.collect("r0").await })
    };
    assert_eq!(bytes.await.unwrap().unwrap(), b"bytes of r0");

    let folder = ArchivePath::parse("Main").unwrap();
    let file = folder.join("r0.pdf").unwrap();
    let written = {
        let sink = sink.clone();
        spawn(async move {
            sink.create_folder(&folder).await?;
            sink.write_file(&file, Body::from_bytes("r0")).await?;
            sink.scan(None).await
        })
    };
    written.await.unwrap().unwrap();
    let quota = {
        let sink = sink.clone();
        spawn(async move { sink.quota().await })
    };
    quota.await.unwrap().unwrap();

    let stored = {
        let store = store.clone();
        spawn(async move {
            let _lock = store.lock().await?;
            store
                .save(&receipt_sync::state::SyncState::default())
                .await?;
            store.record(&[]).await?;
            store.load().await
        })
    };
    assert!(stored.await.unwrap().unwrap().is_some());
}

/// Compile-time only: the futures the crate hands out beyond the sync (sign-in, tokens,
/// OneDrive sharing, retries) are `Send + 'static` once they own their inputs. Nothing
/// here runs: these need live services, which the other tests fake.
#[allow(dead_code)]
fn the_other_futures_are_spawnable(
    config: receipt_sync::auth::microsoft::MicrosoftAuthConfig,
    provider: Arc<receipt_sync::auth::microsoft::MicrosoftTokenProvider>,
    drive: receipt_sync::sink::OneDriveSink,
    folder: receipt_sync::model::SinkItemId,
) {
    use receipt_sync::auth::microsoft::{
        BrowserSignInOptions, DeviceCodeOptions, sign_in_with_browser, sign_in_with_device_code,
    };
    {
        let config = config.clone();
        spawn(async move {
            sign_in_with_browser(&config, &BrowserSignInOptions::default(), |_| {}).await
        });
    }
    spawn(
        async move { sign_in_with_device_code(&config, &DeviceCodeOptions::default(), |_| {}).await },
    );
    {
        let provider = provider.clone();
        spawn(async move { provider.granted_scopes().await });
    }
    spawn(async move { provider.disconnect().await });
    spawn(async move {
        drive.share_link(&folder).await?;
        drive.shares(&folder).await
    });
    spawn(async move {
        receipt_sync::http::RetryConfig::default()
            .retry(|_| async { Ok::<_, receipt_sync::Error>(()) })
            .await
    });
}
