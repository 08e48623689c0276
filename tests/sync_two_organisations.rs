//! Two organisations archiving into one drive, each with its own state: accounts of
//! the same name and IBAN ending never share a folder, a deletion or a reset in one
//! never reaches the other, on every kind of archive. And the two ways existing
//! states stay as they were: an archive made before account tags keeps its folder
//! names, and a state refuses another organisation's accounts.

#![cfg(feature = "testkit")]

#[allow(dead_code)]
mod common;

use chrono::NaiveDate;
use common::drives::{GraphDrive, LocalDrive, TestDrive};
use receipt_sync::ErrorKind;
use receipt_sync::http::RetryConfig;
use receipt_sync::layout::{AccountNaming, LayoutSettings};
use receipt_sync::model::{AccountId, BankAccount, CurrencyCode};
use receipt_sync::sink::InMemorySink;
use receipt_sync::source::InMemorySource;
use receipt_sync::state::{InMemoryStateStore, StateStore, SyncState};
use receipt_sync::sync::{SyncConfig, SyncReport, Syncer};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One organisation: its bank and its own state.
struct Organisation {
    prefix: &'static str,
    bank: InMemorySource,
    store: InMemoryStateStore,
}

impl Organisation {
    /// An organisation whose one account is "Compte principal", IBAN ending 0137, with
    /// three receipts over two months; `prefix` keeps its ids its own.
    fn new(prefix: &'static str) -> Self {
        let bank = InMemorySource::new();
        let account = AccountId::new(format!("{prefix}-main"));
        bank.add_account(BankAccount {
            id: account.clone(),
            name: "Compte principal".into(),
            iban: Some(format!("FR76 {prefix}00 0000 0137")),
            currency: CurrencyCode::EUR,
        });
        for (i, (month, day)) in [(1, 5), (1, 20), (2, 3)].into_iter().enumerate() {
            let id = format!("{prefix}-r{i}");
            let day = NaiveDate::from_ymd_opt(2026, month, day).unwrap();
            let receipt = InMemorySource::receipt(&id, &account, day, "Fournisseur", -1000);
            bank.add_receipt(receipt, format!("receipt {id};").into_bytes());
        }
        Self {
            prefix,
            bank,
            store: InMemoryStateStore::new(),
        }
    }

    fn syncer(&self, drive: &dyn TestDrive, config: SyncConfig) -> Syncer {
        Syncer::new(
            Arc::new(self.bank.clone()),
            drive.sink(),
            Arc::new(self.store.clone()),
            config.with_retry(RetryConfig::fast()),
        )
    }

    async fn sync(&self, drive: &dyn TestDrive) -> SyncReport {
        let report = self
            .syncer(drive, SyncConfig::default())
            .run()
            .await
            .unwrap();
        assert!(report.stopped.is_none(), "{}: {report}", self.prefix);
        report
    }

    fn state(&self) -> SyncState {
        self.store.snapshot().expect("a state")
    }

    /// Its files in the archive, by content: `path` for each receipt found.
    fn files_in(&self, drive: &dyn TestDrive) -> BTreeMap<String, Vec<String>> {
        let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (path, bytes) in drive.files() {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if let Some(id) = text
                .strip_prefix("receipt ")
                .and_then(|t| t.strip_suffix(';'))
                .filter(|id| id.starts_with(&format!("{}-", self.prefix)))
            {
                found.entry(id.to_owned()).or_default().push(path);
            }
        }
        found
    }

    /// The top folder that holds its receipts.
    fn account_folder(&self, drive: &dyn TestDrive) -> String {
        let files = self.files_in(drive);
        let path = files.values().next().expect("an archived receipt");
        path[0].split('/').next().unwrap().to_owned()
    }
}

/// The folders that hold files, with the organisations whose files they hold.
fn owners_by_folder(
    drive: &dyn TestDrive,
    orgs: &[&Organisation],
) -> BTreeMap<String, BTreeSet<&'static str>> {
    let mut owners: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for org in orgs {
        for paths in org.files_in(drive).values() {
            for path in paths {
                let mut folder = String::new();
                for name in path.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
                    if !folder.is_empty() {
                        folder.push('/');
                    }
                    folder.push_str(name);
                    owners.entry(folder.clone()).or_default().insert(org.prefix);
                }
            }
        }
    }
    owners
}

fn assert_every_receipt_once(drive: &dyn TestDrive, org: &Organisation) {
    let files = org.files_in(drive);
    assert_eq!(files.len(), 3, "{}: {files:?}", org.prefix);
    for (id, paths) in &files {
        assert_eq!(
            paths.len(),
            1,
            "{id} archived {} times: {paths:?}",
            paths.len()
        );
    }
}

fn assert_did_nothing(report: &SyncReport) {
    for kind in [
        "upload",
        "adopt",
        "tombstone",
        "rename-folder",
        "create-folder",
    ] {
        assert_eq!(report.count(kind), 0, "{kind}: {report}");
    }
}

async fn two_organisations_stay_apart(drive: &dyn TestDrive) {
    let a = Organisation::new("a");
    let b = Organisation::new("b");
    a.sync(drive).await;
    b.sync(drive).await;
    assert_every_receipt_once(drive, &a);
    assert_every_receipt_once(drive, &b);
    for (folder, owners) in owners_by_folder(drive, &[&a, &b]) {
        assert_eq!(owners.len(), 1, "{folder} holds files of {owners:?}");
    }
    let a_folder = a.account_folder(drive);
    let b_folder = b.account_folder(drive);
    assert!(a_folder.starts_with("Compte principal 0137 "), "{a_folder}");
    assert_ne!(a_folder.to_lowercase(), b_folder.to_lowercase());

    // The user deletes A's account folder: A's receipts are gone for good, B's stay.
    let b_files = b.files_in(drive);
    drive.delete(&a_folder);
    let a_after = a.sync(drive).await;
    let b_after = b.sync(drive).await;
    assert_eq!(a_after.count("tombstone"), 3, "{a_after}");
    assert_eq!(a.state().tombstones.len(), 3);
    assert!(
        b.state().tombstones.is_empty(),
        "B lost receipts to A's deletion"
    );
    assert_did_nothing(&b_after);
    assert_eq!(b.files_in(drive), b_files, "B's archive is whole");

    // A reset of A brings A's receipts back and leaves B's archive as it is.
    a.syncer(drive, SyncConfig::default())
        .reset()
        .await
        .unwrap();
    let a_back = a.sync(drive).await;
    assert_eq!(a_back.count("upload"), 3, "{a_back}");
    assert_every_receipt_once(drive, &a);
    assert_did_nothing(&b.sync(drive).await);
    assert_eq!(b.files_in(drive), b_files);
    // Neither state records the other's files.
    let a_files: BTreeSet<_> = a
        .state()
        .exported
        .values()
        .map(|r| r.path.to_string())
        .collect();
    let b_paths: BTreeSet<_> = b_files.values().flatten().cloned().collect();
    assert!(a_files.is_disjoint(&b_paths), "{a_files:?} {b_paths:?}");
}

#[tokio::test]
async fn two_organisations_stay_apart_in_memory() {
    two_organisations_stay_apart(&InMemorySink::new()).await;
}

#[tokio::test]
async fn two_organisations_stay_apart_without_ids() {
    two_organisations_stay_apart(&InMemorySink::new().without_ids()).await;
}

#[tokio::test]
async fn two_organisations_stay_apart_in_a_local_folder() {
    two_organisations_stay_apart(&LocalDrive::new()).await;
}

#[tokio::test]
async fn two_organisations_stay_apart_on_onedrive() {
    two_organisations_stay_apart(&GraphDrive::new().await).await;
}

/// A state written before account tags existed: its settings have no naming.
fn as_written_before_account_tags(state: &SyncState) -> SyncState {
    let mut value = serde_json::to_value(state).unwrap();
    let layout = value["settings"]["layout"].as_object_mut().unwrap();
    assert!(layout.remove("account_naming").is_some());
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn an_archive_made_before_account_tags_keeps_its_folders_and_moves_nothing() {
    let drive = InMemorySink::new();
    let org = Organisation::new("a");
    let old_layout = LayoutSettings {
        account_naming: AccountNaming::NameAndIban,
        ..LayoutSettings::default()
    };
    org.syncer(&drive, SyncConfig::default().with_layout(old_layout))
        .run()
        .await
        .unwrap();
    let before = drive.files();
    assert!(
        before
            .iter()
            .all(|(p, _)| p.as_str().starts_with("Compte principal 0137/")),
        "{before:?}"
    );
    let old = as_written_before_account_tags(&org.state());
    org.store.save(&old).await.unwrap();
    // A run of today, asking for nothing, and one asking for the (tagged) default layout.
    for config in [
        SyncConfig::default(),
        SyncConfig::default().with_layout(LayoutSettings::default()),
    ] {
        let report = org.syncer(&drive, config).run().await.unwrap();
        assert!(report.is_complete(), "{report}");
        assert_did_nothing(&report);
        assert_eq!(drive.files(), before);
    }
    let settings = org.state().settings.unwrap();
    assert_eq!(settings.layout.account_naming, AccountNaming::NameAndIban);
}

#[tokio::test]
async fn a_state_without_settings_that_archived_keeps_its_folder_names() {
    let drive = InMemorySink::new();
    let org = Organisation::new("a");
    let old_layout = LayoutSettings {
        account_naming: AccountNaming::NameAndIban,
        ..LayoutSettings::default()
    };
    org.syncer(&drive, SyncConfig::default().with_layout(old_layout))
        .run()
        .await
        .unwrap();
    let before = drive.files();
    // The oldest states stored no settings at all.
    let mut old = org.state();
    old.settings = None;
    org.store.save(&old).await.unwrap();
    assert_did_nothing(&org.sync(&drive).await);
    assert_eq!(drive.files(), before);
}

#[tokio::test]
async fn a_state_refuses_another_organisations_accounts_and_records_nothing() {
    let drive = InMemorySink::new();
    let a = Organisation::new("a");
    let b = Organisation::new("b");
    a.sync(&drive).await;
    let state_before = a.state();
    let files_before = drive.files();
    // A's state, B's credentials.
    let mixed = Syncer::new(
        Arc::new(b.bank.clone()),
        drive.sink(),
        Arc::new(a.store.clone()),
        SyncConfig::default().with_retry(RetryConfig::fast()),
    );
    let report = mixed.run().await.unwrap();
    let stopped = report.stopped.as_ref().expect("refused");
    assert_eq!(stopped.kind(), ErrorKind::Config, "{stopped}");
    assert!(
        stopped.to_string().contains("another organisation"),
        "{stopped}"
    );
    let after = a.state();
    assert_eq!(after.accounts, state_before.accounts);
    assert_eq!(after.receipts, state_before.receipts);
    assert_eq!(after.exported, state_before.exported);
    assert_eq!(drive.files(), files_before, "nothing written");
}
