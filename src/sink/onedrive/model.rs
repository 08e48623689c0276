//! Graph's JSON shapes (onedrive-graph.md §10), private to this connector and converted to
//! crate types at the boundary. Every field the service may omit is optional, so an
//! unexpected shape becomes a [`crate::Error::Malformed`] at the point of use, not a panic.

use serde::{Deserialize, Serialize};

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

/// A page of a collection (children, delta, permissions).
#[derive(Debug, Deserialize)]
pub(crate) struct Page<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
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
    pub web_url: Option<String>,
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
