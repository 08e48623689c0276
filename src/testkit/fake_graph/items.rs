//! Item endpoints of the fake: get, children, folder creation, simple upload, upload-session
//! creation, rename/move, delete, and the drive resource with its quota.

use super::drive::{Conflict, DriveError, DriveResult, Kind};
use super::route::{Base, Parsed, Target};
use super::{Session, State, json};
use crate::testkit::server::{FakeRequest, FakeResponse};
use serde_json::{Value, json};

type Answer = DriveResult<FakeResponse>;

/// The base item's id (the app folder is created on first access, onedrive-graph.md §2).
fn base_id(state: &mut State, parsed: &Parsed) -> DriveResult<(String, Option<Vec<String>>)> {
    let Target::Item { base, path, .. } = &parsed.target else {
        return Err(DriveError::not_found());
    };
    let id = match base {
        Base::Id(id) => state.drive.canonical_id(id)?,
        Base::Root => state.drive.root_id.clone(),
        Base::AppRoot => state.drive.approot(),
    };
    Ok((id, path.clone()))
}

/// The addressed item's id.
pub(crate) fn target_id(state: &mut State, parsed: &Parsed) -> DriveResult<String> {
    let (base, path) = base_id(state, parsed)?;
    match path {
        Some(names) => state.drive.resolve(&base, &names),
        None => Ok(base),
    }
}

fn item_response(state: &State, status: u16, id: &str) -> Answer {
    let node = state.drive.get(id).ok_or_else(DriveError::not_found)?;
    Ok(FakeResponse::json(
        status,
        &json::item(&state.drive, node, true),
    ))
}

fn body_json(request: &FakeRequest) -> DriveResult<Value> {
    if request.body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&request.body)
        .map_err(|_| DriveError::new(400, "invalidRequest", "The request body is not JSON."))
}

/// Reads `@microsoft.graph.conflictBehavior` (or rclone's legacy `@name.conflictBehavior`).
fn conflict_in(value: &Value, default: Conflict) -> DriveResult<Conflict> {
    let raw = value
        .get("@microsoft.graph.conflictBehavior")
        .or_else(|| value.get("@name.conflictBehavior"))
        .and_then(Value::as_str);
    Conflict::parse(raw, default)
}

pub(crate) fn get(state: &mut State, parsed: &Parsed) -> Answer {
    let id = target_id(state, parsed)?;
    item_response(state, 200, &id)
}

pub(crate) fn get_content(state: &mut State, parsed: &Parsed) -> Answer {
    let id = target_id(state, parsed)?;
    match state.drive.get(&id).map(|n| &n.kind) {
        Some(Kind::File(bytes)) => Ok(FakeResponse::bytes(
            200,
            "application/octet-stream",
            bytes.clone(),
        )),
        Some(Kind::Folder) => Err(DriveError::new(
            400,
            "invalidRequest",
            "A folder has no content.",
        )),
        None => Err(DriveError::not_found()),
    }
}

/// Children, `$top` per page (default from the config), `$skiptoken` = offset.
pub(crate) fn list_children(state: &mut State, parsed: &Parsed, request: &FakeRequest) -> Answer {
    let id = target_id(state, parsed)?;
    let node = state.drive.get(&id).ok_or_else(DriveError::not_found)?;
    if !node.is_folder() {
        return Ok(FakeResponse::json(200, &json!({"value": []})));
    }
    let top = request
        .query_param("$top")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(state.children_page_size)
        .clamp(1, state.max_page_size);
    let skip = request
        .query_param("$skiptoken")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(0);
    let kids = state.drive.children(&id);
    let page: Vec<Value> = kids
        .iter()
        .skip(skip)
        .take(top)
        .map(|n| json::item(&state.drive, n, true))
        .collect();
    let mut body = json!({"value": page});
    if let Some(next) = state.page_links.next_offset(skip, top, kids.len()) {
        body["@odata.nextLink"] = json!(format!(
            "{}{}/items/{}/children?$top={top}&$skiptoken={next}",
            state.api_url, parsed.prefix, id,
        ));
    }
    Ok(FakeResponse::json(200, &body))
}

/// `POST …/children`: folders only; conflictBehavior defaults to `fail`.
pub(crate) fn create_child(state: &mut State, parsed: &Parsed, request: &FakeRequest) -> Answer {
    let parent = target_id(state, parsed)?;
    let body = body_json(request)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| DriveError::new(400, "invalidRequest", "A name is required."))?;
    if body.get("folder").is_none() {
        return Err(DriveError::new(
            400,
            "invalidRequest",
            "Only folders can be created here.",
        ));
    }
    let conflict = conflict_in(&body, Conflict::Fail)?;
    let (id, created) = state.drive.create_folder(&parent, name, conflict)?;
    item_response(state, if created { 201 } else { 200 }, &id)
}

/// `PUT …:/{name}:/content` creates (parents too, onedrive-graph.md §2) or replaces;
/// `PUT /items/{id}/content` replaces. The default conflictBehavior is `replace` (§3).
pub(crate) fn put_content(state: &mut State, parsed: &Parsed, request: &FakeRequest) -> Answer {
    if request.body.len() as u64 > state.simple_upload_limit {
        return Err(DriveError::new(
            413,
            "maxFileSizeExceeded",
            "Use an upload session for large files.",
        )
        .with_inner("maxFileSizeExceeded"));
    }
    let mut bytes = request.body.clone();
    if std::mem::take(&mut state.corrupt_next_upload) {
        bytes = super::corrupt(bytes);
    }
    let (base, path) = base_id(state, parsed)?;
    let Some(mut names) = path else {
        state.drive.replace_content(&base, bytes)?;
        return item_response(state, 200, &base);
    };
    let conflict = Conflict::parse(
        request.query_param("@microsoft.graph.conflictBehavior"),
        Conflict::Replace,
    )?;
    let name = names.pop().ok_or_else(DriveError::not_found)?;
    let parent = state.drive.ensure_folders(&base, &names)?;
    let (id, created) = state.drive.put_file(&parent, &name, bytes, conflict)?;
    item_response(state, if created { 201 } else { 200 }, &id)
}

/// `POST …:/{name}:/createUploadSession`: the parent must exist; `fileSize` over the free
/// space is a 507 before any byte (onedrive-graph.md §3, §5); conflictBehavior defaults to
/// `fail`.
pub(crate) fn create_session(state: &mut State, parsed: &Parsed, request: &FakeRequest) -> Answer {
    let (base, path) = base_id(state, parsed)?;
    let mut names =
        path.ok_or_else(|| DriveError::new(400, "invalidRequest", "A file name is required."))?;
    let name = names.pop().ok_or_else(DriveError::not_found)?;
    let parent = state.drive.resolve(&base, &names)?;
    state.drive.validate_new(&parent, &name)?;
    let body = body_json(request)?;
    let item = body.get("item").cloned().unwrap_or_else(|| json!({}));
    let conflict = conflict_in(&item, Conflict::Fail)?;
    if let Some(size) = item.get("fileSize").and_then(Value::as_u64)
        && size > state.drive.remaining()
    {
        return Err(DriveError::new(
            507,
            "quotaLimitReached",
            "Insufficient Space Available",
        ));
    }
    if conflict == Conflict::Fail && state.drive.child(&parent, &name).is_some() {
        return Err(DriveError::name_taken());
    }
    state.next_session += 1;
    let id = format!("s{:06}", state.next_session);
    state.sessions.insert(
        id.clone(),
        Session {
            parent,
            name,
            total: None,
            received: Vec::new(),
            conflict,
            expired: false,
        },
    );
    Ok(FakeResponse::json(
        200,
        &json!({
            "uploadUrl": format!("{}/upload/{id}", state.upload_url),
            "expirationDateTime": "2026-11-28T09:29:03.523Z",
            "nextExpectedRanges": ["0-"],
        }),
    ))
}

/// `PATCH`: rename (`name`) and/or move (`parentReference.id`).
pub(crate) fn patch(state: &mut State, parsed: &Parsed, request: &FakeRequest) -> Answer {
    let id = target_id(state, parsed)?;
    let body = body_json(request)?;
    let name = body.get("name").and_then(Value::as_str);
    let parent = body
        .get("parentReference")
        .and_then(|p| p.get("id"))
        .and_then(Value::as_str);
    state.drive.update(&id, name, parent)?;
    item_response(state, 200, &id)
}

pub(crate) fn delete(state: &mut State, parsed: &Parsed) -> Answer {
    let id = target_id(state, parsed)?;
    state.drive.delete(&id)?;
    Ok(FakeResponse::status(204))
}

/// `GET /me/drive` with its quota (onedrive-graph.md §5).
pub(crate) fn drive_resource(state: &mut State) -> FakeResponse {
    let drive = &state.drive;
    let (total, used) = (drive.quota_total, drive.used());
    let remaining = total.saturating_sub(used);
    let state_name = if remaining == 0 {
        "exceeded"
    } else if remaining.saturating_mul(100) < total {
        "critical"
    } else if remaining.saturating_mul(10) < total {
        "nearing"
    } else {
        "normal"
    };
    FakeResponse::json(
        200,
        &json!({
            "id": drive.drive_id,
            "driveType": "personal",
            "owner": {"user": {"displayName": "Fake User", "id": drive.drive_id}},
            "quota": {"total": total, "used": used, "remaining": remaining,
                      "deleted": 0, "state": state_name},
        }),
    )
}
