//! `record`: each [`StateChange`] as row writes.
//!
//! Most changes are blind writes of whole rows (a receipt seen, an export, a
//! tombstone, a watermark, an item written): they are gathered per table, the last
//! write of a key winning, and sent as one `INSERT … SELECT FROM unnest(…) ON CONFLICT`
//! and one `DELETE … = ANY(…)` per table, all in one round trip. Changes to an
//! account's columns run in order. The few changes whose effect depends on other rows
//! (a folder rename moves every record below it; a scan prunes orphans; a widened
//! start date clears the watermarks; the pending renames are a list) first send what
//! was gathered, then read what they need, apply the change with [`SyncState::apply`]
//! (the one definition of what a change means) and write only the rows that changed.

use super::pipeline::{self, Step};
use super::rows::{
    self, EXPORTS, INDEXES, ITEMS, Keyed, RECEIPTS, Scope, TOMBSTONES, TRANSACTIONS, VANISHED,
    WATERMARKS, encode,
};
use crate::error::Result;
use crate::model::{ArchiveSnapshot, ScanUpdate, SinkEntry};
use crate::state::{StateChange, SyncState};
use deadpool_postgres::ClientWrapper;
use std::collections::{BTreeMap, HashMap};

/// Writes gathered so far: per table, per key, the body to store or `None` to
/// delete; head columns to set; and account statements, which keep their order.
#[derive(Default)]
struct Batch {
    rows: BTreeMap<Keyed, BTreeMap<String, Option<String>>>,
    head: BTreeMap<&'static str, String>,
    ordered: Vec<Step>,
}

impl Batch {
    fn put(&mut self, keyed: Keyed, key: &str, body: String) {
        self.rows
            .entry(keyed)
            .or_default()
            .insert(key.to_owned(), Some(body));
    }

    fn delete(&mut self, keyed: Keyed, key: &str) {
        self.rows
            .entry(keyed)
            .or_default()
            .insert(key.to_owned(), None);
    }

    /// The statements for everything gathered: the blind writes touch distinct rows,
    /// so their order does not matter; the account statements keep theirs.
    fn take_steps(&mut self, scope: Scope<'_>) -> Vec<Step> {
        let mut steps = Vec::new();
        for (keyed, entries) in std::mem::take(&mut self.rows) {
            let (mut keys, mut bodies, mut gone) = (Vec::new(), Vec::new(), Vec::new());
            for (key, body) in entries {
                match body {
                    Some(body) => {
                        keys.push(key);
                        bodies.push(body);
                    }
                    None => gone.push(key),
                }
            }
            steps.extend(rows::upsert_bodies(scope, keyed, keys, bodies));
            steps.extend(rows::delete_keys(scope, keyed, gone));
        }
        for (column, json) in std::mem::take(&mut self.head) {
            steps.push(rows::set_head(scope, column, json));
        }
        steps.append(&mut self.ordered);
        steps
    }
}

/// Applies `changes`, in order, in one transaction on `client`: `BEGIN`, the writes
/// and `COMMIT` go in one round trip, unless a change must read rows first.
pub(super) async fn record(
    client: &ClientWrapper,
    scope: Scope<'_>,
    changes: &[StateChange],
) -> Result<()> {
    let operation = format!("recording sync progress (organisation {:?})", scope.org);
    let send = |steps: Vec<Step>| {
        let operation = operation.clone();
        async move { pipeline::run(client, &operation, scope.password, &steps).await }
    };
    let mut batch = Batch::default();
    // A first record creates the head row, as `load` must then find a state.
    let mut opening = vec![Step::Simple("BEGIN"), rows::ensure_head(scope)];
    for change in changes {
        match change {
            StateChange::ReceiptsSeen(receipts) => {
                for receipt in receipts {
                    batch.delete(VANISHED, receipt.id.as_str());
                    let body = encode(scope, RECEIPTS.table, receipt)?;
                    batch.put(RECEIPTS, receipt.id.as_str(), body);
                }
            }
            StateChange::WatermarkAdvanced { account, watermark } => {
                let body = encode(scope, WATERMARKS.table, watermark)?;
                batch.put(WATERMARKS, account.as_str(), body);
            }
            StateChange::ItemWritten(entry) => {
                let body = encode(scope, ITEMS.table, entry)?;
                batch.put(ITEMS, entry.id.as_str(), body);
            }
            StateChange::Exported { receipt, record } => {
                batch.delete(TOMBSTONES, receipt.as_str());
                let body = encode(scope, EXPORTS.table, record)?;
                batch.put(EXPORTS, receipt.as_str(), body);
            }
            StateChange::Tombstoned { receipt, tombstone } => {
                batch.delete(EXPORTS, receipt.as_str());
                let body = encode(scope, TOMBSTONES.table, tombstone)?;
                batch.put(TOMBSTONES, receipt.as_str(), body);
            }
            StateChange::TransactionsSeen(transactions) => {
                for seen in transactions {
                    let id = seen.transaction.id.as_str();
                    let body = encode(scope, TRANSACTIONS.table, seen)?;
                    batch.put(TRANSACTIONS, id, body);
                }
            }
            StateChange::IndexWritten { key, record } => {
                let body = encode(scope, INDEXES.table, record)?;
                batch.put(INDEXES, key, body);
            }
            StateChange::Vanished { receipt, at } => {
                let body = encode(scope, VANISHED.table, at)?;
                batch.put(VANISHED, receipt.as_str(), body);
            }
            StateChange::RunFinished(summary) => {
                let body = encode(scope, "sync_state", &Some(summary))?;
                batch.head.insert("last_run", body);
            }
            StateChange::AccountsSeen(accounts) => {
                let table = "sync_accounts";
                let mut ids = Vec::new();
                let mut bodies = Vec::new();
                for account in accounts {
                    ids.push(account.id.as_str().to_owned());
                    bodies.push(encode(scope, table, account)?);
                }
                if !ids.is_empty() {
                    batch.ordered.push(Step::execute(
                        "INSERT INTO sync_accounts (org_id, account_id, account) \
                         SELECT $1, i, a::json FROM unnest($2::text[], $3::text[]) AS u(i, a) \
                         ON CONFLICT (org_id, account_id) DO UPDATE SET account = excluded.account",
                        vec![
                            Box::new(scope.org.to_owned()),
                            Box::new(ids),
                            Box::new(bodies),
                        ],
                    ));
                }
            }
            StateChange::AccountFolder { account, name, id } => {
                batch.ordered.push(Step::execute(
                    "UPDATE sync_accounts SET folder_name = $3, folder_id = $4 \
                     WHERE org_id = $1 AND account_id = $2",
                    vec![
                        Box::new(scope.org.to_owned()),
                        Box::new(account.as_str().to_owned()),
                        Box::new(name.clone()),
                        Box::new(id.as_str().to_owned()),
                    ],
                ));
            }
            StateChange::FullReadFinished { account, at } => {
                batch.ordered.push(Step::execute(
                    "UPDATE sync_accounts SET full_read_at = $3::text::json \
                     WHERE org_id = $1 AND account_id = $2",
                    vec![
                        Box::new(scope.org.to_owned()),
                        Box::new(account.as_str().to_owned()),
                        Box::new(encode(scope, "sync_accounts", at)?),
                    ],
                ));
            }
            StateChange::ArchiveScanned(ScanUpdate::Changes { changes, cursor })
                if changes.is_empty() =>
            {
                // A quiet scan: only the cursor moves.
                let body = encode(scope, "sync_state", &Some(cursor))?;
                batch.head.insert("scan_cursor", body);
            }
            StateChange::ArchiveScanned(update) => {
                // What a scan prunes depends on the other items: read them first.
                opening.append(&mut batch.take_steps(scope));
                send(std::mem::take(&mut opening)).await?;
                let before = rows::load_snapshot(client, scope).await?;
                let mut after = SyncState {
                    snapshot: before.clone(),
                    ..SyncState::default()
                };
                after.apply(change);
                write_snapshot_diff(&mut batch, scope, &before, &after.snapshot)?;
                let cursor = match update {
                    ScanUpdate::Full { cursor, .. } => cursor.clone(),
                    ScanUpdate::Changes { cursor, .. } => Some(cursor.clone()),
                };
                batch
                    .head
                    .insert("scan_cursor", encode(scope, "sync_state", &cursor)?);
            }
            StateChange::FolderRenameStarted(_)
            | StateChange::FolderRenameAbandoned(_)
            | StateChange::FolderRenamed { .. }
            | StateChange::SettingsChanged(_) => {
                // Rare, and their effect depends on other rows: read the state as it
                // is now, apply, and write what changed.
                opening.append(&mut batch.take_steps(scope));
                send(std::mem::take(&mut opening)).await?;
                let Some(before) = rows::load(client, scope).await? else {
                    continue;
                };
                let mut after = before.clone();
                after.apply(change);
                write_diff(&mut batch, scope, &before, &after)?;
            }
        }
    }
    opening.append(&mut batch.take_steps(scope));
    opening.push(Step::Simple("COMMIT"));
    send(opening).await
}

/// Gathers the row writes that turn `before` into `after` (every table of the state:
/// a change applied on a whole state may touch any), to send with the batch.
fn write_diff(
    batch: &mut Batch,
    scope: Scope<'_>,
    before: &SyncState,
    after: &SyncState,
) -> Result<()> {
    diff_map(
        batch,
        scope,
        RECEIPTS,
        &before.receipts,
        &after.receipts,
        |k| k.as_str(),
    )?;
    diff_map(
        batch,
        scope,
        EXPORTS,
        &before.exported,
        &after.exported,
        |k| k.as_str(),
    )?;
    diff_map(
        batch,
        scope,
        TOMBSTONES,
        &before.tombstones,
        &after.tombstones,
        |k| k.as_str(),
    )?;
    diff_map(
        batch,
        scope,
        VANISHED,
        &before.vanished,
        &after.vanished,
        |k| k.as_str(),
    )?;
    diff_map(
        batch,
        scope,
        WATERMARKS,
        &before.watermarks,
        &after.watermarks,
        |k| k.as_str(),
    )?;
    diff_map(
        batch,
        scope,
        TRANSACTIONS,
        &before.transactions,
        &after.transactions,
        |k| k.as_str(),
    )?;
    // A folder rename moves the indexes written below it.
    diff_map(
        batch,
        scope,
        INDEXES,
        &before.indexes,
        &after.indexes,
        String::as_str,
    )?;
    write_snapshot_diff(batch, scope, &before.snapshot, &after.snapshot)?;
    let table = "sync_state";
    if before.settings != after.settings {
        batch
            .head
            .insert("settings", encode(scope, table, &after.settings)?);
    }
    if before.scan_cursor != after.scan_cursor {
        batch
            .head
            .insert("scan_cursor", encode(scope, table, &after.scan_cursor)?);
    }
    if before.last_run != after.last_run {
        batch
            .head
            .insert("last_run", encode(scope, table, &after.last_run)?);
    }
    if before.pending_renames != after.pending_renames {
        batch.head.insert(
            "pending_renames",
            encode(scope, table, &after.pending_renames)?,
        );
    }
    let changed = after
        .accounts
        .iter()
        .filter(|(id, record)| before.accounts.get(*id) != Some(*record));
    batch.ordered.extend(rows::upsert_accounts(scope, changed)?);
    Ok(())
}

fn diff_map<K: Ord, V: PartialEq + serde::Serialize>(
    batch: &mut Batch,
    scope: Scope<'_>,
    keyed: Keyed,
    before: &BTreeMap<K, V>,
    after: &BTreeMap<K, V>,
    key: impl Fn(&K) -> &str,
) -> Result<()> {
    for (k, v) in after {
        if before.get(k) != Some(v) {
            batch.put(keyed, key(k), encode(scope, keyed.table, v)?);
        }
    }
    for k in before.keys().filter(|k| !after.contains_key(*k)) {
        batch.delete(keyed, key(k));
    }
    Ok(())
}

fn write_snapshot_diff(
    batch: &mut Batch,
    scope: Scope<'_>,
    before: &ArchiveSnapshot,
    after: &ArchiveSnapshot,
) -> Result<()> {
    let old: HashMap<_, SinkEntry> = before
        .entries()
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect();
    let new = after.entries();
    for entry in &new {
        if old.get(&entry.id) != Some(entry) {
            batch.put(ITEMS, entry.id.as_str(), encode(scope, ITEMS.table, entry)?);
        }
    }
    let kept: std::collections::HashSet<_> = new.iter().map(|e| &e.id).collect();
    for id in old.keys().filter(|id| !kept.contains(id)) {
        batch.delete(ITEMS, id.as_str());
    }
    Ok(())
}
