//! An upload session: `createUploadSession`, then fragments in order, resumed from
//! `nextExpectedRanges` after a failure (onedrive-graph.md §3 "Upload sessions").

use super::{MAX_RESTARTS, Reader, UNIT, Uploaded, finish_error, upload_failure};
use crate::error::{Error, Result};
use crate::http::retry::jitter_from;
use crate::model::Body;
use crate::sink::onedrive::error::{SERVICE, malformed, network_error};
use crate::sink::onedrive::model::{DriveItem, UploadSession};
use crate::sink::onedrive::request::{GraphClient, read_failure, read_json};
use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE};
use reqwest::{Method, StatusCode};
use std::fmt;
use url::Url;

/// `uploadUrl` is pre-authenticated: whoever holds it can write the file, and its path and
/// query carry the token (`/rup/{drive}/{token…}`, `…&tempauth=…`: onedrive-graph.md §3
/// "Upload sessions"). `Debug` keeps its scheme, host and port, enough to tell services
/// apart in a log, and hides the rest.
impl fmt::Debug for UploadSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadSession")
            .field("upload_url", &self.upload_url.as_deref().map(RedactedUrl))
            .field("next_expected_ranges", &self.next_expected_ranges)
            .finish()
    }
}

/// A URL shown as `scheme://host[:port]/[redacted]` (or `[redacted]` when it does not parse).
struct RedactedUrl<'a>(&'a str);

impl fmt::Debug for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Url::parse(self.0) {
            Ok(url) if url.host_str().is_some() => {
                let host = url.host_str().unwrap_or_default();
                match url.port() {
                    Some(port) => write!(f, "\"{}://{host}:{port}/[redacted]\"", url.scheme()),
                    None => write!(f, "\"{}://{host}/[redacted]\"", url.scheme()),
                }
            }
            _ => f.write_str("[redacted]"),
        }
    }
}

enum Fragment {
    /// The final fragment committed the file.
    Done(DriveItem),
    /// More is expected from this offset.
    Next(Option<u64>),
    /// Ask the session where it stands (416, or a 202 whose body was cut).
    AskStatus,
    /// Back off, then ask the session where it stands (5xx, throttling, dropped connection).
    Retry(Error),
    /// The session is gone (404, or a 401 on its pre-authenticated URL).
    Expired,
    /// Give up and delete the session.
    Fatal(Error),
}

/// An upload session: `createUploadSession`, then fragments in order.
pub(crate) async fn session(
    client: &GraphClient,
    fragment_size: u64,
    parent_id: &str,
    name: &str,
    body: Body,
    what: &str,
) -> Result<Uploaded> {
    let fragment = usize::try_from(fragment_size).unwrap_or(UNIT).max(UNIT);
    let mut reader = Reader::new(body, what);
    let total = reader.total;
    // Bytes from `base` not yet acknowledged; one fragment-sized allocation, reused.
    let mut unacked = BytesMut::with_capacity(fragment);
    let mut restarts = 0;
    'session: loop {
        let url = open_session(client, parent_id, name, total).await?;
        let mut base = 0u64;
        let mut attempt = 0u32;
        let mut started = tokio::time::Instant::now();
        loop {
            if let Err(e) = reader.fill(&mut unacked, fragment).await {
                delete_session(client, &url).await;
                return Err(e);
            }
            let is_last = base + unacked.len() as u64 == total;
            let n = if is_last {
                unacked.len()
            } else {
                unacked.len() / UNIT * UNIT
            };
            if n == 0 {
                // Everything was acknowledged, yet the file was never committed.
                delete_session(client, &url).await;
                return Err(malformed(
                    "upload session",
                    "every byte was accepted but no item was returned",
                ));
            }
            let frag = unacked.split_to(n).freeze();
            let outcome = put_fragment(client, &url, base, &frag, total).await;
            let ack = match outcome {
                Fragment::Done(item) => {
                    return Ok(Uploaded {
                        item,
                        len: total,
                        hash: reader.hasher.to_base64(),
                    });
                }
                Fragment::Next(next) => {
                    // Counted like a failure until it proves to be progress (below), so a
                    // session that keeps asking for the same range cannot loop forever.
                    attempt += 1;
                    if attempt > client.retry.max_attempts {
                        delete_session(client, &url).await;
                        return Err(malformed("upload session", "the session makes no progress"));
                    }
                    Ok(next.unwrap_or(base + n as u64))
                }
                Fragment::Fatal(error) => {
                    delete_session(client, &url).await;
                    return Err(finish_error(client, error, total).await);
                }
                Fragment::Expired => Err(()),
                Fragment::AskStatus | Fragment::Retry(_) => {
                    attempt += 1;
                    let give_up = match outcome {
                        Fragment::Retry(error) => {
                            let jitter = jitter_from(started, attempt);
                            match client.retry.delay_after(
                                attempt,
                                &error,
                                started.elapsed(),
                                jitter,
                            ) {
                                Some(delay) => {
                                    tokio::time::sleep(delay).await;
                                    None
                                }
                                None => Some(error),
                            }
                        }
                        _ if attempt >= client.retry.max_attempts => Some(malformed(
                            "upload session",
                            "the session keeps refusing the range it asked for",
                        )),
                        _ => None,
                    };
                    if let Some(error) = give_up {
                        delete_session(client, &url).await;
                        return Err(error);
                    }
                    session_status(client, &url)
                        .await
                        .map(|next| next.unwrap_or(base))
                }
            };
            match ack {
                Ok(ack) if ack > base + n as u64 => {
                    delete_session(client, &url).await;
                    return Err(malformed(
                        "upload session",
                        "the session claims bytes that were never sent",
                    ));
                }
                Ok(ack) if ack >= base => {
                    let rel = usize::try_from(ack - base).unwrap_or(n);
                    if rel < n {
                        // Partly or not at all received: what is missing goes first again.
                        let mut merged =
                            BytesMut::with_capacity(fragment.max(n - rel + unacked.len()));
                        merged.extend_from_slice(&frag[rel..]);
                        merged.extend_from_slice(&unacked);
                        unacked = merged;
                    }
                    drop(frag);
                    // Only a unit or more (or the end) counts as progress: a session that
                    // creeps forward a few bytes per answer would otherwise cost one request
                    // per byte; it is bounded by the attempts like one that does not move.
                    if ack >= base + UNIT as u64 || ack == total {
                        attempt = 0;
                        started = tokio::time::Instant::now();
                    }
                    base = ack;
                    // Reclaims the one allocation once the sent fragment is released.
                    unacked.reserve(fragment.saturating_sub(unacked.len()));
                }
                // The session lost bytes we no longer hold, or expired (a 404: already gone).
                Ok(_) | Err(()) => {
                    if ack.is_ok() {
                        delete_session(client, &url).await;
                    }
                    if base == 0 && restarts < MAX_RESTARTS {
                        // Every byte read is still held: start over in a new session.
                        restarts += 1;
                        let mut merged = BytesMut::with_capacity(fragment.max(n + unacked.len()));
                        merged.extend_from_slice(&frag);
                        merged.extend_from_slice(&unacked);
                        unacked = merged;
                        tracing::debug!(restarts, "upload session expired; restarting it");
                        continue 'session;
                    }
                    return Err(Error::Transient {
                        service: SERVICE,
                        operation: "upload a file".into(),
                        message: format!(
                            "the upload session expired after {base} of {total} bytes; \
                             the upload starts over"
                        ),
                        retry_after: None,
                    });
                }
            }
        }
    }
}

async fn open_session(
    client: &GraphClient,
    parent_id: &str,
    name: &str,
    total: u64,
) -> Result<Url> {
    let session: UploadSession = match client.create_upload_session(parent_id, name, total).await {
        Ok(session) => session,
        Err(failure) => return Err(upload_failure(client, failure, total).await),
    };
    let raw = session
        .upload_url
        .ok_or_else(|| malformed("uploadUrl", "missing"))?;
    let url = Url::parse(&raw).map_err(|e| malformed("uploadUrl", e.to_string()))?;
    crate::sink::onedrive::builder::check_scheme(&url)
        .map_err(|why| malformed("uploadUrl", why))?;
    Ok(url)
}

async fn put_fragment(
    client: &GraphClient,
    url: &Url,
    base: u64,
    frag: &Bytes,
    total: u64,
) -> Fragment {
    let end = base + frag.len() as u64;
    let request = match client.upload_request(Method::PUT, url).await {
        Ok(request) => request,
        Err(stop) => return Fragment::Fatal(stop),
    };
    let request = request
        .header(
            CONTENT_RANGE,
            format!("bytes {base}-{}/{total}", end.saturating_sub(1)),
        )
        .header(CONTENT_LENGTH, frag.len())
        .body(frag.clone());
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return Fragment::Retry(network_error("upload a fragment", &e)),
    };
    match response.status().as_u16() {
        200 | 201 => match read_json::<DriveItem>("upload a fragment", response).await {
            Ok(item) => Fragment::Done(item),
            Err(e) => Fragment::Fatal(e),
        },
        202 => match read_json::<UploadSession>("upload a fragment", response).await {
            Ok(status) => Fragment::Next(first_expected(&status.next_expected_ranges)),
            Err(_) => Fragment::AskStatus,
        },
        // Bytes the service already has, or a range it did not expect (onedrive-graph.md §3).
        416 => Fragment::AskStatus,
        // The session is gone: start the whole upload over (onedrive-graph.md §3).
        404 | 401 => Fragment::Expired,
        _ => {
            let failure = read_failure(response).await;
            let status = failure.status;
            if let Err(stop) = client.note_throttling(&failure, "upload a fragment") {
                return Fragment::Fatal(stop);
            }
            let error = failure.into_error("upload a fragment", client.app_folder);
            if status.is_server_error() && status != StatusCode::INSUFFICIENT_STORAGE
                || status == StatusCode::TOO_MANY_REQUESTS
            {
                Fragment::Retry(error)
            } else {
                Fragment::Fatal(error)
            }
        }
    }
}

/// `GET {uploadUrl}`: where the session stands. `Err(())` when it expired.
async fn session_status(client: &GraphClient, url: &Url) -> std::result::Result<Option<u64>, ()> {
    let Ok(request) = client.upload_request(Method::GET, url).await else {
        // Throttled past the ceiling: the next fragment attempt stops the upload.
        return Ok(None);
    };
    let response = match request.send().await {
        Ok(response) => response,
        Err(_) => return Ok(None),
    };
    match response.status().as_u16() {
        200 => match read_json::<UploadSession>("read an upload session", response).await {
            Ok(status) => Ok(first_expected(&status.next_expected_ranges)),
            Err(_) => Ok(None),
        },
        404 | 401 => Err(()),
        _ => Ok(None),
    }
}

/// `DELETE {uploadUrl}`; best effort (expired sessions are cleaned up lazily anyway).
async fn delete_session(client: &GraphClient, url: &Url) {
    let Ok(request) = client.upload_request(Method::DELETE, url).await else {
        // Throttled past the ceiling: the session expires on its own.
        return;
    };
    if let Err(e) = request.send().await {
        tracing::debug!(error = %network_error("cancel an upload session", &e), "could not cancel the upload session");
    }
}

/// The start of the first missing range (`"12345-"` or `"12345-67890"`). The list may be
/// partial, so only its first entry is used, never as a fragment size (onedrive-graph.md §3).
pub(crate) fn first_expected(ranges: &[String]) -> Option<u64> {
    let first = ranges.first()?;
    first.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_upload_host_only() {
        let session: UploadSession = serde_json::from_str(
            r#"{"uploadUrl":"https://api.onedrive.com:8443/rup/8f3c2b1a/eyJSZXNvdXJjZUlE/4mq?tempauth=eyJ0eXAi.c2ln",
                "nextExpectedRanges":["0-"]}"#,
        )
        .unwrap();
        let shown = format!("{session:?} {session:#?}");
        for secret in [
            "rup",
            "8f3c2b1a",
            "eyJSZXNvdXJjZUlE",
            "4mq",
            "tempauth",
            "c2ln",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains(r#"Some("https://api.onedrive.com:8443/[redacted]")"#),
            "{shown}"
        );
        assert!(shown.contains("0-"), "{shown}");

        for raw in ["not a url tempauth=x", "data:text/plain,tempauth"] {
            let odd = UploadSession {
                upload_url: Some(raw.to_owned()),
                next_expected_ranges: Vec::new(),
            };
            let shown = format!("{odd:?}");
            assert!(!shown.contains("tempauth"), "{shown}");
        }
    }

    #[test]
    fn reads_the_first_expected_range() {
        assert_eq!(first_expected(&["327680-".into()]), Some(327_680));
        assert_eq!(first_expected(&["10-20".into(), "30-".into()]), Some(10));
        assert_eq!(first_expected(&[]), None);
        assert_eq!(first_expected(&["x-".into()]), None);
    }
}
