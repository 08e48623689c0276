//! No token, code or secret shows in Debug/Display of the public types and errors, nor in
//! the logs: every flow runs with a TRACE subscriber writing to a buffer, which is then
//! searched for each token the fake issued.
#![cfg(feature = "testkit")]

mod auth_support;

use auth_support::{Idp, capture_trace};
use receipt_sync::auth::AccessTokenProvider;
use receipt_sync::auth::microsoft::{
    BrowserSignInOptions, DeviceCodeOptions, FileTokenStore, InMemoryTokenStore,
    MicrosoftTokenProvider, TokenStore, sign_in_with_browser, sign_in_with_device_code,
};
use receipt_sync::testkit::fake_identity::{DevicePoll, FakeIdentityConfig};
use std::sync::Arc;
use tokio::sync::oneshot;

#[tokio::test]
async fn tokens_never_show_in_debug_display_errors_or_logs() {
    let logs = capture_trace();

    let idp =
        Idp::start(FakeIdentityConfig::default().with_device_script(0, &[DevicePoll::Pending]))
            .await;
    let config = idp.config();
    let mut secrets: Vec<String> = Vec::new();
    let mut shown: Vec<String> = vec![format!("{config:?}"), format!("{idp:?}", idp = idp.fake)];

    // Browser sign-in; the authorize URL's state and challenge are kept out of logs too.
    let (tx, rx) = oneshot::channel();
    let browser_config = config.clone();
    let flow = tokio::spawn(async move {
        let options = BrowserSignInOptions::default();
        sign_in_with_browser(&browser_config, &options, move |url| {
            let _ = tx.send(url.clone());
        })
        .await
    });
    let url = rx.await.unwrap();
    for (k, v) in url.query_pairs() {
        if k == "state" || k == "code_challenge" {
            secrets.push(v.into_owned());
        }
    }
    // Play the browser by hand, to learn the authorization code on its way.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = http.get(url.clone()).send().await.unwrap();
    let location = url::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    secrets.push(code);
    assert_eq!(http.get(location).send().await.unwrap().status(), 200);
    let signed_in = flow.await.unwrap().unwrap();
    secrets.push(signed_in.access_token.expose().to_owned());
    secrets.push(signed_in.refresh_token.expose().to_owned());
    shown.push(format!("{signed_in:?}"));

    // Saved to a file, refreshed, rotated.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileTokenStore::new(dir.path().join("tokens.json")));
    let provider = MicrosoftTokenProvider::from_sign_in(config.clone(), store.clone(), signed_in)
        .await
        .unwrap();
    let first = provider.access_token().await.unwrap();
    provider.invalidate(&first).await;
    let second = provider.access_token().await.unwrap();
    let rotated = store.load().await.unwrap().unwrap();
    secrets.push(second.expose().to_owned());
    secrets.push(rotated.refresh_token.expose().to_owned());
    shown.push(format!(
        "{provider:?} {store:?} {first:?} {second} {rotated:?}"
    ));

    // Device code sign-in, with its user code.
    let mut prompt_debug = String::new();
    let mut user_code = String::new();
    let device = sign_in_with_device_code(
        &config,
        &DeviceCodeOptions::default().with_sleep(Arc::new(|_| Box::pin(async {}))),
        |p| {
            prompt_debug = format!("{p:?}");
            user_code = p.user_code().to_owned();
        },
    )
    .await
    .unwrap();
    secrets.push(user_code);
    secrets.push(device.access_token.expose().to_owned());
    secrets.push(device.refresh_token.expose().to_owned());
    shown.push(prompt_debug);

    // Errors: a revoked grant, a refused client.
    let memory = Arc::new(InMemoryTokenStore::with_tokens(idp.expired_tokens()));
    let seeded = memory.snapshot().unwrap();
    secrets.push(seeded.access_token.expose().to_owned());
    secrets.push(seeded.refresh_token.expose().to_owned());
    idp.fake.revoke_consent();
    let revoked = MicrosoftTokenProvider::new(config.clone(), memory.clone())
        .access_token()
        .await
        .unwrap_err();
    let refused = MicrosoftTokenProvider::new(idp.config_for("other"), memory.clone())
        .access_token()
        .await
        .unwrap_err();
    shown.push(format!(
        "{revoked} {revoked:?} {refused} {refused:?} {memory:?}"
    ));

    let logs = logs.text();
    if std::env::var_os("SHOW_AUTH_LOGS").is_some() {
        println!("{logs}");
    }
    assert!(
        logs.contains("refreshing the Microsoft access token"),
        "the capture works: {logs}"
    );
    assert!(logs.contains("TRACE"), "TRACE events are captured");
    assert_eq!(
        secrets.len(),
        12,
        "state, challenge, code, then 2 + 2 + 3 + 2 tokens"
    );
    for secret in &secrets {
        assert!(secret.len() >= 8, "{secret}");
        assert!(
            !logs.contains(secret.as_str()),
            "a secret is in the logs:\n{logs}"
        );
        for text in &shown {
            assert!(!text.contains(secret.as_str()), "a secret is in {text}");
        }
    }
}
