//! One function per Graph endpoint the sink uses, on top of the request loop in
//! [`super::request`].

use super::model::{self, DriveItem, ITEM_SELECT, Page};
use super::request::{
    Failure, Fixed, GraphClient, encode_path, encode_segment, json_body, parse_json,
};
use crate::error::Result;
use reqwest::Method;
use serde::de::DeserializeOwned;

impl GraphClient {
    /// `GET /me/drive/special/approot` (onedrive-graph.md §2: the alias creates the folder
    /// on first access; `approot` is case-sensitive).
    /// `webUrl` comes too: the folder's web address, the only reliable way to show the
    /// user where it is, since the `Apps` folder's name is localized.
    pub async fn get_approot(&self) -> Result<DriveItem> {
        let url = format!(
            "{}/special/approot?$select={ITEM_SELECT},webUrl",
            self.drive
        );
        self.get_json("resolve the app folder", &url).await
    }

    /// `GET /me/drive/root:/{path}:`.
    pub async fn get_by_root_path(&self, path: &str) -> Result<DriveItem, Failure> {
        let url = format!(
            "{}/root:/{}:?$select={ITEM_SELECT}",
            self.drive,
            encode_path(path)
        );
        self.get_json_failure("look up the root folder", &url).await
    }

    /// `GET /items/{root-id}:/{path}:` (path addressing, onedrive-graph.md §2).
    pub async fn get_by_path(&self, root_id: &str, path: &str) -> Result<DriveItem, Failure> {
        let url = format!(
            "{}/items/{}:/{}:?$select={ITEM_SELECT}",
            self.drive,
            encode_segment(root_id),
            encode_path(path)
        );
        self.get_json_failure("look up an item by path", &url).await
    }

    /// `POST /items/{parent-id}/children` with conflictBehavior `fail`, so an existing name
    /// is a 409 instead of a silent "name 1" (onedrive-graph.md §2 "Creating folders").
    pub async fn create_folder(&self, parent_id: &str, name: &str) -> Result<DriveItem, Failure> {
        let url = format!(
            "{}/items/{}/children?$select={ITEM_SELECT}",
            self.drive,
            encode_segment(parent_id)
        );
        let mut body = json_body(&model::NewFolder {
            name,
            folder: model::EmptyObject {},
            conflict_behavior: "fail",
        })?;
        let response = self
            .call("create a folder", Method::POST, &url, &mut body)
            .await?;
        Ok(parse_json("create a folder", &response)?)
    }

    /// `PATCH /items/{id}` with a new name.
    pub async fn rename(&self, id: &str, name: &str) -> Result<DriveItem, Failure> {
        let url = format!(
            "{}/items/{}?$select={ITEM_SELECT}",
            self.drive,
            encode_segment(id)
        );
        let mut body = json_body(&model::Rename { name })?;
        let response = self
            .call("rename a folder", Method::PATCH, &url, &mut body)
            .await?;
        Ok(parse_json("rename a folder", &response)?)
    }

    /// `DELETE /items/{id}`; an item already gone counts as deleted.
    pub async fn delete_item(&self, id: &str) -> Result<()> {
        let url = format!("{}/items/{}", self.drive, encode_segment(id));
        match self
            .call("delete an item", Method::DELETE, &url, &mut Fixed(None))
            .await
        {
            Ok(_) => Ok(()),
            Err(f) if f.status() == Some(404) => Ok(()),
            Err(f) => Err(f.into_error("delete an item", self.app_folder)),
        }
    }

    /// The URL of a simple upload that replaces the content of the file `item_id`:
    /// `PUT /items/{item-id}/content` (onedrive-graph.md §3, a replacement by id, so
    /// it never creates a file, and a file gone since answers 404). Only ever used
    /// for a file the sync knows is its own.
    pub fn replace_content_url(&self, item_id: &str) -> String {
        format!(
            "{}/items/{}/content?$select={ITEM_SELECT}",
            self.drive,
            encode_segment(item_id)
        )
    }

    /// The URL of a simple upload that never overwrites: `PUT /items/{parent-id}:/{name}:/content`
    /// with conflictBehavior `fail`, since PUT's default is `replace` (onedrive-graph.md §3).
    pub fn simple_upload_url(&self, parent_id: &str, name: &str) -> String {
        format!(
            "{}/items/{}:/{}:/content?@microsoft.graph.conflictBehavior=fail&$select={ITEM_SELECT}",
            self.drive,
            encode_segment(parent_id),
            encode_segment(name)
        )
    }

    /// `POST /items/{parent-id}:/{name}:/createUploadSession`, conflictBehavior `fail` set
    /// explicitly since its default is disputed (onedrive-graph.md §3, §12.6), and `fileSize`
    /// so a full drive answers 507 before a byte is sent (§5).
    pub async fn create_upload_session(
        &self,
        parent_id: &str,
        name: &str,
        size: u64,
    ) -> Result<model::UploadSession, Failure> {
        let url = format!(
            "{}/items/{}:/{}:/createUploadSession",
            self.drive,
            encode_segment(parent_id),
            encode_segment(name)
        );
        let mut body = json_body(&model::SessionRequest {
            item: model::SessionItem {
                conflict_behavior: "fail",
                file_size: size,
            },
        })?;
        let response = self
            .call("create an upload session", Method::POST, &url, &mut body)
            .await?;
        Ok(parse_json("create an upload session", &response)?)
    }

    /// The first delta URL for a folder, asking only for the fields used.
    pub fn delta_url(&self, folder_id: &str) -> String {
        format!(
            "{}/items/{}/delta?$select={ITEM_SELECT}",
            self.drive,
            encode_segment(folder_id)
        )
    }

    /// One delta page (`GET` of a delta URL, nextLink or deltaLink, verbatim); a 410
    /// comes back as a [`Failure`] whose error holds the `Location` to resync from.
    pub async fn delta_page(&self, url: &str) -> Result<Page<DriveItem>, Failure> {
        self.get_json_failure("read changes", url).await
    }

    /// The first children page of a folder (`$top=1000`, as rclone asks, onedrive-graph.md §2).
    pub fn children_url(&self, folder_id: &str) -> String {
        format!(
            "{}/items/{}/children?$top=1000&$select={ITEM_SELECT}",
            self.drive,
            encode_segment(folder_id)
        )
    }

    /// One children page.
    pub async fn children_page(&self, url: &str) -> Result<Page<DriveItem>> {
        self.get_json("list a folder", url).await
    }

    /// `GET /me/drive` for its quota (onedrive-graph.md §5).
    pub async fn get_drive(&self) -> Result<model::Drive> {
        let url = format!("{}?$select=id,driveType,quota", self.drive);
        self.get_json("read the quota", &url).await
    }

    /// `POST /items/{id}/{action}` with a JSON body, for the sharing endpoints.
    pub async fn post_item_action<T: DeserializeOwned>(
        &self,
        operation: &str,
        id: &str,
        action: &str,
        body: &impl serde::Serialize,
    ) -> Result<T> {
        let url = format!("{}/items/{}/{action}", self.drive, encode_segment(id));
        let mut body = json_body(body)?;
        let response = self
            .call(operation, Method::POST, &url, &mut body)
            .await
            .map_err(|f| f.into_error(operation, self.app_folder))?;
        parse_json(operation, &response)
    }

    /// The first page of `GET /items/{id}/permissions`.
    pub fn permissions_url(&self, id: &str) -> String {
        format!("{}/items/{}/permissions", self.drive, encode_segment(id))
    }

    /// One permissions page (the first, or one an `@odata.nextLink` points to).
    pub async fn permissions_page(&self, url: &str) -> Result<Page<model::Permission>> {
        self.get_json("list shares", url).await
    }

    /// `DELETE /items/{id}/permissions/{perm-id}`.
    pub async fn delete_permission(&self, id: &str, permission_id: &str) -> Result<()> {
        let url = format!(
            "{}/items/{}/permissions/{}",
            self.drive,
            encode_segment(id),
            encode_segment(permission_id)
        );
        self.call("remove a share", Method::DELETE, &url, &mut Fixed(None))
            .await
            .map_err(|f| f.into_error("remove a share", self.app_folder))?;
        Ok(())
    }

    async fn get_json<T: DeserializeOwned>(&self, operation: &str, url: &str) -> Result<T> {
        self.get_json_failure(operation, url)
            .await
            .map_err(|f| f.into_error(operation, self.app_folder))
    }

    async fn get_json_failure<T: DeserializeOwned>(
        &self,
        operation: &str,
        url: &str,
    ) -> Result<T, Failure> {
        let response = self
            .call(operation, Method::GET, url, &mut Fixed(None))
            .await?;
        Ok(parse_json(operation, &response)?)
    }
}
