//! `share`: a view-only link to an archive folder, or an invitation for a person.
//!
//! Sharing (`createLink`, `invite`) needs Files.ReadWrite on a personal account: the
//! app-folder permission alone is refused, and the error says to run
//! `qonto-onedrive login --grant-files-readwrite` (report.rs). A local archive cannot be
//! shared from here, and a folder that is not in the last sync's snapshot is answered with
//! the folders that are.

use crate::{Cli, output, report};
use receipt_sync::model::{ArchivePath, EntryKind, SinkItemId};
use receipt_sync::sink::onedrive::ShareKind;
use receipt_sync::state::{StateStore, SyncState};
use receipt_sync::{Error, Result};

/// The most folders listed when the one asked for does not exist.
const MAX_LISTED: usize = 20;

pub async fn share(cli: &Cli, folder: &str, email: Option<&str>) -> Result<u8> {
    match share_folder(cli, folder, email).await {
        Ok(shared) => {
            print_shared(cli, &shared);
            Ok(report::OK)
        }
        Err(error) if cli.json => {
            let (code, line) = report::explain(&error);
            output::print(&output::failure("share", code, &error, &line));
            eprintln!("qonto-onedrive: {line}");
            Ok(code)
        }
        Err(error) => Err(error),
    }
}

/// What was shared.
struct Shared {
    path: ArchivePath,
    /// The link, for a link; `None` for an invitation, or when OneDrive sent none.
    link: Option<String>,
    invited: Option<String>,
}

async fn share_folder(cli: &Cli, folder: &str, email: Option<&str>) -> Result<Shared> {
    if let Some(dir) = &cli.env.local {
        return Err(Error::Config(format!(
            "`share` shares OneDrive folders; the archive in {} (--local) is a folder on this \
             machine, which OneDrive cannot share: share it with the tools of the disk it is on",
            dir.display()
        )));
    }
    let path = ArchivePath::parse(folder.trim_matches('/'))
        .map_err(|e| Error::Config(format!("folder {folder:?}: {e}")))?;
    let state = cli.env.state_store()?.load().await?.unwrap_or_default();
    let id = find_folder(&state, &path)?;
    let sink = cli.env.onedrive()?;
    match email {
        Some(email) => {
            sink.invite(&id, email).await?;
            Ok(Shared {
                path,
                link: None,
                invited: Some(email.trim().to_owned()),
            })
        }
        None => {
            let share = sink.share_link(&id).await?;
            let link = match share.kind {
                ShareKind::Link { url: Some(url), .. } => Some(url.expose().to_owned()),
                _ => None,
            };
            Ok(Shared {
                path,
                link,
                invited: None,
            })
        }
    }
}

/// The folder's id in the last sync's snapshot, or an error listing the folders there are.
fn find_folder(state: &SyncState, path: &ArchivePath) -> Result<SinkItemId> {
    match state.snapshot.path_index().get(path) {
        Some((id, EntryKind::Folder)) => Ok(id.clone()),
        Some(_) => Err(Error::Config(format!(
            "{path} is a file; `share` shares a folder, such as its period folder"
        ))),
        None => {
            let folders = known_folders(state);
            let listed = if folders.is_empty() {
                "the archive has no folders yet: run `qonto-onedrive sync` first".to_owned()
            } else {
                let more = folders.len().saturating_sub(MAX_LISTED);
                let mut shown = folders
                    .iter()
                    .take(MAX_LISTED)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                if more > 0 {
                    shown.push_str(&format!(" (and {more} more)"));
                }
                format!("folders as of the last sync: {shown}")
            };
            Err(Error::Config(format!(
                "no folder {path} in the archive; {listed}"
            )))
        }
    }
}

/// The snapshot's account folders and their period folders (the first two levels), sorted.
fn known_folders(state: &SyncState) -> Vec<String> {
    let snapshot = &state.snapshot;
    let mut folders: Vec<String> = snapshot
        .entries()
        .into_iter()
        .filter(|entry| matches!(entry.kind, EntryKind::Folder))
        .filter_map(|entry| snapshot.path_of(&entry.id))
        .map(|path| path.to_string())
        .filter(|path| path.split('/').count() <= 2)
        .collect();
    folders.sort();
    folders
}

fn print_shared(cli: &Cli, shared: &Shared) {
    if cli.json {
        output::print(&output::document(
            "share",
            report::OK,
            serde_json::json!({
                "folder": shared.path.to_string(),
                "link": shared.link,
                "invited": shared.invited,
            }),
        ));
        return;
    }
    // The link is what the user asked for: printed once, on stdout only.
    match (&shared.invited, &shared.link) {
        (Some(email), _) => println!("Invited {email} to read {}.", shared.path),
        (None, Some(link)) => println!("{link}"),
        (None, None) => println!("Shared {}; OneDrive returned no link.", shared.path),
    }
}
