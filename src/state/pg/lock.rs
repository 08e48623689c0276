//! The per-organisation lock: a session advisory lock held on a connection of its own.
//!
//! A session advisory lock belongs to the server process of one connection: when that
//! connection ends for any reason (the worker killed with SIGKILL, its machine gone and
//! TCP keepalive expired), PostgreSQL releases it by itself. No lease to renew, no
//! expiry to tune, no clock: a lease row would need all three. The connection comes
//! from a pool kept for locks, and stays out of it while the lock is held; released
//! explicitly, it goes back.
//!
//! The flip side: a lock connection that ends while its holder runs on (the server
//! restarted, the connection was cut) releases the lock without the holder knowing.
//! So before each write the store checks, locally, that the connection still lives,
//! and if not takes the lock again on a new one before writing, or fails with
//! `AlreadyRunning` when another holder took it meanwhile.

use super::error::from_pg;
use crate::error::{Error, Result};
use crate::state::StateLock;
use deadpool_postgres::{Object, Pool};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::task::JoinHandle;
use tokio_postgres::types::Type;

/// `pg_try_advisory_lock` takes a `bigint`: the organisation id, hashed by the server
/// (`hashtextextended` is stable: PostgreSQL's hash partitioning depends on it), under
/// a prefix that keeps it apart from other users of advisory locks. Typed queries:
/// one round trip each, no prepared statement.
const TRY_LOCK: &str =
    "SELECT pg_try_advisory_lock(hashtextextended('receipt-sync state ' || $1, 0))";
const UNLOCK: &str = "SELECT pg_advisory_unlock(hashtextextended('receipt-sync state ' || $1, 0))";

/// The releases in progress in this process, by organisation: a `lock` of the same
/// organisation waits for the previous holder's unlock to reach the server, so that
/// "drop the lock, lock again" works whichever store of the database asks.
pub(super) type Releasing = Arc<Mutex<HashMap<String, JoinHandle<()>>>>;

/// The locks this process holds, by organisation: the connection of each, shared by
/// its guard and by the stores that check it before writing ([`ensure_held`]).
pub(super) type Held = Arc<Mutex<HashMap<String, Slot>>>;

/// A held lock's connection; `None` once it ended and could not be replaced.
type Slot = Arc<tokio::sync::Mutex<Option<Object>>>;

/// The pools and maps the locks of one database use.
pub(super) struct Locks<'a> {
    pub pool: &'a Pool,
    pub password: Option<&'a [u8]>,
    pub releasing: &'a Releasing,
    pub held: &'a Held,
}

/// Takes the organisation's lock, or says another holder has it.
pub(super) async fn acquire(locks: Locks<'_>, org: &str) -> Result<StateLock> {
    let previous = locks
        .releasing
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(org);
    if let Some(previous) = previous {
        // One round trip; a failed unlock closes its connection, which releases too.
        let _ = previous.await;
    }
    let Some(client) = try_lock(&locks, org).await? else {
        return Err(held_elsewhere(org));
    };
    let slot: Slot = Arc::new(tokio::sync::Mutex::new(Some(client)));
    locks
        .held
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(org.to_owned(), slot.clone());
    Ok(StateLock::new(Guard {
        slot,
        org: org.to_owned(),
        releasing: locks.releasing.clone(),
        held: locks.held.clone(),
    }))
}

/// Before a write of `org`'s rows: when this process holds its lock but the lock's
/// connection has ended (the server restarted, the connection was cut), the server
/// released the lock with it; take it again on a new connection, or fail, so that no
/// write goes out unguarded. Nothing to do (no round trip) while the connection
/// lives, or when this process does not hold the lock.
pub(super) async fn ensure_held(locks: Locks<'_>, org: &str) -> Result<()> {
    let slot = locks
        .held
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(org)
        .cloned();
    let Some(slot) = slot else {
        return Ok(());
    };
    // Held across the retake: writes in parallel wait for one retake, not race two.
    let mut connection = slot.lock().await;
    if connection.as_ref().is_some_and(|c| !c.is_closed()) {
        return Ok(());
    }
    if let Some(ended) = connection.take() {
        drop(Object::take(ended));
    }
    tracing::warn!(
        organisation = org,
        "the connection holding the organisation's lock ended; taking the lock again"
    );
    match try_lock(&locks, org).await? {
        Some(client) => {
            *connection = Some(client);
            Ok(())
        }
        None => Err(held_elsewhere(org)),
    }
}

fn held_elsewhere(org: &str) -> Error {
    Error::AlreadyRunning {
        what: format!("organisation {org:?} (its PostgreSQL lock is held by another worker)"),
    }
}

/// One `pg_try_advisory_lock` on a connection of the lock pool: the connection,
/// holding the lock, or `None` when another session holds it.
async fn try_lock(locks: &Locks<'_>, org: &str) -> Result<Option<Object>> {
    let operation = "taking the organisation's lock";
    // Until the answer is in, a drop of this call closes the connection: the server
    // may have granted the lock, which must not go back to the pool held.
    let mut client =
        Closing(Some(locks.pool.get().await.map_err(|e| {
            super::error::from_pool(operation, &e, locks.password)
        })?));
    let held = match &client.0 {
        Some(c) => c
            .query_typed_one(TRY_LOCK, &[(&org, Type::TEXT)])
            .await
            .and_then(|row| row.try_get::<_, bool>(0)),
        None => return Err(Error::Cancelled),
    };
    match held {
        Ok(true) => Ok(client.0.take()),
        Ok(false) => {
            // Not granted: the connection holds nothing and goes back to the pool.
            drop(client.0.take());
            Ok(None)
        }
        // The connection's state is unknown: `client` closes it.
        Err(e) => Err(from_pg(operation, &e, locks.password)),
    }
}

struct Guard {
    slot: Slot,
    org: String,
    releasing: Releasing,
    held: Held,
}

impl Drop for Guard {
    fn drop(&mut self) {
        {
            let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            if held
                .get(&self.org)
                .is_some_and(|s| Arc::ptr_eq(s, &self.slot))
            {
                held.remove(&self.org);
            }
        }
        let slot = self.slot.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                // Unlock explicitly, so that a `lock` right after this drop finds it
                // free; the connection then goes back to the pool, or is closed (which
                // releases the lock too) if the unlock did not go through.
                let org = self.org.clone();
                let release = runtime.spawn(async move {
                    let Some(client) = slot.lock().await.take() else {
                        return;
                    };
                    // Should this task be dropped midway (its runtime shutting down),
                    // the connection is closed, not pooled with the lock still held.
                    let mut client = Closing(Some(client));
                    let unlocked = match &client.0 {
                        Some(c) => c
                            .query_typed_one(UNLOCK, &[(&org, Type::TEXT)])
                            .await
                            .and_then(|row| row.try_get::<_, bool>(0)),
                        None => return,
                    };
                    if matches!(unlocked, Ok(true)) {
                        // Back to the pool, the lock released.
                        drop(client.0.take());
                    }
                });
                let mut releases = self
                    .releasing
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                // Only releases in flight are kept.
                releases.retain(|_, release| !release.is_finished());
                releases.insert(self.org.clone(), release);
            }
            // Outside a runtime: closing the connection releases the lock. No write
            // runs without a runtime, so the slot is free.
            Err(_) => {
                if let Ok(mut connection) = slot.try_lock()
                    && let Some(client) = connection.take()
                {
                    drop(Object::take(client));
                }
            }
        }
    }
}

/// A lock connection that is closed when dropped, unless taken out first.
struct Closing(Option<Object>);

impl Drop for Closing {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(Object::take(client));
        }
    }
}
