//! What a bearer token may do, when the fake shares a token registry with a fake identity
//! ([`FakeIdentity::token_scopes`](crate::testkit::fake_identity::FakeIdentity::token_scopes)).
//!
//! - Sharing (`createLink`, `invite`) needs `Files.ReadWrite` on personal accounts: the
//!   app-folder scope is not among the permissions the Graph pages of both endpoints list
//!   (<https://learn.microsoft.com/en-us/graph/api/driveitem-createlink>).
//! - The 2026 refusal, when switched on: a token whose only file scope is
//!   `Files.ReadWrite.AppFolder` gets 403 `accessDenied` on every drive call, until a token
//!   carrying `Files.ReadWrite` has been used once; from then on the app is repaired, as
//!   reported in OneDrive/onedrive-api-docs #1929 and #1930 (onedrive-graph.md §0, §9, §12.2).

use super::State;
use super::drive::DriveError;
use super::json;
use super::route::{Action, Parsed, Target};
use crate::testkit::fake_identity::TokenScopes;
use crate::testkit::server::{FakeRequest, FakeResponse};

/// The registry and the switch.
#[derive(Default)]
pub(crate) struct ScopeRules {
    /// The scopes of each bearer token; `None`: the fake does not look at scopes.
    pub registry: Option<TokenScopes>,
    /// Whether app-folder-only tokens are refused on every drive call.
    pub refuse_app_folder_only: bool,
    /// Whether a token with `Files.ReadWrite` has been seen (the one-time repair).
    pub repaired: bool,
    /// Requests refused for the 2026 fault so far.
    pub refused: u64,
}

/// The file access a token's scopes give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileAccess {
    /// `Files.ReadWrite` or `Files.ReadWrite.All` (the app folder comes with them).
    AllFiles,
    /// `Files.ReadWrite.AppFolder` and no broader file scope.
    AppFolderOnly,
    /// No file scope the fake knows.
    None,
}

fn file_access(scopes: &[String]) -> FileAccess {
    let has = |wanted: &str| {
        scopes.iter().any(|granted| {
            let bare = granted.rsplit('/').next().unwrap_or(granted);
            bare.eq_ignore_ascii_case(wanted)
        })
    };
    if has("Files.ReadWrite") || has("Files.ReadWrite.All") {
        FileAccess::AllFiles
    } else if has("Files.ReadWrite.AppFolder") {
        FileAccess::AppFolderOnly
    } else {
        FileAccess::None
    }
}

/// The 403 of both refusals, shaped as #1930 quotes it (`accessDenied`, "Access denied").
fn access_denied() -> FakeResponse {
    json::error(&DriveError::new(403, "accessDenied", "Access denied"))
}

/// Refuses the request when the token's scopes do not allow it; `None` lets it through.
/// Tokens the registry does not know are let through (other checks judge them).
pub(crate) fn check(
    state: &mut State,
    parsed: &Parsed,
    request: &FakeRequest,
) -> Option<FakeResponse> {
    let rules = &mut state.scope_rules;
    let registry = rules.registry.as_ref()?;
    let token = request
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)?;
    let access = file_access(&registry(token)?);
    if access == FileAccess::AllFiles {
        rules.repaired = true;
        return None;
    }
    if access == FileAccess::AppFolderOnly && rules.refuse_app_folder_only && !rules.repaired {
        rules.refused += 1;
        return Some(access_denied());
    }
    let sharing = matches!(
        &parsed.target,
        Target::Item {
            action: Action::CreateLink | Action::Invite,
            ..
        }
    );
    sharing.then(access_denied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_file_access_from_scopes() {
        let of = |scopes: &[&str]| {
            file_access(&scopes.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(
            of(&["Files.ReadWrite.AppFolder", "offline_access"]),
            FileAccess::AppFolderOnly
        );
        assert_eq!(
            of(&[
                "https://graph.microsoft.com/Files.ReadWrite",
                "Files.ReadWrite.AppFolder"
            ]),
            FileAccess::AllFiles
        );
        assert_eq!(of(&["offline_access"]), FileAccess::None);
    }
}
