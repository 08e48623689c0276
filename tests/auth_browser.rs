//! Browser sign-in (authorization code + PKCE, loopback redirect) against the fake
//! identity provider: the happy path, a forged state, a declined consent, a timeout.
#![cfg(feature = "testkit")]

mod auth_support;

use auth_support::{CLIENT_ID, Idp};
use receipt_sync::ErrorKind;
use receipt_sync::auth::microsoft::{
    BrowserSignInOptions, MicrosoftAuthConfig, MicrosoftTokens, Prompt, sign_in_with_browser,
};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

/// Starts a sign-in and returns it with the authorize URL it asked the user to open.
async fn start_sign_in(
    config: MicrosoftAuthConfig,
    options: BrowserSignInOptions,
) -> (Url, JoinHandle<receipt_sync::Result<MicrosoftTokens>>) {
    let (tx, rx) = oneshot::channel();
    let flow = tokio::spawn(async move {
        sign_in_with_browser(&config, &options, move |url| {
            let _ = tx.send(url.clone());
        })
        .await
    });
    (rx.await.unwrap(), flow)
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn pkce_loopback_sign_in_end_to_end() {
    let idp = Idp::default().await;
    let options = BrowserSignInOptions::default().with_prompt(Prompt::Consent);
    let (url, flow) = start_sign_in(idp.config(), options).await;

    assert!(url.as_str().starts_with(&format!(
        "{}/consumers/oauth2/v2.0/authorize?",
        idp.server.url()
    )));
    assert_eq!(param(&url, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(param(&url, "response_type").as_deref(), Some("code"));
    assert_eq!(
        param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        param(&url, "scope").as_deref(),
        Some("Files.ReadWrite.AppFolder offline_access")
    );
    assert_eq!(param(&url, "prompt").as_deref(), Some("consent"));
    assert!(param(&url, "state").is_some_and(|s| s.len() >= 16));
    let redirect = Url::parse(&param(&url, "redirect_uri").unwrap()).unwrap();
    assert_eq!(
        (redirect.scheme(), redirect.host_str(), redirect.path()),
        ("http", Some("localhost"), "/")
    );
    assert!(redirect.port().is_some_and(|p| p > 0));

    let visit = idp.fake.simulate_browser(&url).await.unwrap();
    assert_eq!(visit.status, 200);
    assert!(visit.body.contains("close this tab"), "{}", visit.body);

    let tokens = flow.await.unwrap().unwrap();
    assert!(idp.fake.is_valid_access_token(tokens.access_token.expose()));
    assert!(
        idp.fake
            .is_valid_refresh_token(tokens.refresh_token.expose())
    );
    assert!(tokens.is_valid_for(chrono::Utc::now(), Duration::from_secs(600)));
    assert!(tokens.is_app_folder_only());
    // The fake refuses a client secret and checks the verifier against the challenge: one
    // exchange, accepted.
    assert_eq!(idp.token_requests("authorization_code"), 1);
    assert_eq!(idp.fake.token_request_count(), 1);
}

#[tokio::test]
async fn a_forged_state_is_refused_and_the_real_redirect_still_counts() {
    let idp = Idp::default().await;
    let (url, flow) = start_sign_in(idp.config(), BrowserSignInOptions::default()).await;
    let redirect = param(&url, "redirect_uri").unwrap();
    let http = reqwest::Client::new();

    // An attacker's page makes the browser hit the listener with its own code and state.
    for forged in ["state=forged&code=attacker-code", "code=attacker-code"] {
        let answer = http
            .get(format!("{redirect}?{forged}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 400, "{forged}");
        assert!(answer.text().await.unwrap().contains("does not belong"));
    }
    // A browser's stray request for another path.
    let favicon = http
        .get(format!("{redirect}favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(favicon.status().as_u16(), 404);
    assert!(
        !flow.is_finished(),
        "a forged redirect must not end the sign-in"
    );

    let visit = idp.fake.simulate_browser(&url).await.unwrap();
    assert_eq!(visit.status, 200);
    let tokens = flow.await.unwrap().unwrap();
    assert!(idp.fake.is_valid_access_token(tokens.access_token.expose()));
    // Only the genuine code was ever exchanged.
    assert_eq!(idp.fake.token_request_count(), 1);
}

#[tokio::test]
async fn declined_consent_is_a_clear_error_without_a_token_request() {
    let idp = Idp::default().await;
    idp.fake.set_user_declines(true);
    let (url, flow) = start_sign_in(idp.config(), BrowserSignInOptions::default()).await;
    let visit = idp.fake.simulate_browser(&url).await.unwrap();
    assert_eq!(visit.status, 200);
    assert!(visit.body.contains("not completed"));

    let err = flow.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConsentRevoked);
    let message = err.to_string();
    assert!(
        message.contains("declined") && message.contains("access_denied"),
        "{message}"
    );
    assert!(message.contains("sign in again"), "{message}");
    assert_eq!(idp.fake.token_request_count(), 0);
}

#[tokio::test]
async fn no_redirect_within_the_timeout_fails_clearly() {
    let idp = Idp::default().await;
    let options = BrowserSignInOptions::default().with_timeout(Duration::from_millis(200));
    let (_url, flow) = start_sign_in(idp.config(), options).await;
    let err = flow.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent);
    assert!(err.to_string().contains("no sign-in came back"), "{err}");
}

#[tokio::test]
async fn an_unknown_client_id_points_at_the_app_registration() {
    let idp = Idp::default().await;
    let (url, flow) = start_sign_in(
        idp.config_for("someone-else"),
        BrowserSignInOptions::default(),
    )
    .await;
    // The authorize page refuses the client, so no code comes back; a redirect with the
    // right state and a made-up code reaches the token endpoint, which refuses the client too.
    let refused = idp.fake.simulate_browser(&url).await.unwrap_err();
    assert!(refused.contains("AADSTS700016"), "{refused}");
    let redirect = param(&url, "redirect_uri").unwrap();
    let state = param(&url, "state").unwrap();
    reqwest::get(format!("{redirect}?code=some-code&state={state}"))
        .await
        .unwrap();
    let err = flow.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("app registration"), "{err}");
}
