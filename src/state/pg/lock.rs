//! The per-organisation lock: a session advisory lock held on a connection of its own.
//!
//! A session advisory lock belongs to the server process of one connection: when that
//! connection ends for any reason (the worker killed with SIGKILL, its machine gone and
//! TCP keepalive expired), PostgreSQL releases it by itself. No lease to renew, no
//! expiry to tune, no clock: a lease row would need all three. The connection comes
//! from a pool kept for locks, and stays out of it while the lock is held; released
//! explicitly, it goes back.

use super::error::from_pg;
use crate::error::{Error, Result};
use crate::state::StateLock;
use deadpool_postgres::{Object, Pool};
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

/// A release in progress, shared by a store and the guards it hands out, so that the
/// store's next `lock` waits for the previous holder's unlock to reach the server.
pub(super) type Releasing = Arc<Mutex<Option<JoinHandle<()>>>>;

/// Takes the organisation's lock, or says another holder has it.
pub(super) async fn acquire(
    locks: &Pool,
    password: Option<&[u8]>,
    org: &str,
    releasing: &Releasing,
) -> Result<StateLock> {
    let previous = releasing
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(previous) = previous {
        // One round trip; a failed unlock closes its connection, which releases too.
        let _ = previous.await;
    }
    let operation = "taking the organisation's lock";
    let client = locks
        .get()
        .await
        .map_err(|e| super::error::from_pool(operation, &e, password))?;
    let held = client
        .query_typed_one(TRY_LOCK, &[(&org, Type::TEXT)])
        .await
        .and_then(|row| row.try_get::<_, bool>(0));
    match held {
        Ok(true) => Ok(StateLock::new(Guard {
            client: Some(client),
            org: org.to_owned(),
            releasing: releasing.clone(),
        })),
        Ok(false) => Err(Error::AlreadyRunning {
            what: format!("organisation {org:?} (its PostgreSQL lock is held by another worker)"),
        }),
        Err(e) => {
            // The connection's state is unknown: close it rather than pool it.
            drop(Object::take(client));
            Err(from_pg(operation, &e, password))
        }
    }
}

struct Guard {
    client: Option<Object>,
    org: String,
    releasing: Releasing,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                // Unlock explicitly, so that a `lock` right after this drop finds it
                // free; the connection then goes back to the pool, or is closed (which
                // releases the lock too) if the unlock did not go through.
                let org = std::mem::take(&mut self.org);
                let release = runtime.spawn(async move {
                    let unlocked = client
                        .query_typed_one(UNLOCK, &[(&org, Type::TEXT)])
                        .await
                        .and_then(|row| row.try_get::<_, bool>(0));
                    if !matches!(unlocked, Ok(true)) {
                        drop(Object::take(client));
                    }
                });
                *self
                    .releasing
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(release);
            }
            // Outside a runtime: closing the connection releases the lock.
            Err(_) => drop(Object::take(client)),
        }
    }
}
