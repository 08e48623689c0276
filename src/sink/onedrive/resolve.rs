//! Finding things: the archive root (resolved once) and folder paths (through the cache,
//! else by path addressing `/items/{root-id}:/{path}:`, onedrive-graph.md §2).

use super::error::malformed;
use super::model::DriveItem;
use super::request::Failure;
use super::{OneDriveRoot, OneDriveSink};
use crate::error::{Error, Result};
use crate::model::{ArchivePath, EntryKind, SinkEntry, SinkItemId};

impl OneDriveSink {
    /// The archive root's id, resolved on first use (`GET /me/drive/special/approot`, which
    /// also creates the app folder, onedrive-graph.md §2).
    pub async fn root_id(&self) -> Result<SinkItemId> {
        self.root().await.map(SinkItemId::new)
    }

    /// The drive's id (`GET /me/drive`, onedrive-graph.md §5): with [`root_id`](Self::root_id),
    /// it names the archive, so a caller can tell one archive from another (another
    /// Microsoft account has another drive; another app registration another app folder).
    pub async fn drive_id(&self) -> Result<String> {
        self.client()
            .get_drive()
            .await?
            .id
            .ok_or_else(|| malformed("drive.id", "missing"))
    }

    pub(super) async fn root(&self) -> Result<String> {
        let mut slot = self.inner.root_id.lock().await;
        if let Some(id) = slot.as_ref() {
            return Ok(id.clone());
        }
        let item = match &self.inner.settings.root {
            OneDriveRoot::AppFolder => self.client().get_approot().await?,
            OneDriveRoot::Folder(path) => self.ensure_root_folder(path).await?,
        };
        if !item.is_folder() {
            return Err(Error::Config(
                "the OneDrive archive root is not a folder".into(),
            ));
        }
        let id = item.id.ok_or_else(|| malformed("root.id", "missing"))?;
        *slot = Some(id.clone());
        Ok(id)
    }

    /// Finds the configured root folder, creating what is missing of its path.
    pub(super) async fn ensure_root_folder(&self, path: &str) -> Result<DriveItem> {
        match self.client().get_by_root_path(path).await {
            Ok(item) => return Ok(item),
            Err(f) if f.status() == Some(404) => {}
            Err(f) => return Err(f.into_error("look up the root folder", self.app_folder())),
        }
        let mut parent = "root".to_owned();
        let mut item = DriveItem::default();
        let mut prefix = String::new();
        for name in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(name);
            item = match self.client().create_folder(&parent, name).await {
                Ok(item) => item,
                Err(f) if f.status() == Some(409) => self
                    .client()
                    .get_by_root_path(&prefix)
                    .await
                    .map_err(|f| f.into_error("look up the root folder", self.app_folder()))?,
                Err(f) => return Err(f.into_error("create the root folder", self.app_folder())),
            };
            parent = item
                .id
                .clone()
                .ok_or_else(|| malformed("root.id", "missing"))?;
        }
        Ok(item)
    }

    pub(super) async fn forget_root(&self) {
        *self.inner.root_id.lock().await = None;
    }

    /// The id of the folder at `path` (`None`: the root).
    pub(super) async fn folder_id(&self, path: Option<&ArchivePath>) -> Result<String> {
        let root = self.root().await?;
        let Some(path) = path else {
            return Ok(root);
        };
        if let Some(id) = self.cache().get(path) {
            return Ok(id);
        }
        let item = self
            .client()
            .get_by_path(&root, path.as_str())
            .await
            .map_err(|f| self.lookup_error(f, path))?;
        if !item.is_folder() {
            return Err(Error::NotFound {
                what: format!("folder {path} (a file has that name)"),
            });
        }
        let id = item.id.ok_or_else(|| malformed("id", "missing"))?;
        self.cache().insert(path, &id);
        Ok(id)
    }

    pub(super) fn lookup_error(&self, failure: Failure, path: &ArchivePath) -> Error {
        match failure.status() {
            Some(404) => Error::NotFound {
                what: format!("folder {path}"),
            },
            _ => failure.into_error("look up a folder", self.app_folder()),
        }
    }

    /// After a NotFound addressed through `parent`: forget what pointed there.
    pub(super) async fn forget_parent(&self, parent: Option<&ArchivePath>) {
        match parent {
            Some(path) => self.cache().forget(path),
            None => self.forget_root().await,
        }
    }

    pub(super) fn entry(
        &self,
        item: &DriveItem,
        parent_id: &str,
        root: &str,
        fallback_name: &str,
    ) -> Result<SinkEntry> {
        let id = item
            .id
            .as_deref()
            .ok_or_else(|| malformed("id", "missing"))?;
        Ok(SinkEntry {
            id: SinkItemId::new(id),
            parent: (parent_id != root).then(|| SinkItemId::new(parent_id)),
            name: item
                .name
                .clone()
                .unwrap_or_else(|| fallback_name.to_owned()),
            kind: if item.is_folder() {
                EntryKind::Folder
            } else {
                EntryKind::File {
                    size: item.size.unwrap_or(0),
                }
            },
        })
    }
}
