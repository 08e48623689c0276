//! The decoding path of every Graph answer, from bytes to what the sink reports, with
//! no HTTP around it: [`crate::testkit::decode`] exposes it to the fuzzers and to the
//! bad-input property tests.

use super::delta::{changes, entries, last_wins, to_entry};
use super::error::GraphError;
use super::model::{Drive, DriveItem, Page, UploadSession};
use super::request::parse_json;
use super::upload::session::first_expected;
use crate::error::{Error, Result};
use crate::sink::Quota;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

/// The root's id in every hook: items may claim it as their parent or be it.
const ROOT: &str = "ROOT";

/// A driveItem answer (an upload, a new folder, a lookup), as the entry it becomes.
pub(crate) fn drive_item(body: &[u8]) -> Result<()> {
    let item: DriveItem = parse_json("fuzz", body)?;
    to_entry(&item, ROOT).map(drop)
}

/// A delta page, read both as a full enumeration and as changes since a cursor:
/// how many entries and changes it gives.
pub(crate) fn delta_page(body: &[u8]) -> Result<(usize, usize)> {
    let page: Page<DriveItem> = parse_json("fuzz", body)?;
    let items = last_wins(page.value);
    let listed = entries(&items, ROOT)?.len();
    let changed = changes(&items, ROOT, |id| id.len() % 2 == 0)?.len();
    Ok((listed, changed))
}

/// An upload session (created, or its status): where to resume.
pub(crate) fn upload_session(body: &[u8]) -> Result<Option<u64>> {
    let session: UploadSession = parse_json("fuzz", body)?;
    Ok(first_expected(&session.next_expected_ranges))
}

/// The drive resource: its space.
pub(crate) fn drive(body: &[u8]) -> Result<Option<Quota>> {
    let drive: Drive = parse_json("fuzz", body)?;
    Ok(super::quota_of(drive))
}

/// An error answer with `status`, a `Retry-After` header and `body`, classified.
pub(crate) fn error(status: u16, retry_after: &[u8], body: &[u8]) -> Error {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(retry_after) {
        headers.insert(RETRY_AFTER, value);
    }
    GraphError::parse(status, &headers, body).into_error("fuzz", true)
}
