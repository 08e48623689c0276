//! Device code sign-in against the fake identity provider: polling with pending and
//! slow_down (intervals recorded, not slept), a declined sign-in, an expired code.
#![cfg(feature = "testkit")]

mod auth_support;

use auth_support::Idp;
use receipt_sync::ErrorKind;
use receipt_sync::auth::microsoft::{
    DeviceCodeOptions, DeviceCodePrompt, sign_in_with_device_code,
};
use receipt_sync::testkit::fake_identity::{DevicePoll, FakeIdentityConfig};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Options whose "sleep" only records how long it was asked to wait.
fn recording_options() -> (DeviceCodeOptions, Arc<Mutex<Vec<Duration>>>) {
    let waits = Arc::new(Mutex::new(Vec::new()));
    let recorded = waits.clone();
    let options = DeviceCodeOptions::default().with_sleep(Arc::new(move |d| {
        recorded.lock().unwrap().push(d);
        Box::pin(async {})
    }));
    (options, waits)
}

async fn idp_with(script: &[DevicePoll]) -> Idp {
    Idp::start(FakeIdentityConfig::default().with_device_script(2, script)).await
}

#[tokio::test]
async fn polls_through_pending_and_slow_down() {
    use DevicePoll::*;
    let idp = idp_with(&[Pending, Pending, SlowDown, Pending]).await;
    let (options, waits) = recording_options();
    let mut shown: Option<DeviceCodePrompt> = None;
    let tokens = sign_in_with_device_code(&idp.config(), &options, |p| shown = Some(p.clone()))
        .await
        .unwrap();

    let prompt = shown.unwrap();
    assert_eq!(
        prompt.verification_uri().as_str(),
        "https://microsoft.com/devicelogin"
    );
    assert_eq!(prompt.user_code().len(), 8);
    assert!(prompt.instructions().contains(prompt.user_code()));
    assert_eq!(prompt.expires_in(), Duration::from_secs(900));
    // The interval (2 s) is kept on authorization_pending and grows by 5 s on slow_down
    // (RFC 8628 §3.5), for good.
    let s = Duration::from_secs;
    assert_eq!(*waits.lock().unwrap(), [s(2), s(2), s(7), s(7)]);
    assert_eq!(idp.token_requests(DEVICE_GRANT), 5);
    assert!(idp.fake.is_valid_access_token(tokens.access_token.expose()));
    assert!(
        idp.fake
            .is_valid_refresh_token(tokens.refresh_token.expose())
    );
    assert_eq!(
        idp.server
            .requests()
            .matching("POST /consumers/oauth2/v2.0/devicecode"),
        1
    );
}

#[tokio::test]
async fn a_declined_device_sign_in_stops_polling() {
    let idp = idp_with(&[DevicePoll::Pending, DevicePoll::Decline]).await;
    let (options, _) = recording_options();
    let err = sign_in_with_device_code(&idp.config(), &options, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConsentRevoked);
    assert!(err.to_string().contains("authorization_declined"), "{err}");
    assert_eq!(idp.token_requests(DEVICE_GRANT), 2);
}

#[tokio::test]
async fn an_expired_code_suggests_the_browser_sign_in() {
    // What personal accounts on unapproved apps reportedly get (onedrive-graph.md §1).
    let idp = idp_with(&[DevicePoll::Pending, DevicePoll::Expire]).await;
    let (options, _) = recording_options();
    let err = sign_in_with_device_code(&idp.config(), &options, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent);
    let message = err.to_string();
    assert!(message.contains("expired_token"), "{message}");
    assert!(message.contains("use the browser sign-in"), "{message}");
    assert_eq!(idp.token_requests(DEVICE_GRANT), 2);
}

#[tokio::test]
async fn an_unknown_client_is_a_config_error_before_any_poll() {
    let idp = idp_with(&[]).await;
    let (options, waits) = recording_options();
    let mut shown = false;
    let err = sign_in_with_device_code(&idp.config_for("nope"), &options, |_| shown = true)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(!shown && waits.lock().unwrap().is_empty());
    assert_eq!(idp.fake.token_request_count(), 0);
}
