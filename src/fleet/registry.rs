//! [`Fleet`]: the organisations a service runs, their schedule and their sealed
//! credentials, in the `organizations` and `fleet_runs` tables of a [`PgDatabase`].
//!
//! Claiming is `FOR UPDATE SKIP LOCKED` plus a lease: two workers asking at once get
//! disjoint organisations, and a claimed organisation is not handed out again until
//! its run finishes or its lease runs out (its worker died). A running pass renews its
//! lease ([`Fleet::renew`]), so a pass longer than the lease keeps its claim, and a pass
//! whose claim was lost stops. The organisation's state lock
//! ([`PgStateStore`](crate::state::PgStateStore)'s advisory lock) is what keeps two
//! syncs of one organisation apart whatever the leases say.

use super::seal::{Keyring, SealContext, SealedSecret};
use crate::auth::SecretString;
use crate::error::{Error, ErrorKind, Result};
use crate::state::PgDatabase;
use crate::state::pg::error::from_pg;
use crate::sync::SyncReport;
use crate::sync::schedule::{is_worth_retrying_soon, next_pass};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use std::fmt;
use std::time::Duration;
use tokio_postgres::types::Type;

/// How long a claim lasts unless told otherwise: longer than any pass should take.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60 * 60);

/// The sealing purpose of an organisation's Qonto credentials.
const QONTO_PURPOSE: &str = "qonto-credentials";
/// The sealing purpose of an organisation's Microsoft refresh token.
const MICROSOFT_PURPOSE: &str = "microsoft-refresh-token";

/// An organisation to register: who it is and when it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOrganization {
    /// The service's own id for it (also the id of its sync state).
    pub id: String,
    /// A name for people; shown in the status.
    pub display_name: String,
    /// The zone of its daily time.
    pub time_zone: Tz,
    /// When, on the local clock of `time_zone`, its daily pass runs.
    pub daily_time: NaiveTime,
    /// The first day whose receipts are archived (`None`: everything).
    pub start_date: Option<NaiveDate>,
}

/// An organisation's credentials, in clear: only ever held in memory. `Debug` shows
/// neither.
#[derive(Clone, Default)]
pub struct Credentials {
    /// Its Qonto credentials (an API key `login:secret-key`, or OAuth tokens as the
    /// caller encodes them).
    pub qonto: Option<SecretString>,
    /// Its Microsoft refresh token.
    pub microsoft_refresh_token: Option<SecretString>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |s: &Option<SecretString>| s.as_ref().map(|_| "[redacted]");
        f.debug_struct("Credentials")
            .field("qonto", &shown(&self.qonto))
            .field(
                "microsoft_refresh_token",
                &shown(&self.microsoft_refresh_token),
            )
            .finish()
    }
}

/// An organisation claimed by a worker, for one run.
#[derive(Clone, Debug)]
pub struct Claim {
    /// The run's id in `fleet_runs`; also the claim's token.
    pub run_id: i64,
    /// The organisation's id.
    pub organization: String,
    /// Its name for people.
    pub display_name: String,
    /// The zone of its daily time.
    pub time_zone: Tz,
    /// Its daily time.
    pub daily_time: NaiveTime,
    /// The first day archived.
    pub start_date: Option<NaiveDate>,
    /// Runs in a row that did not complete, before this one.
    pub failures_in_a_row: u32,
}

/// What a run came to, for [`Fleet::finish`].
#[derive(Debug)]
pub struct RunOutcome {
    /// When it ended; the next run is computed from it.
    pub finished_at: DateTime<Utc>,
    /// The pass's result.
    pub report: Result<SyncReport>,
}

/// How an organisation's last run ended, as stored in `last_result`.
fn result_word(report: &Result<SyncReport>) -> &'static str {
    match report {
        Ok(report) if report.is_complete() => "complete",
        Ok(report) if report.stopped.is_some() => "stopped",
        Ok(_) => "partial",
        Err(_) => "failed",
    }
}

/// One organisation in [`FleetStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrganizationStatus {
    /// Its id.
    pub id: String,
    /// Its name for people.
    pub display_name: String,
    /// Whether it runs at all.
    pub enabled: bool,
    /// When it runs next.
    pub next_run_at: DateTime<Utc>,
    /// How its last run ended (`complete`, `partial`, `stopped`, `failed`), if any.
    pub last_result: Option<String>,
    /// What stopped its last run, when something did (never a secret).
    pub last_error: Option<String>,
    /// Runs in a row that did not complete.
    pub failures_in_a_row: u32,
    /// The worker running it now, if any.
    pub running_on: Option<String>,
}

/// The fleet at a glance (serialisable, for `--json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FleetStatus {
    /// When it was read (the database's clock).
    pub at: DateTime<Utc>,
    /// Organisations registered.
    pub organizations: u64,
    /// Of them, enabled.
    pub enabled: u64,
    /// Enabled, due and not running.
    pub due: u64,
    /// Claimed by a worker right now.
    pub running: u64,
    /// Enabled, whose last run did not complete.
    pub failing: u64,
    /// The enabled organisations, soonest first (at most the limit asked for).
    pub next_runs: Vec<OrganizationStatus>,
}

/// The organisations of a service, in a [`PgDatabase`]. Cheap to clone.
#[derive(Clone)]
pub struct Fleet {
    database: PgDatabase,
    keyring: Keyring,
    lease: Duration,
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("database", &self.database)
            .field("keyring", &self.keyring)
            .field("lease", &self.lease)
            .finish()
    }
}

impl Fleet {
    /// The fleet kept in `database`, sealing credentials with `keyring`.
    pub fn new(database: PgDatabase, keyring: Keyring) -> Self {
        Self {
            database,
            keyring,
            lease: DEFAULT_LEASE,
        }
    }

    /// Claims last `lease` (at least a second): a worker that dies leaves its
    /// organisations claimed that long at most. A worker renews the claims of its
    /// passes every third of it.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(1));
        self
    }

    /// The database.
    pub fn database(&self) -> &PgDatabase {
        &self.database
    }

    async fn client(&self, operation: &str) -> Result<deadpool_postgres::Client> {
        self.database.client(operation).await
    }

    fn pg(&self, operation: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
        let operation = operation.to_owned();
        move |e| from_pg(&operation, &e, self.database.password())
    }

    /// Registers `organization`, due at its next daily time after `now`, or updates its
    /// name and schedule if it is registered already (keeping its credentials and
    /// history; its next run is recomputed).
    pub async fn register(&self, organization: &NewOrganization, now: DateTime<Utc>) -> Result<()> {
        let operation = "registering an organisation";
        let next =
            crate::sync::schedule::next_run(now, organization.daily_time, organization.time_zone);
        let client = self.client(operation).await?;
        client
            .execute(
                "INSERT INTO organizations
                     (org_id, display_name, time_zone, daily_time, start_date, next_run_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (org_id) DO UPDATE SET
                     display_name = excluded.display_name,
                     time_zone = excluded.time_zone,
                     daily_time = excluded.daily_time,
                     start_date = excluded.start_date,
                     next_run_at = excluded.next_run_at,
                     updated_at = now()",
                &[
                    &organization.id,
                    &organization.display_name,
                    &organization.time_zone.name(),
                    &organization.daily_time,
                    &organization.start_date,
                    &next,
                ],
            )
            .await
            .map_err(self.pg(operation))?;
        Ok(())
    }

    /// Makes `organization` due now (a first run right after registering, or a manual
    /// run).
    pub async fn run_now(&self, organization: &str) -> Result<()> {
        self.update(
            "making an organisation due",
            "UPDATE organizations SET next_run_at = now(), updated_at = now() WHERE org_id = $1",
            organization,
        )
        .await
    }

    /// Stops or resumes running `organization`. A run in progress finishes.
    pub async fn set_enabled(&self, organization: &str, enabled: bool) -> Result<()> {
        let operation = "enabling or disabling an organisation";
        let client = self.client(operation).await?;
        let changed = client
            .execute(
                "UPDATE organizations SET enabled = $2, updated_at = now() WHERE org_id = $1",
                &[&organization, &enabled],
            )
            .await
            .map_err(self.pg(operation))?;
        if changed == 0 {
            return Err(unknown(organization));
        }
        Ok(())
    }

    async fn update(&self, operation: &str, sql: &str, organization: &str) -> Result<()> {
        let client = self.client(operation).await?;
        let changed = client
            .execute(sql, &[&organization])
            .await
            .map_err(self.pg(operation))?;
        if changed == 0 {
            return Err(unknown(organization));
        }
        Ok(())
    }

    /// Stores `organization`'s Qonto credentials, sealed with the keyring's current key.
    /// One statement: the value written is the current one as soon as it commits (a
    /// rotated token is never saved apart from being made current).
    pub async fn save_qonto_credentials(
        &self,
        organization: &str,
        secret: &SecretString,
    ) -> Result<()> {
        self.save_sealed(organization, QONTO_PURPOSE, secret).await
    }

    /// Stores `organization`'s Microsoft refresh token (a rotated one included), sealed;
    /// see [`save_qonto_credentials`](Self::save_qonto_credentials).
    pub async fn save_microsoft_refresh_token(
        &self,
        organization: &str,
        token: &SecretString,
    ) -> Result<()> {
        self.save_sealed(organization, MICROSOFT_PURPOSE, token)
            .await
    }

    async fn save_sealed(
        &self,
        organization: &str,
        purpose: &str,
        secret: &SecretString,
    ) -> Result<()> {
        let context = SealContext::new(organization, purpose);
        let sealed = self.keyring.seal(&context, secret.expose())?;
        // A rotated token is saved during every pass: one round trip (typed, no
        // prepare).
        let sql = if purpose == QONTO_PURPOSE {
            "UPDATE organizations SET qonto_credentials = $2, qonto_key_id = $3, updated_at = now()
             WHERE org_id = $1 RETURNING 1"
        } else {
            "UPDATE organizations SET microsoft_refresh_token = $2, microsoft_key_id = $3,
             updated_at = now() WHERE org_id = $1 RETURNING 1"
        };
        let operation = "saving sealed credentials";
        let client = self.client(operation).await?;
        let changed = client
            .query_typed(
                sql,
                &[
                    (&organization, Type::TEXT),
                    (&sealed.as_str(), Type::TEXT),
                    (&sealed.key_id().as_str(), Type::TEXT),
                ],
            )
            .await
            .map_err(self.pg(operation))?;
        if changed.is_empty() {
            return Err(unknown(organization));
        }
        Ok(())
    }

    /// `organization`'s credentials, opened. Values sealed under a key that is no
    /// longer current are sealed again under the current one as they are read.
    pub async fn credentials(&self, organization: &str) -> Result<Credentials> {
        let operation = "reading sealed credentials";
        let client = self.client(operation).await?;
        let row = client
            .query_typed(
                "SELECT qonto_credentials, microsoft_refresh_token FROM organizations
                 WHERE org_id = $1",
                &[(&organization, Type::TEXT)],
            )
            .await
            .map_err(self.pg(operation))?
            .into_iter()
            .next()
            .ok_or_else(|| unknown(organization))?;
        drop(client);
        let mut credentials = Credentials::default();
        for (index, purpose) in [(0, QONTO_PURPOSE), (1, MICROSOFT_PURPOSE)] {
            let stored: Option<String> = row.try_get(index).map_err(self.pg(operation))?;
            let Some(stored) = stored else { continue };
            let sealed: SealedSecret = stored.parse()?;
            let context = SealContext::new(organization, purpose);
            let opened = self.keyring.open(&context, &sealed)?;
            if self.keyring.needs_reseal(&sealed) {
                self.save_sealed(organization, purpose, &opened).await?;
            }
            match purpose {
                QONTO_PURPOSE => credentials.qonto = Some(opened),
                _ => credentials.microsoft_refresh_token = Some(opened),
            }
        }
        Ok(credentials)
    }

    /// Claims up to `limit` enabled organisations that are due and not claimed by a
    /// live lease, for `worker`, soonest first; each gets a `fleet_runs` row. One
    /// statement: rows another worker is claiming at the same instant are skipped
    /// (`SKIP LOCKED`), never waited for nor handed out twice.
    pub async fn claim_due(&self, worker: &str, limit: usize) -> Result<Vec<Claim>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let operation = "claiming due organisations";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let lease = self.lease.as_secs_f64();
        let client = self.client(operation).await?;
        let rows = client
            .query_typed(
                "WITH due AS (
                     SELECT org_id FROM organizations
                     WHERE enabled AND next_run_at <= now()
                       AND (lease_until IS NULL OR lease_until < now())
                     ORDER BY next_run_at
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED
                 ), runs AS (
                     INSERT INTO fleet_runs (org_id, worker_id, started_at)
                     SELECT org_id, $1, now() FROM due
                     RETURNING run_id, org_id
                 )
                 UPDATE organizations o SET
                     claimed_by = $1,
                     claimed_run = runs.run_id,
                     lease_until = now() + make_interval(secs => $3),
                     updated_at = now()
                 FROM runs WHERE o.org_id = runs.org_id
                 RETURNING runs.run_id, o.org_id, o.display_name, o.time_zone, o.daily_time,
                           o.start_date, o.failures_in_a_row",
                &[
                    (&worker, Type::TEXT),
                    (&limit, Type::INT8),
                    (&lease, Type::FLOAT8),
                ],
            )
            .await
            .map_err(self.pg(operation))?;
        rows.iter()
            .map(|row| {
                let pg = self.pg(operation);
                let organization: String = row.try_get(1).map_err(&pg)?;
                let zone: String = row.try_get(3).map_err(&pg)?;
                let time_zone = zone.parse::<Tz>().map_err(|_| {
                    Error::Config(format!(
                        "organisation {organization:?} has the time zone {zone:?}, which this \
                         release does not know: register it again with an IANA zone name"
                    ))
                })?;
                let failures: i32 = row.try_get(6).map_err(&pg)?;
                Ok(Claim {
                    run_id: row.try_get(0).map_err(&pg)?,
                    display_name: row.try_get(2).map_err(&pg)?,
                    daily_time: row.try_get(4).map_err(&pg)?,
                    start_date: row.try_get(5).map_err(&pg)?,
                    failures_in_a_row: u32::try_from(failures).unwrap_or(0),
                    time_zone,
                    organization,
                })
            })
            .collect()
    }

    /// Extends `claim`'s lease to `now() + lease` (the database's clock), if the
    /// organisation is still claimed by that run and still enabled. `Ok(false)`: the
    /// claim is lost (its lease ran out and another run took it, or the organisation
    /// was disabled) and the run should stop. One statement.
    pub async fn renew(&self, claim: &Claim) -> Result<bool> {
        let operation = "renewing a claim";
        let lease = self.lease.as_secs_f64();
        let client = self.client(operation).await?;
        let renewed = client
            .query_typed(
                "UPDATE organizations SET lease_until = now() + make_interval(secs => $3)
                 WHERE org_id = $1 AND claimed_run = $2 AND enabled
                 RETURNING 1",
                &[
                    (&claim.organization, Type::TEXT),
                    (&claim.run_id, Type::INT8),
                    (&lease, Type::FLOAT8),
                ],
            )
            .await
            .map_err(self.pg(operation))?;
        Ok(renewed.len() == 1)
    }

    /// How long a claim lasts without being renewed.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Records how `claim`'s run ended, in `fleet_runs` and on the organisation, and
    /// schedules its next run with [`next_pass`]: the daily time, or an early retry
    /// when the run stopped for a passing reason, or at once when it was cancelled
    /// (its worker stopping). A claim whose lease ran out and was
    /// claimed again by another run only records its history: the newer run owns the
    /// schedule. One statement.
    pub async fn finish(&self, claim: &Claim, outcome: &RunOutcome) -> Result<()> {
        let operation = "recording a run";
        let complete = matches!(&outcome.report, Ok(r) if r.is_complete());
        // A pass stopped by its worker's shutdown did not fail: the organisation is due
        // again at once, for another worker, rather than at tomorrow's daily time.
        let cancelled = match &outcome.report {
            Err(e) => e.kind() == ErrorKind::Cancelled,
            Ok(r) => r
                .stopped
                .as_ref()
                .is_some_and(|e| e.kind() == ErrorKind::Cancelled),
        };
        let failures = if complete {
            0
        } else if cancelled {
            claim.failures_in_a_row
        } else {
            claim.failures_in_a_row.saturating_add(1)
        };
        let retrying = if is_worth_retrying_soon(&outcome.report) {
            failures
        } else {
            0
        };
        let next = next_pass(
            outcome.finished_at,
            claim.daily_time,
            claim.time_zone,
            retrying,
        );
        let next_at = if cancelled {
            outcome.finished_at
        } else {
            next.at
        };
        let word = result_word(&outcome.report);
        let error = match &outcome.report {
            Err(e) => Some(e.to_string()),
            Ok(r) => r.stopped.as_ref().map(ToString::to_string),
        };
        let (read, uploaded, failed) = match &outcome.report {
            Ok(r) => (
                i64::try_from(r.receipts_read).unwrap_or(i64::MAX),
                i64::try_from(uploads(r)).unwrap_or(i64::MAX),
                i64::try_from(r.failures.len()).unwrap_or(i64::MAX),
            ),
            Err(_) => (0, 0, 0),
        };
        let failures_stored = i32::try_from(failures).unwrap_or(i32::MAX);
        // One statement, so one round trip and atomic without a transaction block.
        let client = self.client(operation).await?;
        client
            .query_typed(
                "WITH run AS (
                     UPDATE fleet_runs SET finished_at = $3, outcome = $4, error = $5,
                         receipts_read = $6, uploaded = $7, failures = $8
                     WHERE run_id = $2
                 )
                 UPDATE organizations SET
                     next_run_at = $9, last_result = $4, last_error = $5,
                     last_finished_at = $3, failures_in_a_row = $10, claimed_by = NULL,
                     claimed_run = NULL, lease_until = NULL, updated_at = now()
                 WHERE org_id = $1 AND claimed_run = $2",
                &[
                    (&claim.organization, Type::TEXT),
                    (&claim.run_id, Type::INT8),
                    (&outcome.finished_at, Type::TIMESTAMPTZ),
                    (&word, Type::TEXT),
                    (&error, Type::TEXT),
                    (&read, Type::INT8),
                    (&uploaded, Type::INT8),
                    (&failed, Type::INT8),
                    (&next_at, Type::TIMESTAMPTZ),
                    (&failures_stored, Type::INT4),
                ],
            )
            .await
            .map_err(self.pg(operation))?;
        Ok(())
    }

    /// The fleet at a glance, with the `limit` enabled organisations that run soonest.
    pub async fn status(&self, limit: usize) -> Result<FleetStatus> {
        let operation = "reading the fleet's status";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client(operation).await?;
        let pg = self.pg(operation);
        let counts = client
            .query_one(
                "SELECT now(),
                     count(*),
                     count(*) FILTER (WHERE enabled),
                     count(*) FILTER (WHERE enabled AND next_run_at <= now()
                         AND (lease_until IS NULL OR lease_until < now())),
                     count(*) FILTER (WHERE lease_until >= now()),
                     count(*) FILTER (WHERE enabled AND failures_in_a_row > 0)
                 FROM organizations",
                &[],
            )
            .await
            .map_err(&pg)?;
        let rows = client
            .query(
                "SELECT org_id, display_name, enabled, next_run_at, last_result, last_error,
                     failures_in_a_row,
                     CASE WHEN lease_until >= now() THEN claimed_by END
                 FROM organizations WHERE enabled ORDER BY next_run_at, org_id LIMIT $1",
                &[&limit],
            )
            .await
            .map_err(&pg)?;
        let count = |i: usize| -> Result<u64> {
            let n: i64 = counts.try_get(i).map_err(&pg)?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        let mut next_runs = Vec::with_capacity(rows.len());
        for row in &rows {
            let failures: i32 = row.try_get(6).map_err(&pg)?;
            next_runs.push(OrganizationStatus {
                id: row.try_get(0).map_err(&pg)?,
                display_name: row.try_get(1).map_err(&pg)?,
                enabled: row.try_get(2).map_err(&pg)?,
                next_run_at: row.try_get(3).map_err(&pg)?,
                last_result: row.try_get(4).map_err(&pg)?,
                last_error: row.try_get(5).map_err(&pg)?,
                failures_in_a_row: u32::try_from(failures).unwrap_or(0),
                running_on: row.try_get(7).map_err(&pg)?,
            });
        }
        Ok(FleetStatus {
            at: counts.try_get(0).map_err(&pg)?,
            organizations: count(1)?,
            enabled: count(2)?,
            due: count(3)?,
            running: count(4)?,
            failing: count(5)?,
            next_runs,
        })
    }
}

/// Files a pass uploaded (new receipts and those put back).
fn uploads(report: &SyncReport) -> usize {
    report
        .done
        .iter()
        .filter(|(kind, _)| kind.starts_with("upload"))
        .map(|(_, n)| n)
        .sum()
}

fn unknown(organization: &str) -> Error {
    Error::Config(format!(
        "no organisation {organization:?} is registered in the fleet: register it first"
    ))
}
