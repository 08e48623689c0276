//! Browser sign-in (authorization code + PKCE, loopback redirect) against the fake
//! identity provider: the happy path, a forged state, a declined consent, a timeout, and a
//! browser's habits played over raw TCP (large cookie headers, late pre-connections, a
//! reload). `auth_browser_chromium.rs` runs the same flow in a real browser.
#![cfg(feature = "testkit")]

mod auth_support;

use auth_support::{CLIENT_ID, Idp};
use receipt_sync::ErrorKind;
use receipt_sync::auth::microsoft::{
    BrowserSignInOptions, MicrosoftAuthConfig, MicrosoftTokens, Prompt, sign_in_with_browser,
};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
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
    assert!(
        message.contains("sign in to the Microsoft account again"),
        "{message}"
    );
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
    let page = reqwest::get(format!("{redirect}?code=some-code&state={state}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The browser is answered once the exchange failed, and says so.
    assert!(page.contains("not completed"), "{page}");
    assert!(!page.contains("Signed in"), "{page}");
    let err = flow.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("app registration"), "{err}");
}

/// The redirect the fake identity sends the browser to, read without following it.
async fn redirect_location(authorize: &Url) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = http.get(authorize.clone()).send().await.unwrap();
    answer.headers()["location"].to_str().unwrap().to_owned()
}

/// Sends a raw request to the loopback listener and reads the answer until it closes.
async fn raw_request(stream: &mut TcpStream, target: &str, extra_headers: &str) -> String {
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n{extra_headers}\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer))
        .await
        .expect("the listener left the connection hanging")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

fn path_and_query(url: &str) -> (String, String) {
    let url = Url::parse(url).unwrap();
    let target = format!("{}?{}", url.path(), url.query().unwrap_or(""));
    (format!("127.0.0.1:{}", url.port().unwrap()), target)
}

#[tokio::test]
async fn a_redirect_carrying_tens_of_kib_of_localhost_cookies_still_signs_in() {
    let idp = Idp::default().await;
    let (url, flow) = start_sign_in(idp.config(), BrowserSignInOptions::default()).await;
    let (address, target) = path_and_query(&redirect_location(&url).await);

    // A browser sends every cookie of `localhost` to every port: other local web apps'
    // cookies make the head far larger than the request line.
    let cookies: Vec<String> = (0..6)
        .map(|i| format!("other_app_{i}={}", "v".repeat(3900)))
        .collect();
    let cookie_header = format!("Cookie: {}\r\n", cookies.join("; "));
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let answer = raw_request(&mut stream, &target, &cookie_header).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("close this tab"), "{answer}");
    let tokens = flow.await.unwrap().unwrap();
    assert!(idp.fake.is_valid_access_token(tokens.access_token.expose()));
}

#[tokio::test]
async fn a_pre_connection_that_sends_the_redirect_late_still_counts() {
    let idp = Idp::default().await;
    let (url, flow) = start_sign_in(idp.config(), BrowserSignInOptions::default()).await;
    let redirect = Url::parse(&param(&url, "redirect_uri").unwrap()).unwrap();
    let address = format!("127.0.0.1:{}", redirect.port().unwrap());

    // A browser opens connections before it knows what it will send: some stay idle, one
    // carries the redirect once the user has signed in.
    let _idle = TcpStream::connect(&address).await.unwrap();
    let mut early = TcpStream::connect(&address).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, target) = path_and_query(&redirect_location(&url).await);
    let answer = raw_request(&mut early, &target, "").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let tokens = flow.await.unwrap().unwrap();
    assert!(idp.fake.is_valid_access_token(tokens.access_token.expose()));
}

#[tokio::test]
async fn a_reload_after_the_sign_in_neither_hangs_nor_exchanges_again() {
    let idp = Idp::default().await;
    let (url, flow) = start_sign_in(idp.config(), BrowserSignInOptions::default()).await;
    let (address, target) = path_and_query(&redirect_location(&url).await);
    // A connection the browser opened earlier and uses for the reload.
    let mut kept = TcpStream::connect(&address).await.unwrap();
    let mut first = TcpStream::connect(&address).await.unwrap();
    assert!(
        raw_request(&mut first, &target, "")
            .await
            .starts_with("HTTP/1.1 200")
    );
    flow.await.unwrap().unwrap();

    // The reload, on the kept connection and on a new one: an answer or a closed
    // connection at once, never a second exchange.
    let reload = tokio::time::timeout(Duration::from_secs(15), async {
        let mut answer = Vec::new();
        let _ = kept
            .write_all(format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes())
            .await;
        let _ = kept.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .expect("the reload hung");
    assert!(!reload.contains("close this tab"), "{reload}");
    if let Ok(mut again) = TcpStream::connect(&address).await {
        let answer = raw_request(&mut again, &target, "").await;
        assert!(!answer.contains("close this tab"), "{answer}");
    }
    assert_eq!(idp.fake.token_request_count(), 1);
}

#[tokio::test]
async fn a_timeout_during_the_code_exchange_still_answers_the_browser() {
    let idp = Idp::default().await;
    let options = BrowserSignInOptions::default().with_timeout(Duration::from_secs(2));
    let (url, flow) = start_sign_in(idp.config(), options).await;
    let (address, target) = path_and_query(&redirect_location(&url).await);
    // The token endpoint answers far too late.
    idp.server.set_latency(Duration::from_secs(30));

    let mut stream = TcpStream::connect(&address).await.unwrap();
    let answer = raw_request(&mut stream, &target, "").await;
    assert!(answer.contains("not completed"), "{answer}");
    assert!(!answer.contains("Signed in"), "{answer}");
    let err = flow.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent);
    assert!(err.to_string().contains("exchanging its code"), "{err}");
}
