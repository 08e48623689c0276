//! [`OneDriveSink::check_access`]: whether a fresh sign-in can actually reach the archive,
//! before anyone is told "signed in".
//!
//! A sign-in can succeed and still be useless: since August 2026 Graph answers 403
//! `accessDenied` on every drive call to some apps whose only file scope is
//! `Files.ReadWrite.AppFolder` (onedrive-graph.md §0, §9, §12.2). Reading the archive root
//! and the quota once shows it at once, with the error [`is_app_folder_refusal`] recognises.

use super::error::{APP_FOLDER_REFUSAL, SERVICE, malformed};
use super::{OneDriveRoot, OneDriveSink, quota_of};
use crate::error::{Error, Result};
use crate::model::SinkItemId;
use crate::sink::Quota;

/// What [`OneDriveSink::check_access`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArchiveAccess {
    /// The archive root's id.
    pub root: SinkItemId,
    /// Where the archive root opens in OneDrive on the web (its `webUrl`), when Graph
    /// says. For the app folder this is the only reliable pointer: OneDrive shows `Apps`
    /// in the user's language (`Applications`, `Aplicativos`, …).
    pub web_url: Option<String>,
    /// The drive's space, when Graph reports it.
    pub quota: Option<Quota>,
}

impl OneDriveSink {
    /// Reads the archive root (creating the app folder on first access, as
    /// `GET /me/drive/special/approot` does) and the drive's quota: two requests that
    /// prove the sign-in can reach the archive.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when Graph refuses (see [`is_app_folder_refusal`] for the 2026
    /// AppFolder fault); what the token provider returns when not signed in or when consent
    /// was withdrawn; [`Error::Config`] when the configured root is a file.
    pub async fn check_access(&self) -> Result<ArchiveAccess> {
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
        let quota = quota_of(self.client().get_drive().await?);
        Ok(ArchiveAccess {
            root: SinkItemId::new(id),
            web_url: item.web_url,
            quota,
        })
    }
}

/// Whether `error` is the 2026 refusal of a OneDrive sink rooted in the app folder: a 403
/// `accessDenied`/`serviceReadOnly`, which one sign-in granting `Files.ReadWrite` repairs
/// (OneDrive/onedrive-api-docs #1929, #1930; onedrive-graph.md §0, §9, §12.2).
///
/// A refusal of sharing is not one of these: sharing needs `Files.ReadWrite` whatever
/// the fault (see [`is_sharing_refusal`]).
pub fn is_app_folder_refusal(error: &Error) -> bool {
    matches!(error, Error::Forbidden { service, detail }
        if *service == SERVICE && detail.ends_with(APP_FOLDER_REFUSAL))
}

/// Whether `error` is a refusal to share (`createLink`, `invite`), which on personal
/// accounts needs the `Files.ReadWrite` permission: `Files.ReadWrite.AppFolder` is not
/// enough (<https://learn.microsoft.com/en-us/graph/api/driveitem-createlink>).
pub fn is_sharing_refusal(error: &Error) -> bool {
    matches!(error, Error::Forbidden { service, detail }
        if *service == SERVICE && detail.ends_with(super::error::SHARING_NEEDS_FILES_READWRITE))
}
