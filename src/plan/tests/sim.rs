//! A model archive for planner tests: a drive as a map of paths, with the user's
//! actions, and a pure "executor" that carries out a plan on it.

use super::super::*;
use crate::model::{BankAccount, CurrencyCode, ReceiptId, SinkEntry};
use crate::state::{ExportRecord, StateChange, StateSettings, Tombstone, TombstoneReason};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
struct Node {
    path: ArchivePath,
    id: SinkItemId,
    kind: EntryKind,
}

pub struct Sim {
    pub state: SyncState,
    pub layout: Layout,
    pub options: PlanOptions,
    stable_ids: bool,
    drive: BTreeMap<PathKey, Node>,
    next_id: u64,
    /// The user's own files: id → size.
    user_files: BTreeMap<SinkItemId, u64>,
}

impl Sim {
    pub fn new(stable_ids: bool) -> Self {
        Self {
            state: SyncState::new(StateSettings {
                start_date: None,
                layout: Default::default(),
            }),
            layout: Layout::default(),
            options: PlanOptions::default(),
            stable_ids,
            drive: BTreeMap::new(),
            next_id: 0,
            user_files: BTreeMap::new(),
        }
    }

    pub fn add_account(&mut self, id: &str, name: &str) {
        let account = BankAccount {
            id: AccountId::new(id),
            name: name.into(),
            iban: Some(format!("FR76 0000 {:04}", id.len() * 1111)),
            currency: CurrencyCode::EUR,
        };
        self.state.accounts.insert(
            account.id.clone(),
            AccountRecord {
                account,
                folder_name: None,
                folder_id: None,
                full_read_at: None,
            },
        );
    }

    pub fn rename_account(&mut self, id: &str, name: &str) {
        if let Some(rec) = self.state.accounts.get_mut(&AccountId::new(id)) {
            rec.account.name = name.into();
        }
    }

    pub fn add_receipt(&mut self, receipt: Receipt) {
        self.state.apply(&StateChange::ReceiptsSeen(vec![receipt]));
    }

    pub fn vanish(&mut self, id: &str) {
        self.state.apply(&StateChange::Vanished {
            receipt: ReceiptId::new(id),
            at: Utc.timestamp_opt(0, 0).unwrap(),
        });
    }

    // ---- the drive ----

    fn new_id(&mut self, path: &ArchivePath) -> SinkItemId {
        self.next_id += 1;
        if self.stable_ids {
            SinkItemId::new(format!("i{}", self.next_id))
        } else {
            SinkItemId::new(path.as_str())
        }
    }

    fn node(&self, path: &ArchivePath) -> Option<&Node> {
        self.drive.get(&path.key())
    }

    pub fn exists(&self, path: &ArchivePath) -> bool {
        self.node(path).is_some()
    }

    fn parent_ok(&self, path: &ArchivePath) -> bool {
        path.parent()
            .is_none_or(|p| self.node(&p).is_some_and(|n| n.kind == EntryKind::Folder))
    }

    fn insert(&mut self, path: &ArchivePath, kind: EntryKind) -> SinkItemId {
        let id = self.new_id(path);
        self.drive.insert(
            path.key(),
            Node {
                path: path.clone(),
                id: id.clone(),
                kind,
            },
        );
        id
    }

    fn refresh_snapshot(&mut self) {
        let ids: BTreeMap<PathKey, SinkItemId> = self
            .drive
            .iter()
            .map(|(k, n)| (k.clone(), n.id.clone()))
            .collect();
        let entries = self.drive.values().map(|n| SinkEntry {
            id: n.id.clone(),
            parent: n.path.parent().and_then(|p| ids.get(&p.key()).cloned()),
            name: n.path.file_name().to_owned(),
            kind: n.kind,
        });
        self.state.snapshot = ArchiveSnapshot::from_entries(entries);
    }

    fn move_subtree(&mut self, from: &ArchivePath, to: &ArchivePath) {
        let moving: Vec<PathKey> = self
            .drive
            .iter()
            .filter(|(_, n)| n.path.starts_with(from))
            .map(|(k, _)| k.clone())
            .collect();
        for key in moving {
            let mut node = self.drive.remove(&key).unwrap();
            node.path = node.path.rebase(from, to).unwrap();
            if !self.stable_ids {
                let old = node.id.clone();
                node.id = SinkItemId::new(node.path.as_str());
                if let Some(size) = self.user_files.remove(&old) {
                    self.user_files.insert(node.id.clone(), size);
                }
            }
            self.drive.insert(node.path.key(), node);
        }
    }

    // ---- the user's actions ----

    pub fn user_delete(&mut self, path: &ArchivePath) {
        let gone: Vec<PathKey> = self
            .drive
            .iter()
            .filter(|(_, n)| n.path.starts_with(path))
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            if let Some(node) = self.drive.remove(&key) {
                self.user_files.remove(&node.id);
            }
        }
    }

    pub fn user_add_folder(&mut self, path: &ArchivePath) {
        if !self.exists(path) && self.parent_ok(path) {
            self.insert(path, EntryKind::Folder);
        }
    }

    pub fn user_add_file(&mut self, path: &ArchivePath, size: u64) {
        if !self.exists(path) && self.parent_ok(path) {
            let id = self.insert(path, EntryKind::File { size });
            self.user_files.insert(id, size);
        }
    }

    pub fn user_rename(&mut self, path: &ArchivePath, new_name: &str) {
        let to = match path.parent() {
            Some(p) => p.join(new_name).unwrap(),
            None => ArchivePath::parse(new_name).unwrap(),
        };
        if !self.exists(&to) {
            self.move_subtree(path, &to);
        }
    }

    pub fn user_move(&mut self, path: &ArchivePath, folder: &ArchivePath) {
        let to = folder.join(path.file_name()).unwrap();
        if !self.exists(&to) && !folder.starts_with(path) {
            self.move_subtree(path, &to);
        }
    }

    pub fn pick_file(&self, n: u8) -> Option<ArchivePath> {
        let files: Vec<&Node> = self
            .drive
            .values()
            .filter(|n| n.kind != EntryKind::Folder)
            .collect();
        (!files.is_empty()).then(|| files[usize::from(n) % files.len()].path.clone())
    }

    pub fn pick_folder(&self, n: u8) -> Option<ArchivePath> {
        let folders: Vec<&Node> = self
            .drive
            .values()
            .filter(|n| n.kind == EntryKind::Folder)
            .collect();
        (!folders.is_empty()).then(|| folders[usize::from(n) % folders.len()].path.clone())
    }

    pub fn pick_receipt(&self, n: u8) -> Option<String> {
        let ids: Vec<&ReceiptId> = self.state.receipts.keys().collect();
        (!ids.is_empty()).then(|| ids[usize::from(n) % ids.len()].to_string())
    }

    // ---- planning and carrying out ----

    pub fn plan(&mut self) -> Plan {
        self.refresh_snapshot();
        plan(&self.state, &self.layout, &self.options)
    }

    pub fn sync(&mut self) -> Plan {
        let plan = self.plan();
        self.apply(&plan);
        plan
    }

    pub fn apply(&mut self, plan: &Plan) {
        self.carry_out(plan, true);
    }

    /// Carries out the archive side only: a crash before anything was recorded.
    pub fn apply_archive_only(&mut self, plan: &Plan) {
        self.carry_out(plan, false);
    }

    fn record(&mut self, change: StateChange, enabled: bool) {
        if enabled {
            self.state.apply(&change);
        }
    }

    fn folder_ids(&self, path: &ArchivePath) -> Vec<SinkItemId> {
        path.ancestors()
            .map(|a| self.node(&a).expect("folder exists").id.clone())
            .collect()
    }

    fn carry_out(&mut self, plan: &Plan, record: bool) {
        let at = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        for action in &plan.actions {
            match action {
                Action::Tombstone {
                    receipt,
                    path,
                    folder,
                } => self.record(
                    StateChange::Tombstoned {
                        receipt: receipt.clone(),
                        tombstone: Tombstone {
                            reason: TombstoneReason::FolderDeleted {
                                folder: folder.clone(),
                            },
                            path: path.clone(),
                            at,
                        },
                    },
                    record,
                ),
                Action::RenameFolder { from, to, .. } => {
                    assert!(!self.exists(to), "rename onto an existing item {to}");
                    self.move_subtree(from, to);
                    let node = self.node(to).expect("renamed").clone();
                    let entry = SinkEntry {
                        id: node.id,
                        parent: None,
                        name: to.file_name().to_owned(),
                        kind: EntryKind::Folder,
                    };
                    self.record(
                        StateChange::FolderRenamed {
                            from: from.clone(),
                            to: to.clone(),
                            entry,
                            ids_are_paths: !self.stable_ids,
                        },
                        record,
                    );
                }
                Action::CreateFolder { path } => {
                    assert!(self.parent_ok(path), "parent of {path} missing");
                    match self.node(path) {
                        Some(n) => {
                            assert_eq!(n.kind, EntryKind::Folder, "folder over a file {path}")
                        }
                        None => {
                            self.insert(path, EntryKind::Folder);
                        }
                    }
                }
                Action::Upload {
                    receipt,
                    path,
                    size,
                    ..
                } => {
                    assert!(!self.exists(path), "overwrite attempted at {path}");
                    assert!(self.parent_ok(path), "upload into a missing folder {path}");
                    let id = self.insert(path, EntryKind::File { size: *size });
                    let folder_ids = self.folder_ids(path);
                    self.record(
                        StateChange::Exported {
                            receipt: receipt.clone(),
                            record: ExportRecord {
                                path: path.clone(),
                                file_id: id,
                                folder_ids,
                                size: *size,
                                at,
                            },
                        },
                        record,
                    );
                }
                Action::Adopt {
                    receipt,
                    path,
                    size,
                    ..
                } => {
                    let node = self.node(path).expect("adopted file exists").clone();
                    let folder_ids = self.folder_ids(path);
                    self.record(
                        StateChange::Exported {
                            receipt: receipt.clone(),
                            record: ExportRecord {
                                path: path.clone(),
                                file_id: node.id,
                                folder_ids,
                                size: *size,
                                at,
                            },
                        },
                        record,
                    );
                }
                Action::Skip { .. } => {}
            }
        }
        for folder in &plan.account_folders {
            if let Some(node) = self.node(&folder.path).cloned() {
                self.record(
                    StateChange::AccountFolder {
                        account: folder.account.clone(),
                        name: folder.name.clone(),
                        id: node.id,
                    },
                    record,
                );
            }
        }
        self.refresh_snapshot();
    }

    // ---- looking ----

    /// Where the state says a receipt was archived.
    pub fn path_of(&self, id: &str) -> ArchivePath {
        self.state.exported[&ReceiptId::new(id)].path.clone()
    }

    /// Where the receipt's file is now (following ids).
    pub fn current_path_of(&self, id: &str) -> ArchivePath {
        let record = &self.state.exported[&ReceiptId::new(id)];
        self.drive
            .values()
            .find(|n| n.id == record.file_id)
            .map(|n| n.path.clone())
            .expect("file present")
    }

    /// Where the planner would put a new receipt.
    pub fn planned_path(&mut self, id: &str) -> ArchivePath {
        let plan = self.plan();
        plan.actions
            .iter()
            .find_map(|a| match a {
                Action::Upload { receipt, path, .. } if receipt.as_str() == id => {
                    Some(path.clone())
                }
                _ => None,
            })
            .expect("an upload")
    }

    pub fn check_user_files_untouched(&self) -> Result<(), TestCaseError> {
        for (id, size) in &self.user_files {
            let node = self.drive.values().find(|n| &n.id == id);
            prop_assert!(node.is_some(), "user file {id} disappeared");
            prop_assert_eq!(node.unwrap().kind, EntryKind::File { size: *size });
        }
        Ok(())
    }

    /// After a sync: every eligible receipt without a tombstone is archived, once.
    pub fn check_invariants(&self) -> Result<(), TestCaseError> {
        let mut seen_files = std::collections::HashSet::new();
        for (id, receipt) in &self.state.receipts {
            let eligible = receipt.transaction.status != TransactionStatus::Declined
                && !self.state.tombstones.contains_key(id);
            let record = self.state.exported.get(id);
            if let Some(record) = record {
                prop_assert!(
                    seen_files.insert(record.file_id.clone()),
                    "two receipts recorded on one file {}",
                    record.file_id
                );
                // A file the user deleted can only be put back while the bank still has it.
                prop_assert!(
                    self.state.snapshot.contains(&record.file_id)
                        || self.state.vanished.contains_key(id),
                    "{id} recorded but missing"
                );
                prop_assert!(!self.state.tombstones.contains_key(id));
            } else if eligible && !self.state.vanished.contains_key(id) {
                // Only a receipt whose place is taken by something else may wait.
                let plan = plan(&self.state, &self.layout, &self.options);
                let waiting = plan.actions.iter().any(|a| matches!(a,
                    Action::Skip { receipt, reason: SkipReason::TargetOccupied(_) | SkipReason::PathCollision(_) }
                        if receipt == id));
                prop_assert!(waiting, "eligible receipt {id} not archived");
            }
        }
        Ok(())
    }
}
