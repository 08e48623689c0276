//! The fake's upload-session URLs, served on their own port like Graph's pre-authenticated
//! `uploadUrl` host (onedrive-graph.md §3):
//! - any `Authorization` header is refused with 401 and recorded;
//! - fragments must come in order (`Content-Range: bytes a-b/total`, the same total each
//!   time), be under 60 MiB and, except the last, multiples of 320 KiB; a range that is not
//!   the next expected one is a 416;
//! - `GET` reports `nextExpectedRanges`, `DELETE` cancels; an expired session is a 404;
//! - the last byte commits the file, honouring the session's conflictBehavior and the quota.

use super::api::early_fault;
use super::drive::DriveError;
use super::faults::Fault;
use super::{State, json};
use crate::testkit::server::{FakeRequest, FakeResponse, FakeService};
use futures::future::BoxFuture;
use hyper::Method;
use serde_json::json;
use std::sync::{Arc, Mutex, PoisonError};

const UNIT: u64 = 327_680;
const MAX_FRAGMENT: u64 = 60 * 1024 * 1024;

pub(crate) struct UploadHost {
    pub state: Arc<Mutex<State>>,
}

impl FakeService for UploadHost {
    fn route(&self, request: &FakeRequest) -> String {
        let kind = if request.path.starts_with("/upload/") {
            "/upload/{session}"
        } else {
            request.path.as_str()
        };
        format!("{} {kind}", request.method)
    }

    fn handle(&self, request: FakeRequest) -> BoxFuture<'_, FakeResponse> {
        let route = self.route(&request);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .arrivals
            .push((std::time::Instant::now(), route.clone()));
        let response = answer(&mut state, &route, &request);
        Box::pin(async move { response })
    }
}

fn not_found() -> FakeResponse {
    json::error(&DriveError::new(
        404,
        "itemNotFound",
        "The upload session was not found",
    ))
}

fn status_body(received: u64) -> serde_json::Value {
    json!({"expirationDateTime": "2026-11-28T09:44:17.208Z",
           "nextExpectedRanges": [format!("{received}-")]})
}

fn answer(state: &mut State, route: &str, request: &FakeRequest) -> FakeResponse {
    let fault = state.faults.pick(route);
    if request.headers.contains_key("authorization") {
        // The one rule of pre-authenticated URLs: never a bearer token.
        state.upload_auth_violations += 1;
        return json::error(&DriveError::new(
            401,
            "unauthenticated",
            "Authorization headers are not accepted on upload URLs.",
        ));
    }
    if let Some(early) = fault.as_ref().and_then(early_fault) {
        return early;
    }
    let Some(id) = request.path.strip_prefix("/upload/").map(str::to_owned) else {
        return not_found();
    };
    if fault == Some(Fault::ExpireSession)
        && let Some(session) = state.sessions.get_mut(&id)
    {
        session.expired = true;
    }
    if state.sessions.get(&id).is_none_or(|s| s.expired) {
        return not_found();
    }
    let response = match request.method {
        Method::GET => {
            let received = state
                .sessions
                .get(&id)
                .map_or(0, |s| s.received.len() as u64);
            FakeResponse::json(200, &status_body(received))
        }
        Method::DELETE => {
            state.sessions.remove(&id);
            FakeResponse::status(204)
        }
        Method::PUT => {
            let keep = match fault {
                Some(Fault::AcceptPartly(n)) => Some(n),
                _ => None,
            };
            fragment(state, &id, request, keep).unwrap_or_else(|e| json::error(&e))
        }
        _ => json::error(&DriveError::new(405, "notSupported", "Not supported.")),
    };
    match fault {
        Some(Fault::DropAfter) => FakeResponse::Drop,
        Some(Fault::Truncate) => response.truncated(5),
        _ => response,
    }
}

fn parse_range(header: Option<&str>) -> Option<(u64, u64, u64)> {
    let rest = header?.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    Some((start.parse().ok()?, end.parse().ok()?, total.parse().ok()?))
}

fn fragment(
    state: &mut State,
    id: &str,
    request: &FakeRequest,
    keep: Option<u64>,
) -> Result<FakeResponse, DriveError> {
    let bad = |inner: &'static str, message: &str| {
        DriveError::new(400, "invalidRequest", message).with_inner(inner)
    };
    let (start, end, total) = parse_range(request.header("content-range"))
        .filter(|(s, e, t)| s <= e && e < t)
        .ok_or_else(|| {
            bad(
                "invalidRange",
                "The Content-Range header is missing or invalid.",
            )
        })?;
    let len = request.body.len() as u64;
    if end - start + 1 != len {
        return Err(bad(
            "fragmentLengthMismatch",
            "The fragment length does not match its range.",
        ));
    }
    if len >= MAX_FRAGMENT {
        return Err(bad(
            "invalidRange",
            "Fragments must be smaller than 60 MiB.",
        ));
    }
    let Some(session) = state.sessions.get_mut(id) else {
        return Ok(not_found());
    };
    if session.total.is_some_and(|t| t != total) {
        return Err(bad(
            "invalidRange",
            "The total size changed between fragments.",
        ));
    }
    let received = session.received.len() as u64;
    if start != received {
        let inner = if start < received {
            "fragmentOverlap"
        } else {
            "fragmentOutOfOrder"
        };
        return Err(DriveError::new(
            416,
            "invalidRange",
            "The fragment is not the next expected range.",
        )
        .with_inner(inner));
    }
    if end + 1 < total && !len.is_multiple_of(UNIT) {
        return Err(bad(
            "invalidRange",
            "Fragments other than the last must be a multiple of 320 KiB.",
        ));
    }
    session.total = Some(total);
    if let Some(keep) = keep.filter(|k| *k < len) {
        let kept = request.body.slice(..keep as usize);
        session.received.extend_from_slice(&kept);
        return Ok(FakeResponse::Drop);
    }
    session.received.extend_from_slice(&request.body);
    if end + 1 < total {
        return Ok(FakeResponse::json(202, &status_body(end + 1)));
    }
    // The last byte: commit the file.
    let Some(session) = state.sessions.remove(id) else {
        return Ok(not_found());
    };
    let mut bytes = bytes::Bytes::from(session.received);
    if std::mem::take(&mut state.corrupt_next_upload) {
        bytes = super::corrupt(bytes);
    }
    let (item_id, created) =
        state
            .drive
            .put_file(&session.parent, &session.name, bytes, session.conflict)?;
    let node = state
        .drive
        .get(&item_id)
        .ok_or_else(DriveError::not_found)?;
    Ok(FakeResponse::json(
        if created { 201 } else { 200 },
        &json::item(&state.drive, node, true),
    ))
}
