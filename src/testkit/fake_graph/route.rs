//! Parsing Graph request paths: the API prefix, the drive, the item addressed (by id, by
//! path under an item, the root or the app folder) and the action.

use super::drive::DriveError;
use crate::testkit::server::percent_decode as decode;

/// The item a request addresses, before a `:/path:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Base {
    Id(String),
    Root,
    AppRoot,
}

/// What is done to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Item,
    Children,
    Content,
    Delta,
    CreateUploadSession,
    CreateLink,
    Invite,
    Permissions,
    Permission(String),
}

/// A parsed API path.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// `/me/drive` itself.
    Drive,
    Item {
        base: Base,
        /// The decoded names of a `:/a/b:` path, if any.
        path: Option<Vec<String>>,
        action: Action,
    },
}

/// A request path: `prefix` is the raw part up to the drive (`/v1.0/me/drive`), kept to
/// build links in the same form.
#[derive(Clone, Debug)]
pub(crate) struct Parsed {
    pub prefix: String,
    pub target: Target,
}

impl Parsed {
    /// The route a request counts under, with ids and paths replaced by placeholders.
    pub fn label(&self) -> String {
        match &self.target {
            Target::Drive => "/drive".to_owned(),
            Target::Item { base, path, action } => {
                let mut out = match base {
                    Base::Id(_) => "/items/{id}".to_owned(),
                    Base::Root => "/root".to_owned(),
                    Base::AppRoot => "/special/approot".to_owned(),
                };
                if path.is_some() {
                    out.push_str(":/{path}:");
                }
                out.push_str(match action {
                    Action::Item => "",
                    Action::Children => "/children",
                    Action::Content => "/content",
                    Action::Delta => "/delta",
                    Action::CreateUploadSession => "/createUploadSession",
                    Action::CreateLink => "/createLink",
                    Action::Invite => "/invite",
                    Action::Permissions => "/permissions",
                    Action::Permission(_) => "/permissions/{perm}",
                });
                out
            }
        }
    }
}

fn bad(message: &str) -> DriveError {
    DriveError::new(400, "invalidRequest", message)
}

/// Parses a raw (still percent-encoded) request path for the drive `drive_id`.
pub(crate) fn parse(raw: &str, drive_id: &str) -> Result<Parsed, DriveError> {
    let not_found = || DriveError::new(404, "itemNotFound", "API not found");
    let after_version = ["/v1.0", "/_api/v2.0", "/v2.0"]
        .iter()
        .find_map(|v| raw.strip_prefix(v))
        .ok_or_else(not_found)?;
    let (rest, drive_len) = if let Some(rest) = after_version.strip_prefix("/me/drive") {
        (rest, "/me/drive".len())
    } else if let Some(after) = after_version.strip_prefix("/drives/") {
        let end = after.find('/').unwrap_or(after.len());
        if !decode(&after[..end]).eq_ignore_ascii_case(drive_id) {
            return Err(not_found());
        }
        (&after[end..], "/drives/".len() + end)
    } else {
        return Err(not_found());
    };
    let prefix = raw[..raw.len() - after_version.len() + drive_len].to_owned();
    if rest.is_empty() || rest == "/" {
        return Ok(Parsed {
            prefix,
            target: Target::Drive,
        });
    }
    let (base, rest) = if let Some(after) = rest.strip_prefix("/items/") {
        let end = after.find(['/', ':']).unwrap_or(after.len());
        (Base::Id(decode(&after[..end])), &after[end..])
    } else if let Some(after) = rest.strip_prefix("/root") {
        (Base::Root, after)
    } else if let Some(after) = rest.strip_prefix("/special/approot") {
        // `approot` is case-sensitive (onedrive-graph.md §2).
        (Base::AppRoot, after)
    } else {
        return Err(not_found());
    };
    let (path, tail) = match rest.strip_prefix(':') {
        Some(after) => {
            let (raw_path, tail) = match after.find(':') {
                Some(i) => (&after[..i], &after[i + 1..]),
                None => (after, ""),
            };
            // Some clients send the whole path as one %2F-encoded segment: decode first.
            let decoded = decode(raw_path);
            let trimmed = decoded.strip_prefix('/').unwrap_or(&decoded);
            if trimmed.is_empty() {
                (None, tail)
            } else {
                let names: Vec<String> = trimmed.split('/').map(str::to_owned).collect();
                if names.iter().any(String::is_empty) {
                    return Err(bad("The path has an empty name or a trailing '/'."));
                }
                (Some(names), tail)
            }
        }
        None => (None, rest),
    };
    let action = match tail {
        "" | "/" => Action::Item,
        "/children" => Action::Children,
        "/content" => Action::Content,
        "/delta" => Action::Delta,
        "/createUploadSession" => Action::CreateUploadSession,
        "/createLink" => Action::CreateLink,
        "/invite" => Action::Invite,
        "/permissions" => Action::Permissions,
        other => match other.strip_prefix("/permissions/") {
            Some(id) if !id.is_empty() && !id.contains('/') => Action::Permission(decode(id)),
            _ => return Err(not_found()),
        },
    };
    Ok(Parsed {
        prefix,
        target: Target::Item { base, path, action },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_addressing_form() {
        let p = parse("/v1.0/me/drive/items/A!1:/x%20y/b%3Ac.pdf:/content", "d").unwrap();
        assert_eq!(p.prefix, "/v1.0/me/drive");
        assert_eq!(p.label(), "/items/{id}:/{path}:/content");
        let Target::Item { base, path, action } = p.target else {
            panic!()
        };
        assert_eq!(base, Base::Id("A!1".into()));
        assert_eq!(path.unwrap(), ["x y", "b:c.pdf"]);
        assert_eq!(action, Action::Content);
        let p = parse("/_api/v2.0/drives/D/root:%2Fdir%2Ff:", "d").unwrap();
        assert_eq!(p.prefix, "/_api/v2.0/drives/D");
        assert_eq!(p.label(), "/root:/{path}:");
        assert!(matches!(
            parse("/v1.0/me/drive", "d").unwrap().target,
            Target::Drive
        ));
        assert!(parse("/v1.0/me/drive/special/AppRoot", "d").is_err());
        assert!(parse("/v1.0/drives/other/root", "d").is_err());
        let p = parse("/v1.0/me/drive/items/X/permissions/p1", "d").unwrap();
        assert_eq!(p.label(), "/items/{id}/permissions/{perm}");
    }
}
