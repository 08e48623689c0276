//! The one-shot loopback HTTP listener that receives the browser's redirect after sign-in.
//!
//! Minimal HTTP/1.1: read one request line (the headers are dropped), answer a small page,
//! close. Each connection is served on its own task, so a browser's idle pre-connection
//! cannot hold up the real one. The redirect that counts is answered last, once the sign-in's
//! outcome is known, so that the browser never says "signed in" when the code was refused.

use crate::auth::SecretString;
use crate::error::{Error, Result};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use url::Url;

/// The longest request line kept: a redirect with a code and a state fits in a few KiB.
const MAX_REQUEST_LINE: usize = 16 * 1024;
/// How many header bytes after it are read and dropped before answering. A browser sends
/// every cookie it holds for `localhost`, whatever the port, so another local web app's
/// cookies can make the head tens of KiB; closing with them unread would reset the
/// connection and could lose the answer.
const MAX_HEADERS: usize = 1024 * 1024;
/// How long one connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long writing a page may take: a browser that stops reading must not hold the
/// sign-in up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the browser brought back, its `state` already checked.
pub(crate) enum Redirect {
    /// The authorization code.
    Code(SecretString),
    /// Microsoft's (or the user's) refusal: `error` and `error_description`.
    Error {
        code: String,
        description: Option<String>,
    },
}

/// Listens on `127.0.0.1` and, when the machine has IPv6, `[::1]` on the same port: a browser
/// may resolve `localhost` to either, and Chromium tries `::1` first.
pub(crate) struct LoopbackListener {
    v4: TcpListener,
    v6: Option<TcpListener>,
    port: u16,
}

/// How many random ports are tried for one free on both loopback addresses.
const BIND_ATTEMPTS: usize = 16;

impl LoopbackListener {
    /// Binds a random port free on `127.0.0.1` and, with `also_ipv6`, on `[::1]`.
    pub(crate) async fn bind(also_ipv6: bool) -> Result<Self> {
        Self::bind_trying(also_ipv6, 0).await
    }

    /// [`bind`](Self::bind), trying `first_port` before random ones (`0` for random at once).
    async fn bind_trying(also_ipv6: bool, first_port: u16) -> Result<Self> {
        let mut candidate = first_port;
        for _ in 0..BIND_ATTEMPTS {
            let v4 = match TcpListener::bind(("127.0.0.1", candidate)).await {
                Ok(v4) => v4,
                Err(_) if candidate != 0 => {
                    candidate = 0;
                    continue;
                }
                Err(e) => return Err(Error::io("listen on", "127.0.0.1:0", e)),
            };
            let port = v4
                .local_addr()
                .map_err(|e| Error::io("listen on", "127.0.0.1:0", e))?
                .port();
            if !also_ipv6 {
                return Ok(Self { v4, v6: None, port });
            }
            match TcpListener::bind(("::1", port)).await {
                Ok(v6) => {
                    return Ok(Self {
                        v4,
                        v6: Some(v6),
                        port,
                    });
                }
                // Another program answers `[::1]:port`: the browser would take the redirect,
                // code and state included, there. Try another port.
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => candidate = 0,
                // No IPv6 loopback on this machine: the browser falls back to 127.0.0.1.
                Err(_) => return Ok(Self { v4, v6: None, port }),
            }
        }
        Err(Error::io(
            "find a port free on both 127.0.0.1 and [::1] to listen on",
            "localhost",
            std::io::ErrorKind::AddrInUse.into(),
        ))
    }

    /// The port bound.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Serves connections until one brings a redirect whose `state` equals `expected`, and
    /// returns it with its connection, still waiting for its page.
    ///
    /// Requests with another (or no) `state` are answered 400 and ignored: a forged
    /// redirect (CSRF) must neither be exchanged nor end the wait for the real one.
    pub(crate) async fn wait(self, expected: &str) -> (Redirect, PendingAnswer) {
        let expected: Arc<str> = Arc::from(expected);
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.v4.accept() => {
                    if let Ok((stream, _)) = accepted {
                        connections.spawn(serve(stream, expected.clone()));
                    }
                }
                accepted = accept_maybe(self.v6.as_ref()) => {
                    if let Ok((stream, _)) = accepted {
                        connections.spawn(serve(stream, expected.clone()));
                    }
                }
                Some(served) = connections.join_next(), if !connections.is_empty() => {
                    if let Ok(Some(counted)) = served {
                        return counted;
                    }
                }
            }
        }
    }
}

async fn accept_maybe(
    listener: Option<&TcpListener>,
) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// How the sign-in ended, for the page the browser shows.
pub(crate) enum Outcome {
    /// Tokens were obtained.
    SignedIn,
    /// Refused, failed or timed out; the terminal says why.
    NotCompleted,
}

/// The browser's connection that brought the redirect, kept open until the outcome is known.
pub(crate) struct PendingAnswer {
    stream: TcpStream,
}

impl PendingAnswer {
    /// Shows the outcome in the browser and closes the connection.
    pub(crate) async fn send(mut self, outcome: Outcome) {
        let (title, text) = match outcome {
            Outcome::SignedIn => (
                "Signed in",
                "receipt-sync is signed in. You can close this tab.",
            ),
            Outcome::NotCompleted => (
                "Sign-in not completed",
                "Sign-in was not completed. You can close this tab; receipt-sync explains \
                 what happened in the terminal.",
            ),
        };
        answer(&mut self.stream, "200 OK", &page(title, text)).await;
    }
}

/// Reads one request and answers it, unless it is the redirect that counts: that one is
/// returned with its connection.
async fn serve(mut stream: TcpStream, expected: Arc<str>) -> Option<(Redirect, PendingAnswer)> {
    let line = tokio::time::timeout(READ_TIMEOUT, read_request_line(&mut stream))
        .await
        .ok()
        .flatten()?;
    match decide(&line, &expected) {
        Decision::Counts(redirect) => Some((redirect, PendingAnswer { stream })),
        Decision::Refuse(status, page) => {
            answer(&mut stream, status, &page).await;
            None
        }
    }
}

/// Writes a page and closes. The page is a courtesy to the browser: a failure to deliver it
/// changes nothing.
async fn answer(stream: &mut TcpStream, status: &str, page: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{page}",
        page.len()
    );
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Reads the request line, then drops the headers (only the line matters here).
async fn read_request_line(stream: &mut TcpStream) -> Option<String> {
    let mut seen = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let mut ended = false;
    let line_end = loop {
        if let Some(at) = find(&seen, b"\r\n") {
            break at;
        }
        if seen.len() > MAX_REQUEST_LINE {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            ended = true;
            break seen.len();
        }
        seen.extend_from_slice(chunk.get(..n)?);
    };
    let line = String::from_utf8(seen.get(..line_end)?.to_vec()).ok()?;
    // The head ends with an empty line; keep only a short tail, which may hold part of it.
    let mut tail = seen.split_off(line_end);
    let mut drained = tail.len();
    while !ended && find(&tail, b"\r\n\r\n").is_none() && drained <= MAX_HEADERS {
        tail.drain(..tail.len().saturating_sub(3));
        // The line is what counts: a connection broken while draining still gets its answer
        // attempted.
        let Ok(n) = stream.read(&mut chunk).await else {
            break;
        };
        ended = n == 0;
        tail.extend_from_slice(chunk.get(..n)?);
        drained += n;
    }
    Some(line)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What one request is.
enum Decision {
    /// The redirect of this sign-in: answered once the outcome is known.
    Counts(Redirect),
    /// Anything else: answered at once with this status and page, then forgotten.
    Refuse(&'static str, String),
}

fn decide(request_line: &str, expected: &str) -> Decision {
    let mut parts = request_line.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let url = match target.strip_prefix('/') {
        Some(rest) => Url::parse(&format!("http://localhost/{rest}")).ok(),
        None => None,
    };
    let Some(url) = url.filter(|u| method == "GET" && u.path() == "/") else {
        return Decision::Refuse("404 Not Found", page("Not found", "Nothing here."));
    };
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    // CSRF (RFC 6749 §10.12): only a redirect carrying the state this sign-in sent counts.
    if !param("state").is_some_and(|s| constant_time_eq(s.as_bytes(), expected.as_bytes())) {
        tracing::warn!("ignored a sign-in redirect whose state does not match this sign-in");
        let text = "This page does not belong to the sign-in receipt-sync is waiting for. \
                    Close this tab and use the link receipt-sync gave you.";
        return Decision::Refuse("400 Bad Request", page("Sign-in link not recognised", text));
    }
    if let Some(code) = param("error") {
        return Decision::Counts(Redirect::Error {
            code,
            description: param("error_description"),
        });
    }
    match param("code") {
        Some(code) if !code.is_empty() => Decision::Counts(Redirect::Code(SecretString::new(code))),
        _ => Decision::Refuse(
            "400 Bad Request",
            page("Sign-in link incomplete", "The link carries no code."),
        ),
    }
}

fn page(title: &str, text: &str) -> String {
    // Both strings are constants of this module: nothing from the request is echoed.
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{text}</p></body></html>"
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_port_taken_on_ipv6_loopback_is_not_used() {
        // Another program holds `[::1]:port` while `127.0.0.1:port` is free.
        let Ok(squatter) = TcpListener::bind(("::1", 0)).await else {
            eprintln!("!!!!! no IPv6 loopback address (::1) here: nothing to test !!!!!");
            return;
        };
        let taken = squatter.local_addr().unwrap().port();
        let listener = LoopbackListener::bind_trying(true, taken).await.unwrap();
        assert_ne!(listener.port(), taken);
        assert!(listener.v6.is_some());
        let v4 = LoopbackListener::bind_trying(false, 0).await.unwrap();
        assert!(v4.v6.is_none());
    }

    fn refused(decision: &Decision) -> Option<&'static str> {
        match decision {
            Decision::Refuse(status, _) => Some(status),
            Decision::Counts(_) => None,
        }
    }

    #[test]
    fn decides_on_state_path_and_params() {
        let d = decide("GET /?code=abc&state=xyz HTTP/1.1", "xyz");
        assert!(matches!(d, Decision::Counts(Redirect::Code(c)) if c.expose() == "abc"));
        let d = decide("GET /?code=abc&state=forged HTTP/1.1", "xyz");
        assert!(refused(&d).is_some_and(|s| s.starts_with("400")));
        let d = decide("GET /?code=abc HTTP/1.1", "xyz");
        assert!(refused(&d).is_some_and(|s| s.starts_with("400")));
        let d = decide("GET /favicon.ico HTTP/1.1", "xyz");
        assert!(refused(&d).is_some_and(|s| s.starts_with("404")));
        let d = decide("POST /?code=a&state=xyz HTTP/1.1", "xyz");
        assert!(refused(&d).is_some());
        let d = decide("GET /?error=access_denied&state=xyz HTTP/1.1", "xyz");
        assert!(
            matches!(d, Decision::Counts(Redirect::Error { code, .. }) if code == "access_denied")
        );
        let d = decide("garbage", "xyz");
        assert!(refused(&d).is_some_and(|s| s.starts_with("404")));
    }
}
