//! Sharing archive folders: a view-only link, an invitation to an e-mail address, listing and
//! removing shares. These are [`OneDriveSink`] methods, not part of [`crate::sink::ArchiveSink`].
//!
//! Endpoints: `POST /items/{id}/createLink`, `POST /items/{id}/invite`,
//! `GET /items/{id}/permissions` (paged by `@odata.nextLink`, followed under the sink's
//! paging limits as every listing is), `DELETE /items/{id}/permissions/{perm-id}`
//! (<https://learn.microsoft.com/en-us/graph/api/driveitem-createlink>,
//! <https://learn.microsoft.com/en-us/graph/api/driveitem-invite>).

use super::OneDriveSink;
use super::delta::LinkWalk;
use super::error::{SERVICE, malformed};
use super::model::{self, Page, Permission};
use crate::auth::SecretString;
use crate::error::{Error, Result};
use crate::model::SinkItemId;

/// One share (a Graph permission) on an item.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Share {
    /// The permission id, for [`OneDriveSink::remove_share`].
    pub id: String,
    /// The roles granted, such as `read` or `write` (`owner` for the owner's own entry).
    pub roles: Vec<String>,
    /// Who the share is for.
    pub kind: ShareKind,
}

/// Who a [`Share`] is for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShareKind {
    /// A sharing link.
    Link {
        /// `view`, `edit`, …
        link_type: String,
        /// `anonymous`, `organization`, `users`.
        scope: String,
        /// The link itself: anyone holding an anonymous link can open the folder, so it is
        /// kept secret (redacted in `Debug`).
        url: Option<SecretString>,
    },
    /// A person (an invitation or a direct grant).
    Person {
        /// Their e-mail address, when Graph says.
        email: Option<String>,
        /// Their display name, when Graph says.
        name: Option<String>,
    },
    /// Something else (the owner's own entry, an inherited grant…).
    Other,
}

impl OneDriveSink {
    /// Shares the folder `id` by a view-only link that anyone holding it can open
    /// (`{"type":"view","scope":"anonymous"}`).
    ///
    /// # Errors
    /// [`Error::NotFound`] if the item is gone; [`Error::Forbidden`] if the account may not
    /// create anonymous links.
    pub async fn share_link(&self, id: &SinkItemId) -> Result<Share> {
        let body = model::CreateLink {
            kind: "view",
            scope: "anonymous",
        };
        let permission: Permission = self
            .client()
            .post_item_action("create a sharing link", id.as_str(), "createLink", &body)
            .await?;
        to_share(permission)
    }

    /// Invites `email` to read the folder `id`; they must sign in, and get an e-mail.
    ///
    /// # Errors
    /// [`Error::Rejected`] for an address Graph refuses (or one without `@`).
    pub async fn invite(&self, id: &SinkItemId, email: &str) -> Result<Vec<Share>> {
        let email = email.trim();
        if !email.contains('@') {
            return Err(Error::Rejected {
                service: SERVICE,
                operation: "invite to a folder".into(),
                message: "not an e-mail address".into(),
            });
        }
        let body = model::Invite {
            recipients: vec![model::Recipient { email }],
            roles: vec!["read"],
            require_sign_in: true,
            send_invitation: true,
        };
        let page: Page<Permission> = self
            .client()
            .post_item_action("invite to a folder", id.as_str(), "invite", &body)
            .await?;
        page.value.into_iter().map(to_share).collect()
    }

    /// The shares on item `id`, the owner's own entry included, from every page of the
    /// listing (Graph pages a long list of permissions with `@odata.nextLink`).
    ///
    /// # Errors
    /// [`Error::Malformed`] at `@odata.nextLink` when a page leads back to one already read
    /// or the listing passes the sink's [`PagingLimits`](crate::http::PagingLimits)
    /// ([`with_paging_limits`](super::OneDriveSinkBuilder::with_paging_limits)): a list
    /// cut short would hide a share that is still open.
    pub async fn shares(&self, id: &SinkItemId) -> Result<Vec<Share>> {
        let client = self.client();
        let mut walk = LinkWalk::new(self.inner.settings.paging);
        let mut shares = Vec::new();
        let mut next = Some(client.permissions_url(id.as_str()));
        while let Some(url) = next {
            walk.visit(&url)?;
            let page = client.permissions_page(&url).await?;
            walk.read(page.value.len())?;
            for permission in page.value {
                shares.push(to_share(permission)?);
            }
            next = page.next_link;
        }
        Ok(shares)
    }

    /// Removes the share `share_id` from item `id`.
    pub async fn remove_share(&self, id: &SinkItemId, share_id: &str) -> Result<()> {
        self.client().delete_permission(id.as_str(), share_id).await
    }
}

fn to_share(permission: Permission) -> Result<Share> {
    let id = permission
        .id
        .ok_or_else(|| malformed("permission.id", "missing"))?;
    let kind = if let Some(link) = permission.link {
        ShareKind::Link {
            link_type: link.kind.unwrap_or_default(),
            scope: link.scope.unwrap_or_default(),
            url: link.web_url,
        }
    } else if let Some(user) = permission
        .granted_to_v2
        .or(permission.granted_to)
        .and_then(|g| g.user)
    {
        ShareKind::Person {
            email: user.email,
            name: user.display_name,
        }
    } else if let Some(invitation) = permission.invitation {
        ShareKind::Person {
            email: invitation.email,
            name: None,
        }
    } else {
        ShareKind::Other
    };
    Ok(Share {
        id,
        roles: permission.roles,
        kind,
    })
}
