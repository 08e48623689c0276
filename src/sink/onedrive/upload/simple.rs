//! One `PUT` for files up to the cutoff (and empty files, which sessions cannot carry,
//! onedrive-graph.md §3).

use super::{Reader, Uploaded, discard, upload_failure};
use crate::error::{Error, Result};
use crate::model::Body;
use crate::sink::onedrive::model::DriveItem;
use crate::sink::onedrive::request::{BodySource, GraphClient, parse_json};
use bytes::Bytes;
use reqwest::Method;
use std::sync::Arc;

struct TeeState {
    reader: Reader,
    kept: Vec<Bytes>,
    problem: Option<Error>,
}

impl TeeState {
    async fn pull(&mut self) -> Option<std::io::Result<Bytes>> {
        if self.problem.is_some() {
            return Some(Err(std::io::Error::other("the body failed")));
        }
        match self.reader.next_chunk().await {
            Ok(Some(chunk)) => {
                self.kept.push(chunk.clone());
                Some(Ok(chunk))
            }
            Ok(None) => None,
            Err(e) => {
                self.problem = Some(e);
                Some(Err(std::io::Error::other("the body failed")))
            }
        }
    }
}

/// Streams the body on the first attempt while keeping its chunks (at most the cutoff),
/// and resends the kept chunks on a retry, so the source is read exactly once.
struct Tee {
    state: Arc<tokio::sync::Mutex<TeeState>>,
    total: u64,
    first: bool,
}

impl BodySource for Tee {
    async fn next_body(&mut self) -> Result<Option<(reqwest::Body, u64)>> {
        if std::mem::take(&mut self.first) {
            let stream = futures::stream::unfold(self.state.clone(), |state| async move {
                let item = state.lock().await.pull().await;
                item.map(|item| (item, state))
            });
            return Ok(Some((reqwest::Body::wrap_stream(stream), self.total)));
        }
        let mut state = self.state.lock().await;
        // Finish reading what the failed attempt left unread, then resend everything.
        while state.pull().await.is_some_and(|r| r.is_ok()) {}
        if let Some(problem) = state.problem.take() {
            return Err(problem);
        }
        let chunks = state.kept.clone();
        let stream = futures::stream::iter(chunks.into_iter().map(Ok::<Bytes, std::io::Error>));
        Ok(Some((reqwest::Body::wrap_stream(stream), self.total)))
    }

    fn content_type(&self) -> Option<&'static str> {
        Some("application/octet-stream")
    }
}

/// One `PUT …:/{name}:/content?@microsoft.graph.conflictBehavior=fail`.
pub(crate) async fn simple(
    client: &GraphClient,
    parent_id: &str,
    name: &str,
    body: Body,
    what: &str,
) -> Result<Uploaded> {
    let url = client.simple_upload_url(parent_id, name);
    put(client, url, body, what).await
}

/// One `PUT /items/{item-id}/content`: replaces the content of a small file the sync
/// wrote and knows unchanged (the accountant's index). By id, not by name, so that it
/// can never create a file, nor overwrite one that took the name since.
pub(crate) async fn simple_replace(
    client: &GraphClient,
    item_id: &str,
    body: Body,
    what: &str,
) -> Result<Uploaded> {
    let url = client.replace_content_url(item_id);
    put(client, url, body, what).await
}

async fn put(client: &GraphClient, url: String, body: Body, what: &str) -> Result<Uploaded> {
    let total = body.len();
    let state = Arc::new(tokio::sync::Mutex::new(TeeState {
        reader: Reader::new(body, what),
        kept: Vec::new(),
        problem: None,
    }));
    let mut tee = Tee {
        state: state.clone(),
        total,
        first: true,
    };
    let result = client
        .call("upload a file", Method::PUT, &url, &mut tee)
        .await;
    let mut state = state.lock().await;
    if let Some(problem) = state.problem.take() {
        return Err(problem);
    }
    let response = match result {
        Ok(response) => response,
        Err(failure) => return Err(upload_failure(client, failure, total).await),
    };
    let item: DriveItem = parse_json("upload a file", &response)?;
    // The request only carried `total` bytes; make sure the body had no more.
    let extra = match state.reader.next_chunk().await {
        Ok(None) => None,
        Ok(Some(_)) => Some(state.reader.integrity("more bytes".into())),
        Err(e) => Some(e),
    };
    if let Some(error) = extra {
        discard(client, &item).await;
        return Err(error);
    }
    Ok(Uploaded {
        item,
        len: total,
        hash: state.reader.hasher.to_base64(),
    })
}
