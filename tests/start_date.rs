//! The start date chosen at the first sync is stored and used by every later run,
//! through the periodic full read too; a different one is an explicit, reported change.
#![cfg(feature = "testkit")]

use chrono::{NaiveDate, TimeDelta, Utc};
use receipt_sync::layout::{LayoutSettings, Period};
use receipt_sync::model::AccountId;
use receipt_sync::sink::InMemorySink;
use receipt_sync::source::InMemorySource;
use receipt_sync::state::{InMemoryStateStore, StateStore};
use receipt_sync::sync::{SyncConfig, SyncReport, Syncer};
use std::sync::Arc;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

struct World {
    bank: InMemorySource,
    drive: InMemorySink,
    store: InMemoryStateStore,
}

impl World {
    /// One receipt on the 10th of every other month, 2023 to 2025.
    fn new() -> Self {
        let bank = InMemorySource::new();
        let account = bank.add_account_named("acc", "Main");
        for year in 2023..=2025 {
            for month in [1, 3, 5, 7, 9, 11] {
                let id = format!("r{year}-{month:02}");
                let receipt =
                    InMemorySource::receipt(&id, &account, day(year, month, 10), "Shop", -100);
                bank.add_receipt(receipt, format!("bytes of {id}"));
            }
        }
        Self {
            bank,
            drive: InMemorySink::new(),
            store: InMemoryStateStore::new(),
        }
    }

    fn syncer(&self, config: SyncConfig) -> Syncer {
        let config = config.with_full_read_every(Some(TimeDelta::days(7)));
        Syncer::new(
            Arc::new(self.bank.clone()),
            Arc::new(self.drive.clone()),
            Arc::new(self.store.clone()),
            config,
        )
    }

    async fn sync(&self, since: Option<NaiveDate>) -> SyncReport {
        let report = self
            .syncer(SyncConfig::default().with_start_date(since))
            .run()
            .await
            .unwrap();
        assert!(report.is_complete(), "{report:?}");
        report
    }

    /// Moves the clock past the weekly full read: the last one is made 8 days old.
    async fn a_week_passes(&self) {
        let mut state = self.store.load().await.unwrap().unwrap();
        for record in state.accounts.values_mut() {
            record.full_read_at = Some(Utc::now() - TimeDelta::days(8));
        }
        self.store.save(&state).await.unwrap();
    }

    async fn archived_days(&self) -> Vec<NaiveDate> {
        let state = self.store.load().await.unwrap().unwrap();
        let mut days: Vec<NaiveDate> = state
            .exported
            .keys()
            .map(|id| state.receipts[id].transaction.emitted_at.date_naive())
            .collect();
        days.sort();
        days
    }
}

#[tokio::test]
async fn runs_without_a_start_date_keep_the_stored_one_through_the_weekly_full_read() {
    let world = World::new();
    let first = world.sync(Some(day(2025, 1, 1))).await;
    assert_eq!(first.count("upload"), 6);
    assert_eq!(first.settings.unwrap().start_date, Some(day(2025, 1, 1)));
    for _ in 0..2 {
        world.a_week_passes().await;
        let later = world.sync(None).await;
        assert_eq!(later.count("upload"), 0, "nothing older is exported");
        assert!(
            later.settings_change.is_none(),
            "no change without a request"
        );
        assert_eq!(later.settings.unwrap().start_date, Some(day(2025, 1, 1)));
    }
    assert!(
        world
            .archived_days()
            .await
            .iter()
            .all(|d| *d >= day(2025, 1, 1))
    );
    let state = world.store.load().await.unwrap().unwrap();
    assert_eq!(
        state.settings.unwrap().start_date,
        Some(day(2025, 1, 1)),
        "stored"
    );
}

#[tokio::test]
async fn an_earlier_start_date_adds_exactly_the_receipts_in_between() {
    let world = World::new();
    world.sync(Some(day(2025, 1, 1))).await;
    // The plan of a dry run shows what the earlier date adds, and changes nothing.
    let dry = world
        .syncer(
            SyncConfig::default()
                .with_start_date(Some(day(2024, 6, 1)))
                .with_dry_run(true),
        )
        .run()
        .await
        .unwrap();
    assert!(dry.settings_change.as_ref().unwrap().widens());
    assert_eq!(dry.planned.get("upload"), Some(&3), "{:?}", dry.planned);
    let shown = dry.plan.as_ref().unwrap().to_string();
    assert!(
        shown.contains("start date changed from 2025-01-01 to 2024-06-01"),
        "{shown}"
    );
    assert!(
        shown.contains("Added by the earlier start date: 3 receipt(s)"),
        "{shown}"
    );
    let stored = world.store.load().await.unwrap().unwrap().settings.unwrap();
    assert_eq!(
        stored.start_date,
        Some(day(2025, 1, 1)),
        "a dry run stores nothing"
    );

    let wider = world.sync(Some(day(2024, 6, 1))).await;
    let change = wider.settings_change.clone().expect("reported");
    assert_eq!(change.from.unwrap().start_date, Some(day(2025, 1, 1)));
    assert_eq!(change.to.start_date, Some(day(2024, 6, 1)));
    assert_eq!(wider.count("upload"), 3, "July, September, November 2024");
    let days = world.archived_days().await;
    assert_eq!(days.len(), 9);
    assert!(days.iter().all(|d| *d >= day(2024, 6, 1)));

    world.a_week_passes().await;
    assert_eq!(world.sync(None).await.count("upload"), 0);
}

#[tokio::test]
async fn a_later_start_date_narrows_what_comes_and_keeps_what_is_archived() {
    let world = World::new();
    world.sync(Some(day(2025, 1, 1))).await;
    let later = world.sync(Some(day(2025, 6, 1))).await;
    assert!(later.settings_change.as_ref().unwrap().narrows());
    assert_eq!(later.count("upload"), 0);
    assert_eq!(world.archived_days().await.len(), 6, "archived files stay");
    let account = AccountId::new("acc");
    let early = InMemorySource::receipt("new-early", &account, day(2025, 3, 20), "Shop", -5);
    world.bank.add_receipt(early, "early");
    let late = InMemorySource::receipt("new-late", &account, day(2025, 8, 20), "Shop", -5);
    world.bank.add_receipt(late, "late");
    assert_eq!(
        world.sync(None).await.count("upload"),
        1,
        "only the later one"
    );
}

#[tokio::test]
async fn reset_keeps_the_start_date_unless_a_new_one_is_given() {
    let world = World::new();
    world.sync(Some(day(2025, 1, 1))).await;
    world.syncer(SyncConfig::default()).reset().await.unwrap();
    world.a_week_passes().await;
    let after = world.sync(None).await;
    assert_eq!(after.count("upload"), 0, "files in place are adopted");
    assert_eq!(world.archived_days().await.len(), 6);

    world
        .syncer(SyncConfig::default().with_start_date(Some(day(2024, 12, 1))))
        .reset()
        .await
        .unwrap();
    let state = world.store.load().await.unwrap().unwrap();
    assert_eq!(state.settings.unwrap().start_date, Some(day(2024, 12, 1)));
}

#[tokio::test]
async fn a_stored_layout_is_never_changed_by_a_later_config() {
    let world = World::new();
    world.sync(Some(day(2025, 1, 1))).await;
    let yearly = LayoutSettings {
        period: Period::Year,
        ..LayoutSettings::default()
    };
    let refused = world
        .syncer(SyncConfig::default().with_layout(yearly))
        .run()
        .await
        .unwrap_err();
    assert!(!refused.is_retryable(), "{refused}");
    let same = world
        .syncer(SyncConfig::default().with_layout(LayoutSettings::default()))
        .run()
        .await
        .unwrap();
    assert!(same.is_complete());
}

#[tokio::test]
async fn a_state_written_before_settings_were_kept_adopts_the_first_config() {
    let world = World::new();
    world.sync(None).await;
    let mut state = world.store.load().await.unwrap().unwrap();
    state.settings = None;
    world.store.save(&state).await.unwrap();
    let report = world.sync(Some(day(2025, 1, 1))).await;
    assert!(
        report.settings_change.is_none(),
        "an adoption, not a change"
    );
    let state = world.store.load().await.unwrap().unwrap();
    assert_eq!(state.settings.unwrap().start_date, Some(day(2025, 1, 1)));
}

#[tokio::test]
async fn a_deleted_file_is_put_back_only_while_its_receipt_is_after_the_start_date() {
    let world = World::new();
    world.sync(Some(day(2025, 1, 1))).await;
    world.sync(Some(day(2025, 6, 1))).await;
    let file_of = |month: &str| {
        let files = world.drive.files();
        let (path, _) = files
            .iter()
            .find(|(path, _)| path.to_string().contains(&format!("2025-{month}-10")))
            .unwrap_or_else(|| panic!("the 2025-{month} receipt is archived"))
            .clone();
        path.to_string()
    };
    world.drive.delete_file_as_user(&file_of("03")).unwrap();
    world.drive.delete_file_as_user(&file_of("07")).unwrap();

    let next = world.sync(None).await;
    assert_eq!(
        next.count("upload"),
        1,
        "only the file after the start date"
    );
    assert!(
        world
            .drive
            .files()
            .iter()
            .any(|(p, _)| p.to_string().contains("2025-07-10"))
    );
    assert!(
        !world
            .drive
            .files()
            .iter()
            .any(|(p, _)| p.to_string().contains("2025-03-10"))
    );

    let back = world.sync(Some(day(2025, 1, 1))).await;
    assert_eq!(
        back.count("upload"),
        1,
        "moving the date back brings it back"
    );
    assert!(
        world
            .drive
            .files()
            .iter()
            .any(|(p, _)| p.to_string().contains("2025-03-10"))
    );
}
