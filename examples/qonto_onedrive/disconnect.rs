//! `disconnect`: forgets the saved OneDrive sign-in, and says what still grants access.

use crate::{Cli, output, report};
use receipt_sync::auth::microsoft::TokenStore;
use receipt_sync::{Error, Result};

/// Where the Microsoft account's holder withdraws the app's access itself.
const CONSENT_PAGE: &str = "https://account.live.com/consent/Manage";

pub async fn disconnect(cli: &Cli) -> Result<u8> {
    // `clear` succeeds whether or not a sign-in was saved: look first, to say which.
    let file = cli.env.home()?.join("onedrive-tokens.json");
    let was_saved = file
        .try_exists()
        .map_err(|e| Error::io("look for", &file, e))?;
    cli.env.token_store()?.clear().await?;
    // The variable itself, whatever this command reads: while it is set, every sync
    // signs in with it.
    let variable_set = std::env::var_os("ONEDRIVE_REFRESH_TOKEN").is_some_and(|v| !v.is_empty());
    let mut lines = vec![if was_saved {
        "Signed out: the saved OneDrive sign-in is forgotten.".to_owned()
    } else {
        "Nothing to forget: no OneDrive sign-in is saved.".to_owned()
    }];
    if variable_set {
        lines.push(
            "Unset ONEDRIVE_REFRESH_TOKEN: it is still set, and still grants access to OneDrive."
                .to_owned(),
        );
    }
    lines.push(format!(
        "To withdraw the app's access from the Microsoft account too, remove it at {CONSENT_PAGE}."
    ));
    if cli.json {
        output::print(&output::document(
            "disconnect",
            report::OK,
            serde_json::json!({
                "forgotten": was_saved,
                "refresh_token_variable_set": variable_set,
                "message": lines.join(" "),
            }),
        ));
    } else {
        for line in &lines {
            println!("{line}");
        }
    }
    Ok(report::OK)
}
