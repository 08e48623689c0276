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
pub mod index;
mod lookup;
pub mod organisation;
pub mod preview;
pub mod reconcile;
pub mod settings;
mod settle;

pub use action::{AccountFolder, Action, Plan, SkipReason, UploadReason, skip_reason_name};
pub use fit::{Fitted, fit_to_space};
pub use index::{IndexPlan, IndexReason, IndexWrite, index_key, plan_indexes};
pub use preview::preview_indexes;
pub use settings::{RequestedSettings, SettingsChange, resolve_settings, resolve_state_settings};
pub use settle::settle_renames;

use crate::layout::{Layout, ReceiptFolder, names};
use crate::model::{
    AccountId, ArchivePath, ArchiveSnapshot, EntryKind, PLAUSIBLE_DATES, PathIndex, PathKey,
    Receipt, SinkItemId, TransactionStatus,
};
use crate::state::{AccountRecord, ExportRecord, SyncState, Tombstone};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use lookup::{Holder, SortedLookup, Targets, key_into};
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
    /// Where the layout puts it, when its name makes a path.
    root: Option<ArchivePath>,
    /// Its period folders, named once each rather than once a receipt.
    periods: HashMap<(i32, u32), ReceiptFolder>,
}

impl FolderPlace {
    fn new(name: String, current: ArchivePath, effective: ArchivePath) -> Self {
        let root = ArchivePath::from_names([name.as_str()]).ok();
        Self {
            name,
            current,
            effective,
            root,
            periods: HashMap::new(),
        }
    }
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
    /// The paths this plan writes or adopts at, case-insensitively.
    targets: Targets,
    /// What checking a file's folders found, by `<current folder>\0<effective folder>`:
    /// the file in the way, if any (the folders to create are planned at the first check).
    folder_checks: HashMap<Box<str>, Option<ArchivePath>>,
    /// Reused for case-insensitive keys and folder pairs, so lookups do not allocate.
    key_buf: String,
    pair_buf: String,
    /// The state's records, walked along with the receipts (all sorted by id).
    tombstones: SortedLookup<'a, Tombstone>,
    exported: SortedLookup<'a, ExportRecord>,
    vanished: SortedLookup<'a, DateTime<Utc>>,
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
            actions: Vec::with_capacity(action_capacity(state)),
            folders_to_create: HashSet::new(),
            targets: Targets::new(),
            folder_checks: HashMap::new(),
            key_buf: String::new(),
            pair_buf: String::new(),
            tombstones: SortedLookup::new(&state.tombstones),
            exported: SortedLookup::new(&state.exported),
            vanished: SortedLookup::new(&state.vanished),
            tags: None,
            recorded_files: None,
        }
    }

    /// The plan's actions and the account folders; the lookup tables are freed here,
    /// before the actions are sorted, so that they and the sort's buffer never add up.
    fn into_parts(self) -> (Vec<Action>, BTreeMap<AccountId, FolderPlace>) {
        (self.actions, self.places)
    }

    fn run(mut self) -> Plan {
        self.place_account_folders();
        for receipt in self.state.receipts.values() {
            self.plan_receipt(receipt);
        }
        let (mut actions, places) = self.into_parts();
        sort_actions(&mut actions);
        let account_folders = places
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
            return FolderPlace::new(name, path.clone(), path);
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
                return FolderPlace::new(name, current, to);
            }
        }
        // Where the user put or renamed it, the sync follows it.
        FolderPlace::new(name, current.clone(), current)
    }

    fn plan_receipt(&mut self, receipt: &Receipt) {
        let id = &receipt.id;
        if self.tombstones.get(id).is_some() {
            return self.skip(receipt, SkipReason::Tombstoned);
        }
        if let Some(record) = self.exported.get(id) {
            match reconcile(record, self.snapshot()) {
                Verdict::Archived => self.skip(receipt, SkipReason::AlreadyArchived),
                Verdict::FolderDeleted { folder } => self.actions.push(Action::Tombstone {
                    receipt: id.clone(),
                    path: record.path.clone(),
                    folder,
                }),
                Verdict::FileDeleted { path } => match self.ineligibility(receipt) {
                    Some(reason) => self.skip(receipt, reason),
                    None => {
                        let effective = self.effective_path(&path);
                        self.place_file(
                            receipt,
                            Some(&path),
                            effective,
                            UploadReason::FileDeletedByUser,
                        );
                    }
                },
            }
            return;
        }
        if let Some(reason) = self.ineligibility(receipt) {
            return self.skip(receipt, reason);
        }
        let account = &receipt.transaction.account_id;
        let layout = self.layout;
        let Some(place) = self.places.get_mut(account) else {
            return self.skip(receipt, SkipReason::UnknownAccount(account.clone()));
        };
        let day = layout.receipt_day(receipt);
        let folder = place
            .periods
            .entry(layout.period_of(day))
            .or_insert_with(|| layout.receipt_folder(&place.name, day));
        let laid_out = layout.receipt_path_in(folder, receipt, day);
        // `None` for `current`: the same as `effective`.
        let (current, effective) = match &place.root {
            // The folder is where the layout puts it, and stays there.
            Some(root) if place.current == *root && place.effective == *root => (None, laid_out),
            Some(root) => (
                Some(
                    laid_out
                        .rebase(root, &place.current)
                        .unwrap_or_else(|| laid_out.clone()),
                ),
                laid_out
                    .rebase(root, &place.effective)
                    .unwrap_or_else(|| laid_out.clone()),
            ),
            None => (None, laid_out),
        };
        self.place_file(receipt, current.as_ref(), effective, UploadReason::New);
    }

    /// Why a receipt must not be archived, if it must not.
    fn ineligibility(&mut self, receipt: &Receipt) -> Option<SkipReason> {
        if self.vanished.get(&receipt.id).is_some() {
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

    /// The item at `path`, case-insensitively, as the archive is now.
    fn find(&mut self, path: &ArchivePath) -> Option<(SinkItemId, EntryKind)> {
        let snapshot = self.snapshot();
        if snapshot.is_empty() {
            // A first export: nothing to look up, no key to build.
            return None;
        }
        let index = self.index.get_or_insert_with(|| snapshot.path_index());
        index
            .get_by_key(key_into(&mut self.key_buf, path.as_str()))
            .map(|(id, kind)| (id.clone(), kind))
    }

    /// Adopts the file at `current` (`None`: at `effective`) if it is this receipt's,
    /// uploads to `effective` if the place is free, and skips otherwise.
    fn place_file(
        &mut self,
        receipt: &Receipt,
        current: Option<&ArchivePath>,
        effective: ArchivePath,
        reason: UploadReason,
    ) {
        let key = key_into(&mut self.key_buf, effective.as_str());
        let Some(claim) = self.targets.claim(key, &self.actions) else {
            return self.skip(receipt, SkipReason::PathCollision(effective));
        };
        match self.place_at_free_target(receipt, current, effective, reason) {
            None => self
                .targets
                .record(claim, Holder::LastAction, &self.actions),
            Some(unheld) => {
                let key = key_into(&mut self.key_buf, unheld.as_str());
                self.targets.record(claim, Holder::Key(key), &self.actions);
            }
        }
    }

    /// [`Planner::place_file`] once `effective` is this receipt's target. Returns
    /// `effective` when the action it pushes does not hold it (see [`Targets`]).
    fn place_at_free_target(
        &mut self,
        receipt: &Receipt,
        current: Option<&ArchivePath>,
        effective: ArchivePath,
        reason: UploadReason,
    ) -> Option<ArchivePath> {
        let current = current.unwrap_or(&effective);
        let found = self.find(current);
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
                    return Some(effective);
                }
                if let Some(blocker) = self.check_folders(current, &effective) {
                    self.skip(receipt, SkipReason::TargetOccupied(blocker));
                    return Some(effective);
                }
                self.actions.push(Action::Upload {
                    receipt: receipt.id.clone(),
                    path: effective,
                    size: receipt.size,
                    reason,
                });
            }
        }
        None
    }

    /// An unrecorded file anywhere in the archive carrying the receipt's tag and size:
    /// the receipt's own file, renamed at the bank or moved by the user since an
    /// interrupted run or a reset. Returns it with its path once the plan is done.
    fn tagged_file(&mut self, receipt: &Receipt) -> Option<(SinkItemId, ArchivePath)> {
        let tag = names::tag_bytes(receipt.id.as_str());
        let tag = std::str::from_utf8(&tag).ok()?;
        let snapshot = self.snapshot();
        let exported = &self.state.exported;
        let tags = self.tags.get_or_insert_with(|| tag_index(snapshot));
        // Only files carrying the tag need the recorded ones: most receipts have none.
        let candidates = tags.get(tag)?;
        let recorded = self
            .recorded_files
            .get_or_insert_with(|| exported.values().map(|r| r.file_id.clone()).collect());
        let (id, _) = candidates
            .iter()
            .find(|(id, size)| *size == receipt.size && !recorded.contains(id))?;
        let id = id.clone();
        recorded.insert(id.clone());
        let path = snapshot.path_of(&id)?;
        Some((id, self.effective_path(&path)))
    }

    /// A file sitting where one of `path`'s folders should be, if any; otherwise plans
    /// the folders to create for `effective`. Both depend only on the folders, so they
    /// are worked out once a folder, not once a receipt.
    fn check_folders(
        &mut self,
        current: &ArchivePath,
        effective: &ArchivePath,
    ) -> Option<ArchivePath> {
        let (now, after) = (parent_str(current), parent_str(effective));
        self.pair_buf.clear();
        self.pair_buf.push_str(now);
        self.pair_buf.push('\0');
        self.pair_buf.push_str(after);
        if let Some(known) = self.folder_checks.get(self.pair_buf.as_str()) {
            return known.clone();
        }
        let blocker = self.blocked_by_file(current);
        if blocker.is_none() {
            self.create_missing_folders(current, effective);
        }
        self.folder_checks
            .insert(self.pair_buf.as_str().into(), blocker.clone());
        blocker
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

/// Sorts a plan's actions into [`Action::plan_order`], keeping the planning order of
/// actions that compare equal.
///
/// Most keys are unique by construction: one upload a target (the targets are unique),
/// one folder creation a folder, one action a receipt (tombstones, skips). Only two
/// adoptions at one path or two renames from one folder could tie; without such a
/// tie, an unstable sort gives the same order as a stable one, without the stable
/// sort's buffer of half the actions.
///
/// A daily run is mostly skips, planned in receipt order, which is their order in the
/// plan (they come last): only the other actions are sorted, then put in front.
fn sort_actions(actions: &mut Vec<Action>) {
    let mut adopted = HashSet::new();
    let mut renamed = HashSet::new();
    let mut skips = 0usize;
    let mut ties = false;
    for action in actions.iter() {
        ties |= match action {
            Action::Adopt { path, .. } => !adopted.insert(path.as_str()),
            Action::RenameFolder { from, .. } => !renamed.insert(from.as_str()),
            Action::Skip { .. } => {
                skips += 1;
                false
            }
            _ => false,
        };
    }
    if ties {
        actions.sort_by(Action::plan_order);
    } else if skips >= actions.len() / 4 * 3 {
        let mut others: Vec<Action> = actions
            .extract_if(.., |a| !matches!(a, Action::Skip { .. }))
            .collect();
        if !actions.is_sorted_by(|a, b| a.plan_order(b).is_le()) {
            actions.sort_unstable_by(Action::plan_order);
        }
        others.sort_unstable_by(Action::plan_order);
        actions.splice(0..0, others);
    } else {
        actions.sort_unstable_by(Action::plan_order);
    }
}

/// The folders above `path`, as one string (empty at the top level).
fn parent_str(path: &ArchivePath) -> &str {
    let path = path.as_str();
    path.rfind('/').map_or("", |i| &path[..i])
}

/// Room for every action: one a receipt, plus the folder renames and creations,
/// estimated from the span of the receipts' dates (in months, a bound for every
/// period), so that the list is not copied to a twice larger one as it grows.
fn action_capacity(state: &SyncState) -> usize {
    let receipts = state.receipts.len();
    let dates = state
        .receipts
        .values()
        .map(|r| r.transaction.emitted_at)
        .filter(|t| PLAUSIBLE_DATES.contains(t));
    let (first, last) = dates.fold((None, None), |(lo, hi): (Option<_>, Option<_>), t| {
        (
            Some(lo.map_or(t, |lo: DateTime<Utc>| lo.min(t))),
            Some(hi.map_or(t, |hi: DateTime<Utc>| hi.max(t))),
        )
    });
    let months = match (first, last) {
        (Some(first), Some(last)) => {
            let month = |t: DateTime<Utc>| i64::from(t.year()) * 12 + i64::from(t.month0());
            // A time zone moves a date by a day at most: one month more on each side.
            usize::try_from(month(last) - month(first) + 3).unwrap_or(0)
        }
        _ => 0,
    };
    let accounts = state.accounts.len();
    let folders = accounts
        .saturating_mul(months + 2)
        .min(receipts.saturating_mul(2).saturating_add(accounts));
    receipts.saturating_add(folders)
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
