//! `disconnect`: forgets the saved OneDrive sign-in.

use crate::{Cli, report};
use receipt_sync::Result;
use receipt_sync::auth::microsoft::TokenStore;

pub async fn disconnect(cli: &Cli) -> Result<u8> {
    cli.env.token_store()?.clear().await?;
    println!(
        "Signed out: the saved OneDrive sign-in is gone. The app's access stays on the \
         Microsoft account until removed at https://account.live.com/consent/Manage"
    );
    Ok(report::OK)
}
