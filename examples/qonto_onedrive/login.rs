//! `login`: the Microsoft sign-in, checked against the drive, then saved for the later runs.
//!
//! 1. Check that the sign-in can be saved (the token file's folder is writable), before
//!    the person spends time signing in.
//! 2. Sign in (browser, or a device code), asking for the app folder only, or for
//!    Files.ReadWrite with `--grant-files-readwrite`; save the tokens.
//! 3. Read the app folder and the quota through the sink. Since August 2026 Microsoft
//!    refuses every drive call of some apps holding only Files.ReadWrite.AppFolder, until
//!    Files.ReadWrite is granted once (onedrive-graph.md §0, §9, §12.2): on that refusal,
//!    ask (on a terminal) whether to grant it now, and sign in again if so.
//! 4. Only then say "signed in", with the archive's web address (the `Apps` folder has a
//!    localized name, so its path would mislead) and the space left.

use crate::{Cli, output, report};
use receipt_sync::auth::microsoft::{
    BrowserSignInOptions, DeviceCodeOptions, DriveAccess, MicrosoftTokenProvider, Prompt,
    sign_in_with_browser, sign_in_with_device_code,
};
use receipt_sync::sink::onedrive::{ArchiveAccess, is_app_folder_refusal};
use receipt_sync::{Error, Result};
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

pub async fn login(cli: &Cli, device_code: bool, grant: bool) -> Result<u8> {
    match sign_in_and_check(cli, device_code, grant).await {
        Ok(done) => {
            print_done(cli, &done);
            Ok(report::OK)
        }
        Err(error) if cli.json => {
            let (code, line) = report::explain(&error);
            output::print(&output::failure("login", code, &error, &line));
            eprintln!("qonto-onedrive: {line}");
            Ok(code)
        }
        Err(error) => Err(error),
    }
}

/// A sign-in that reached the archive.
struct Done {
    saved_to: std::path::PathBuf,
    access: ArchiveAccess,
    files_readwrite: bool,
}

async fn sign_in_and_check(cli: &Cli, device_code: bool, grant: bool) -> Result<Done> {
    if cli.env.local.is_some() {
        return Err(Error::Config(
            "`login` signs in to OneDrive; a local archive (--local) needs no sign-in".into(),
        ));
    }
    let saved_to = cli.env.check_token_folder_writable()?;
    let access = if grant {
        DriveAccess::AllFiles
    } else {
        DriveAccess::AppFolder
    };
    let checked = match sign_in(cli, device_code, access).await {
        Err(refused) if !grant && is_app_folder_refusal(&refused) => {
            if !ask_to_grant() {
                return Err(refused);
            }
            sign_in(cli, device_code, DriveAccess::AllFiles)
                .await
                .map(|found| (found, true))?
        }
        other => other.map(|found| (found, grant))?,
    };
    Ok(Done {
        saved_to,
        access: checked.0,
        files_readwrite: checked.1,
    })
}

/// Signs in asking for `access`, saves the tokens, and reads the archive with them.
async fn sign_in(cli: &Cli, device_code: bool, access: DriveAccess) -> Result<ArchiveAccess> {
    let config = cli.env.auth_config_for(access)?;
    let tokens = if device_code {
        sign_in_with_device_code(&config, &DeviceCodeOptions::default(), |prompt| {
            eprintln!("{}", prompt.instructions())
        })
        .await?
    } else {
        // A grant of more than was consented before needs Microsoft's consent page again.
        let options = match access {
            DriveAccess::AppFolder => BrowserSignInOptions::default(),
            _ => BrowserSignInOptions::default().with_prompt(Prompt::Consent),
        };
        sign_in_with_browser(&config, &options, |url| {
            eprintln!("Open this address in a browser to sign in:\n{url}")
        })
        .await?
    };
    let store = cli.env.token_store()?;
    let provider = MicrosoftTokenProvider::from_sign_in(config, store, tokens).await?;
    cli.env
        .onedrive_with(Arc::new(provider))?
        .check_access()
        .await
}

/// On a terminal, explains the 2026 refusal and asks whether to grant Files.ReadWrite
/// now; elsewhere (a script, a service) says no, and the error names the switch.
fn ask_to_grant() -> bool {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return false;
    }
    eprintln!(
        "Microsoft refuses this app's folder-only permission (Files.ReadWrite.AppFolder): a \
         known OneDrive fault since August 2026, repaired by granting Files.ReadWrite once.\n\
         Archives still go only into the app folder."
    );
    eprint!("Sign in again now and grant Files.ReadWrite? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

fn print_done(cli: &Cli, done: &Done) {
    let space = done.access.quota.map(|q| (q.remaining, q.total));
    if cli.json {
        output::print(&output::document(
            "login",
            report::OK,
            serde_json::json!({
                "saved_to": done.saved_to.display().to_string(),
                "files_readwrite": done.files_readwrite,
                "archive_url": done.access.web_url,
                "space_left": space.map(|(left, _)| left),
            }),
        ));
        return;
    }
    println!("Signed in; saved to {}", done.saved_to.display());
    if done.files_readwrite {
        println!(
            "Files.ReadWrite granted; archives still go only into the app folder, and `share` can work."
        );
    }
    match &done.access.web_url {
        Some(url) => println!(
            "Archive folder: {url}\n  (OneDrive may show the `Apps` folder in your language: Applications, Aplicativos, …)"
        ),
        None => println!(
            "Archive folder: Apps/{} in your OneDrive",
            cli.env.ms_app_name
        ),
    }
    if let Some((left, total)) = space {
        println!(
            "Drive space:    {} left of {}",
            report::human(left),
            report::human(total)
        );
    }
}

/// After an archive's first sync, where to find it: OneDrive names the `Apps` folder in
/// the user's language, so its web address is the one pointer that always works. On
/// stderr, beside the progress: stdout keeps the report (and `--json` its document).
pub async fn print_archive_address(cli: &Cli) {
    if cli.env.local.is_some() {
        return;
    }
    let url = match cli.env.onedrive() {
        Ok(sink) => sink.check_access().await.ok().and_then(|a| a.web_url),
        Err(_) => None,
    };
    match url {
        Some(url) => eprintln!(
            "Archive folder: {url}\n  (OneDrive may show the `Apps` folder in your language: Applications, Aplicativos, …)"
        ),
        None => eprintln!(
            "Archive folder: Apps/{} in your OneDrive",
            cli.env.ms_app_name
        ),
    }
}
