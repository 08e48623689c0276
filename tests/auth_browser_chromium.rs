//! Browser sign-in (authorization code + PKCE, loopback redirect) driven by a real Chromium,
//! headless, against the fake identity provider: the browser opens the authorize URL, follows
//! the fake's redirect to the library's loopback listener and shows the page it answers.
//!
//! Alongside the browser, raw TCP plays the habits of a browser that a single headless run
//! does not always show: idle pre-connections, a late favicon request, a reload of the redirect
//! URL after the sign-in.
//!
//! Chromium is required: install it with `apt-get install -y chromium` (or point `CHROMIUM` at
//! the binary). `RECEIPT_SYNC_SKIP_BROWSER=1` skips these tests with a loud line instead.
#![cfg(feature = "testkit")]

mod auth_support;

use auth_support::Idp;
use receipt_sync::auth::microsoft::{
    BrowserSignInOptions, LoopbackHost, MicrosoftAuthConfig, MicrosoftTokens, sign_in_with_browser,
};
use receipt_sync::http::RetryConfig;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

/// How long one browser run, or one sign-in, may take before the test fails.
const BROWSER_LIMIT: Duration = Duration::from_secs(60);

/// The Chromium binary: `$CHROMIUM`, else `chromium` or `chromium-browser` on `PATH`.
/// `None` only when `RECEIPT_SYNC_SKIP_BROWSER=1`; a missing browser otherwise fails the test.
fn chromium() -> Option<PathBuf> {
    let from_env = std::env::var_os("CHROMIUM").filter(|v| !v.is_empty());
    let found = match from_env {
        Some(named) => {
            let named = PathBuf::from(named);
            if named.components().count() > 1 {
                Some(named).filter(|p| is_executable(p))
            } else {
                on_path(&named.to_string_lossy())
            }
        }
        None => on_path("chromium").or_else(|| on_path("chromium-browser")),
    };
    if found.is_some() {
        return found;
    }
    if std::env::var("RECEIPT_SYNC_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!(
            "!!!!! RECEIPT_SYNC_SKIP_BROWSER=1: the real-browser sign-in test is SKIPPED \
             (no chromium found). CI must not set this. !!!!!"
        );
        return None;
    }
    panic!(
        "the real-browser sign-in test needs Chromium and found none (looked at $CHROMIUM, \
         then `chromium` and `chromium-browser` on PATH). Install it with \
         `apt-get install -y chromium` (Debian/Ubuntu), or set CHROMIUM=/path/to/chromium. \
         To skip this test on a machine without a browser, set RECEIPT_SYNC_SKIP_BROWSER=1."
    );
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// Runs headless Chromium on `url` with a fresh profile until it has loaded the page the
/// redirects lead to, and returns that page's DOM (`--dump-dom`). Chromium prints nothing
/// for its own error pages (a refused connection, an empty response).
async fn open_in_chromium(binary: &Path, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let child = Command::new(binary)
        .args([
            "--headless=new",
            // CI runs as root, where Chromium's sandbox refuses to start.
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {}: {e}", binary.display()));
    // On a timeout the future is dropped with the child, which kills it.
    let output = tokio::time::timeout(BROWSER_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("chromium did not finish within {BROWSER_LIMIT:?} on {url}"))
        .unwrap();
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "chromium failed ({}) on {url}; stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    dom
}

/// Starts a sign-in and returns it with the authorize URL it asked the user to open.
async fn start_sign_in(
    config: MicrosoftAuthConfig,
) -> (Url, JoinHandle<receipt_sync::Result<MicrosoftTokens>>) {
    let options = BrowserSignInOptions::default().with_timeout(BROWSER_LIMIT);
    let (tx, rx) = oneshot::channel();
    let flow = tokio::spawn(async move {
        sign_in_with_browser(&config, &options, move |url| {
            let _ = tx.send(url.clone());
        })
        .await
    });
    (rx.await.unwrap(), flow)
}

async fn finish(
    flow: JoinHandle<receipt_sync::Result<MicrosoftTokens>>,
) -> receipt_sync::Result<MicrosoftTokens> {
    tokio::time::timeout(BROWSER_LIMIT, flow)
        .await
        .expect("the sign-in did not finish after the browser's visit")
        .unwrap()
}

fn param(url: &Url, name: &str) -> String {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{name} missing from {url}"))
}

/// The listener's addresses as a browser resolving `localhost` would try them.
fn listener_addresses(redirect: &Url) -> Vec<String> {
    let port = redirect.port().unwrap();
    vec![format!("127.0.0.1:{port}"), format!("[::1]:{port}")]
}

/// Connections to the listener that send nothing, as a browser's pre-connections do.
async fn idle_connections(redirect: &Url) -> Vec<TcpStream> {
    let mut idle = Vec::new();
    for address in listener_addresses(redirect) {
        for _ in 0..3 {
            if let Ok(stream) = TcpStream::connect(&address).await {
                idle.push(stream);
            }
        }
    }
    assert!(!idle.is_empty(), "no idle connection could be opened");
    idle
}

/// Sends `request` on `stream` and returns what comes back before the connection closes;
/// a listener that is gone may also reset the connection, which reads as an empty answer.
async fn exchange(mut stream: TcpStream, request: &str) -> String {
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the listener left a connection hanging");
    String::from_utf8_lossy(&answer).into_owned()
}

fn get(target: &str, host: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n")
}

#[tokio::test]
async fn chromium_signs_in_through_the_loopback_listener() {
    let Some(chromium) = chromium() else { return };
    let started = Instant::now();
    let idp = Idp::default().await;
    let (url, flow) = start_sign_in(idp.config()).await;
    let redirect = Url::parse(&param(&url, "redirect_uri")).unwrap();
    let state = param(&url, "state");

    // Pre-connections that never send anything must not hold up the browser's request; one
    // of them asks for the favicon once the browser is done, as a browser's late tab would.
    let mut idle = idle_connections(&redirect).await;
    let late = idle.pop().unwrap();

    let dom = open_in_chromium(&chromium, url.as_str()).await;
    let tokens = finish(flow).await.unwrap();
    assert!(dom.contains("Signed in"), "{dom}");
    assert!(dom.contains("close this tab"), "{dom}");
    assert!(idp.fake.is_valid_access_token(tokens.access_token.expose()));
    assert!(
        idp.fake
            .is_valid_refresh_token(tokens.refresh_token.expose())
    );
    assert!(tokens.is_valid_for(chrono::Utc::now(), Duration::from_secs(600)));
    assert_eq!(idp.token_requests("authorization_code"), 1);

    // The late favicon request and the idle ones neither hang nor end in anything but a
    // closed connection or a 404.
    let favicon = exchange(late, &get("/favicon.ico", redirect.authority())).await;
    assert!(
        favicon.is_empty() || favicon.starts_with("HTTP/1.1 404"),
        "{favicon}"
    );
    drop(idle);

    // The user reloads the redirect URL (here with another code, which must not count
    // either): the browser gets an answer or a refused connection at once, and nothing
    // more is exchanged.
    let reload = format!("{redirect}?code=second-code&state={state}");
    let dom = open_in_chromium(&chromium, &reload).await;
    assert!(!dom.contains("Signed in"), "{dom}");
    for address in listener_addresses(&redirect) {
        if let Ok(stream) = TcpStream::connect(&address).await {
            let answer = exchange(
                stream,
                &get(&format!("/?code=third&state={state}"), "localhost"),
            )
            .await;
            assert!(!answer.contains("Signed in"), "{answer}");
        }
    }
    assert_eq!(idp.fake.token_request_count(), 1);
    eprintln!("real-browser sign-in took {:?}", started.elapsed());
}

/// Answers every request on `localhost:{port}` with large cookies and a redirect to
/// `next`, like the other local web apps whose cookies a developer's browser sends to every
/// `localhost` port.
async fn cookie_jar_page(next: Url, cookies: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Chromium tries `::1` first for `localhost`; serve there too when possible.
    let v6 = TcpListener::bind(("::1", port)).await.ok();
    let answer = {
        let mut head = format!("HTTP/1.1 302 Found\r\nLocation: {next}\r\nContent-Length: 0\r\n");
        for i in 0..cookies {
            // Close to the 4 KiB a browser keeps per cookie.
            let value = "v".repeat(3900);
            head.push_str(&format!(
                "Set-Cookie: other_app_{i}={value}; Path=/; Max-Age=600\r\n"
            ));
        }
        head.push_str("Connection: close\r\n\r\n");
        head
    };
    for listener in std::iter::once(listener).chain(v6) {
        let answer = answer.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = stream.write_all(answer.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
    }
    port
}

#[tokio::test]
async fn chromium_with_large_localhost_cookies_still_signs_in() {
    let Some(chromium) = chromium() else { return };
    let idp = Idp::default().await;
    let (url, flow) = start_sign_in(idp.config()).await;

    // Six cookies of ~3.9 KiB: the browser sends a ~24 KiB `Cookie` header to the listener.
    let port = cookie_jar_page(url.clone(), 6).await;
    let dom = open_in_chromium(&chromium, &format!("http://localhost:{port}/")).await;
    assert!(dom.contains("Signed in"), "{dom}");
    let tokens = finish(flow).await.unwrap();
    assert!(idp.fake.is_valid_access_token(tokens.access_token.expose()));
    assert_eq!(idp.token_requests("authorization_code"), 1);
}

#[tokio::test]
async fn chromium_is_not_told_signed_in_when_the_code_exchange_fails() {
    let Some(chromium) = chromium() else { return };
    let idp = Idp::default().await;
    // The token endpoint stays down for longer than the retries last.
    idp.fake.fail_next_token_requests(&[503; 20]);
    let (url, flow) = start_sign_in(idp.config()).await;

    let dom = open_in_chromium(&chromium, url.as_str()).await;
    let err = finish(flow).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(!dom.contains("Signed in"), "{dom}");
    assert!(dom.contains("not completed"), "{dom}");
    assert!(dom.contains("close this tab"), "{dom}");
}

#[tokio::test]
async fn chromium_signs_in_with_an_ip_address_redirect() {
    let Some(chromium) = chromium() else { return };
    let idp = Idp::default().await;
    let config = MicrosoftAuthConfig::builder(auth_support::CLIENT_ID)
        .with_login_base_url(idp.server.url())
        .with_retry(RetryConfig::fast())
        .with_loopback_host(LoopbackHost::Ip)
        .build()
        .unwrap();
    let (url, flow) = start_sign_in(config).await;
    assert!(param(&url, "redirect_uri").starts_with("http://127.0.0.1:"));

    let dom = open_in_chromium(&chromium, url.as_str()).await;
    assert!(dom.contains("Signed in"), "{dom}");
    let tokens = finish(flow).await.unwrap();
    assert!(idp.fake.is_valid_access_token(tokens.access_token.expose()));
}
