//! Statements sent together: one network round trip for a whole transaction.
//!
//! The driver sends a prepared statement's request the first time its future is
//! polled, and the server runs requests in the order they arrive. So every statement
//! is prepared first (nothing to do once a connection has cached it), then each
//! future is polled once, in order, which sends `BEGIN`, the writes and `COMMIT` back
//! to back; only then are the answers awaited. A statement that fails aborts the
//! transaction, and the `COMMIT` behind it rolls back: nothing is half-written.

use super::error::from_pg;
use crate::error::Result;
use futures::future::{BoxFuture, MaybeDone, maybe_done};
use std::collections::HashMap;
use tokio_postgres::types::ToSql;

/// A statement's parameter, owned so that statements can be gathered before sending.
pub(super) type Param = Box<dyn ToSql + Sync + Send>;

/// One statement of a pipeline.
pub(super) enum Step {
    /// A statement without parameters, sent as is (`BEGIN`, `COMMIT`).
    Simple(&'static str),
    /// A prepared statement and its parameters.
    Execute {
        /// Its text.
        sql: String,
        /// Its parameters, `$1` first.
        params: Vec<Param>,
    },
}

impl Step {
    pub(super) fn execute(sql: impl Into<String>, params: Vec<Param>) -> Self {
        Self::Execute {
            sql: sql.into(),
            params,
        }
    }
}

/// Sends `steps` in order, back to back, then waits for every answer.
pub(super) async fn run(
    client: &deadpool_postgres::ClientWrapper,
    operation: &str,
    password: Option<&[u8]>,
    steps: &[Step],
) -> Result<()> {
    let pg = |e: tokio_postgres::Error| from_pg(operation, &e, password);
    let mut texts: Vec<&str> = Vec::new();
    for step in steps {
        if let Step::Execute { sql, .. } = step
            && !texts.contains(&sql.as_str())
        {
            texts.push(sql);
        }
    }
    let prepared: HashMap<&str, tokio_postgres::Statement> = texts
        .iter()
        .copied()
        .zip(
            futures::future::try_join_all(texts.iter().map(|sql| client.prepare_cached(sql)))
                .await
                .map_err(pg)?,
        )
        .collect();

    let mut pending: Vec<std::pin::Pin<Box<MaybeDone<BoxFuture<'_, _>>>>> = Vec::new();
    for step in steps {
        let future: BoxFuture<'_, Result<(), tokio_postgres::Error>> = match step {
            Step::Simple(sql) => Box::pin(client.batch_execute(sql)),
            Step::Execute { sql, params } => {
                let statement = &prepared[sql.as_str()];
                Box::pin(async move {
                    let params: Vec<&(dyn ToSql + Sync)> = params
                        .iter()
                        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                        .collect();
                    client.execute(statement, &params).await.map(drop)
                })
            }
        };
        let mut future = Box::pin(maybe_done(future));
        // The first poll sends the request; its answer is awaited below.
        let _ = futures::poll!(future.as_mut());
        pending.push(future);
    }
    let mut first_error = None;
    for mut future in pending {
        future.as_mut().await;
        if let Some(Err(e)) = future.as_mut().take_output()
            && first_error.is_none()
        {
            first_error = Some(e);
        }
    }
    match first_error {
        Some(e) => Err(pg(e)),
        None => Ok(()),
    }
}
