//! The fake's delta feed (onedrive-graph.md §4): folder-scoped, paged, with tokens that are
//! change sequence numbers of a resync epoch.
//!
//! - No token: every live item of the folder's subtree, the folder itself first.
//! - `token=latest`: nothing, and a deltaLink from now.
//! - `token={epoch}.{seq}`: the items of the subtree changed since `seq` (latest state only),
//!   each preceded by its unchanged ancestors (no `deltaExcludeParent`), items that moved out
//!   of the folder (with their new, outside parent), and tombstones (`deleted: {}`, no
//!   `size` or `cTag`, zeroed hash, as on Personal). A deleted folder leaves its own
//!   tombstone only unless the drive cascades tombstones.
//! - A token of an older epoch gets 410 `resyncRequired` with a `Location` to start over; a
//!   token that does not parse gets 400 `invalidRequest`.

use super::drive::{DriveError, DriveResult, Node};
use super::items::target_id;
use super::route::Parsed;
use super::{State, json};
use crate::testkit::server::{FakeRequest, FakeResponse};
use serde_json::{Value, json};
use std::collections::HashSet;

/// A 410 with a `Location` that restarts the enumeration of the addressed folder.
pub(crate) fn resync(state: &mut State, parsed: &Parsed) -> FakeResponse {
    let location = target_id(state, parsed)
        .map(|id| start_link(state, parsed, &id))
        .unwrap_or_default();
    json::error(&DriveError::new(
        410,
        "resyncRequired",
        "Resync required. Replace any local items with the server's version (including deletes) \
         if you're sure that the service was up to date with your local changes when you last \
         sync'd. Upload any local changes that the server doesn't know about.",
    ))
    .with_header("location", &location)
}

fn start_link(state: &State, parsed: &Parsed, id: &str) -> String {
    format!("{}{}/items/{id}/delta", state.api_url, parsed.prefix)
}

enum From {
    Everything,
    Latest,
    Since(u64),
}

pub(crate) fn delta(
    state: &mut State,
    parsed: &Parsed,
    request: &FakeRequest,
) -> DriveResult<FakeResponse> {
    let folder = target_id(state, parsed)?;
    let from = match request.query_param("token") {
        None => From::Everything,
        Some("latest") => From::Latest,
        Some(token) => {
            let (epoch, seq) = token
                .split_once('.')
                .and_then(|(e, s)| Some((e.parse::<u64>().ok()?, s.parse::<u64>().ok()?)))
                .ok_or_else(|| {
                    DriveError::new(400, "invalidRequest", "Provided sync token is malformed.")
                })?;
            if epoch != state.drive.epoch {
                return Ok(resync(state, parsed));
            }
            From::Since(seq)
        }
    };
    let upto = request
        .query_param("upto")
        .and_then(|u| u.parse::<u64>().ok())
        .unwrap_or(state.drive.seq);
    let skip = request
        .query_param("skip")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    let top = request
        .query_param("$top")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(state.delta_page_size)
        .clamp(1, state.max_page_size);
    let all = match from {
        From::Latest => Vec::new(),
        From::Everything => everything(state, &folder),
        From::Since(seq) => changes(state, &folder, seq),
    };
    let page: Vec<Value> = all.iter().skip(skip).take(top).cloned().collect();
    let mut body = json!({"value": page});
    let base = start_link(state, parsed, &folder);
    if let Some(next) = state.page_links.next_offset(skip, top, all.len()) {
        let token = match from {
            From::Since(seq) => format!("&token={}.{seq}", state.drive.epoch),
            _ => String::new(),
        };
        body["@odata.nextLink"] = json!(format!("{base}?upto={upto}&skip={next}{token}"));
    } else {
        body["@odata.deltaLink"] = json!(format!("{base}?token={}.{upto}", state.drive.epoch));
    }
    Ok(FakeResponse::json(200, &body))
}

fn render(state: &State, node: &Node) -> Value {
    json::item(&state.drive, node, false)
}

fn everything(state: &State, folder: &str) -> Vec<Value> {
    let drive = &state.drive;
    let mut out = Vec::new();
    if let Some(node) = drive.get(folder) {
        out.push(render(state, node));
    }
    out.extend(drive.subtree(folder).into_iter().map(|n| render(state, n)));
    out
}

fn changes(state: &State, folder: &str, since: u64) -> Vec<Value> {
    let drive = &state.drive;
    let mut changed: Vec<&Node> = drive
        .nodes
        .values()
        .filter(|n| n.seq > since && n.id != folder && drive.is_within(&n.id, folder))
        .collect();
    changed.sort_by_key(|n| (n.seq, n.id.clone()));
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for node in changed {
        // Unchanged ancestors come first, from the folder down (no deltaExcludeParent).
        let mut chain: Vec<String> = drive
            .ancestors(&node.id)
            .into_iter()
            .take_while(|a| a != folder)
            .collect();
        chain.reverse();
        chain.insert(0, folder.to_owned());
        for ancestor in chain {
            if seen.insert(ancestor.clone())
                && let Some(a) = drive.get(&ancestor)
            {
                out.push(render(state, a));
            }
        }
        if seen.insert(node.id.clone()) {
            out.push(render(state, node));
        }
    }
    for moved in drive.moves.iter().filter(|m| m.seq > since) {
        if moved.old_ancestors.iter().any(|a| a == folder)
            && !drive.is_within(&moved.id, folder)
            && let Some(node) = drive.get(&moved.id)
            && seen.insert(node.id.clone())
        {
            out.push(render(state, node));
        }
    }
    let reported = |t: &&super::drive::Tombstone| {
        t.seq > since
            && t.only_if_changed_after
                .is_none_or(|changed| changed > since)
    };
    for tomb in drive.tombstones.iter().filter(reported) {
        if tomb.ancestors.iter().any(|a| a == folder) && seen.insert(tomb.id.clone()) {
            let mut value = json!({
                "id": tomb.id,
                "name": tomb.name,
                "deleted": {},
                "parentReference": {"driveId": drive.drive_id, "driveType": "personal",
                                    "id": tomb.parent},
            });
            if tomb.was_folder {
                value["folder"] = json!({});
            } else {
                value["file"] = json!({"hashes": {"quickXorHash": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}});
            }
            out.push(value);
        }
    }
    out
}
