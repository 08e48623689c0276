//! A small loopback HTTP server for stateful fakes of remote APIs.
//!
//! A fake implements [`FakeService`]: it sees each request whole and answers with a
//! [`FakeResponse`], which can also misbehave the way real networks do (a dropped
//! connection, a truncated body). The server counts requests per route and can add
//! latency to every answer, so benchmarks and request-budget tests read the same
//! numbers.

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A request as a fake sees it: fully read.
#[derive(Clone, Debug)]
pub struct FakeRequest {
    /// The method.
    pub method: Method,
    /// The path, percent-decoded.
    pub path: String,
    /// The raw path as sent, before decoding.
    pub raw_path: String,
    /// The query parameters, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl FakeRequest {
    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of query parameter `name` (for `name[]=a&name[]=b`, pass `name[]`).
    pub fn query_params<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Header `name` as a string, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A fake's answer.
#[derive(Clone, Debug)]
pub enum FakeResponse {
    /// A complete response.
    Full {
        /// Status code.
        status: StatusCode,
        /// Headers (`Content-Length` is set by the server).
        headers: Vec<(HeaderName, HeaderValue)>,
        /// Body.
        body: Bytes,
    },
    /// Headers announcing `body.len()` bytes, then only the first `sent` of them, then
    /// the connection is cut: a truncated download.
    Truncated {
        /// Status code.
        status: StatusCode,
        /// Headers.
        headers: Vec<(HeaderName, HeaderValue)>,
        /// The full body that was announced.
        body: Bytes,
        /// How many bytes are actually sent.
        sent: usize,
    },
    /// The connection is closed without an answer.
    Drop,
}

impl FakeResponse {
    /// A response with `status` and an empty body.
    pub fn status(status: u16) -> Self {
        FakeResponse::Full {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::status(status)
            .with_header("content-type", "application/json")
            .with_body(serde_json::to_vec(value).unwrap_or_default())
    }

    /// A response with raw bytes.
    pub fn bytes(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        Self::status(status)
            .with_header("content-type", content_type)
            .with_body(body)
    }

    /// Adds a header (ignored if the name or value is invalid).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let (
            FakeResponse::Full { headers, .. } | FakeResponse::Truncated { headers, .. },
            Ok(n),
            Ok(v),
        ) = (
            &mut self,
            HeaderName::try_from(name),
            HeaderValue::try_from(value),
        ) {
            headers.push((n, v));
        }
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, new_body: impl Into<Bytes>) -> Self {
        if let FakeResponse::Full { body, .. } | FakeResponse::Truncated { body, .. } = &mut self {
            *body = new_body.into();
        }
        self
    }

    /// This response, cut after `sent` bytes of its body.
    pub fn truncated(self, sent: usize) -> Self {
        match self {
            FakeResponse::Full {
                status,
                headers,
                body,
            }
            | FakeResponse::Truncated {
                status,
                headers,
                body,
                ..
            } => FakeResponse::Truncated {
                status,
                headers,
                sent: sent.min(body.len().saturating_sub(1)),
                body,
            },
            FakeResponse::Drop => FakeResponse::Drop,
        }
    }
}

/// A fake remote API.
pub trait FakeService: Send + Sync + 'static {
    /// Answers one request.
    fn handle(&self, request: FakeRequest) -> BoxFuture<'_, FakeResponse>;

    /// The route a request counts under in [`RequestLog`] (default: method and path).
    /// Fakes override it to group paths with ids, e.g. `PUT /items/{id}/content`.
    fn route(&self, request: &FakeRequest) -> String {
        format!("{} {}", request.method, request.path)
    }
}

/// Requests served so far, per route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestLog {
    /// Count per route.
    pub per_route: BTreeMap<String, u64>,
}

impl RequestLog {
    /// Requests in all.
    pub fn total(&self) -> u64 {
        self.per_route.values().sum()
    }

    /// Requests on routes starting with `prefix`.
    pub fn matching(&self, prefix: &str) -> u64 {
        self.per_route
            .iter()
            .filter(|(route, _)| route.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }
}

#[derive(Default)]
struct Shared {
    log: Mutex<RequestLog>,
    latency: Mutex<Duration>,
}

/// A fake service listening on `127.0.0.1`; it stops when dropped.
pub struct FakeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeServer {
    /// Starts serving `service` on a free loopback port.
    pub async fn start(service: Arc<dyn FakeService>) -> std::io::Result<Self> {
        Self::start_on(service, 0).await
    }

    /// Starts serving `service` on loopback port `port` (0: any free port).
    pub async fn start_on(service: Arc<dyn FakeService>, port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let (stop, mut stopped) = watch::channel(false);
        let accept_shared = shared.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(conn) => conn,
                        Err(_) => continue,
                    },
                    _ = stopped.changed() => break,
                };
                let service = service.clone();
                let shared = accept_shared.clone();
                let mut conn_stopped = stopped.clone();
                tokio::spawn(async move {
                    let svc =
                        service_fn(move |req| serve_one(service.clone(), shared.clone(), req));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = conn_stopped.changed() => {}
                    }
                });
            }
        });
        Ok(Self { addr, shared, stop })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's base URL, `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests served so far.
    pub fn requests(&self) -> RequestLog {
        self.shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets the requests counted so far.
    pub fn reset_requests(&self) {
        *self
            .shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = RequestLog::default();
    }

    /// Delays every answer by `latency` from now on.
    pub fn set_latency(&self, latency: Duration) {
        *self
            .shared
            .latency
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = latency;
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

type ResponseBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

async fn serve_one(
    service: Arc<dyn FakeService>,
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return Err(std::io::Error::other(e)),
    };
    let raw_path = parts.uri.path().to_owned();
    let path = percent_decode(&raw_path);
    let query = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let request = FakeRequest {
        method: parts.method,
        path,
        raw_path,
        query,
        headers: parts.headers,
        body,
    };
    let route = service.route(&request);
    *shared
        .log
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .per_route
        .entry(route)
        .or_default() += 1;
    let latency = *shared
        .latency
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match service.handle(request).await {
        FakeResponse::Full {
            status,
            headers,
            body,
        } => Ok(build(
            status,
            headers,
            Full::new(body).map_err(|e: Infallible| match e {}).boxed(),
        )),
        FakeResponse::Truncated {
            status,
            headers,
            body,
            sent,
        } => {
            let announced = body.len();
            let head = body.slice(..sent);
            // Let the head reach the client before the cut, as on a real network.
            let cut = async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err(std::io::Error::other("connection cut by the fake"))
            };
            let frames = futures::stream::once(async move { Ok(Frame::data(head)) })
                .chain(futures::stream::once(cut));
            let mut response = build(status, headers, BodyExt::boxed(StreamBody::new(frames)));
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(announced));
            Ok(response)
        }
        FakeResponse::Drop => Err(std::io::Error::other("connection dropped by the fake")),
    }
}

fn build(
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: ResponseBody,
) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    for (name, value) in headers {
        response.headers_mut().append(name, value);
    }
    response
}

pub(crate) fn percent_decode(path: &str) -> String {
    // Decode %XX sequences into bytes, then read the bytes as UTF-8 (lossily).
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl FakeService for Echo {
        fn handle(&self, request: FakeRequest) -> BoxFuture<'_, FakeResponse> {
            Box::pin(async move {
                match request.path.as_str() {
                    "/drop" => FakeResponse::Drop,
                    "/cut" => FakeResponse::bytes(200, "text/plain", vec![7u8; 1000]).truncated(10),
                    _ => FakeResponse::json(
                        200,
                        &serde_json::json!({"path": request.path, "q": request.query_param("a")}),
                    ),
                }
            })
        }
    }

    #[tokio::test]
    async fn serves_counts_and_misbehaves() {
        let server = FakeServer::start(Arc::new(Echo)).await.unwrap();
        let http = reqwest::Client::new();
        let ok: serde_json::Value = http
            .get(format!("{}/a%20b?a=1%202", server.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ok["path"], "/a b");
        assert_eq!(ok["q"], "1 2");
        assert!(
            http.get(format!("{}/drop", server.url()))
                .send()
                .await
                .is_err()
        );
        let cut = http
            .get(format!("{}/cut", server.url()))
            .send()
            .await
            .unwrap();
        assert!(cut.bytes().await.is_err());
        assert_eq!(server.requests().total(), 3);
        assert_eq!(server.requests().per_route["GET /drop"], 1);
    }
}
