//! Signing in to a personal Microsoft account for OneDrive (Microsoft identity platform v2),
//! and keeping the tokens fresh.
//!
//! - [`MicrosoftAuthConfig`]: the public client (no secret), tenant (`consumers`), login
//!   host, scopes and HTTP client.
//! - [`sign_in_with_browser`]: authorization code + PKCE with a loopback redirect, the
//!   default sign-in. [`sign_in_with_device_code`]: for machines without a browser (may be
//!   refused for personal accounts, see its docs).
//! - [`MicrosoftTokenProvider`]: the [`AccessTokenProvider`](crate::auth::AccessTokenProvider)
//!   the OneDrive sink uses; it refreshes, saves each rotated refresh token at once, and turns
//!   a refused grant into [`Error::ConsentRevoked`](crate::Error::ConsentRevoked).
//! - [`TokenStore`]: where tokens live; [`FileTokenStore`] (a 0600 JSON file) by default,
//!   [`InMemoryTokenStore`] for tests.
//!
//! # The 2026 AppFolder 403 bug, and re-consent
//! Since August 2026, newly consented apps whose only file scope is
//! `Files.ReadWrite.AppFolder` get 403 (`accessDenied`/`serviceReadOnly`) on every drive
//! call; one consent with `Files.ReadWrite` repairs it (onedrive-graph.md §0, §9, §12.2). The
//! OneDrive sink detects the 403 and says so in its [`Error::Forbidden`](crate::Error::Forbidden),
//! which [`is_app_folder_refusal`](crate::sink::onedrive::is_app_folder_refusal) recognises;
//! [`OneDriveSink::check_access`](crate::sink::OneDriveSink::check_access) shows it right
//! after a sign-in. To re-consent, sign in again with [`DriveAccess::AllFiles`] and
//! [`Prompt::Consent`]:
//!
//! ```no_run
//! # async fn demo() -> receipt_sync::Result<()> {
//! use receipt_sync::auth::microsoft::*;
//! let config = MicrosoftAuthConfig::builder("your-client-id")
//!     .with_drive_access(DriveAccess::AllFiles)
//!     .build()?;
//! let options = BrowserSignInOptions::default().with_prompt(Prompt::Consent);
//! let tokens = sign_in_with_browser(&config, &options, |url| println!("Open {url}")).await?;
//! let store = std::sync::Arc::new(FileTokenStore::new("tokens.json"));
//! let provider = MicrosoftTokenProvider::from_sign_in(config, store, tokens).await?;
//! # let _ = provider; Ok(()) }
//! ```

mod config;
mod device_code;
mod error;
mod loopback;
mod oauth;
mod pkce_loopback;
mod provider;
mod token_store;
mod tokens;

pub use config::{
    DEFAULT_LOGIN_BASE_URL, DEFAULT_TENANT, DriveAccess, LoopbackHost, MicrosoftAuthConfig,
    MicrosoftAuthConfigBuilder, OFFLINE_ACCESS, SERVICE,
};
pub use device_code::{DeviceCodeOptions, DeviceCodePrompt, SleepFn, sign_in_with_device_code};
pub use pkce_loopback::{BrowserSignInOptions, Prompt, sign_in_with_browser};
pub use provider::{MicrosoftTokenProvider, REFRESH_MARGIN};
pub use token_store::{FileTokenStore, InMemoryTokenStore, TokenStore};
pub use tokens::MicrosoftTokens;

/// What to tell the user when Graph answers 403 to a token whose only file scope is
/// `Files.ReadWrite.AppFolder` (onedrive-graph.md §0, §9 "App folder, consent and 403").
pub const APP_FOLDER_REPAIR_HINT: &str = "Microsoft refuses drive access to some apps that \
hold only the Files.ReadWrite.AppFolder permission (a known OneDrive issue since August 2026); \
sign in again granting Files.ReadWrite (DriveAccess::AllFiles, with the consent prompt) to repair it";

/// Whether `error` comes from the Microsoft side (the sign-in or OneDrive) rather than from
/// Qonto or the local disk: a refused or missing Microsoft sign-in is mended by signing in
/// again, never by changing a bank key.
pub fn is_microsoft_error(error: &crate::Error) -> bool {
    use crate::Error;
    let service = match error {
        Error::Unauthorized { service, .. }
        | Error::ConsentRevoked { service, .. }
        | Error::Forbidden { service, .. }
        | Error::Transient { service, .. }
        | Error::RateLimited { service, .. }
        | Error::Malformed { service, .. }
        | Error::Rejected { service, .. }
        | Error::Permanent { service, .. } => *service,
        _ => return false,
    };
    service == SERVICE || service == crate::sink::onedrive::SERVICE
}
