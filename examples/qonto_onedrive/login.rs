//! `login`: the Microsoft sign-in, saved for the later runs.

use crate::{Cli, report};
use receipt_sync::Result;
use receipt_sync::auth::microsoft::{
    BrowserSignInOptions, DeviceCodeOptions, MicrosoftTokenProvider, sign_in_with_browser,
    sign_in_with_device_code,
};

pub async fn login(cli: &Cli, device_code: bool) -> Result<u8> {
    let config = cli.env.auth_config()?;
    let tokens = if device_code {
        sign_in_with_device_code(&config, &DeviceCodeOptions::default(), |prompt| {
            eprintln!("{}", prompt.instructions())
        })
        .await?
    } else {
        sign_in_with_browser(&config, &BrowserSignInOptions::default(), |url| {
            eprintln!("Open this address in a browser to sign in:\n{url}")
        })
        .await?
    };
    let store = cli.env.token_store()?;
    MicrosoftTokenProvider::from_sign_in(config, store.clone(), tokens).await?;
    println!("Signed in; saved to {}", store.path().display());
    Ok(report::OK)
}
