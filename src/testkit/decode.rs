//! Every decoder that reads bytes from outside, callable on arbitrary input: the Qonto
//! and Graph answers (from the body to what the connector yields, with no HTTP around
//! it) and the state files. The fuzz targets under `fuzz/` and the bad-input property
//! tests drive them; each returns a result and must never panic.
//!
//! The layout's name sanitizer needs no hook: [`crate::layout`] is public.

use crate::error::{Error, Result};
use crate::layout::{Layout, LayoutSettings, NameLimits};
use crate::plan::{PlanOptions, plan};
use crate::sink::Quota;
use crate::state::{JsonFileStateStore, SyncState};

/// A `GET /v2/organization` body: how many bank accounts it lists.
///
/// # Errors
/// What the source would answer for this body.
pub fn qonto_organization(body: &[u8]) -> Result<usize> {
    crate::source::qonto::decode::organization(body)
}

/// A `GET /v2/transactions` page: each transaction's receipt count or error, and
/// whether a next page is announced.
///
/// # Errors
/// What the source would answer for this page as a whole.
pub fn qonto_transactions_page(body: &[u8]) -> Result<(Vec<Result<usize>>, bool)> {
    crate::source::qonto::decode::transactions_page(body)
}

/// A `GET /v2/attachments/{id}` body: the announced file size.
///
/// # Errors
/// What the source would answer for this body.
pub fn qonto_attachment(body: &[u8]) -> Result<u64> {
    crate::source::qonto::decode::attachment(body)
}

/// A Qonto error answer, classified.
pub fn qonto_error(status: u16, body: &[u8]) -> Error {
    crate::source::qonto::decode::error(status, body)
}

/// A Graph driveItem answer, read as an archive entry.
///
/// # Errors
/// What the sink would answer for this body.
pub fn graph_drive_item(body: &[u8]) -> Result<()> {
    crate::sink::onedrive::decode::drive_item(body)
}

/// A Graph delta page, read as a full listing and as changes: the counts of each.
///
/// # Errors
/// What the sink would answer for this page.
pub fn graph_delta_page(body: &[u8]) -> Result<(usize, usize)> {
    crate::sink::onedrive::decode::delta_page(body)
}

/// A Graph upload session: the offset to resume from.
///
/// # Errors
/// What the sink would answer for this body.
pub fn graph_upload_session(body: &[u8]) -> Result<Option<u64>> {
    crate::sink::onedrive::decode::upload_session(body)
}

/// The Graph drive resource: its space.
///
/// # Errors
/// What the sink would answer for this body.
pub fn graph_drive(body: &[u8]) -> Result<Option<Quota>> {
    crate::sink::onedrive::decode::drive(body)
}

/// A Graph error answer with a `Retry-After` header value, classified.
pub fn graph_error(status: u16, retry_after: &[u8], body: &[u8]) -> Error {
    crate::sink::onedrive::decode::error(status, retry_after, body)
}

/// Feeds `body` to the Qonto decoder that `selector` picks (organization, transactions
/// page, attachment, or an error answer whose status it also picks), then displays and
/// classifies any error: what the fuzz target and the bad-input tests run.
pub fn any_qonto_answer(selector: u8, body: &[u8]) {
    let error = match selector % 4 {
        0 => qonto_organization(body).err(),
        1 => qonto_transactions_page(body).err(),
        2 => qonto_attachment(body).err(),
        _ => Some(qonto_error(400 + u16::from(selector) % 200, body)),
    };
    if let Some(error) = error {
        let _ = (error.to_string(), error.kind(), error.is_retryable());
    }
}

/// Feeds `body` to the Graph decoder that `selector` picks (driveItem, delta page,
/// upload session, drive, or an error answer whose `Retry-After` is the body's first
/// line), then displays and classifies any error.
pub fn any_graph_answer(selector: u8, body: &[u8]) {
    let error = match selector % 5 {
        0 => graph_drive_item(body).err(),
        1 => graph_delta_page(body).err(),
        2 => graph_upload_session(body).err(),
        3 => graph_drive(body).err(),
        _ => {
            let split = body.iter().position(|&b| b == b'\n').unwrap_or(0);
            let (retry_after, rest) = body.split_at(split);
            Some(graph_error(
                400 + u16::from(selector) % 200,
                retry_after,
                rest,
            ))
        }
    };
    if let Some(error) = error {
        let _ = (error.to_string(), error.kind(), error.retry_after());
    }
}

/// Loads `state.bin` and `state.journal` holding these bytes (`None` leaves a file
/// out) with [`JsonFileStateStore`], checks that loading left both files as they were,
/// and plans a sync from what loaded.
///
/// # Errors
/// What the store answers; [`Error::State`] if loading changed a file.
pub fn state_files(state: Option<&[u8]>, journal: Option<&[u8]>) -> Result<Option<SyncState>> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("create", "a temporary folder", e))?;
    let store = JsonFileStateStore::new(dir.path());
    let files = [(store.state_path(), state), (store.journal_path(), journal)];
    for (path, bytes) in &files {
        if let Some(bytes) = bytes {
            std::fs::write(path, bytes).map_err(|e| Error::io("write", path.clone(), e))?;
        }
    }
    let loaded = store.load_blocking();
    for (path, bytes) in &files {
        if std::fs::read(path).ok().as_deref() != *bytes {
            return Err(Error::State {
                path: path.clone(),
                detail: "loading changed the file".to_owned(),
            });
        }
    }
    if let Ok(Some(state)) = &loaded {
        let layout = Layout::new(LayoutSettings::default(), NameLimits::default());
        let _ = plan(state, &layout, &PlanOptions::default());
    }
    loaded
}
