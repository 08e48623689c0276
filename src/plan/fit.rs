//! Pure: which uploads of a plan fit in the archive's free space.
//!
//! A drive that is almost full takes what fits, the oldest receipts first; the rest
//! waits for space. Nothing that waits is failed, tombstoned or forgotten: it is still
//! pending in the state, and the next plan has it again.
//!
//! # Flow
//! 1. The plan's uploads are put in date order: the receipt's transaction date
//!    (`emitted_at`, the date the archive files it under), ties by receipt id, so the
//!    order is the same on every run.
//! 2. The longest prefix of that order whose sizes add up to at most the free space is
//!    kept. The first upload that does not fit and every later one wait, even a later,
//!    smaller one that would fit: an older receipt never waits behind a newer one.
//! 3. Folder creations stay only for the folders a kept upload needs; tombstones,
//!    renames and adoptions all stay (they take no space).
//!
//! # Guarantees
//! - The margin: every kept upload's whole size is counted before any of them starts,
//!   so the uploads in flight at once, however many, never add up to more than the
//!   free space, whatever order they finish in.
//! - No headroom beyond that: sizes are exact (the sink refuses a body of another
//!   length), folders take no quota, and a figure that lags behind is caught by the
//!   storage's own refusal, which stops the run just as cleanly. A larger margin would
//!   only hold back receipts that fit and blur how much space the rest needs.
//!
//! # Assumptions
//! - `free` was read just before the run and nothing else writes to the storage
//!   meanwhile (if something does, its refusal stops the run; nothing is lost).

use super::action::{Action, Plan};
use crate::model::{ArchivePath, PathKey, Receipt, ReceiptId};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashSet};

/// A plan cut down to what fits, and what waits for space.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fitted {
    /// The plan to carry out: the uploads that fit and the folders they need.
    pub plan: Plan,
    /// The uploads that wait for space, the oldest first, with their sizes.
    pub waiting: Vec<(ReceiptId, u64)>,
}

impl Fitted {
    /// Bytes of the uploads that wait (`u64::MAX` if they add up to more).
    pub fn bytes_waiting(&self) -> u64 {
        self.waiting
            .iter()
            .map(|(_, size)| *size)
            .fold(0, u64::saturating_add)
    }
}

/// The order uploads are fitted and started in: by the receipt's date, ties by id.
/// A receipt missing from the catalog (never in a plan built from it) goes last.
pub fn upload_order<'a>(
    receipts: &'a BTreeMap<ReceiptId, Receipt>,
    id: &'a ReceiptId,
) -> (bool, Option<DateTime<Utc>>, &'a ReceiptId) {
    let date = receipts.get(id).map(|r| r.transaction.emitted_at);
    (date.is_none(), date, id)
}

/// Cuts `plan` down to the uploads that fit in `free` bytes; see the module docs.
pub fn fit_to_space(plan: Plan, receipts: &BTreeMap<ReceiptId, Receipt>, free: u64) -> Fitted {
    let mut uploads: Vec<(&ReceiptId, u64)> = plan
        .actions
        .iter()
        .filter_map(|action| match action {
            Action::Upload { receipt, size, .. } => Some((receipt, *size)),
            _ => None,
        })
        .collect();
    uploads.sort_by(|a, b| upload_order(receipts, a.0).cmp(&upload_order(receipts, b.0)));
    let mut used = 0u64;
    let fitting = uploads
        .iter()
        .take_while(|(_, size)| match used.checked_add(*size) {
            Some(total) if total <= free => {
                used = total;
                true
            }
            _ => false,
        })
        .count();
    if fitting == uploads.len() {
        return Fitted {
            plan,
            waiting: Vec::new(),
        };
    }
    let waiting: Vec<(ReceiptId, u64)> = uploads[fitting..]
        .iter()
        .map(|(id, size)| ((*id).clone(), *size))
        .collect();
    let waits: HashSet<&ReceiptId> = waiting.iter().map(|(id, _)| id).collect();
    let kept_uploads = |action: &&Action| match action {
        Action::Upload { receipt, .. } => !waits.contains(receipt),
        _ => false,
    };
    let needed: HashSet<PathKey> = plan
        .actions
        .iter()
        .filter(kept_uploads)
        .filter_map(Action::target)
        .flat_map(ArchivePath::ancestors)
        .map(|folder| folder.key())
        .collect();
    let actions = plan
        .actions
        .iter()
        .filter(|action| match action {
            Action::Upload { receipt, .. } => !waits.contains(receipt),
            Action::CreateFolder { path } => needed.contains(&path.key()),
            _ => true,
        })
        .cloned()
        .collect();
    Fitted {
        plan: Plan { actions, ..plan },
        waiting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::UploadReason;

    /// A receipt dated January `day`.
    fn receipt(id: &str, day: u32, size: u64) -> Receipt {
        let mut receipt = super::super::tests::receipt(id, "acc", day, size);
        receipt.transaction.emitted_at = receipt.created_at;
        receipt
    }

    fn upload(id: &str, folder: &str, size: u64) -> Action {
        Action::Upload {
            receipt: ReceiptId::new(id),
            path: ArchivePath::from_trusted(format!("{folder}/{id}.pdf")),
            size,
            reason: UploadReason::New,
        }
    }

    fn folder(path: &str) -> Action {
        Action::CreateFolder {
            path: ArchivePath::from_trusted(path.to_owned()),
        }
    }

    fn catalog(receipts: &[Receipt]) -> BTreeMap<ReceiptId, Receipt> {
        receipts.iter().map(|r| (r.id.clone(), r.clone())).collect()
    }

    fn kept(fitted: &Fitted) -> Vec<String> {
        fitted
            .plan
            .actions
            .iter()
            .map(|a| match a {
                Action::Upload { receipt, .. } => format!("upload {receipt}"),
                Action::CreateFolder { path } => format!("folder {path}"),
                other => other.kind_name().to_owned(),
            })
            .collect()
    }

    #[test]
    fn the_oldest_receipts_that_fit_go_and_the_rest_waits_in_date_order() {
        // Paths sort the other way round from dates: the date decides, not the path.
        let receipts = catalog(&[
            receipt("a", 20, 300),
            receipt("b", 10, 300),
            receipt("c", 15, 300),
        ]);
        let plan = Plan {
            actions: vec![
                folder("A"),
                folder("A/1"),
                folder("A/2"),
                folder("A/3"),
                upload("a", "A/1", 300),
                upload("b", "A/3", 300),
                upload("c", "A/2", 300),
            ],
            ..Plan::default()
        };
        let fitted = fit_to_space(plan, &receipts, 350);
        assert_eq!(kept(&fitted), ["folder A", "folder A/3", "upload b"]);
        assert_eq!(
            fitted.waiting,
            [(ReceiptId::new("c"), 300), (ReceiptId::new("a"), 300)]
        );
        assert_eq!(fitted.bytes_waiting(), 600);
    }

    #[test]
    fn a_smaller_newer_receipt_does_not_jump_the_queue() {
        let receipts = catalog(&[receipt("old", 1, 500), receipt("new", 2, 10)]);
        let plan = Plan {
            actions: vec![upload("new", "A", 10), upload("old", "A", 500)],
            ..Plan::default()
        };
        let fitted = fit_to_space(plan, &receipts, 100);
        assert_eq!(kept(&fitted), Vec::<String>::new());
        assert_eq!(fitted.waiting.len(), 2);
    }

    #[test]
    fn ties_on_the_date_go_by_receipt_id_and_a_plan_that_fits_is_unchanged() {
        let receipts = catalog(&[receipt("y", 3, 100), receipt("x", 3, 100)]);
        let plan = Plan {
            actions: vec![upload("x", "A", 100), upload("y", "A", 100)],
            ..Plan::default()
        };
        let fitted = fit_to_space(plan.clone(), &receipts, 150);
        assert_eq!(kept(&fitted), ["upload x"]);
        assert_eq!(fit_to_space(plan.clone(), &receipts, 200).plan, plan);
        assert_eq!(fit_to_space(plan.clone(), &receipts, 200).waiting, []);
    }

    #[test]
    fn sizes_that_add_up_past_u64_wait_instead_of_wrapping() {
        let receipts = catalog(&[receipt("a", 1, u64::MAX), receipt("b", 2, 2)]);
        let plan = Plan {
            actions: vec![upload("a", "A", u64::MAX), upload("b", "A", 2)],
            ..Plan::default()
        };
        let fitted = fit_to_space(plan, &receipts, u64::MAX);
        assert_eq!(kept(&fitted), ["upload a"]);
        assert_eq!(fitted.waiting, [(ReceiptId::new("b"), 2)]);
    }
}
