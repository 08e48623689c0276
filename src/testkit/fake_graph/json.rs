//! How the fake renders driveItems and errors (the shapes of onedrive-graph.md §10).

use super::drive::{Drive, DriveError, Kind, Node, Perm};
use crate::sink::onedrive::QuickXorHash;
use crate::testkit::server::FakeResponse;
use serde_json::{Value, json};

const STAMP: &str = "2026-11-28T09:14:03Z";

/// A driveItem. `with_path` adds `parentReference.path` (left out of delta, §4).
pub(crate) fn item(drive: &Drive, node: &Node, with_path: bool) -> Value {
    let mut value = json!({
        "id": node.id,
        "name": node.name,
        "size": drive.size_of(&node.id),
        "eTag": format!("\"{{{}}},{}\"", node.id, node.version),
        "cTag": format!("\"c:{{{}}},{}\"", node.id, node.version),
        "createdDateTime": STAMP,
        "lastModifiedDateTime": STAMP,
        "fileSystemInfo": {"createdDateTime": STAMP, "lastModifiedDateTime": STAMP},
        // Opens the item in OneDrive on the web, whatever its folders are called in the
        // user's language (`Apps` is localized, onedrive-graph.md §2).
        "webUrl": format!("https://onedrive.live.com/?cid={}&id={}", drive.drive_id, node.id),
    });
    if let Some(parent) = &node.parent {
        let mut reference = json!({
            "driveId": drive.drive_id,
            "driveType": "personal",
            "id": parent,
        });
        if with_path {
            let path = drive.path_of(parent);
            reference["path"] = if path.is_empty() {
                json!("/drive/root:")
            } else {
                json!(format!("/drive/root:/{path}"))
            };
        }
        value["parentReference"] = reference;
    } else {
        value["root"] = json!({});
    }
    match &node.kind {
        Kind::Folder => value["folder"] = json!({"childCount": drive.children(&node.id).len()}),
        Kind::File(bytes) => {
            value["file"] = json!({
                "mimeType": mime(&node.name),
                "hashes": {"quickXorHash": quick_xor(bytes)},
            });
        }
    }
    if node.special {
        value["specialFolder"] = json!({"name": "approot"});
    }
    value
}

fn quick_xor(bytes: &[u8]) -> String {
    let mut hash = QuickXorHash::new();
    hash.update(bytes);
    hash.to_base64()
}

fn mime(name: &str) -> &'static str {
    let lower = name.to_lowercase();
    if lower.ends_with(".pdf") {
        "application/pdf"
    } else if lower.ends_with(".jpg") || lower.ends_with(".jpeg") {
        "image/jpeg"
    } else if lower.ends_with(".png") {
        "image/png"
    } else {
        "application/octet-stream"
    }
}

/// A Graph error response (with `innerError`, spelled as Graph spells it).
pub(crate) fn error(e: &DriveError) -> FakeResponse {
    let mut inner = json!({"date": STAMP, "request-id": "fake-request"});
    if let Some(code) = e.inner {
        inner["code"] = json!(code);
    }
    FakeResponse::json(
        e.status,
        &json!({"error": {"code": e.code, "message": e.message, "innerError": inner}}),
    )
}

pub(crate) fn permission(p: &Perm) -> Value {
    let mut value = json!({"id": p.id, "roles": p.roles});
    if let Some((kind, scope)) = &p.link {
        value["link"] = json!({
            "type": kind,
            "scope": scope,
            "webUrl": format!("https://1drv.ms/f/s!fake-{}", p.id),
        });
    }
    if let Some(email) = &p.email {
        value["grantedToV2"] = json!({"user": {"email": email, "displayName": email}});
        value["invitation"] = json!({"email": email, "signInRequired": true});
    }
    value
}
