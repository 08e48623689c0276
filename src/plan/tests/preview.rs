//! The dry run's indexes are those the pass plans once its actions are carried out.

use super::sim::Sim;
use super::{archived_sim, receipt};
use crate::index::{IndexSettings, Separator};
use crate::plan::{IndexPlan, plan_indexes, preview_indexes};

fn settings() -> IndexSettings {
    IndexSettings::with_separator(Separator::Comma)
}

/// Where each index goes, whether its folder is made, why, and its content's
/// fingerprint (the rows name the files the pass archives).
fn summary(plan: &IndexPlan) -> Vec<(String, bool, String, String)> {
    plan.writes
        .iter()
        .map(|w| {
            let why = w.reason.to_string();
            (w.path.to_string(), w.create_folder, why, w.hash.clone())
        })
        .collect()
}

/// The preview of the next pass, then what the pass plans once it carried out its plan.
fn preview_then_pass(sim: &mut Sim) -> (IndexPlan, IndexPlan) {
    let plan = sim.plan();
    let preview = preview_indexes(&sim.state, &plan, &sim.layout, None, false, &settings());
    sim.apply(&plan);
    let _ = sim.plan(); // the scan after the writes
    let pass = plan_indexes(&sim.state, &sim.layout, None, false, &settings());
    (preview, pass)
}

#[test]
fn a_first_pass_previews_one_new_index_per_period_in_folders_it_creates() {
    let mut sim = Sim::new(true);
    sim.add_account("main", "Main");
    sim.add_receipt(receipt("a", "main", 3, 10));
    sim.add_receipt(receipt("c", "main", 1, 30));
    let (preview, pass) = preview_then_pass(&mut sim);
    assert_eq!(preview.writes.len(), 2, "{preview}");
    assert!(
        preview
            .writes
            .iter()
            .all(|w| w.reason.to_string() == "new period" && !w.create_folder),
        "{preview}"
    );
    assert_eq!(summary(&preview), summary(&pass));
}

#[test]
fn a_new_receipt_is_named_in_the_previewed_index_as_the_pass_writes_it() {
    // The model archive writes no index: each pass plans them all again.
    let mut sim = archived_sim(true);
    sim.add_receipt(receipt("d", "main", 9, 40)); // January
    let (preview, pass) = preview_then_pass(&mut sim);
    assert_eq!(summary(&preview), summary(&pass), "{preview}");
    let january = preview
        .writes
        .iter()
        .find(|w| w.path.to_string().contains("2026-01"))
        .expect("January's index");
    assert!(
        january.rows.iter().all(|r| r.receipts == 1),
        "every row names its receipt, the new one too: {:?}",
        january.rows
    );
    assert_eq!(january.rows.len(), 3);
}

#[test]
fn indexes_off_preview_nothing() {
    let mut sim = Sim::new(true);
    sim.add_account("main", "Main");
    sim.add_receipt(receipt("a", "main", 3, 10));
    let plan = sim.plan();
    let preview = preview_indexes(
        &sim.state,
        &plan,
        &sim.layout,
        None,
        false,
        &IndexSettings::disabled(),
    );
    assert!(preview.is_empty());
}
