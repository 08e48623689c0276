//! Pure: the planner. From what the source has, what the archive holds and what the
//! state remembers, it decides what a sync does, and says why.
//!
//! ```text
//! (receipts, snapshot of the archive, state, layout, options) -> Plan
//! ```
//!
//! The receipts and the snapshot travel inside [`SyncState`] (its catalog and its
//! picture of the archive), so [`plan`] takes the state, the layout and the options.
//! No async, no I/O, no clock (`now` is an option): the same inputs give the same plan,
//! which is what lets the property tests replay any history.
//!
//! The deletion rules live in [`reconcile`](mod@reconcile); this module does the rest: eligibility,
//! where new receipts go, which folders to create or rename, and the order of it all.
//! Before planning, [`settle_renames`] settles the sync's own folder renames whose
//! outcome was never recorded, so that the rules see them as renames. After planning,
//! [`fit_to_space`] cuts a plan down to what fits in the archive's
//! free space, the oldest receipts first.

mod action;
pub mod fit;
pub mod reconcile;
pub mod settings;
mod settle;

pub use action::{AccountFolder, Action, Plan, SkipReason, UploadReason, skip_reason_name};
pub use fit::{Fitted, fit_to_space};
pub use settings::{RequestedSettings, SettingsChange, resolve_settings};
pub use settle::settle_renames;

use crate::layout::{Layout, names};
use crate::model::{
    AccountId, ArchivePath, ArchiveSnapshot, EntryKind, PathIndex, PathKey, Receipt, SinkItemId,
    TransactionStatus,
};
use crate::state::{AccountRecord, SyncState};
use chrono::NaiveDate;
use reconcile::{Verdict, reconcile};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The choices a plan is made with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlanOptions {
    /// Receipts of transactions emitted before this day (in the layout's time zone)
    /// are not archived.
    pub start_date: Option<NaiveDate>,
    /// Archive receipts of declined transactions too.
    pub include_declined: bool,
    /// The change of the stored settings this run makes, shown with the plan.
    pub settings_change: Option<SettingsChange>,
}

impl PlanOptions {
    /// Options with a start date.
    pub fn with_start_date(mut self, day: Option<NaiveDate>) -> Self {
        self.start_date = day;
        self
    }

    /// Whether to archive declined transactions' receipts.
    pub fn with_include_declined(mut self, include: bool) -> Self {
        self.include_declined = include;
        self
    }

    /// The settings change to show with the plan.
    pub fn with_settings_change(mut self, change: Option<SettingsChange>) -> Self {
        self.settings_change = change;
        self
    }
}

/// Plans a sync; see the module docs.
pub fn plan(state: &SyncState, layout: &Layout, options: &PlanOptions) -> Plan {
    let mut plan = Planner::new(state, layout, options).run();
    if let Some(change) = &options.settings_change {
        let before = change.from.as_ref().and_then(|s| s.start_date);
        if let (true, Some(before)) = (change.widens(), before) {
            // What the earlier start date adds: the uploads dated before the old one.
            plan.added_by_start_date = plan
                .actions
                .iter()
                .filter(|a| matches!(a, Action::Upload { .. }))
                .filter_map(|a| a.receipt().and_then(|id| state.receipts.get(id)))
                .filter(|r| layout.receipt_day(r) < before)
                .count();
        }
        plan.settings_change = Some(change.clone());
    }
    plan
}

/// One account's folder: where it is now and where it will be.
struct FolderPlace {
    /// The layout's name for it.
    name: String,
    /// Where it is in the archive now (or will be created).
    current: ArchivePath,
    /// Where it is once the plan's rename, if any, is done.
    effective: ArchivePath,
}

struct Planner<'a> {
    state: &'a SyncState,
    layout: &'a Layout,
    options: &'a PlanOptions,
    /// Built only when some receipt needs a lookup by path.
    index: Option<PathIndex>,
    places: BTreeMap<AccountId, FolderPlace>,
    actions: Vec<Action>,
    folders_to_create: HashSet<PathKey>,
    targets: HashSet<PathKey>,
    /// Files carrying a receipt tag, by folder and tag; built only when needed.
    tags: Option<TagIndex>,
    /// Files already recorded for a receipt (never adopted for another); built only when needed.
    recorded_files: Option<HashSet<SinkItemId>>,
}

type TagIndex = HashMap<String, Vec<(SinkItemId, u64)>>;

fn tag_index(snapshot: &ArchiveSnapshot) -> TagIndex {
    let mut index = TagIndex::new();
    for entry in snapshot.entries() {
        let EntryKind::File { size } = entry.kind else {
            continue;
        };
        if let Some(tag) = names::tag_in(&entry.name) {
            index
                .entry(tag.to_owned())
                .or_default()
                .push((entry.id, size));
        }
    }
    index
}

impl<'a> Planner<'a> {
    fn new(state: &'a SyncState, layout: &'a Layout, options: &'a PlanOptions) -> Self {
        Self {
            state,
            layout,
            options,
            index: None,
            places: BTreeMap::new(),
            actions: Vec::new(),
            folders_to_create: HashSet::new(),
            targets: HashSet::new(),
            tags: None,
            recorded_files: None,
        }
    }

    fn run(mut self) -> Plan {
        self.place_account_folders();
        for receipt in self.state.receipts.values() {
            self.plan_receipt(receipt);
        }
        let mut actions = self.actions;
        actions.sort_by(Action::plan_order);
        let account_folders = self
            .places
            .into_iter()
            .map(|(account, place)| AccountFolder {
                account,
                name: place.name,
                path: place.effective,
            })
            .collect();
        Plan {
            actions,
            account_folders,
            ..Plan::default()
        }
    }

    fn snapshot(&self) -> &'a ArchiveSnapshot {
        &self.state.snapshot
    }

    fn index(&mut self) -> &PathIndex {
        let snapshot = self.snapshot();
        self.index.get_or_insert_with(|| snapshot.path_index())
    }

    /// Decides each account's folder, and renames the folder of a renamed bank account.
    fn place_account_folders(&mut self) {
        let names = self
            .layout
            .account_folders(self.state.accounts.values().map(|r| &r.account));
        for (account, record) in &self.state.accounts {
            let Some(name) = names.get(account).cloned() else {
                continue;
            };
            let place = self.place_one(account, record, name);
            self.places.insert(account.clone(), place);
        }
    }

    fn place_one(
        &mut self,
        account: &AccountId,
        record: &AccountRecord,
        name: String,
    ) -> FolderPlace {
        let at_layout_place = || ArchivePath::from_names([name.as_str()]);
        let existing = record
            .folder_id
            .as_ref()
            .filter(|id| self.snapshot().kind(id) == Some(EntryKind::Folder))
            .and_then(|id| self.snapshot().path_of(id).map(|path| (id.clone(), path)));
        let Some((id, current)) = existing else {
            // Never created, or deleted by the user: it goes (back) where the layout says.
            let path = at_layout_place().unwrap_or_else(|_| fallback_folder(account));
            return FolderPlace {
                name,
                current: path.clone(),
                effective: path,
            };
        };
        let bank_renamed = record.folder_name.as_deref() != Some(name.as_str());
        if bank_renamed && current.file_name() != name {
            let to = match current.parent() {
                Some(parent) => parent.join(&name),
                None => ArchivePath::from_names([name.as_str()]),
            };
            if let Ok(to) = to
                && self.index().get(&to).is_none()
            {
                self.actions.push(Action::RenameFolder {
                    account: account.clone(),
                    folder: id,
                    from: current.clone(),
                    to: to.clone(),
                });
                return FolderPlace {
                    name,
                    current,
                    effective: to,
                };
            }
        }
        // Where the user put or renamed it, the sync follows it.
        FolderPlace {
            name,
            current: current.clone(),
            effective: current,
        }
    }

    fn plan_receipt(&mut self, receipt: &Receipt) {
        let id = &receipt.id;
        if self.state.tombstones.contains_key(id) {
            return self.skip(receipt, SkipReason::Tombstoned);
        }
        let ineligible = self.ineligibility(receipt);
        if let Some(record) = self.state.exported.get(id) {
            match reconcile(record, self.snapshot()) {
                Verdict::Archived => self.skip(receipt, SkipReason::AlreadyArchived),
                Verdict::FolderDeleted { folder } => self.actions.push(Action::Tombstone {
                    receipt: id.clone(),
                    path: record.path.clone(),
                    folder,
                }),
                Verdict::FileDeleted { path } => match ineligible {
                    Some(reason) => self.skip(receipt, reason),
                    None => {
                        let effective = self.effective_path(&path);
                        self.place_file(receipt, &path, effective, UploadReason::FileDeletedByUser);
                    }
                },
            }
            return;
        }
        if let Some(reason) = ineligible {
            return self.skip(receipt, reason);
        }
        let account = &receipt.transaction.account_id;
        let Some(place) = self.places.get(account) else {
            return self.skip(receipt, SkipReason::UnknownAccount(account.clone()));
        };
        let laid_out = self.layout.receipt_path(&place.name, receipt);
        let layout_root = ArchivePath::from_names([place.name.as_str()]);
        let (current, effective) = match layout_root {
            Ok(root) => (
                laid_out
                    .rebase(&root, &place.current)
                    .unwrap_or_else(|| laid_out.clone()),
                laid_out
                    .rebase(&root, &place.effective)
                    .unwrap_or_else(|| laid_out.clone()),
            ),
            Err(_) => (laid_out.clone(), laid_out),
        };
        self.place_file(receipt, &current, effective, UploadReason::New);
    }

    /// Why a receipt must not be archived, if it must not.
    fn ineligibility(&self, receipt: &Receipt) -> Option<SkipReason> {
        if self.state.vanished.contains_key(&receipt.id) {
            return Some(SkipReason::VanishedFromSource);
        }
        // An older state may hold what the decoders now refuse: never archive it under a
        // made-up date, never count its size against the quota.
        if let Some(what) = receipt.implausibility() {
            return Some(SkipReason::Implausible(what));
        }
        if receipt.transaction.status == TransactionStatus::Declined
            && !self.options.include_declined
        {
            return Some(SkipReason::Declined);
        }
        match self.options.start_date {
            Some(start) if self.layout.receipt_day(receipt) < start => {
                Some(SkipReason::BeforeStartDate(start))
            }
            _ => None,
        }
    }

    /// `path` (as the archive is now) once the plan's folder renames are done.
    fn effective_path(&self, path: &ArchivePath) -> ArchivePath {
        self.places
            .values()
            .filter(|p| p.current != p.effective)
            .find_map(|p| path.rebase(&p.current, &p.effective))
            .unwrap_or_else(|| path.clone())
    }

    /// Adopts the file at `current` if it is this receipt's, uploads to `effective`
    /// if the place is free, and skips otherwise.
    fn place_file(
        &mut self,
        receipt: &Receipt,
        current: &ArchivePath,
        effective: ArchivePath,
        reason: UploadReason,
    ) {
        if !self.targets.insert(effective.key()) {
            return self.skip(receipt, SkipReason::PathCollision(effective));
        }
        let found = self
            .index()
            .get(current)
            .map(|(id, kind)| (id.clone(), kind));
        match found {
            Some((item, EntryKind::File { size })) if size == receipt.size => {
                // Recorded where it will be once the plan's renames are done.
                self.actions.push(Action::Adopt {
                    receipt: receipt.id.clone(),
                    path: effective,
                    item,
                    size,
                });
            }
            Some(_) => self.skip(receipt, SkipReason::TargetOccupied(effective)),
            None => {
                if let Some((item, path)) = self.tagged_file(receipt) {
                    let size = receipt.size;
                    self.actions.push(Action::Adopt {
                        receipt: receipt.id.clone(),
                        path,
                        item,
                        size,
                    });
                    return;
                }
                if let Some(blocker) = self.blocked_by_file(current) {
                    return self.skip(receipt, SkipReason::TargetOccupied(blocker));
                }
                self.create_missing_folders(current, &effective);
                self.actions.push(Action::Upload {
                    receipt: receipt.id.clone(),
                    path: effective,
                    size: receipt.size,
                    reason,
                });
            }
        }
    }

    /// An unrecorded file anywhere in the archive carrying the receipt's tag and size:
    /// the receipt's own file, renamed at the bank or moved by the user since an
    /// interrupted run or a reset. Returns it with its path once the plan is done.
    fn tagged_file(&mut self, receipt: &Receipt) -> Option<(SinkItemId, ArchivePath)> {
        let tag = names::short_tag(receipt.id.as_str());
        let snapshot = self.snapshot();
        let exported = &self.state.exported;
        let recorded = self
            .recorded_files
            .get_or_insert_with(|| exported.values().map(|r| r.file_id.clone()).collect());
        let tags = self.tags.get_or_insert_with(|| tag_index(snapshot));
        let (id, _) = tags
            .get(&tag)?
            .iter()
            .find(|(id, size)| *size == receipt.size && !recorded.contains(id))?;
        let id = id.clone();
        recorded.insert(id.clone());
        let path = snapshot.path_of(&id)?;
        Some((id, self.effective_path(&path)))
    }

    /// A file sitting where one of `path`'s folders should be.
    fn blocked_by_file(&mut self, path: &ArchivePath) -> Option<ArchivePath> {
        let ancestors: Vec<ArchivePath> = path.ancestors().collect();
        let index = self.index();
        ancestors
            .into_iter()
            .find(|a| matches!(index.get(a), Some((_, EntryKind::File { .. }))))
    }

    fn create_missing_folders(&mut self, current: &ArchivePath, effective: &ArchivePath) {
        let missing: Vec<ArchivePath> = {
            let index = self.index();
            current
                .ancestors()
                .zip(effective.ancestors())
                .filter(|(now, _)| index.get(now).is_none())
                .map(|(_, after)| after)
                .collect()
        };
        for folder in missing {
            if self.folders_to_create.insert(folder.key()) {
                self.actions.push(Action::CreateFolder { path: folder });
            }
        }
    }

    fn skip(&mut self, receipt: &Receipt, reason: SkipReason) {
        self.actions.push(Action::Skip {
            receipt: receipt.id.clone(),
            reason,
        });
    }
}

fn fallback_folder(account: &AccountId) -> ArchivePath {
    ArchivePath::from_names([format!(
        "Account {}",
        crate::layout::names::short_tag(account.as_str())
    )])
    .unwrap_or_else(|_| ArchivePath::from_trusted("Account".to_owned()))
}

/// The ids of the folders above `path`, from the top down, as `snapshot` has them.
/// `None` if one is missing.
pub fn folder_ids_of(index: &PathIndex, path: &ArchivePath) -> Option<Vec<SinkItemId>> {
    path.ancestors()
        .map(|folder| match index.get(&folder) {
            Some((id, EntryKind::Folder)) => Some(id.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests;
