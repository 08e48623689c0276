//! A [`SyncState`] as rows, and back: the tables' names and the statements that
//! read and write them.

use super::error::{SERVICE, from_pg, state};
use crate::error::{Error, Result};
use crate::model::{AccountId, ArchiveSnapshot, BankAccount, ReceiptId, SinkEntry, SinkItemId};
use crate::state::{AccountRecord, STATE_VERSION, SyncState};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_postgres::types::ToSql;

/// A table of JSON bodies by key, one row per entry of one of the state's maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Keyed {
    pub table: &'static str,
    pub key: &'static str,
}

pub(super) const RECEIPTS: Keyed = Keyed {
    table: "sync_receipts",
    key: "receipt_id",
};
pub(super) const EXPORTS: Keyed = Keyed {
    table: "sync_exports",
    key: "receipt_id",
};
pub(super) const TOMBSTONES: Keyed = Keyed {
    table: "sync_tombstones",
    key: "receipt_id",
};
pub(super) const VANISHED: Keyed = Keyed {
    table: "sync_vanished",
    key: "receipt_id",
};
pub(super) const WATERMARKS: Keyed = Keyed {
    table: "sync_watermarks",
    key: "account_id",
};
pub(super) const ITEMS: Keyed = Keyed {
    table: "sync_archive_items",
    key: "item_id",
};
const KEYED: [Keyed; 6] = [RECEIPTS, EXPORTS, TOMBSTONES, VANISHED, WATERMARKS, ITEMS];

/// Everything a statement needs to say who it works for and how to report a failure.
#[derive(Clone, Copy)]
pub(super) struct Scope<'a> {
    pub org: &'a str,
    pub password: Option<&'a [u8]>,
}

impl Scope<'_> {
    pub fn pg(&self, operation: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
        let operation = format!("{operation} (organisation {:?})", self.org);
        move |e| from_pg(&operation, &e, self.password)
    }
}

/// Runs `sql` as a statement prepared once per connection.
pub(super) async fn execute(
    tx: &Transaction<'_>,
    scope: Scope<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64> {
    let statement = tx
        .prepare_cached(sql)
        .await
        .map_err(scope.pg("preparing a statement"))?;
    tx.execute(&statement, params)
        .await
        .map_err(scope.pg("writing the sync state"))
}

async fn query(
    tx: &Transaction<'_>,
    scope: Scope<'_>,
    sql: &str,
) -> Result<Vec<tokio_postgres::Row>> {
    let statement = tx
        .prepare_cached(sql)
        .await
        .map_err(scope.pg("preparing a statement"))?;
    tx.query(&statement, &[&scope.org])
        .await
        .map_err(scope.pg("reading the sync state"))
}

/// The crate's JSON for `value`.
pub(super) fn encode<T: Serialize>(scope: Scope<'_>, table: &str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Permanent {
        service: SERVICE,
        operation: format!("encoding a row of {table} (organisation {:?})", scope.org),
        message: e.to_string(),
    })
}

/// A stored body read back; one that does not decode is an error naming the
/// organisation, the table and the row, without quoting the row (it may hold a cursor).
pub(super) fn decode<T: DeserializeOwned>(
    scope: Scope<'_>,
    table: &str,
    key: &str,
    text: &str,
) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        state(
            scope.org,
            table,
            format!(
                "the row {key:?} cannot be read by this release ({:?} error at line {}, column {}); \
                 it was written by a newer release or changed by hand: restore it, or delete the \
                 organisation's rows to sync it again from the start",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })
}

fn column<'r, T: tokio_postgres::types::FromSql<'r>>(
    scope: Scope<'_>,
    table: &str,
    row: &'r tokio_postgres::Row,
    index: usize,
) -> Result<T> {
    row.try_get(index).map_err(|e| {
        state(
            scope.org,
            table,
            format!("a row has a column this release cannot read ({e}); the table was changed by hand"),
        )
    })
}

/// Inserts or replaces the bodies of `rows` (unique keys) in one statement.
pub(super) async fn upsert_bodies(
    tx: &Transaction<'_>,
    scope: Scope<'_>,
    keyed: Keyed,
    keys: &[String],
    bodies: &[String],
) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO {table} (org_id, {key}, body) \
         SELECT $1, k, b::json FROM unnest($2::text[], $3::text[]) AS u(k, b) \
         ON CONFLICT (org_id, {key}) DO UPDATE SET body = excluded.body",
        table = keyed.table,
        key = keyed.key
    );
    execute(tx, scope, &sql, &[&scope.org, &keys, &bodies]).await?;
    Ok(())
}

/// Deletes the rows of `keys`, in one statement.
pub(super) async fn delete_keys(
    tx: &Transaction<'_>,
    scope: Scope<'_>,
    keyed: Keyed,
    keys: &[String],
) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "DELETE FROM {table} WHERE org_id = $1 AND {key} = ANY($2::text[])",
        table = keyed.table,
        key = keyed.key
    );
    execute(tx, scope, &sql, &[&scope.org, &keys]).await?;
    Ok(())
}

/// Creates the organisation's head row if there is none, as a first `record` must
/// (an empty state of the current format).
pub(super) async fn ensure_head(tx: &Transaction<'_>, scope: Scope<'_>) -> Result<()> {
    let format = STATE_VERSION as i32;
    execute(
        tx,
        scope,
        "INSERT INTO sync_state (org_id, format) VALUES ($1, $2) ON CONFLICT (org_id) DO NOTHING",
        &[&scope.org, &format],
    )
    .await
    .map(drop)
}

/// The archive snapshot's rows, item by item as they were written (no pruning: the
/// rows are exactly what applying the changes gave).
pub(super) async fn load_snapshot(tx: &Transaction<'_>, scope: Scope<'_>) -> Result<ArchiveSnapshot> {
    let mut snapshot = ArchiveSnapshot::new();
    for (key, body) in load_bodies(tx, scope, ITEMS).await? {
        snapshot.upsert(decode::<SinkEntry>(scope, ITEMS.table, &key, &body)?);
    }
    Ok(snapshot)
}

async fn load_bodies(
    tx: &Transaction<'_>,
    scope: Scope<'_>,
    keyed: Keyed,
) -> Result<Vec<(String, String)>> {
    let sql = format!(
        "SELECT {key}, body::text FROM {table} WHERE org_id = $1",
        table = keyed.table,
        key = keyed.key
    );
    query(tx, scope, &sql)
        .await?
        .iter()
        .map(|row| {
            Ok((
                column(scope, keyed.table, row, 0)?,
                column(scope, keyed.table, row, 1)?,
            ))
        })
        .collect()
}

fn decode_map<K: Ord, V: DeserializeOwned>(
    scope: Scope<'_>,
    keyed: Keyed,
    rows: Vec<(String, String)>,
    make_key: impl Fn(String) -> K,
) -> Result<std::collections::BTreeMap<K, V>> {
    rows.into_iter()
        .map(|(key, body)| {
            let value = decode(scope, keyed.table, &key, &body)?;
            Ok((make_key(key), value))
        })
        .collect()
}

/// The whole state, or `None` when the organisation has no head row.
pub(super) async fn load(tx: &Transaction<'_>, scope: Scope<'_>) -> Result<Option<SyncState>> {
    let head_sql = "SELECT format, settings::text, scan_cursor::text, last_run::text, \
                    pending_renames::text FROM sync_state WHERE org_id = $1";
    let accounts_sql = "SELECT account_id, account::text, folder_name, folder_id, \
                        full_read_at::text FROM sync_accounts WHERE org_id = $1";
    // One round trip for all: the reads are sent together.
    let (head, accounts, receipts, exports, tombstones, vanished, watermarks, items) = futures::try_join!(
        query(tx, scope, head_sql),
        query(tx, scope, accounts_sql),
        load_bodies(tx, scope, RECEIPTS),
        load_bodies(tx, scope, EXPORTS),
        load_bodies(tx, scope, TOMBSTONES),
        load_bodies(tx, scope, VANISHED),
        load_bodies(tx, scope, WATERMARKS),
        load_bodies(tx, scope, ITEMS),
    )?;
    let Some(head) = head.first() else {
        return Ok(None);
    };
    let table = "sync_state";
    let format: i32 = column(scope, table, head, 0)?;
    let version = u32::try_from(format).unwrap_or(u32::MAX);
    if version > STATE_VERSION {
        return Err(state(
            scope.org,
            table,
            format!(
                "the state is format {format}, written by a newer release (this one reads up to \
                 {STATE_VERSION}): run the newer release; nothing was changed"
            ),
        ));
    }
    // `json` null and SQL NULL both mean "none".
    let optional = |index: usize| -> Result<Option<String>> {
        let text: Option<String> = column(scope, table, head, index)?;
        Ok(text.filter(|t| t != "null"))
    };
    let mut state_ = SyncState {
        version,
        ..SyncState::default()
    };
    if let Some(text) = optional(1)? {
        state_.settings = decode(scope, table, "settings", &text)?;
    }
    if let Some(text) = optional(2)? {
        state_.scan_cursor = decode(scope, table, "scan_cursor", &text)?;
    }
    if let Some(text) = optional(3)? {
        state_.last_run = decode(scope, table, "last_run", &text)?;
    }
    if let Some(text) = optional(4)? {
        state_.pending_renames = decode(scope, table, "pending_renames", &text)?;
    }
    let table = "sync_accounts";
    for row in &accounts {
        let id: String = column(scope, table, row, 0)?;
        let account: BankAccount = decode(scope, table, &id, &column::<String>(scope, table, row, 1)?)?;
        let full_read_at: Option<DateTime<Utc>> = match column::<Option<String>>(scope, table, row, 4)? {
            Some(text) => decode(scope, table, &id, &text)?,
            None => None,
        };
        let record = AccountRecord {
            account,
            folder_name: column(scope, table, row, 2)?,
            folder_id: column::<Option<String>>(scope, table, row, 3)?.map(SinkItemId::new),
            full_read_at,
        };
        state_.accounts.insert(AccountId::new(id), record);
    }
    state_.receipts = decode_map(scope, RECEIPTS, receipts, ReceiptId::new)?;
    state_.exported = decode_map(scope, EXPORTS, exports, ReceiptId::new)?;
    state_.tombstones = decode_map(scope, TOMBSTONES, tombstones, ReceiptId::new)?;
    state_.vanished = decode_map(scope, VANISHED, vanished, ReceiptId::new)?;
    state_.watermarks = decode_map(scope, WATERMARKS, watermarks, AccountId::new)?;
    for (key, body) in items {
        state_
            .snapshot
            .upsert(decode::<SinkEntry>(scope, ITEMS.table, &key, &body)?);
    }
    Ok(Some(state_))
}

/// Writes the head row's columns from `state`.
pub(super) async fn write_head(tx: &Transaction<'_>, scope: Scope<'_>, state_: &SyncState) -> Result<()> {
    let table = "sync_state";
    let format = i32::try_from(state_.version).unwrap_or(i32::MAX);
    let settings = encode(scope, table, &state_.settings)?;
    let cursor = encode(scope, table, &state_.scan_cursor)?;
    let last_run = encode(scope, table, &state_.last_run)?;
    let pending = encode(scope, table, &state_.pending_renames)?;
    execute(
        tx,
        scope,
        "INSERT INTO sync_state (org_id, format, settings, scan_cursor, last_run, pending_renames) \
         VALUES ($1, $2, $3::text::json, $4::text::json, $5::text::json, $6::text::json) \
         ON CONFLICT (org_id) DO UPDATE SET format = excluded.format, settings = excluded.settings, \
         scan_cursor = excluded.scan_cursor, last_run = excluded.last_run, \
         pending_renames = excluded.pending_renames",
        &[&scope.org, &format, &settings, &cursor, &last_run, &pending],
    )
    .await
    .map(drop)
}

/// Inserts or replaces whole account rows.
pub(super) async fn upsert_accounts<'a>(
    tx: &Transaction<'_>,
    scope: Scope<'_>,
    records: impl IntoIterator<Item = (&'a AccountId, &'a AccountRecord)>,
) -> Result<()> {
    let table = "sync_accounts";
    let (mut ids, mut accounts, mut names, mut folders, mut reads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, record) in records {
        ids.push(id.as_str().to_owned());
        accounts.push(encode(scope, table, &record.account)?);
        names.push(record.folder_name.clone());
        folders.push(record.folder_id.as_ref().map(|f| f.as_str().to_owned()));
        reads.push(match &record.full_read_at {
            Some(at) => Some(encode(scope, table, at)?),
            None => None,
        });
    }
    if ids.is_empty() {
        return Ok(());
    }
    execute(
        tx,
        scope,
        "INSERT INTO sync_accounts (org_id, account_id, account, folder_name, folder_id, full_read_at) \
         SELECT $1, i, a::json, n, f, r::json \
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(i, a, n, f, r) \
         ON CONFLICT (org_id, account_id) DO UPDATE SET account = excluded.account, \
         folder_name = excluded.folder_name, folder_id = excluded.folder_id, \
         full_read_at = excluded.full_read_at",
        &[&scope.org, &ids, &accounts, &names, &folders, &reads],
    )
    .await
    .map(drop)
}

/// The bodies of a map, as two parallel columns.
pub(super) fn columns<'a, K: 'a, V: Serialize + 'a>(
    scope: Scope<'_>,
    keyed: Keyed,
    entries: impl IntoIterator<Item = (&'a K, &'a V)>,
    key: impl Fn(&K) -> &str,
) -> Result<(Vec<String>, Vec<String>)> {
    let mut keys = Vec::new();
    let mut bodies = Vec::new();
    for (k, v) in entries {
        keys.push(key(k).to_owned());
        bodies.push(encode(scope, keyed.table, v)?);
    }
    Ok((keys, bodies))
}

/// Replaces every row of the organisation with `state`: the caller's transaction
/// makes it atomic.
pub(super) async fn save(tx: &Transaction<'_>, scope: Scope<'_>, state_: &SyncState) -> Result<()> {
    // First every old row goes (tables apart: sent together), then the new ones.
    let mut deletes = Vec::new();
    for table in KEYED
        .iter()
        .map(|k| k.table)
        .chain(std::iter::once("sync_accounts"))
    {
        let sql = format!("DELETE FROM {table} WHERE org_id = $1");
        deletes.push(async move { execute(tx, scope, &sql, &[&scope.org]).await });
    }
    futures::future::try_join_all(deletes).await?;

    let receipts = columns(scope, RECEIPTS, &state_.receipts, ReceiptId::as_str)?;
    let exports = columns(scope, EXPORTS, &state_.exported, ReceiptId::as_str)?;
    let tombstones = columns(scope, TOMBSTONES, &state_.tombstones, ReceiptId::as_str)?;
    let vanished = columns(scope, VANISHED, &state_.vanished, ReceiptId::as_str)?;
    let watermarks = columns(scope, WATERMARKS, &state_.watermarks, AccountId::as_str)?;
    let entries = state_.snapshot.entries();
    let items = columns(
        scope,
        ITEMS,
        entries.iter().map(|e| (&e.id, e)),
        SinkItemId::as_str,
    )?;
    futures::try_join!(
        write_head(tx, scope, state_),
        upsert_accounts(tx, scope, &state_.accounts),
        upsert_bodies(tx, scope, RECEIPTS, &receipts.0, &receipts.1),
        upsert_bodies(tx, scope, EXPORTS, &exports.0, &exports.1),
        upsert_bodies(tx, scope, TOMBSTONES, &tombstones.0, &tombstones.1),
        upsert_bodies(tx, scope, VANISHED, &vanished.0, &vanished.1),
        upsert_bodies(tx, scope, WATERMARKS, &watermarks.0, &watermarks.1),
        upsert_bodies(tx, scope, ITEMS, &items.0, &items.1),
    )?;
    Ok(())
}
