//! Sharing endpoints of the fake: createLink, invite, permissions.

use super::drive::{DriveError, DriveResult, Perm};
use super::items::target_id;
use super::route::Parsed;
use super::{State, json};
use crate::testkit::server::{FakeRequest, FakeResponse};
use serde_json::{Value, json};

type Answer = DriveResult<FakeResponse>;

fn body(request: &FakeRequest) -> DriveResult<Value> {
    serde_json::from_slice(&request.body)
        .map_err(|_| DriveError::new(400, "invalidRequest", "The request body is not JSON."))
}

fn next_perm_id(state: &mut State) -> String {
    state.next_perm += 1;
    format!("perm{:04}", state.next_perm)
}

/// `POST /items/{id}/createLink`: an existing link of the same type and scope is returned
/// again (200), a new one is 201.
pub(crate) fn create_link(state: &mut State, parsed: &Parsed, request: &FakeRequest) -> Answer {
    let id = target_id(state, parsed)?;
    let body = body(request)?;
    let kind = body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("view")
        .to_owned();
    let scope = body
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or("anonymous")
        .to_owned();
    if !matches!(kind.as_str(), "view" | "edit" | "embed") {
        return Err(DriveError::new(400, "invalidRequest", "Unknown link type."));
    }
    let wanted = Some((kind.clone(), scope.clone()));
    if let Some(existing) = state
        .drive
        .perms
        .get(&id)
        .and_then(|ps| ps.iter().find(|p| p.link == wanted))
    {
        return Ok(FakeResponse::json(200, &json::permission(existing)));
    }
    let perm = Perm {
        id: next_perm_id(state),
        roles: vec![if kind == "edit" { "write" } else { "read" }.to_owned()],
        link: wanted,
        email: None,
    };
    let rendered = json::permission(&perm);
    state.drive.perms.entry(id).or_default().push(perm);
    Ok(FakeResponse::json(201, &rendered))
}

/// `POST /items/{id}/invite`.
pub(crate) fn invite(state: &mut State, parsed: &Parsed, request: &FakeRequest) -> Answer {
    let id = target_id(state, parsed)?;
    let body = body(request)?;
    let roles: Vec<String> = body
        .get("roles")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let recipients: Vec<String> = body
        .get("recipients")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|x| x.get("email").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if roles.is_empty() || recipients.is_empty() || recipients.iter().any(|e| !e.contains('@')) {
        return Err(DriveError::new(
            400,
            "invalidRequest",
            "Recipients and roles are required.",
        ));
    }
    let mut out = Vec::new();
    for email in recipients {
        let perm = Perm {
            id: next_perm_id(state),
            roles: roles.clone(),
            link: None,
            email: Some(email),
        };
        out.push(json::permission(&perm));
        state.drive.perms.entry(id.clone()).or_default().push(perm);
    }
    Ok(FakeResponse::json(200, &json!({"value": out})))
}

/// `GET /items/{id}/permissions`: the owner's entry, then the shares.
pub(crate) fn list(state: &mut State, parsed: &Parsed) -> Answer {
    let id = target_id(state, parsed)?;
    let mut value = vec![json!({"id": "owner", "roles": ["owner"]})];
    if let Some(perms) = state.drive.perms.get(&id) {
        value.extend(perms.iter().map(json::permission));
    }
    Ok(FakeResponse::json(200, &json!({"value": value})))
}

/// `DELETE /items/{id}/permissions/{perm-id}`.
pub(crate) fn remove(state: &mut State, parsed: &Parsed, perm_id: &str) -> Answer {
    let id = target_id(state, parsed)?;
    let perms = state.drive.perms.entry(id).or_default();
    let before = perms.len();
    perms.retain(|p| p.id != perm_id);
    if perms.len() == before {
        return Err(DriveError::not_found());
    }
    Ok(FakeResponse::status(204))
}
