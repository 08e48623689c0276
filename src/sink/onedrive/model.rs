//! Graph's JSON shapes (onedrive-graph.md §10), private to this connector and converted to
//! crate types at the boundary. Every field the service may omit is optional, so an
//! unexpected shape becomes a [`crate::Error::Malformed`] at the point of use, not a panic.

use crate::auth::SecretString;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The fields of a driveItem this connector reads; `$select` asks for exactly these.
pub(crate) const ITEM_SELECT: &str = "id,name,size,file,folder,deleted,parentReference";

/// A driveItem.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DriveItem {
    pub id: Option<String>,
    pub name: Option<String>,
    pub size: Option<u64>,
    pub file: Option<FileFacet>,
    pub folder: Option<serde_json::Value>,
    pub deleted: Option<serde_json::Value>,
    pub parent_reference: Option<ItemReference>,
    /// Where the item opens in OneDrive on the web (asked for the app folder only).
    pub web_url: Option<String>,
}

impl DriveItem {
    pub fn is_folder(&self) -> bool {
        self.folder.is_some()
    }

    pub fn parent_id(&self) -> Option<&str> {
        self.parent_reference.as_ref()?.id.as_deref()
    }

    pub fn quick_xor_hash(&self) -> Option<&str> {
        self.file
            .as_ref()?
            .hashes
            .as_ref()?
            .quick_xor_hash
            .as_deref()
    }
}

/// `parentReference`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemReference {
    pub id: Option<String>,
}

/// The `file` facet.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct FileFacet {
    pub hashes: Option<Hashes>,
}

/// `file.hashes`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Hashes {
    pub quick_xor_hash: Option<String>,
}

/// A page of a collection (children, delta, permissions). `Debug` says only whether each
/// link is there: a nextLink carries a `$skiptoken` and a deltaLink the delta token, which
/// reads the folder's changes from that point (onedrive-graph.md §4).
#[derive(Deserialize)]
pub(crate) struct Page<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
}

impl<T: fmt::Debug> fmt::Debug for Page<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |link: &Option<String>| link.as_ref().map(|_| Redacted);
        f.debug_struct("Page")
            .field("value", &self.value)
            .field("next_link", &redacted(&self.next_link))
            .field("delta_link", &redacted(&self.delta_link))
            .finish()
    }
}

/// Shown in place of a link that carries a token: `[redacted]`, as for a [`SecretString`].
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `POST …/children` for a folder (onedrive-graph.md §2 "Creating folders").
#[derive(Debug, Serialize)]
pub(crate) struct NewFolder<'a> {
    pub name: &'a str,
    pub folder: EmptyObject,
    #[serde(rename = "@microsoft.graph.conflictBehavior")]
    pub conflict_behavior: &'static str,
}

/// `{}`.
#[derive(Debug, Default, Serialize)]
pub(crate) struct EmptyObject {}

/// `PATCH /items/{id}` renaming an item.
#[derive(Debug, Serialize)]
pub(crate) struct Rename<'a> {
    pub name: &'a str,
}

/// The `createUploadSession` body (onedrive-graph.md §3 "Upload sessions").
#[derive(Debug, Serialize)]
pub(crate) struct SessionRequest {
    pub item: SessionItem,
}

/// Its `item`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionItem {
    #[serde(rename = "@microsoft.graph.conflictBehavior")]
    pub conflict_behavior: &'static str,
    /// Lets the service refuse with 507 before a byte is sent (onedrive-graph.md §5).
    pub file_size: u64,
}

/// An upload session, as created or as its status. `Debug` (in `upload::session`) shows
/// only the host of `upload_url`, a pre-authenticated URL.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UploadSession {
    pub upload_url: Option<String>,
    #[serde(default)]
    pub next_expected_ranges: Vec<String>,
}

/// The drive resource (`GET /me/drive`).
#[derive(Debug, Deserialize)]
pub(crate) struct Drive {
    pub id: Option<String>,
    pub quota: Option<DriveQuota>,
}

/// `drive.quota` (onedrive-graph.md §5).
#[derive(Debug, Deserialize)]
pub(crate) struct DriveQuota {
    pub total: Option<u64>,
    pub used: Option<u64>,
    pub remaining: Option<u64>,
    pub state: Option<String>,
}

/// `POST /items/{id}/createLink`.
#[derive(Debug, Serialize)]
pub(crate) struct CreateLink {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub scope: &'static str,
}

/// `POST /items/{id}/invite`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Invite<'a> {
    pub recipients: Vec<Recipient<'a>>,
    pub roles: Vec<&'static str>,
    pub require_sign_in: bool,
    pub send_invitation: bool,
}

/// One invitation recipient.
#[derive(Debug, Serialize)]
pub(crate) struct Recipient<'a> {
    pub email: &'a str,
}

/// A permission (a share) on an item.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Permission {
    pub id: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub link: Option<SharingLink>,
    pub granted_to_v2: Option<IdentitySet>,
    pub granted_to: Option<IdentitySet>,
    pub invitation: Option<Invitation>,
}

/// `permission.link`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SharingLink {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub scope: Option<String>,
    /// Secret from the moment it is read: anyone holding an anonymous link can open the
    /// folder, so it never shows in `Debug`.
    pub web_url: Option<SecretString>,
}

/// `permission.invitation`.
#[derive(Debug, Deserialize)]
pub(crate) struct Invitation {
    pub email: Option<String>,
}

/// An identity set (`grantedToV2`).
#[derive(Debug, Deserialize)]
pub(crate) struct IdentitySet {
    pub user: Option<Identity>,
}

/// One identity.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Identity {
    pub display_name: Option<String>,
    pub email: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_do_not_show_in_debug() {
        let page: Page<DriveItem> = serde_json::from_value(serde_json::json!({
            "value": [{"id": "item-1"}],
            "@odata.nextLink": "https://graph.microsoft.com/v1.0/me/drive/root/delta?$skiptoken=next-secret",
            "@odata.deltaLink": "https://graph.microsoft.com/v1.0/me/drive/root/delta?token=delta-secret",
        }))
        .unwrap();
        let shown = format!("{page:?}");
        assert!(!shown.contains("next-secret"), "{shown}");
        assert!(!shown.contains("delta-secret"), "{shown}");
        assert!(shown.contains("next_link: Some([redacted])"), "{shown}");
        assert!(shown.contains("item-1"), "{shown}");
        let last: Page<DriveItem> =
            serde_json::from_value(serde_json::json!({"value": []})).unwrap();
        assert!(format!("{last:?}").contains("delta_link: None"));
    }

    #[test]
    fn a_sharing_link_does_not_show_in_debug() {
        let permission: Permission = serde_json::from_value(serde_json::json!({
            "id": "perm-1",
            "roles": ["read"],
            "link": {"type": "view", "scope": "anonymous", "webUrl": "https://1drv.ms/f/s!anyone-can-open"},
        }))
        .unwrap();
        let shown = format!("{permission:?}");
        assert!(!shown.contains("anyone-can-open"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(permission.link.is_some_and(|l| l.web_url.is_some()));
    }
}
