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
        .remove(org);
    if let Some(previous) = previous {
        // One round trip; a failed unlock closes its connection, which releases too.
        let _ = previous.await;
    }
    let operation = "taking the organisation's lock";
    // Until the answer is in, a drop of this call closes the connection: the server
    // may have granted the lock, which must not go back to the pool held.
    let mut client =
        Closing(Some(locks.get().await.map_err(|e| {
            super::error::from_pool(operation, &e, password)
        })?));
    let held = match &client.0 {
        Some(c) => c
            .query_typed_one(TRY_LOCK, &[(&org, Type::TEXT)])
            .await
            .and_then(|row| row.try_get::<_, bool>(0)),
        None => return Err(Error::Cancelled),
    };
    match held {
        Ok(true) => Ok(StateLock::new(Guard {
            client: client.0.take(),
            org: org.to_owned(),
            releasing: releasing.clone(),
        })),
        Ok(false) => {
            // Not granted: the connection holds nothing and goes back to the pool.
            drop(client.0.take());
            Err(Error::AlreadyRunning {
                what: format!(
                    "organisation {org:?} (its PostgreSQL lock is held by another worker)"
                ),
            })
        }
        // The connection's state is unknown: `client` closes it.
        Err(e) => Err(from_pg(operation, &e, password)),
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
                let org = self.org.clone();
                let release = runtime.spawn(async move {
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
            // Outside a runtime: closing the connection releases the lock.
            Err(_) => drop(Object::take(client)),
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
