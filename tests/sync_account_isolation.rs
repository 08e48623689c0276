//! One bank account whose listing breaks (a login page, a 5xx that outlasts the
//! retries, a page that cannot be decoded) leaves the other accounts to be read and
//! archived; the broken one is reported, keeps everything it had, and is read again
//! next time. A refusal on every account, or an error no account can get past, still
//! stops the run. Likewise an account list or a free-space check that cannot be read
//! holds nothing back.
#![cfg(feature = "testkit")]

use async_trait::async_trait;
use chrono::NaiveDate;
use futures::StreamExt;
use receipt_sync::http::RetryConfig;
use receipt_sync::model::{AccountId, BankAccount, Body, Receipt};
use receipt_sync::model::{ArchivePath, ScanCursor, ScanUpdate, SinkEntry, SinkItemId};
use receipt_sync::sink::{ArchiveSink, InMemorySink, Quota, SinkCapabilities};
use receipt_sync::source::{InMemorySource, ReceiptQuery, ReceiptSource, ReceiptStream};
use receipt_sync::state::{InMemoryStateStore, StateStore, SyncState};
use receipt_sync::sync::{SyncConfig, SyncReport, Syncer};
use receipt_sync::testkit::fake_qonto::{FakeQonto, Fault};
use receipt_sync::{Error, ErrorKind, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The real Qonto source against the fake Qonto: whichever of the two accounts gets
/// the fault is reported, and the other one is archived in full.
#[tokio::test]
async fn a_broken_qonto_listing_leaves_the_other_account_archived() {
    for fault in [
        Fault::HtmlPage,
        Fault::ServerError(503),
        Fault::Truncated,
        Fault::Drop,
    ] {
        let fake = FakeQonto::start().await.unwrap();
        let main = fake.add_account("Main");
        let travel = fake.add_account("Travel");
        fake.add_receipts(&main.id, 3, 40);
        fake.add_receipts(&travel.id, 3, 50);
        // No retry: the one fault injected is the listing's last word.
        let source = fake
            .source_builder()
            .with_retry(RetryConfig::none())
            .build()
            .unwrap();
        let drive = InMemorySink::new();
        let store = InMemoryStateStore::new();
        let syncer = Syncer::new(
            Arc::new(source),
            Arc::new(drive.clone()),
            Arc::new(store.clone()),
            SyncConfig::default().with_retry(RetryConfig::none()),
        );
        fake.inject("GET /v2/transactions", fault.clone());

        let report = syncer.run().await.unwrap();
        assert!(report.stopped.is_none(), "{fault:?}: {report}");
        assert!(!report.is_complete(), "{fault:?}");
        assert_eq!(report.unread_accounts.len(), 1, "{fault:?}: {report}");
        assert_eq!(report.failures.len(), 1, "the listing's error: {report}");
        let unread = &report.unread_accounts[0];
        let read = if unread.name == "Main" {
            "Travel"
        } else {
            "Main"
        };
        assert_eq!(report.count("upload"), 3, "{fault:?}: {report}");
        let files = drive.files();
        assert!(
            files
                .iter()
                .all(|(path, _)| path.as_str().starts_with(read)),
            "{fault:?}: only the account that was read is archived: {}",
            drive.tree()
        );
        assert!(report.to_string().contains("could not be read"), "{report}");

        // The next run reads the account again and archives the rest, nothing twice.
        let again = syncer.run().await.unwrap();
        assert!(again.is_complete(), "{fault:?}: {again}");
        assert_eq!(again.count("upload"), 3, "{fault:?}: {again}");
        assert_eq!(drive.files().len(), 6);
        let state = store.load().await.unwrap().unwrap();
        assert!(state.tombstones.is_empty());
    }
}

/// A bank whose listing of some accounts fails at once with a chosen error.
#[derive(Clone, Debug, Default)]
struct Bank {
    inner: InMemorySource,
    broken: Arc<Mutex<HashMap<AccountId, ErrorKind>>>,
    list_fails: Arc<AtomicBool>,
}

impl Bank {
    fn new() -> Self {
        let bank = Self::default();
        bank.inner.add_account_named("main", "Main");
        bank.inner.add_account_named("travel", "Travel");
        bank
    }

    fn add(&self, account: &str, n: usize) {
        let day = NaiveDate::from_ymd_opt(2026, 5, 4).unwrap();
        let id = format!("{account}-{n}");
        let receipt =
            InMemorySource::receipt(&id, &AccountId::new(account), day, "Shop", -100 - n as i64);
        self.inner.add_receipt(receipt, format!("bytes of {id}"));
    }

    fn break_account(&self, account: &str, kind: Option<ErrorKind>) {
        let mut broken = self.broken.lock().unwrap();
        match kind {
            Some(kind) => broken.insert(AccountId::new(account), kind),
            None => broken.remove(&AccountId::new(account)),
        };
    }
}

fn error_of(kind: ErrorKind) -> Error {
    match kind {
        ErrorKind::Unauthorized => Error::Unauthorized {
            service: "bank",
            hint: "an HTML page where JSON was expected".into(),
        },
        ErrorKind::Forbidden => Error::Forbidden {
            service: "bank",
            detail: "this membership cannot see the account".into(),
        },
        ErrorKind::Cancelled => Error::Cancelled,
        ErrorKind::Transient => Error::Transient {
            service: "bank",
            operation: "list transactions".into(),
            message: "HTTP 503".into(),
            retry_after: None,
        },
        _ => Error::Malformed {
            service: "bank",
            field: "transactions".into(),
            detail: "expected an array".into(),
        },
    }
}

#[async_trait]
impl ReceiptSource for Bank {
    async fn accounts(&self) -> Result<Vec<BankAccount>> {
        if self.list_fails.load(Ordering::SeqCst) {
            return Err(error_of(ErrorKind::Transient));
        }
        self.inner.accounts().await
    }

    fn receipts(&self, account: &AccountId, query: &ReceiptQuery) -> ReceiptStream {
        match self.broken.lock().unwrap().get(account) {
            Some(&kind) => futures::stream::once(async move { Err(error_of(kind)) }).boxed(),
            None => self.inner.receipts(account, query),
        }
    }

    async fn open(&self, receipt: &Receipt) -> Result<Body> {
        self.inner.open(receipt).await
    }
}

struct World {
    bank: Bank,
    drive: InMemorySink,
    store: InMemoryStateStore,
}

impl World {
    fn new() -> Self {
        let world = Self {
            bank: Bank::new(),
            drive: InMemorySink::new(),
            store: InMemoryStateStore::new(),
        };
        for n in 0..3 {
            world.bank.add("main", n);
            world.bank.add("travel", n);
        }
        world
    }

    async fn sync(&self) -> SyncReport {
        self.sync_into(Arc::new(self.drive.clone())).await
    }

    async fn sync_into(&self, drive: Arc<dyn ArchiveSink>) -> SyncReport {
        Syncer::new(
            Arc::new(self.bank.clone()),
            drive,
            Arc::new(self.store.clone()),
            // A whole read every time: an interrupted one must not count as done.
            SyncConfig::default()
                .with_retry(RetryConfig::none())
                .with_full_read_every(Some(chrono::TimeDelta::zero())),
        )
        .run()
        .await
        .unwrap()
    }

    async fn state(&self) -> SyncState {
        self.store.load().await.unwrap().unwrap()
    }

    /// Files in the account folder whose name starts with `account`.
    fn files_of(&self, account: &str) -> usize {
        self.drive
            .files()
            .iter()
            .filter(|(path, _)| path.as_str().starts_with(account))
            .count()
    }
}

#[tokio::test]
async fn an_unreadable_account_keeps_what_it_archived_and_tombstones_nothing() {
    for kind in [
        ErrorKind::Malformed,
        ErrorKind::Transient,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
    ] {
        let world = World::new();
        assert!(world.sync().await.is_complete());
        let before = world.state().await;
        let travel = AccountId::new("travel");

        for n in 3..5 {
            world.bank.add("main", n);
            world.bank.add("travel", n);
        }
        world.bank.break_account("travel", Some(kind));
        let report = world.sync().await;
        assert!(report.stopped.is_none(), "{kind:?}: {report}");
        assert_eq!(report.count("upload"), 2, "{kind:?}: Main's new receipts");
        assert_eq!(world.files_of("Main"), 5);
        assert_eq!(world.files_of("Travel"), 3, "{kind:?}: kept as it was");
        let unread: Vec<_> = report.unread_accounts.iter().map(|u| &u.account).collect();
        assert_eq!(unread, vec![&travel], "{kind:?}");
        assert_eq!(report.unread_accounts[0].kind, kind);
        assert_eq!(report.unread_accounts[0].name, "Travel");
        assert!(!report.is_complete());

        let state = world.state().await;
        assert!(state.tombstones.is_empty(), "{kind:?}");
        assert!(state.vanished.is_empty(), "{kind:?}");
        assert_eq!(
            state.watermarks.get(&travel),
            before.watermarks.get(&travel)
        );
        assert_eq!(
            state.accounts[&travel].full_read_at, before.accounts[&travel].full_read_at,
            "{kind:?}: a broken whole read is not a finished one"
        );
        for (id, record) in &before.exported {
            assert_eq!(state.exported.get(id), Some(record), "{kind:?}: {id}");
        }

        world.bank.break_account("travel", None);
        let healed = world.sync().await;
        assert!(healed.is_complete(), "{kind:?}: {healed}");
        assert_eq!(
            healed.count("upload"),
            2,
            "{kind:?}: Travel's new ones, once"
        );
        assert_eq!(world.drive.files().len(), 10);
    }
}

#[tokio::test]
async fn a_refusal_on_every_account_still_stops_the_run() {
    for kind in [ErrorKind::Unauthorized, ErrorKind::Forbidden] {
        let world = World::new();
        world.bank.break_account("main", Some(kind));
        world.bank.break_account("travel", Some(kind));
        let report = world.sync().await;
        let stopped = report.stopped.as_ref().map(Error::kind);
        assert_eq!(stopped, Some(kind), "{report}");
        assert_eq!(report.count("upload"), 0);
        assert!(world.drive.files().is_empty());
    }
}

#[tokio::test]
async fn an_error_no_account_can_get_past_stops_the_run_at_once() {
    let world = World::new();
    world
        .bank
        .break_account("travel", Some(ErrorKind::Cancelled));
    let report = world.sync().await;
    let stopped = report.stopped.as_ref().map(Error::kind);
    assert_eq!(stopped, Some(ErrorKind::Cancelled), "{report}");
    assert_eq!(report.count("upload"), 0);
}

#[tokio::test]
async fn an_account_list_that_cannot_be_read_reads_the_accounts_of_the_last_run() {
    let world = World::new();
    world.bank.list_fails.store(true, Ordering::SeqCst);
    let first = world.sync().await;
    let stopped = first.stopped.as_ref().map(Error::kind);
    assert_eq!(
        stopped,
        Some(ErrorKind::Transient),
        "no account known yet: {first}"
    );

    world.bank.list_fails.store(false, Ordering::SeqCst);
    assert!(world.sync().await.is_complete());
    for n in 3..5 {
        world.bank.add("main", n);
        world.bank.add("travel", n);
    }
    world.bank.list_fails.store(true, Ordering::SeqCst);
    let report = world.sync().await;
    assert!(report.stopped.is_none(), "{report}");
    assert_eq!(report.count("upload"), 4, "{report}");
    assert_eq!(report.failures.len(), 1, "the list's failure: {report}");
    assert!(!report.is_complete());

    world.bank.list_fails.store(false, Ordering::SeqCst);
    let quiet = world.sync().await;
    assert!(quiet.is_complete(), "{quiet}");
    assert_eq!(quiet.count("upload"), 0);
}

/// A drive whose free space cannot be read.
#[derive(Debug)]
struct QuotaUnknown(InMemorySink);

#[async_trait]
impl ArchiveSink for QuotaUnknown {
    fn capabilities(&self) -> SinkCapabilities {
        self.0.capabilities()
    }

    async fn scan(&self, cursor: Option<&ScanCursor>) -> Result<ScanUpdate> {
        self.0.scan(cursor).await
    }

    async fn create_folder(&self, path: &ArchivePath) -> Result<SinkEntry> {
        self.0.create_folder(path).await
    }

    async fn write_file(&self, path: &ArchivePath, body: Body) -> Result<SinkEntry> {
        self.0.write_file(path, body).await
    }

    async fn rename_folder(
        &self,
        id: &SinkItemId,
        path: &ArchivePath,
        new_name: &str,
    ) -> Result<SinkEntry> {
        self.0.rename_folder(id, path, new_name).await
    }

    async fn quota(&self) -> Result<Option<Quota>> {
        Err(Error::Transient {
            service: "drive",
            operation: "read the quota".into(),
            message: "HTTP 503".into(),
            retry_after: None,
        })
    }
}

#[tokio::test]
async fn a_free_space_check_that_cannot_be_read_does_not_stop_the_run() {
    let world = World::new();
    assert!(world.drive.capabilities().quota);
    let report = world
        .sync_into(Arc::new(QuotaUnknown(world.drive.clone())))
        .await;
    assert!(report.is_complete(), "{report}");
    assert_eq!(report.count("upload"), 6);

    // A drive that is full all the same still stops the run, at its first write.
    let full = World::new();
    let drive = InMemorySink::new().with_quota(10);
    let report = full.sync_into(Arc::new(QuotaUnknown(drive.clone()))).await;
    let stopped = report.stopped.as_ref().map(Error::kind);
    assert_eq!(stopped, Some(ErrorKind::QuotaExceeded), "{report}");
    assert!(drive.files().is_empty());
}
