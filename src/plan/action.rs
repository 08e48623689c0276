//! Decisions as data: a [`Plan`] is an ordered list of [`Action`]s, each with its reason.

use crate::model::{AccountId, ArchivePath, Implausible, ReceiptId, SinkItemId};
use chrono::NaiveDate;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// Why a receipt is uploaded.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UploadReason {
    /// It was never archived (or a reset forgot it).
    New,
    /// The user deleted its file, but not the folders above it: it is put back.
    FileDeletedByUser,
}

/// Why a receipt is left as it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// Its file is in the archive (where the sync put it, or where the user moved it).
    AlreadyArchived,
    /// The user deleted a folder that held it: not archived again until a reset.
    Tombstoned,
    /// Its transaction was emitted before the start date.
    BeforeStartDate(NaiveDate),
    /// Its transaction was declined: no money moved.
    Declined,
    /// The source no longer has it, and it was never archived.
    VanishedFromSource,
    /// Its bank account is not among the accounts the source lists.
    UnknownAccount(AccountId),
    /// Something that is not this receipt already sits at its path (a file of another
    /// size, or a folder); the sync never overwrites.
    TargetOccupied(ArchivePath),
    /// Another receipt of this plan has the same path (a tag collision; practically
    /// never): this one waits, nothing is overwritten.
    PathCollision(ArchivePath),
    /// A value that places or writes it is impossible (a date outside 1970–2199, a
    /// size over 250 GiB): kept out until the source sends a believable one.
    Implausible(Implausible),
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The user deleted `folder`, which held the receipt's file: remember never to
    /// archive it again (until a reset). Changes only the state.
    Tombstone {
        /// The receipt.
        receipt: ReceiptId,
        /// Where its file was.
        path: ArchivePath,
        /// The deleted folder.
        folder: ArchivePath,
    },
    /// The bank account was renamed: rename its folder (files are never re-uploaded).
    RenameFolder {
        /// The account.
        account: AccountId,
        /// The folder's id.
        folder: SinkItemId,
        /// Its path now.
        from: ArchivePath,
        /// Its path after.
        to: ArchivePath,
    },
    /// Create a folder (parents always come first in a plan).
    CreateFolder {
        /// The folder.
        path: ArchivePath,
    },
    /// A file already sits at the receipt's path with the receipt's size (left by an
    /// interrupted run, or still in place after a reset): record it instead of
    /// writing it twice.
    Adopt {
        /// The receipt.
        receipt: ReceiptId,
        /// Where the file is.
        path: ArchivePath,
        /// The file's id.
        item: SinkItemId,
        /// Its size.
        size: u64,
    },
    /// Write the receipt's file.
    Upload {
        /// The receipt.
        receipt: ReceiptId,
        /// Where.
        path: ArchivePath,
        /// Bytes to write.
        size: u64,
        /// Why.
        reason: UploadReason,
    },
    /// Leave the receipt as it is.
    Skip {
        /// The receipt.
        receipt: ReceiptId,
        /// Why.
        reason: SkipReason,
    },
}

impl Action {
    /// The receipt this action is about, if any.
    pub fn receipt(&self) -> Option<&ReceiptId> {
        match self {
            Action::Tombstone { receipt, .. }
            | Action::Adopt { receipt, .. }
            | Action::Upload { receipt, .. }
            | Action::Skip { receipt, .. } => Some(receipt),
            Action::RenameFolder { .. } | Action::CreateFolder { .. } => None,
        }
    }

    /// The archive path this action writes, creates or renames to, if any.
    pub fn target(&self) -> Option<&ArchivePath> {
        match self {
            Action::RenameFolder { to, .. } => Some(to),
            Action::CreateFolder { path } | Action::Upload { path, .. } => Some(path),
            Action::Tombstone { .. } | Action::Adopt { .. } | Action::Skip { .. } => None,
        }
    }

    /// Whether the action changes the archive (not only the state).
    pub fn writes_to_archive(&self) -> bool {
        matches!(
            self,
            Action::RenameFolder { .. } | Action::CreateFolder { .. } | Action::Upload { .. }
        )
    }

    /// A short name of the action's kind, for reports: `upload`, `skip`, ….
    pub fn kind_name(&self) -> &'static str {
        match self {
            Action::Tombstone { .. } => "tombstone",
            Action::RenameFolder { .. } => "rename-folder",
            Action::CreateFolder { .. } => "create-folder",
            Action::Adopt { .. } => "adopt",
            Action::Upload { .. } => "upload",
            Action::Skip { .. } => "skip",
        }
    }

    /// Why, in words a person can read.
    pub fn reason(&self) -> String {
        match self {
            Action::Tombstone { folder, .. } => format!(
                "folder \"{folder}\" was deleted from the archive: its receipts stay out until a reset"
            ),
            Action::RenameFolder { .. } => "the bank account was renamed".into(),
            Action::CreateFolder { .. } => "needed for receipts to archive".into(),
            Action::Adopt { .. } => {
                "already at its place with the right size (an interrupted run, or a reset): recorded, not written twice".into()
            }
            Action::Upload { reason, .. } => match reason {
                UploadReason::New => "new receipt".into(),
                UploadReason::FileDeletedByUser => {
                    "its file was deleted from the archive, its folder was not: putting it back".into()
                }
            },
            Action::Skip { reason, .. } => match reason {
                SkipReason::AlreadyArchived => "already archived".into(),
                SkipReason::Tombstoned => {
                    "its folder was deleted from the archive: left out until a reset".into()
                }
                SkipReason::BeforeStartDate(day) => format!("emitted before the start date {day}"),
                SkipReason::Declined => "declined transaction".into(),
                SkipReason::VanishedFromSource => "no longer at the bank, never archived".into(),
                SkipReason::UnknownAccount(account) => {
                    format!("its bank account {account} is not listed by the bank")
                }
                SkipReason::TargetOccupied(path) => format!(
                    "another item already sits at \"{path}\": nothing is overwritten; move it away"
                ),
                SkipReason::PathCollision(path) => {
                    format!("another receipt has the same path \"{path}\"")
                }
                SkipReason::Implausible(what) => {
                    format!("{what}: the bank sent a wrong value; left out until it is corrected")
                }
            },
        }
    }

    /// The order of a plan: state-only steps, renames, folders (parents first),
    /// adoptions, uploads, then skips; by path or receipt within each.
    pub(crate) fn plan_order(&self, other: &Action) -> Ordering {
        self.order_key().cmp(&other.order_key())
    }

    fn order_key(&self) -> (u8, usize, &str) {
        match self {
            Action::Tombstone { receipt, .. } => (0, 0, receipt.as_str()),
            Action::RenameFolder { from, .. } => (1, 0, from.as_str()),
            Action::CreateFolder { path } => (2, path.depth(), path.as_str()),
            Action::Adopt { path, .. } => (3, 0, path.as_str()),
            Action::Upload { path, .. } => (4, 0, path.as_str()),
            Action::Skip { receipt, .. } => (5, 0, receipt.as_str()),
        }
    }
}

/// Where each account's receipts go in this plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountFolder {
    /// The account.
    pub account: AccountId,
    /// The folder's name as the layout makes it.
    pub name: String,
    /// The folder's path once the plan is carried out.
    pub path: ArchivePath,
}

/// What a sync will do, and why. Its `Display` is the dry-run report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The steps, in the order they must run.
    pub actions: Vec<Action>,
    /// Each account's folder.
    pub account_folders: Vec<AccountFolder>,
    /// The change of the stored settings the run makes ([`super::settings`]).
    pub settings_change: Option<super::SettingsChange>,
    /// Uploads an earlier start date adds: receipts dated between the new start date
    /// and the old one.
    pub added_by_start_date: usize,
}

impl Plan {
    /// Whether the plan changes nothing, neither the archive nor the state's records.
    pub fn is_noop(&self) -> bool {
        self.actions
            .iter()
            .all(|a| matches!(a, Action::Skip { .. }))
    }

    /// Bytes the plan writes, or `u64::MAX` if they add up to more: sizes come from
    /// the source, and a sum that wrapped would pass a quota check it must fail.
    pub fn bytes_to_write(&self) -> u64 {
        self.actions
            .iter()
            .map(|a| match a {
                Action::Upload { size, .. } => *size,
                _ => 0,
            })
            .fold(0, u64::saturating_add)
    }

    /// How many actions of each kind (and skips per reason), e.g. `upload` → 3.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for action in &self.actions {
            let key = match action {
                Action::Skip { reason, .. } => format!("skip: {}", skip_reason_name(reason)),
                Action::Upload {
                    reason: UploadReason::FileDeletedByUser,
                    ..
                } => "upload: put back".to_owned(),
                other => other.kind_name().to_owned(),
            };
            *counts.entry(key).or_insert(0) += 1;
        }
        counts
    }
}

/// A short, stable name of a skip reason, for counts.
pub fn skip_reason_name(reason: &SkipReason) -> &'static str {
    match reason {
        SkipReason::AlreadyArchived => "already archived",
        SkipReason::Tombstoned => "tombstoned",
        SkipReason::BeforeStartDate(_) => "before start date",
        SkipReason::Declined => "declined",
        SkipReason::VanishedFromSource => "vanished from source",
        SkipReason::UnknownAccount(_) => "unknown account",
        SkipReason::TargetOccupied(_) => "target occupied",
        SkipReason::PathCollision(_) => "path collision",
        SkipReason::Implausible(_) => "implausible",
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts = self.counts();
        if let Some(change) = &self.settings_change {
            writeln!(f, "Settings: {change}")?;
            if change.widens() {
                writeln!(
                    f,
                    "Added by the earlier start date: {} receipt(s)",
                    self.added_by_start_date
                )?;
            }
        }
        if self.is_noop() {
            writeln!(f, "Nothing to do.")?;
        }
        let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        writeln!(f, "Plan: {}", summary.join(", "))?;
        if self.bytes_to_write() > 0 {
            writeln!(f, "Bytes to write: {}", self.bytes_to_write())?;
        }
        for action in &self.actions {
            let what = match action {
                Action::Tombstone { path, .. } => path.to_string(),
                Action::RenameFolder { from, to, .. } => format!("{from} -> {to}"),
                Action::CreateFolder { path } => path.to_string(),
                Action::Adopt { path, .. } | Action::Upload { path, .. } => path.to_string(),
                Action::Skip { receipt, .. } => format!("receipt {receipt}"),
            };
            writeln!(
                f,
                "  {:<13} {what}  ({})",
                action.kind_name(),
                action.reason()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(id: &str, size: u64) -> Action {
        Action::Upload {
            receipt: ReceiptId::new(id),
            path: ArchivePath::from_trusted(format!("A/{id}.pdf")),
            size,
            reason: UploadReason::New,
        }
    }

    #[test]
    fn bytes_to_write_saturates_instead_of_wrapping() {
        let plan = Plan {
            actions: vec![upload("a", u64::MAX), upload("b", 2), upload("c", u64::MAX)],
            account_folders: Vec::new(),
            ..Plan::default()
        };
        assert_eq!(plan.bytes_to_write(), u64::MAX);
        assert!(plan.to_string().contains(&u64::MAX.to_string()));
        let small = Plan {
            actions: vec![upload("a", 3), upload("b", 4)],
            account_folders: Vec::new(),
            ..Plan::default()
        };
        assert_eq!(small.bytes_to_write(), 7);
    }
}
