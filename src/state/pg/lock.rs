//! The per-organisation lock: a session advisory lock on a connection of its own.
//!
//! A session advisory lock belongs to the server process of one connection: when that
//! connection ends for any reason (the guard dropped, the worker killed with SIGKILL,
//! its machine gone and the TCP keepalive expired), PostgreSQL releases it by itself.
//! No lease to renew, no expiry to tune: a lease row would need both, and a clock.
//! The connection is not the pool's: a pooled connection outlives its user, and the
//! lock with it.

use super::error::from_pg;
use crate::error::{Error, Result};
use crate::state::StateLock;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::task::JoinHandle;

/// `pg_try_advisory_lock` takes a `bigint`: the organisation id, hashed by the server
/// (`hashtextextended` is stable: PostgreSQL's hash partitioning depends on it), under
/// a prefix that keeps it apart from other users of advisory locks.
const TRY_LOCK: &str =
    "SELECT pg_try_advisory_lock(hashtextextended('receipt-sync state ' || $1, 0))";
const UNLOCK: &str = "SELECT pg_advisory_unlock(hashtextextended('receipt-sync state ' || $1, 0))";

/// A release in progress, shared by a store and the guards it hands out, so that the
/// store's next `lock` waits for the previous holder's unlock to reach the server.
pub(super) type Releasing = Arc<Mutex<Option<JoinHandle<()>>>>;

/// Takes the organisation's lock on a new connection, or says another holder has it.
pub(super) async fn acquire(
    config: &tokio_postgres::Config,
    tls: &tokio_postgres_rustls::MakeRustlsConnect,
    org: &str,
    releasing: &Releasing,
) -> Result<StateLock> {
    let previous = releasing
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(previous) = previous {
        // The unlock is one round trip; a failed one ends its connection, which
        // releases the lock too.
        let _ = previous.await;
    }
    let password = config.get_password();
    let pg = |e: tokio_postgres::Error| from_pg("taking the organisation's lock", &e, password);
    let (client, connection) = config.connect(tls.clone()).await.map_err(pg)?;
    let connection = tokio::spawn(async move {
        // Its end (an error included) is the lock's end: nothing else to do with it.
        let _ = connection.await;
    });
    let held: bool = client
        .query_one(TRY_LOCK, &[&org])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(pg)?;
    if !held {
        return Err(Error::AlreadyRunning {
            what: format!("organisation {org:?} (its PostgreSQL lock is held by another worker)"),
        });
    }
    Ok(StateLock::new(Guard {
        client: Some(client),
        connection: Some(connection),
        org: org.to_owned(),
        releasing: releasing.clone(),
    }))
}

struct Guard {
    client: Option<tokio_postgres::Client>,
    connection: Option<JoinHandle<()>>,
    org: String,
    releasing: Releasing,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let (Some(client), Some(connection)) = (self.client.take(), self.connection.take()) else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                // Unlock explicitly, so that a `lock` right after this drop finds the
                // lock free, then close the connection.
                let org = std::mem::take(&mut self.org);
                let release = runtime.spawn(async move {
                    let _ = client.execute(UNLOCK, &[&org]).await;
                    drop(client);
                    let _ = connection.await;
                });
                *self
                    .releasing
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(release);
            }
            // Outside a runtime: closing the connection releases the lock.
            Err(_) => {
                drop(client);
                connection.abort();
            }
        }
    }
}
