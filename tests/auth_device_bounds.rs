//! Device code sign-in when the device code answer's timing is far off: an `interval` near
//! `u64::MAX` seconds, an `interval` of 0, an `expires_in` of decades. The flow polls
//! within bounds (1 s to 60 s between polls, a code lifetime of at most an hour) instead
//! of panicking on `slow_down`, polling in a tight loop or waiting for ever. Intervals are
//! recorded, not slept.
#![cfg(feature = "testkit")]

mod auth_support;

use auth_support::Idp;
use receipt_sync::auth::microsoft::{
    DeviceCodeOptions, DeviceCodePrompt, sign_in_with_device_code,
};
use receipt_sync::testkit::fake_identity::{DevicePoll, FakeIdentityConfig};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// Signs in against a fake whose device codes have this timing; what the user was shown
/// and the waits between polls.
async fn sign_in_with(
    interval_secs: u64,
    expires_in_secs: u64,
    script: &[DevicePoll],
) -> (DeviceCodePrompt, Vec<Duration>) {
    let mut config = FakeIdentityConfig::default().with_device_script(interval_secs, script);
    config.device_expires_in_secs = expires_in_secs;
    let idp = Idp::start(config).await;
    let (options, waits) = recording_options();
    let mut shown = None;
    let tokens = sign_in_with_device_code(&idp.config(), &options, |p| shown = Some(p.clone()))
        .await
        .expect("the sign-in completes");
    assert!(idp.fake.is_valid_access_token(tokens.access_token.expose()));
    let waits = waits.lock().unwrap().clone();
    (shown.expect("the prompt was shown"), waits)
}

#[tokio::test]
async fn an_interval_near_the_end_of_time_is_capped_and_slow_down_still_adds_5_s() {
    use DevicePoll::*;
    let (prompt, waits) = sign_in_with(u64::MAX, 900, &[Pending, SlowDown, Pending]).await;
    let s = Duration::from_secs;
    assert_eq!(waits, [s(60), s(65), s(65)]);
    assert_eq!(prompt.expires_in(), s(900));
}

#[tokio::test]
async fn an_interval_of_zero_still_waits_between_polls() {
    use DevicePoll::*;
    let (_, waits) = sign_in_with(0, 900, &[Pending, Pending]).await;
    assert_eq!(waits, [Duration::from_secs(1); 2]);
}

#[tokio::test]
async fn a_code_lifetime_of_decades_is_capped_to_an_hour() {
    let decades = 40 * 365 * 86_400;
    let (prompt, waits) = sign_in_with(5, decades, &[DevicePoll::Pending]).await;
    assert_eq!(prompt.expires_in(), Duration::from_secs(3600));
    assert_eq!(waits, [Duration::from_secs(5)]);
    let (prompt, _) = sign_in_with(5, u64::MAX, &[]).await;
    assert_eq!(prompt.expires_in(), Duration::from_secs(3600));
}

#[tokio::test]
async fn usual_timing_is_kept_as_sent() {
    use DevicePoll::*;
    let (prompt, waits) = sign_in_with(5, 900, &[Pending, SlowDown]).await;
    let s = Duration::from_secs;
    assert_eq!(waits, [s(5), s(10)]);
    assert_eq!(prompt.expires_in(), s(900));
}
