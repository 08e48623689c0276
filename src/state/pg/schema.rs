//! The tables, as versioned migrations applied at start.
//!
//! Each migration runs once, in order, in the same transaction as the version update,
//! under a transaction advisory lock: two workers starting together migrate one after
//! the other, and the second finds nothing left to do.

use super::error::{SERVICE, from_pg};
use crate::error::{Error, Result};
use std::path::PathBuf;

/// The schema version this release reads and writes. A database whose schema is newer
/// is refused: its rows may mean something this release does not know.
pub const SCHEMA_VERSION: i32 = 4;

/// Serializes migrations across every process on the database
/// (`pg_advisory_xact_lock` takes a `bigint`; this is "receipt-sync schema" hashed once).
const MIGRATION_LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('receipt-sync schema', 0))";

/// The one-row table that says which migrations ran.
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS receipt_sync_schema (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version integer NOT NULL
)";

/// Migration `n` (1-based) brings the schema from version `n - 1` to `n`.
///
/// Keys are `text`; bodies are the crate's serde JSON as `json` (kept verbatim: times
/// keep their nanoseconds, and `json`, unlike `jsonb`, takes any string a server sent).
/// Every table leads with `org_id`, so an organisation's rows are one index range.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE sync_state (
    org_id text PRIMARY KEY,
    format integer NOT NULL,
    settings json,
    scan_cursor json,
    last_run json,
    pending_renames json NOT NULL DEFAULT '[]'
);
CREATE TABLE sync_accounts (
    org_id text NOT NULL,
    account_id text NOT NULL,
    account json NOT NULL,
    folder_name text,
    folder_id text,
    full_read_at json,
    PRIMARY KEY (org_id, account_id)
);
CREATE TABLE sync_receipts (
    org_id text NOT NULL,
    receipt_id text NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (org_id, receipt_id)
);
CREATE TABLE sync_exports (
    org_id text NOT NULL,
    receipt_id text NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (org_id, receipt_id)
);
CREATE TABLE sync_tombstones (
    org_id text NOT NULL,
    receipt_id text NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (org_id, receipt_id)
);
CREATE TABLE sync_vanished (
    org_id text NOT NULL,
    receipt_id text NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (org_id, receipt_id)
);
CREATE TABLE sync_watermarks (
    org_id text NOT NULL,
    account_id text NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (org_id, account_id)
);
CREATE TABLE sync_archive_items (
    org_id text NOT NULL,
    item_id text NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (org_id, item_id)
);
",
    "
CREATE TABLE sync_transactions (
    org_id text NOT NULL,
    transaction_id text NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (org_id, transaction_id)
);
CREATE TABLE sync_indexes (
    org_id text NOT NULL,
    index_key text NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (org_id, index_key)
);
",
    // The fleet: one row per organisation a service runs (credentials only ever
    // sealed, with the id of the key that sealed them), and one row per run.
    // `claimed_run` names the run holding the claim, so that a run whose lease ran out
    // and was claimed again cannot overwrite the newer run's schedule.
    "
CREATE TABLE organizations (
    org_id text PRIMARY KEY,
    display_name text NOT NULL,
    time_zone text NOT NULL,
    daily_time time NOT NULL,
    start_date date,
    enabled boolean NOT NULL DEFAULT true,
    next_run_at timestamptz NOT NULL,
    last_result text,
    last_error text,
    last_finished_at timestamptz,
    failures_in_a_row integer NOT NULL DEFAULT 0,
    qonto_credentials text,
    qonto_key_id text,
    microsoft_refresh_token text,
    microsoft_key_id text,
    claimed_by text,
    claimed_run bigint,
    lease_until timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX organizations_due ON organizations (next_run_at) WHERE enabled;
CREATE TABLE fleet_runs (
    run_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id text NOT NULL REFERENCES organizations (org_id) ON DELETE CASCADE,
    worker_id text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    outcome text,
    error text,
    receipts_read bigint,
    uploaded bigint,
    failures bigint
);
CREATE INDEX fleet_runs_by_org ON fleet_runs (org_id, started_at DESC);
",
    // The settled summary of an organisation's state (`StateStore::save_settled`): it
    // describes the rows as they were at `generation`, which every write transaction
    // moves on (from a sequence, so a number is never given twice), and is used only
    // while the head row still has it. The catalog's digests are a column of their
    // own, named by their SHA-256, so that a quiet day rewrites only the summary.
    "
CREATE SEQUENCE sync_generation;
ALTER TABLE sync_state ADD COLUMN generation bigint NOT NULL DEFAULT nextval('sync_generation');
CREATE TABLE sync_settled (
    org_id text PRIMARY KEY,
    generation bigint NOT NULL,
    summary bytea NOT NULL,
    catalog_id bytea NOT NULL,
    catalog bytea NOT NULL
);
",
];

/// Brings the database's schema to [`SCHEMA_VERSION`], or refuses a newer one.
pub(super) async fn migrate(
    client: &mut tokio_postgres::Client,
    password: Option<&[u8]>,
) -> Result<()> {
    let pg = |e: tokio_postgres::Error| from_pg("migrating the schema", &e, password);
    let tx = client.transaction().await.map_err(pg)?;
    tx.batch_execute(MIGRATION_LOCK).await.map_err(pg)?;
    tx.batch_execute(VERSION_TABLE).await.map_err(pg)?;
    let row = tx
        .query_opt("SELECT version FROM receipt_sync_schema", &[])
        .await
        .map_err(pg)?;
    let current = match row {
        Some(row) => row.try_get::<_, i32>(0).map_err(pg)?,
        None => 0,
    };
    if current > SCHEMA_VERSION {
        return Err(newer_schema(current));
    }
    let from = usize::try_from(current).map_err(|_| Error::State {
        path: PathBuf::from("postgresql: receipt_sync_schema"),
        detail: format!("the schema version {current} cannot be read; it was changed by hand"),
    })?;
    for migration in MIGRATIONS.iter().skip(from) {
        tx.batch_execute(migration).await.map_err(pg)?;
    }
    tx.execute(
        "INSERT INTO receipt_sync_schema (singleton, version) VALUES (true, $1)
         ON CONFLICT (singleton) DO UPDATE SET version = excluded.version",
        &[&SCHEMA_VERSION],
    )
    .await
    .map_err(pg)?;
    tx.commit().await.map_err(pg)
}

fn newer_schema(found: i32) -> Error {
    Error::State {
        path: PathBuf::from(format!("{SERVICE}: receipt_sync_schema")),
        detail: format!(
            "the database's sync schema is version {found}, newer than this release's \
             {SCHEMA_VERSION}: run this release against another database, or upgrade it; \
             nothing was changed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_one_migration_per_version() {
        assert_eq!(MIGRATIONS.len(), SCHEMA_VERSION as usize);
    }
}
