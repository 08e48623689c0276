//! `share`: a view-only link to an archive folder, or an invitation for a person.

use crate::{Cli, report};
use receipt_sync::model::ArchivePath;
use receipt_sync::sink::onedrive::ShareKind;
use receipt_sync::state::StateStore;
use receipt_sync::{Error, Result};

pub async fn share(cli: &Cli, folder: &str, email: Option<&str>) -> Result<u8> {
    let path = ArchivePath::parse(folder.trim_matches('/'))
        .map_err(|e| Error::Config(format!("folder {folder:?}: {e}")))?;
    let state = cli.env.state_store()?.load().await?.unwrap_or_default();
    let Some((id, _)) = state
        .snapshot
        .path_index()
        .get(&path)
        .map(|(id, k)| (id.clone(), k))
    else {
        return Err(Error::Config(format!(
            "no folder {path} in the archive as of the last sync; run `sync` first"
        )));
    };
    let sink = cli.env.onedrive()?;
    match email {
        Some(email) => {
            sink.invite(&id, email).await?;
            println!("Invited {email} to read {path}.");
        }
        None => {
            let share = sink.share_link(&id).await?;
            // The link is what the user asked for: printed once, on stdout only.
            match share.kind {
                ShareKind::Link { url: Some(url), .. } => println!("{}", url.expose()),
                _ => println!("Shared {path}; OneDrive returned no link."),
            }
        }
    }
    Ok(report::OK)
}
