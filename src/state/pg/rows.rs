//! A [`SyncState`] as rows, and back: the tables, the statements that write them
//! (as [`Step`]s, sent by [`super::pipeline`]) and the one query that reads them.

use super::error::{SERVICE, from_pg, state};
use super::pipeline::{Param, Step};
use crate::error::{Error, Result};
use crate::model::{
    AccountId, ArchiveSnapshot, BankAccount, ReceiptId, SinkEntry, SinkItemId, TransactionId,
};
use crate::state::{AccountRecord, STATE_VERSION, SyncState};
use chrono::{DateTime, Utc};
use deadpool_postgres::ClientWrapper;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A table of JSON bodies by key, one row per entry of one of the state's maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Keyed {
    pub table: &'static str,
    pub key: &'static str,
    /// Its rows' tag in [`LOAD`].
    tag: i32,
}

pub(super) const RECEIPTS: Keyed = Keyed {
    table: "sync_receipts",
    key: "receipt_id",
    tag: 2,
};
pub(super) const EXPORTS: Keyed = Keyed {
    table: "sync_exports",
    key: "receipt_id",
    tag: 3,
};
pub(super) const TOMBSTONES: Keyed = Keyed {
    table: "sync_tombstones",
    key: "receipt_id",
    tag: 4,
};
pub(super) const VANISHED: Keyed = Keyed {
    table: "sync_vanished",
    key: "receipt_id",
    tag: 5,
};
pub(super) const WATERMARKS: Keyed = Keyed {
    table: "sync_watermarks",
    key: "account_id",
    tag: 6,
};
pub(super) const ITEMS: Keyed = Keyed {
    table: "sync_archive_items",
    key: "item_id",
    tag: 7,
};
pub(super) const TRANSACTIONS: Keyed = Keyed {
    table: "sync_transactions",
    key: "transaction_id",
    tag: 8,
};
pub(super) const INDEXES: Keyed = Keyed {
    table: "sync_indexes",
    key: "index_key",
    tag: 9,
};
const KEYED: [Keyed; 8] = [
    RECEIPTS,
    EXPORTS,
    TOMBSTONES,
    VANISHED,
    WATERMARKS,
    ITEMS,
    TRANSACTIONS,
    INDEXES,
];
const HEAD: &str = "sync_state";
const ACCOUNTS: &str = "sync_accounts";

/// Every row of one organisation, in one statement: one round trip, and one
/// consistent snapshot of all the tables without a transaction around it.
const LOAD: &str = "\
SELECT 0, org_id, format::text, settings::text, scan_cursor::text, last_run::text, pending_renames::text FROM sync_state WHERE org_id = $1
UNION ALL SELECT 1, account_id, account::text, folder_name, folder_id, full_read_at::text, NULL FROM sync_accounts WHERE org_id = $1
UNION ALL SELECT 2, receipt_id, body::text, NULL, NULL, NULL, NULL FROM sync_receipts WHERE org_id = $1
UNION ALL SELECT 3, receipt_id, body::text, NULL, NULL, NULL, NULL FROM sync_exports WHERE org_id = $1
UNION ALL SELECT 4, receipt_id, body::text, NULL, NULL, NULL, NULL FROM sync_tombstones WHERE org_id = $1
UNION ALL SELECT 5, receipt_id, body::text, NULL, NULL, NULL, NULL FROM sync_vanished WHERE org_id = $1
UNION ALL SELECT 6, account_id, body::text, NULL, NULL, NULL, NULL FROM sync_watermarks WHERE org_id = $1
UNION ALL SELECT 7, item_id, body::text, NULL, NULL, NULL, NULL FROM sync_archive_items WHERE org_id = $1
UNION ALL SELECT 8, transaction_id, body::text, NULL, NULL, NULL, NULL FROM sync_transactions WHERE org_id = $1
UNION ALL SELECT 9, index_key, body::text, NULL, NULL, NULL, NULL FROM sync_indexes WHERE org_id = $1";

/// Who the statements work for, and what to scrub from a failure's message.
#[derive(Clone, Copy)]
pub(super) struct Scope<'a> {
    pub org: &'a str,
    pub password: Option<&'a [u8]>,
}

impl Scope<'_> {
    /// Classifies a driver error met while doing `operation` for this organisation.
    pub fn pg(&self, operation: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
        let operation = format!("{operation} (organisation {:?})", self.org);
        move |e| from_pg(&operation, &e, self.password)
    }

    fn org(&self) -> Param {
        Box::new(self.org.to_owned())
    }
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
fn decode<T: DeserializeOwned>(scope: Scope<'_>, table: &str, key: &str, text: &str) -> Result<T> {
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
            format!(
                "a row has a column this release cannot read ({e}); the table was changed by hand"
            ),
        )
    })
}

/// Inserts or replaces the bodies of `keys` (unique) in one statement.
pub(super) fn upsert_bodies(
    scope: Scope<'_>,
    keyed: Keyed,
    keys: Vec<String>,
    bodies: Vec<String>,
) -> Option<Step> {
    (!keys.is_empty()).then(|| {
        Step::execute(
            format!(
                "INSERT INTO {table} (org_id, {key}, body) \
                 SELECT $1, k, b::json FROM unnest($2::text[], $3::text[]) AS u(k, b) \
                 ON CONFLICT (org_id, {key}) DO UPDATE SET body = excluded.body",
                table = keyed.table,
                key = keyed.key
            ),
            vec![scope.org(), Box::new(keys), Box::new(bodies)],
        )
    })
}

/// Deletes the rows of `keys`, in one statement.
pub(super) fn delete_keys(scope: Scope<'_>, keyed: Keyed, keys: Vec<String>) -> Option<Step> {
    (!keys.is_empty()).then(|| {
        Step::execute(
            format!(
                "DELETE FROM {table} WHERE org_id = $1 AND {key} = ANY($2::text[])",
                table = keyed.table,
                key = keyed.key
            ),
            vec![scope.org(), Box::new(keys)],
        )
    })
}

/// Creates the organisation's head row if there is none, as a first `record` must
/// (an empty state of the current format), and moves its generation on: every write
/// transaction starts with it, so a settled summary of the rows before is stale.
pub(super) fn ensure_head(scope: Scope<'_>) -> Step {
    Step::execute(
        "INSERT INTO sync_state (org_id, format) VALUES ($1, $2) \
         ON CONFLICT (org_id) DO UPDATE SET generation = nextval('sync_generation')",
        vec![scope.org(), Box::new(STATE_VERSION as i32)],
    )
}

/// Sets one column of the head row (which exists) to `json`.
pub(super) fn set_head(scope: Scope<'_>, column: &'static str, json: String) -> Step {
    Step::execute(
        format!("UPDATE sync_state SET {column} = $2::text::json WHERE org_id = $1"),
        vec![scope.org(), Box::new(json)],
    )
}

/// The archive snapshot's rows, item by item as they were written (no pruning: the
/// rows are exactly what applying the changes gave).
pub(super) async fn load_snapshot(
    client: &ClientWrapper,
    scope: Scope<'_>,
) -> Result<ArchiveSnapshot> {
    let read = "reading the archive snapshot";
    let statement = client
        .prepare_cached("SELECT item_id, body::text FROM sync_archive_items WHERE org_id = $1")
        .await
        .map_err(scope.pg(read))?;
    let rows = client
        .query(&statement, &[&scope.org])
        .await
        .map_err(scope.pg(read))?;
    let mut snapshot = ArchiveSnapshot::new();
    for row in &rows {
        let key: String = column(scope, ITEMS.table, row, 0)?;
        let body: String = column(scope, ITEMS.table, row, 1)?;
        snapshot.upsert(decode::<SinkEntry>(scope, ITEMS.table, &key, &body)?);
    }
    Ok(snapshot)
}

/// The whole state, or `None` when the organisation has no head row.
pub(super) async fn load(client: &ClientWrapper, scope: Scope<'_>) -> Result<Option<SyncState>> {
    let read = "reading the sync state";
    let statement = client.prepare_cached(LOAD).await.map_err(scope.pg(read))?;
    let rows = client
        .query(&statement, &[&scope.org])
        .await
        .map_err(scope.pg(read))?;
    let mut state_ = None;
    let mut accounts = Vec::new();
    let mut bodies: Vec<Vec<(String, String)>> = vec![Vec::new(); KEYED.len()];
    for row in &rows {
        let tag: i32 = column(scope, HEAD, row, 0)?;
        match tag {
            0 => state_ = Some(head(scope, row)?),
            1 => accounts.push(account(scope, row)?),
            _ => {
                let Some(index) = KEYED.iter().position(|k| k.tag == tag) else {
                    continue;
                };
                let table = KEYED[index].table;
                bodies[index].push((column(scope, table, row, 1)?, column(scope, table, row, 2)?));
            }
        }
    }
    let Some(mut state_) = state_ else {
        return Ok(None);
    };
    state_.accounts = accounts.into_iter().collect();
    let mut bodies = bodies.into_iter();
    let mut next = || bodies.next().unwrap_or_default();
    state_.receipts = decode_map(scope, RECEIPTS, next(), ReceiptId::new)?;
    state_.exported = decode_map(scope, EXPORTS, next(), ReceiptId::new)?;
    state_.tombstones = decode_map(scope, TOMBSTONES, next(), ReceiptId::new)?;
    state_.vanished = decode_map(scope, VANISHED, next(), ReceiptId::new)?;
    state_.watermarks = decode_map(scope, WATERMARKS, next(), AccountId::new)?;
    for (key, body) in next() {
        state_
            .snapshot
            .upsert(decode::<SinkEntry>(scope, ITEMS.table, &key, &body)?);
    }
    state_.transactions = decode_map(scope, TRANSACTIONS, next(), TransactionId::new)?;
    state_.indexes = decode_map(scope, INDEXES, next(), |key| key)?;
    Ok(Some(state_))
}

fn head(scope: Scope<'_>, row: &tokio_postgres::Row) -> Result<SyncState> {
    let format: String = column(scope, HEAD, row, 2)?;
    let version = format.parse::<u32>().unwrap_or(u32::MAX);
    if version > STATE_VERSION {
        return Err(state(
            scope.org,
            HEAD,
            format!(
                "the state is format {format}, written by a newer release (this one reads up to \
                 {STATE_VERSION}): run the newer release; nothing was changed"
            ),
        ));
    }
    // `json` null and SQL NULL both mean "none".
    let optional = |index: usize| -> Result<Option<String>> {
        let text: Option<String> = column(scope, HEAD, row, index)?;
        Ok(text.filter(|t| t != "null"))
    };
    let mut state_ = SyncState {
        version,
        ..SyncState::default()
    };
    if let Some(text) = optional(3)? {
        state_.settings = decode(scope, HEAD, "settings", &text)?;
    }
    if let Some(text) = optional(4)? {
        state_.scan_cursor = decode(scope, HEAD, "scan_cursor", &text)?;
    }
    if let Some(text) = optional(5)? {
        state_.last_run = decode(scope, HEAD, "last_run", &text)?;
    }
    if let Some(text) = optional(6)? {
        state_.pending_renames = decode(scope, HEAD, "pending_renames", &text)?;
    }
    Ok(state_)
}

fn account(scope: Scope<'_>, row: &tokio_postgres::Row) -> Result<(AccountId, AccountRecord)> {
    let id: String = column(scope, ACCOUNTS, row, 1)?;
    let account: BankAccount = decode(
        scope,
        ACCOUNTS,
        &id,
        &column::<String>(scope, ACCOUNTS, row, 2)?,
    )?;
    let full_read_at: Option<DateTime<Utc>> =
        match column::<Option<String>>(scope, ACCOUNTS, row, 5)? {
            Some(text) => decode(scope, ACCOUNTS, &id, &text)?,
            None => None,
        };
    let record = AccountRecord {
        account,
        folder_name: column(scope, ACCOUNTS, row, 3)?,
        folder_id: column::<Option<String>>(scope, ACCOUNTS, row, 4)?.map(SinkItemId::new),
        full_read_at,
    };
    Ok((AccountId::new(id), record))
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

/// Writes every column of the head row from `state`, creating it if needed.
fn write_head(scope: Scope<'_>, state_: &SyncState) -> Result<Step> {
    let format = i32::try_from(state_.version).unwrap_or(i32::MAX);
    Ok(Step::execute(
        "INSERT INTO sync_state (org_id, format, settings, scan_cursor, last_run, pending_renames) \
         VALUES ($1, $2, $3::text::json, $4::text::json, $5::text::json, $6::text::json) \
         ON CONFLICT (org_id) DO UPDATE SET format = excluded.format, settings = excluded.settings, \
         scan_cursor = excluded.scan_cursor, last_run = excluded.last_run, \
         pending_renames = excluded.pending_renames, generation = nextval('sync_generation')",
        vec![
            scope.org(),
            Box::new(format),
            Box::new(encode(scope, HEAD, &state_.settings)?),
            Box::new(encode(scope, HEAD, &state_.scan_cursor)?),
            Box::new(encode(scope, HEAD, &state_.last_run)?),
            Box::new(encode(scope, HEAD, &state_.pending_renames)?),
        ],
    ))
}

/// Inserts or replaces whole account rows.
pub(super) fn upsert_accounts<'a>(
    scope: Scope<'_>,
    records: impl IntoIterator<Item = (&'a AccountId, &'a AccountRecord)>,
) -> Result<Option<Step>> {
    let (mut ids, mut accounts, mut names, mut folders, mut reads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, record) in records {
        ids.push(id.as_str().to_owned());
        accounts.push(encode(scope, ACCOUNTS, &record.account)?);
        names.push(record.folder_name.clone());
        folders.push(record.folder_id.as_ref().map(|f| f.as_str().to_owned()));
        reads.push(match &record.full_read_at {
            Some(at) => Some(encode(scope, ACCOUNTS, at)?),
            None => None,
        });
    }
    if ids.is_empty() {
        return Ok(None);
    }
    Ok(Some(Step::execute(
        "INSERT INTO sync_accounts (org_id, account_id, account, folder_name, folder_id, full_read_at) \
         SELECT $1, i, a::json, n, f, r::json \
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(i, a, n, f, r) \
         ON CONFLICT (org_id, account_id) DO UPDATE SET account = excluded.account, \
         folder_name = excluded.folder_name, folder_id = excluded.folder_id, \
         full_read_at = excluded.full_read_at",
        vec![
            scope.org(),
            Box::new(ids),
            Box::new(accounts),
            Box::new(names),
            Box::new(folders),
            Box::new(reads),
        ],
    )))
}

/// The bodies of a map, as two parallel columns.
fn columns<'a, K: 'a, V: Serialize + 'a>(
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

/// The statements that replace every row of the organisation with `state` (to send
/// in one transaction): every old row goes, then the new ones come.
pub(super) fn save(scope: Scope<'_>, state_: &SyncState) -> Result<Vec<Step>> {
    let mut steps: Vec<Step> = KEYED
        .iter()
        .map(|k| k.table)
        .chain([ACCOUNTS])
        .map(|table| {
            Step::execute(
                format!("DELETE FROM {table} WHERE org_id = $1"),
                vec![scope.org()],
            )
        })
        .collect();
    steps.push(write_head(scope, state_)?);
    steps.extend(upsert_accounts(scope, &state_.accounts)?);
    let entries = state_.snapshot.entries();
    let tables = [
        (
            RECEIPTS,
            columns(scope, RECEIPTS, &state_.receipts, ReceiptId::as_str)?,
        ),
        (
            EXPORTS,
            columns(scope, EXPORTS, &state_.exported, ReceiptId::as_str)?,
        ),
        (
            TOMBSTONES,
            columns(scope, TOMBSTONES, &state_.tombstones, ReceiptId::as_str)?,
        ),
        (
            VANISHED,
            columns(scope, VANISHED, &state_.vanished, ReceiptId::as_str)?,
        ),
        (
            WATERMARKS,
            columns(scope, WATERMARKS, &state_.watermarks, AccountId::as_str)?,
        ),
        (
            ITEMS,
            columns(
                scope,
                ITEMS,
                entries.iter().map(|e| (&e.id, e)),
                SinkItemId::as_str,
            )?,
        ),
        (
            TRANSACTIONS,
            columns(
                scope,
                TRANSACTIONS,
                &state_.transactions,
                TransactionId::as_str,
            )?,
        ),
        (
            INDEXES,
            columns(scope, INDEXES, &state_.indexes, String::as_str)?,
        ),
    ];
    for (keyed, (keys, bodies)) in tables {
        steps.extend(upsert_bodies(scope, keyed, keys, bodies));
    }
    Ok(steps)
}
