//! The settled summary of an organisation's state, in `sync_settled`.
//!
//! The row says at which generation of the head row it was made; every write
//! transaction moves the generation on (`rows::ensure_head`, and `save`), so the row
//! is read only while nothing was written since. The catalog's digests are kept
//! beside the summary under their id: a quiet day, whose catalog is the one kept,
//! rewrites the summary alone, and the digests' column stays where it is.

use super::error::from_pg;
use super::rows::Scope;
use crate::error::Result;
use crate::state::{CatalogDigest, Settled, SettledMeta};
use deadpool_postgres::ClientWrapper;

/// The summary, if it describes the rows as they are.
pub(super) async fn load(client: &ClientWrapper, scope: Scope<'_>) -> Result<Option<Settled>> {
    let operation = format!("reading the settled summary (organisation {:?})", scope.org);
    let statement = client
        .prepare_cached(
            "SELECT s.summary, s.catalog, s.catalog_id FROM sync_settled s \
             JOIN sync_state h ON h.org_id = s.org_id AND h.generation = s.generation \
             WHERE s.org_id = $1",
        )
        .await
        .map_err(|e| from_pg(&operation, &e, scope.password))?;
    let row = client
        .query_opt(&statement, &[&scope.org])
        .await
        .map_err(|e| from_pg(&operation, &e, scope.password))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let summary: Vec<u8> = row
        .try_get(0)
        .map_err(|e| from_pg(&operation, &e, scope.password))?;
    let catalog: Vec<u8> = row
        .try_get(1)
        .map_err(|e| from_pg(&operation, &e, scope.password))?;
    let catalog_id: Vec<u8> = row
        .try_get(2)
        .map_err(|e| from_pg(&operation, &e, scope.password))?;
    // A summary this release cannot read is no summary: the pass loads the rows.
    let meta = match postcard::from_bytes::<SettledMeta>(&summary) {
        Ok(meta) => meta,
        Err(_) => {
            tracing::debug!(
                organisation = scope.org,
                "the settled summary cannot be read; loading the whole state"
            );
            return Ok(None);
        }
    };
    let (Some(catalog), Ok(id)) = (
        CatalogDigest::from_bytes(&catalog),
        <[u8; 32]>::try_from(catalog_id),
    ) else {
        return Ok(None);
    };
    // The id was computed from these digests when they were written.
    Ok(Some(meta.with_catalog(catalog.with_id(id))))
}

/// Keeps `settled` as the summary of the rows as they are now.
pub(super) async fn save(
    client: &ClientWrapper,
    scope: Scope<'_>,
    settled: &Settled,
) -> Result<()> {
    let operation = format!("saving the settled summary (organisation {:?})", scope.org);
    let pg = |e: tokio_postgres::Error| from_pg(&operation, &e, scope.password);
    let summary = postcard::to_allocvec(&SettledMeta::of(settled)).map_err(|e| {
        crate::error::Error::State {
            path: std::path::PathBuf::from("postgresql: sync_settled"),
            detail: format!("cannot encode the settled summary: {e}"),
        }
    })?;
    let catalog_id = settled.catalog.id().to_vec();
    // The catalog kept is this one: only the summary and its generation change.
    let same_catalog = client
        .prepare_cached(
            "UPDATE sync_settled s SET generation = h.generation, summary = $2 \
             FROM sync_state h WHERE s.org_id = $1 AND h.org_id = $1 AND s.catalog_id = $3",
        )
        .await
        .map_err(pg)?;
    let updated = client
        .execute(&same_catalog, &[&scope.org, &summary, &catalog_id])
        .await
        .map_err(pg)?;
    if updated > 0 {
        return Ok(());
    }
    let whole = client
        .prepare_cached(
            "INSERT INTO sync_settled (org_id, generation, summary, catalog_id, catalog) \
             SELECT $1, h.generation, $2, $3, $4 FROM sync_state h WHERE h.org_id = $1 \
             ON CONFLICT (org_id) DO UPDATE SET generation = excluded.generation, \
             summary = excluded.summary, catalog_id = excluded.catalog_id, \
             catalog = excluded.catalog",
        )
        .await
        .map_err(pg)?;
    let catalog = settled.catalog.to_bytes();
    client
        .execute(&whole, &[&scope.org, &summary, &catalog_id, &catalog])
        .await
        .map_err(pg)?;
    Ok(())
}
