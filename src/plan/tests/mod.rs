//! The planner against a model archive: the truth table of the deletion rules, and
//! properties over random histories.

mod pinned;
mod preview;
mod sim;

use super::*;
use crate::model::{CurrencyCode, Money, ReceiptId, Transaction, TransactionId};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use sim::Sim;

pub(super) fn receipt(id: &str, account: &str, day: u32, size: u64) -> Receipt {
    Receipt {
        id: ReceiptId::new(id),
        file_name: format!("{id}.pdf"),
        content_type: Some("application/pdf".into()),
        size,
        created_at: Utc.with_ymd_and_hms(2026, 1, day, 12, 0, 0).unwrap(),
        transaction: Transaction {
            id: TransactionId::new(format!("tx-{id}")),
            account_id: AccountId::new(account),
            emitted_at: Utc
                .with_ymd_and_hms(2026, 1 + (day % 3), day, 12, 0, 0)
                .unwrap(),
            settled_at: None,
            amount: Money::new(-(i64::from(day) * 100), CurrencyCode::EUR),
            label: format!("Shop {id}"),
            status: TransactionStatus::Completed,
        },
    }
}

fn uploads(plan: &Plan) -> Vec<(String, UploadReason)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Upload {
                receipt, reason, ..
            } => Some((receipt.to_string(), reason.clone())),
            _ => None,
        })
        .collect()
}

fn skip_reason(plan: &Plan, id: &str) -> Option<SkipReason> {
    plan.actions.iter().find_map(|a| match a {
        Action::Skip { receipt, reason } if receipt.as_str() == id => Some(reason.clone()),
        _ => None,
    })
}

fn tombstoned(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Tombstone { receipt, .. } => Some(receipt.to_string()),
            _ => None,
        })
        .collect()
}

/// Two receipts in January, one in February, of account "main".
fn archived_sim(stable_ids: bool) -> Sim {
    let mut sim = Sim::new(stable_ids);
    sim.add_account("main", "Main");
    sim.add_receipt(receipt("a", "main", 3, 10)); // January
    sim.add_receipt(receipt("b", "main", 6, 20)); // January
    sim.add_receipt(receipt("c", "main", 1, 30)); // February
    let first = sim.sync();
    assert_eq!(uploads(&first).len(), 3);
    assert!(sim.sync().is_noop(), "a second plan must be empty");
    sim
}

// ---- The truth table (docs/deletion-rules.md names these tests) ----

#[test]
fn new_receipts_are_uploaded_with_their_folders_parents_first() {
    let mut sim = Sim::new(true);
    sim.add_account("main", "Main");
    sim.add_receipt(receipt("a", "main", 3, 10));
    let plan = sim.plan();
    let kinds: Vec<&str> = plan.actions.iter().map(Action::kind_name).collect();
    assert_eq!(kinds, ["create-folder", "create-folder", "upload"]);
    sim.apply(&plan);
    assert!(sim.plan().is_noop());
}

#[test]
fn an_archived_receipt_is_left_alone() {
    let mut sim = archived_sim(true);
    assert_eq!(
        skip_reason(&sim.sync(), "a"),
        Some(SkipReason::AlreadyArchived)
    );
}

#[test]
fn a_file_deleted_by_the_user_is_put_back() {
    let mut sim = archived_sim(true);
    let path = sim.path_of("a");
    sim.user_delete(&path);
    let plan = sim.sync();
    assert_eq!(
        uploads(&plan),
        [("a".into(), UploadReason::FileDeletedByUser)]
    );
    assert_eq!(sim.path_of("a"), path);
    assert!(sim.sync().is_noop());
}

#[test]
fn a_folder_deleted_by_the_user_removes_its_receipts_for_good() {
    for stable_ids in [true, false] {
        let mut sim = archived_sim(stable_ids);
        let january = sim.path_of("a").parent().unwrap();
        sim.user_delete(&january);
        let plan = sim.sync();
        assert_eq!(tombstoned(&plan), ["a", "b"], "stable ids: {stable_ids}");
        assert!(uploads(&plan).is_empty());
        for _ in 0..3 {
            let again = sim.sync();
            assert_eq!(skip_reason(&again, "a"), Some(SkipReason::Tombstoned));
            assert!(again.is_noop());
        }
    }
}

#[test]
fn a_folder_deleted_and_recreated_by_the_user_still_counts_as_deleted() {
    let mut sim = archived_sim(true);
    let january = sim.path_of("a").parent().unwrap();
    sim.user_delete(&january);
    sim.user_add_folder(&january);
    let plan = sim.sync();
    assert_eq!(tombstoned(&plan), ["a", "b"]);
    assert!(uploads(&plan).is_empty());
}

#[test]
fn an_account_folder_deleted_by_the_user_removes_all_its_receipts() {
    let mut sim = archived_sim(true);
    let account = ArchivePath::parse(sim.path_of("a").names().next().unwrap()).unwrap();
    sim.user_delete(&account);
    assert_eq!(tombstoned(&sim.sync()), ["a", "b", "c"]);
    assert!(sim.sync().is_noop());
}

#[test]
fn new_receipts_still_arrive_in_a_period_whose_folder_was_deleted() {
    let mut sim = archived_sim(true);
    let january = sim.path_of("a").parent().unwrap();
    sim.user_delete(&january);
    sim.sync();
    sim.add_receipt(receipt("d", "main", 9, 40)); // January too
    let plan = sim.sync();
    assert_eq!(uploads(&plan), [("d".into(), UploadReason::New)]);
    assert_eq!(sim.path_of("d").parent().unwrap(), january);
    assert!(
        sim.sync().is_noop(),
        "the re-created folder must not revive a or b"
    );
}

#[test]
fn a_tombstoned_receipt_is_never_uploaded_even_if_its_folder_reappears() {
    for stable_ids in [true, false] {
        let mut sim = archived_sim(stable_ids);
        let january = sim.path_of("a").parent().unwrap();
        sim.user_delete(&january);
        sim.sync();
        sim.user_add_folder(&january);
        let plan = sim.sync();
        assert!(uploads(&plan).is_empty(), "stable ids: {stable_ids}");
        assert_eq!(skip_reason(&plan, "a"), Some(SkipReason::Tombstoned));
    }
}

#[test]
fn a_file_renamed_or_moved_by_the_user_is_left_alone() {
    let mut sim = archived_sim(true);
    let a = sim.path_of("a");
    sim.user_rename(&a, "renamed by me.pdf");
    let b = sim.path_of("b");
    let february = sim.path_of("c").parent().unwrap();
    sim.user_move(&b, &february);
    let plan = sim.sync();
    assert!(plan.is_noop(), "{plan}");
}

#[test]
fn a_folder_renamed_by_the_user_is_followed() {
    let mut sim = archived_sim(true);
    let january = sim.path_of("a").parent().unwrap();
    sim.user_rename(&january, "January");
    assert!(sim.sync().is_noop());
    // A receipt deleted from the renamed folder goes back into it.
    let a = sim.current_path_of("a");
    assert_eq!(a.parent().unwrap().file_name(), "January");
    sim.user_delete(&a);
    let plan = sim.sync();
    assert_eq!(
        uploads(&plan),
        [("a".into(), UploadReason::FileDeletedByUser)]
    );
    assert_eq!(
        sim.current_path_of("a").parent().unwrap().file_name(),
        "January"
    );
}

#[test]
fn a_renamed_bank_account_renames_its_folder_and_uploads_nothing() {
    for stable_ids in [true, false] {
        let mut sim = archived_sim(stable_ids);
        sim.rename_account("main", "Operations");
        let plan = sim.sync();
        let kinds: Vec<&str> = plan
            .actions
            .iter()
            .filter(|a| a.writes_to_archive())
            .map(Action::kind_name)
            .collect();
        assert_eq!(kinds, ["rename-folder"], "stable ids: {stable_ids}\n{plan}");
        assert!(sim.current_path_of("a").as_str().starts_with("Operations "));
        assert!(sim.sync().is_noop(), "stable ids: {stable_ids}");
    }
}

#[test]
fn a_crash_between_upload_and_record_is_adopted_not_duplicated() {
    let mut sim = Sim::new(true);
    sim.add_account("main", "Main");
    sim.add_receipt(receipt("a", "main", 3, 10));
    let plan = sim.plan();
    sim.apply_archive_only(&plan); // the file landed, the record did not
    let next = sim.sync();
    assert!(uploads(&next).is_empty(), "{next}");
    assert!(
        next.actions
            .iter()
            .any(|a| matches!(a, Action::Adopt { .. }))
    );
    assert!(sim.sync().is_noop());
}

#[test]
fn a_crash_then_a_new_label_or_amount_at_the_bank_still_adopts() {
    let mut sim = Sim::new(true);
    sim.add_account("main", "Main");
    sim.add_receipt(receipt("a", "main", 3, 10));
    let plan = sim.plan();
    sim.apply_archive_only(&plan);
    let mut settled = receipt("a", "main", 3, 10);
    settled.transaction.label = "Shop (settled)".into();
    settled.transaction.amount = Money::new(-12_345, CurrencyCode::EUR);
    sim.add_receipt(settled);
    let next = sim.sync();
    assert!(uploads(&next).is_empty(), "{next}");
    assert!(
        next.actions
            .iter()
            .any(|a| matches!(a, Action::Adopt { .. }))
    );
    assert!(sim.sync().is_noop());
}

#[test]
fn a_reset_brings_back_deleted_receipts_and_adopts_files_in_place() {
    let mut sim = archived_sim(true);
    let january = sim.path_of("a").parent().unwrap();
    sim.user_delete(&january);
    sim.sync();
    sim.state.reset();
    let plan = sim.sync();
    let mut up: Vec<String> = uploads(&plan).into_iter().map(|(r, _)| r).collect();
    up.sort();
    assert_eq!(up, ["a", "b"]);
    let adopted: Vec<_> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Adopt { receipt, .. } => Some(receipt.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(adopted, ["c"]);
    assert!(sim.sync().is_noop());
}

#[test]
fn a_user_file_at_the_target_is_never_overwritten() {
    let mut sim = Sim::new(true);
    sim.add_account("main", "Main");
    let r = receipt("a", "main", 3, 10);
    sim.add_receipt(r.clone());
    let target = sim.planned_path("a");
    sim.user_add_folder(&target.parent().unwrap().parent().unwrap());
    sim.user_add_folder(&target.parent().unwrap());
    sim.user_add_file(&target, 999);
    let plan = sim.sync();
    assert_eq!(
        skip_reason(&plan, "a"),
        Some(SkipReason::TargetOccupied(target))
    );
    assert!(uploads(&plan).is_empty());
}

#[test]
fn user_files_elsewhere_are_never_touched() {
    let mut sim = archived_sim(true);
    let january = sim.path_of("a").parent().unwrap();
    let mine = january.join("my notes.txt").unwrap();
    sim.user_add_file(&mine, 5);
    sim.add_receipt(receipt("d", "main", 9, 40));
    let plan = sim.sync();
    assert!(plan.actions.iter().all(|a| a.target() != Some(&mine)));
    assert!(sim.exists(&mine));
}

#[test]
fn a_receipt_removed_from_the_bank_stays_archived() {
    let mut sim = archived_sim(true);
    sim.vanish("a");
    assert_eq!(
        skip_reason(&sim.sync(), "a"),
        Some(SkipReason::AlreadyArchived)
    );
    sim.add_receipt(receipt("e", "main", 4, 5));
    sim.vanish("e");
    assert_eq!(
        skip_reason(&sim.sync(), "e"),
        Some(SkipReason::VanishedFromSource)
    );
}

#[test]
fn declined_and_early_receipts_are_skipped() {
    let mut sim = Sim::new(true);
    sim.add_account("main", "Main");
    let mut declined = receipt("d", "main", 3, 10);
    declined.transaction.status = TransactionStatus::Declined;
    sim.add_receipt(declined);
    sim.add_receipt(receipt("old", "main", 2, 10)); // 2026-03-02
    sim.options = PlanOptions::default().with_start_date(NaiveDate::from_ymd_opt(2026, 3, 3));
    let plan = sim.sync();
    assert_eq!(skip_reason(&plan, "d"), Some(SkipReason::Declined));
    assert!(matches!(
        skip_reason(&plan, "old"),
        Some(SkipReason::BeforeStartDate(_))
    ));
    assert!(plan.is_noop());
}

#[test]
fn the_plan_reads_as_a_report() {
    let mut sim = Sim::new(true);
    sim.add_account("main", "Main");
    sim.add_receipt(receipt("a", "main", 3, 10));
    let text = sim.plan().to_string();
    assert!(text.contains("upload"), "{text}");
    assert!(text.contains("new receipt"), "{text}");
    assert!(text.contains("Bytes to write: 10"), "{text}");
}

// ---- Properties over random histories ----

#[derive(Clone, Debug)]
enum Step {
    NewReceipt { account: u8, day: u8, size: u8 },
    DeleteFile(u8),
    DeleteFolder(u8),
    RenameFolder(u8),
    MoveFile(u8, u8),
    RenameFile(u8),
    UserFile(u8),
    RenameAccount(u8),
    Vanish(u8),
    CrashAfterArchive,
    Reset,
    Sync,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..3, 1u8..28, 0u8..50).prop_map(|(account, day, size)| Step::NewReceipt { account, day, size }),
        2 => any::<u8>().prop_map(Step::DeleteFile),
        1 => any::<u8>().prop_map(Step::DeleteFolder),
        1 => any::<u8>().prop_map(Step::RenameFolder),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Step::MoveFile(a, b)),
        1 => any::<u8>().prop_map(Step::RenameFile),
        1 => any::<u8>().prop_map(Step::UserFile),
        1 => any::<u8>().prop_map(Step::RenameAccount),
        1 => any::<u8>().prop_map(Step::Vanish),
        1 => Just(Step::CrashAfterArchive),
        1 => Just(Step::Reset),
        3 => Just(Step::Sync),
    ]
}

fn run_history(stable_ids: bool, steps: &[Step]) -> Result<Sim, TestCaseError> {
    let mut sim = Sim::new(stable_ids);
    for (i, name) in ["Main", "Travel", "Savings"].iter().enumerate() {
        sim.add_account(&format!("acc{i}"), name);
    }
    let mut next = 0;
    for step in steps {
        match *step {
            Step::NewReceipt { account, day, size } => {
                next += 1;
                let id = format!("r{next}");
                sim.add_receipt(receipt(
                    &id,
                    &format!("acc{account}"),
                    u32::from(day),
                    u64::from(size),
                ));
            }
            Step::DeleteFile(n) => {
                if let Some(p) = sim.pick_file(n) {
                    sim.user_delete(&p);
                }
            }
            Step::DeleteFolder(n) => {
                if let Some(p) = sim.pick_folder(n) {
                    sim.user_delete(&p);
                }
            }
            Step::RenameFolder(n) => {
                if let Some(p) = sim.pick_folder(n) {
                    let new_name = format!("{} (renamed)", p.file_name());
                    sim.user_rename(&p, &new_name);
                }
            }
            Step::MoveFile(a, b) => {
                if let (Some(f), Some(d)) = (sim.pick_file(a), sim.pick_folder(b)) {
                    sim.user_move(&f, &d);
                }
            }
            Step::RenameFile(n) => {
                if let Some(p) = sim.pick_file(n) {
                    sim.user_rename(&p, &format!("{} (mine)", p.file_name()));
                }
            }
            Step::UserFile(n) => {
                if let Some(d) = sim.pick_folder(n) {
                    sim.user_add_file(&d.join(&format!("user {n}.txt")).unwrap(), u64::from(n));
                }
            }
            Step::RenameAccount(n) => {
                let account = format!("acc{}", n % 3);
                sim.rename_account(&account, &format!("Renamed {n}"));
            }
            Step::Vanish(n) => {
                if let Some(id) = sim.pick_receipt(n) {
                    sim.vanish(&id);
                }
            }
            Step::CrashAfterArchive => {
                let plan = sim.plan();
                sim.apply_archive_only(&plan);
            }
            Step::Reset => sim.state.reset(),
            Step::Sync => {
                let tombstones_before: Vec<_> = sim.state.tombstones.keys().cloned().collect();
                let plan = sim.sync();
                for t in &tombstones_before {
                    prop_assert!(
                        !plan
                            .actions
                            .iter()
                            .any(|a| matches!(a, Action::Upload { receipt, .. } if receipt == t)),
                        "tombstoned {t} uploaded"
                    );
                }
            }
        }
        sim.check_user_files_untouched()?;
    }
    Ok(sim)
}

proptest! {
    #[test]
    fn planning_is_deterministic(steps in proptest::collection::vec(step(), 0..30), stable in any::<bool>()) {
        let sim = run_history(stable, &steps)?;
        let a = plan(&sim.state, &sim.layout, &sim.options);
        // Same data, rebuilt in another order: hash maps must not leak into the plan.
        let mut shuffled = sim.state.clone();
        let mut entries = shuffled.snapshot.entries();
        entries.reverse();
        shuffled.snapshot = ArchiveSnapshot::from_entries(entries);
        let b = plan(&shuffled, &sim.layout, &sim.options);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn syncing_converges_and_a_second_sync_does_nothing(
        steps in proptest::collection::vec(step(), 0..40),
        stable in any::<bool>(),
    ) {
        let mut sim = run_history(stable, &steps)?;
        sim.sync();
        let again = sim.plan();
        prop_assert!(again.is_noop(), "second plan not empty:\n{}", again);
        sim.check_invariants()?;
    }
}
