//! A personal OneDrive as an [`ArchiveSink`], through Microsoft Graph.
//!
//! The archive lives in the app folder (`/me/drive/special/approot`, shown to the user as
//! `Apps/<app name>/`) or in a folder under the drive root. Its root is resolved once; items
//! are then addressed by id, and archive paths resolve through a cache filled by scans and
//! creations, falling back to path addressing (`/items/{root-id}:/{path}:`).
//!
//! Requests per operation, in the steady state: a folder creation is one `POST`; a file up
//! to the simple-upload cutoff is one `PUT`; a larger file is one `POST` plus one `PUT` per
//! fragment; a scan with a cursor and nothing new is one delta `GET`; the first scan is one
//! `GET` of the root plus one per delta page.
//!
//! ```no_run
//! # async fn demo() -> receipt_sync::Result<()> {
//! use receipt_sync::auth::StaticToken;
//! use receipt_sync::sink::{ArchiveSink, onedrive::OneDriveSink};
//! use std::sync::Arc;
//! let sink = OneDriveSink::builder(Arc::new(StaticToken::new("token"))).build()?;
//! let quota = sink.quota().await?;
//! # Ok(()) }
//! ```

mod access;
mod builder;
mod cache;
mod client;
#[cfg(feature = "testkit")]
pub(crate) mod decode;
mod delta;
mod error;
mod model;
mod quickxor;
mod request;
mod resolve;
mod share;
mod upload;

pub use access::{ArchiveAccess, is_app_folder_refusal, is_sharing_refusal};
pub use builder::{
    DEFAULT_APP_NAME, DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT, DEFAULT_FRAGMENT_SIZE,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, DEFAULT_SIMPLE_UPLOAD_CUTOFF, FRAGMENT_UNIT,
    MAX_FRAGMENT_SIZE, OneDriveRoot, OneDriveSinkBuilder,
};
pub use error::SERVICE;
pub use quickxor::QuickXorHash;
pub use share::{Share, ShareKind};

use self::cache::FolderCache;
use self::request::{Failure, GraphClient};
use super::{ArchiveSink, Quota, SinkCapabilities};
use crate::auth::AccessTokenProvider;
use crate::error::{Error, Result};
use crate::model::{ArchivePath, Body, ScanCursor, ScanUpdate, SinkEntry, SinkItemId};
use async_trait::async_trait;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Everything a built sink is made of.
pub(crate) struct Settings {
    pub client: GraphClient,
    pub root: OneDriveRoot,
    pub root_prefix_len: usize,
    pub simple_upload_cutoff: u64,
    pub fragment_size: u64,
    pub use_delta: bool,
    pub paging: crate::http::PagingLimits,
}

/// A OneDrive archive; cheap to clone (clones share the connection pool, the root, the
/// folder cache and the throttling pause).
#[derive(Clone)]
pub struct OneDriveSink {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    root_id: tokio::sync::Mutex<Option<String>>,
    cache: Mutex<FolderCache>,
}

impl fmt::Debug for OneDriveSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneDriveSink")
            .field("root", &self.inner.settings.root)
            .field("use_delta", &self.inner.settings.use_delta)
            .finish_non_exhaustive()
    }
}

impl OneDriveSink {
    /// A builder, with the token provider that signs Graph requests.
    pub fn builder(tokens: Arc<dyn AccessTokenProvider>) -> OneDriveSinkBuilder {
        OneDriveSinkBuilder::new(tokens)
    }

    pub(crate) fn from_parts(settings: Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                root_id: tokio::sync::Mutex::new(None),
                cache: Mutex::new(FolderCache::default()),
            }),
        }
    }

    pub(crate) fn client(&self) -> &GraphClient {
        &self.inner.settings.client
    }

    fn cache(&self) -> MutexGuard<'_, FolderCache> {
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn app_folder(&self) -> bool {
        self.client().app_folder
    }

    /// A full enumeration, from a 410's `Location` (which belongs to the feed of the
    /// cursor's root) or from the configured root.
    async fn scan_full(&self, resync: Option<(String, String)>) -> Result<ScanUpdate> {
        let (root, start) = match resync {
            Some((root, location)) => (root, Some(location)),
            None => (self.root().await?, None),
        };
        let (entries, link) =
            delta::full(self.client(), &root, start, self.inner.settings.paging).await?;
        Ok(ScanUpdate::Full {
            entries,
            cursor: Some(delta::encode_cursor(&root, &link)),
        })
    }

    async fn scan_inner(&self, cursor: Option<&ScanCursor>) -> Result<ScanUpdate> {
        if !self.inner.settings.use_delta {
            let root = self.root().await?;
            let entries = delta::list_all(self.client(), &root, self.inner.settings.paging).await?;
            return Ok(ScanUpdate::Full {
                entries,
                cursor: None,
            });
        }
        let Some((root, link)) = cursor.and_then(delta::decode_cursor) else {
            return self.scan_full(None).await;
        };
        // The cursor carries the root's id, so a scan with nothing new is one request. It is
        // trusted for reading this feed only: writes still resolve the configured root.
        let paging = self.inner.settings.paging;
        let followed = delta::follow(self.client(), &root, link, paging, |id| {
            self.cache().is_known_folder(id)
        })
        .await?;
        match followed {
            delta::Followed::Changes(changes, next) => Ok(ScanUpdate::Changes {
                changes,
                cursor: delta::encode_cursor(&root, &next),
            }),
            delta::Followed::Resync(Some(location)) => self.scan_full(Some((root, location))).await,
            delta::Followed::Resync(None) => {
                self.forget_root().await;
                self.scan_full(None).await
            }
        }
    }
}

#[async_trait]
impl ArchiveSink for OneDriveSink {
    fn capabilities(&self) -> SinkCapabilities {
        SinkCapabilities {
            stable_ids: true,
            delta: self.inner.settings.use_delta,
            quota: true,
            resumable_upload: true,
            case_insensitive: true,
            max_name_len: 255,
            max_path_len: 400,
            root_prefix_len: self.inner.settings.root_prefix_len,
            replace: true,
        }
    }

    async fn scan(&self, cursor: Option<&ScanCursor>) -> Result<ScanUpdate> {
        let update = self.scan_inner(cursor).await?;
        self.cache().learn(&update);
        Ok(update)
    }

    async fn create_folder(&self, path: &ArchivePath) -> Result<SinkEntry> {
        let parent_path = path.parent();
        let parent = self.folder_id(parent_path.as_ref()).await?;
        let root = self.root().await?;
        let name = path.file_name();
        let item = match self.client().create_folder(&parent, name).await {
            Ok(item) => item,
            // Already there: fine if it is a folder (onedrive-graph.md §2, conflictBehavior fail).
            Err(Failure::Graph(g)) if g.status.as_u16() == 409 => {
                let existing = self
                    .client()
                    .get_by_path(&parent, name)
                    .await
                    .map_err(|f| f.into_error("look up an existing folder", self.app_folder()))?;
                if !existing.is_folder() {
                    return Err(Error::AlreadyExists {
                        what: format!("a file at {path}"),
                    });
                }
                existing
            }
            Err(f) => {
                let error = f.into_error("create a folder", self.app_folder());
                if matches!(error, Error::NotFound { .. }) {
                    self.forget_parent(parent_path.as_ref()).await;
                }
                return Err(error);
            }
        };
        let entry = self.entry(&item, &parent, &root, name)?;
        self.cache().insert(path, entry.id.as_str());
        Ok(entry)
    }

    async fn write_file(&self, path: &ArchivePath, body: Body) -> Result<SinkEntry> {
        let parent_path = path.parent();
        let parent = self.folder_id(parent_path.as_ref()).await?;
        let root = self.root().await?;
        let name = path.file_name();
        let settings = &self.inner.settings;
        let result = if body.len() <= settings.simple_upload_cutoff {
            upload::simple(self.client(), &parent, name, body, path.as_str()).await
        } else {
            upload::session(
                self.client(),
                settings.fragment_size,
                &parent,
                name,
                body,
                path.as_str(),
            )
            .await
        };
        let uploaded = match result {
            Ok(uploaded) => uploaded,
            Err(error) => {
                if matches!(error, Error::NotFound { .. }) {
                    self.forget_parent(parent_path.as_ref()).await;
                }
                return Err(error);
            }
        };
        upload::verify(self.client(), &uploaded, path.as_str()).await?;
        self.entry(&uploaded.item, &parent, &root, name)
    }

    async fn replace_file(
        &self,
        id: &SinkItemId,
        path: &ArchivePath,
        body: Body,
    ) -> Result<SinkEntry> {
        let parent_path = path.parent();
        let parent = self.folder_id(parent_path.as_ref()).await?;
        let root = self.root().await?;
        let name = path.file_name();
        if body.len() > self.inner.settings.simple_upload_cutoff {
            return Err(Error::Rejected {
                service: "onedrive",
                operation: format!("replace {path}"),
                message: "only a small file is replaced, in one request".into(),
            });
        }
        // One request (the index is small), by id: the caller's scan shows `id` at
        // `path`, its own file, unchanged since it wrote it.
        let uploaded =
            upload::simple_replace(self.client(), id.as_str(), body, path.as_str()).await?;
        if uploaded.item.name.as_deref() != Some(name) {
            tracing::warn!(%path, "the replaced index had been renamed since the last scan");
        }
        upload::verify(self.client(), &uploaded, path.as_str()).await?;
        self.entry(&uploaded.item, &parent, &root, name)
    }

    async fn rename_folder(
        &self,
        id: &SinkItemId,
        path: &ArchivePath,
        new_name: &str,
    ) -> Result<SinkEntry> {
        let root = self.root().await?;
        let item = self
            .client()
            .rename(id.as_str(), new_name)
            .await
            .map_err(|f| f.into_error("rename a folder", self.app_folder()))?;
        let parent = match item.parent_id() {
            Some(p) => p.to_owned(),
            None => match path.parent() {
                Some(p) => self.folder_id(Some(&p)).await?,
                None => root.clone(),
            },
        };
        let entry = self.entry(&item, &parent, &root, new_name)?;
        let mut cache = self.cache();
        cache.forget(path);
        let new_path = match path.parent() {
            Some(p) => p.join(&entry.name),
            None => ArchivePath::parse(entry.name.clone()),
        };
        if let Ok(new_path) = new_path {
            cache.insert(&new_path, id.as_str());
        }
        Ok(entry)
    }

    async fn quota(&self) -> Result<Option<Quota>> {
        Ok(quota_of(self.client().get_drive().await?))
    }
}

/// The drive's space, when Graph reports a total (pure).
pub(crate) fn quota_of(drive: model::Drive) -> Option<Quota> {
    let quota = drive.quota?;
    let total = quota.total?;
    let used = quota.used.unwrap_or(0);
    if let Some(state) = quota.state.as_deref()
        && state != "normal"
    {
        tracing::warn!(state, "the OneDrive is filling up");
    }
    Some(Quota {
        total,
        used,
        // How the fields add up is not documented (onedrive-graph.md §12.12): trust
        // `remaining` when sent.
        remaining: quota.remaining.unwrap_or(total.saturating_sub(used)),
    })
}
