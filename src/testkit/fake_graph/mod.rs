//! A stateful fake of Microsoft Graph's OneDrive API on loopback, for tests and benchmarks.
//!
//! It keeps a drive with ids, answers item-by-id and by-path addressing
//! (`/items/{id}:/a/b:`, `/root:/…:`, `/special/approot:/…:`), children paging, folder
//! creation and simple `PUT` with conflictBehavior, upload sessions on a second port
//! (see [`FakeGraph::upload_server`]), delta with tombstones and 410 resyncs, `/me/drive`
//! quota with 507 when full, OneDrive's naming rules, sharing permissions, and seeded fault
//! injection. The same drive also answers the SharePoint-style prefix
//! `/_api/v2.0/drives/{drive-id}/…` ([`FakeGraph::sharepoint_url`]).
//!
//! ```
//! # async fn demo() -> std::io::Result<()> {
//! use receipt_sync::testkit::fake_graph::FakeGraph;
//! let graph = FakeGraph::start().await?;
//! graph.add_user_file(&graph.app_path("notes.txt"), b"hello".to_vec());
//! assert_eq!(graph.file(&graph.app_path("notes.txt")).as_deref(), Some(&b"hello"[..]));
//! # Ok(()) }
//! ```

mod api;
mod config;
mod delta;
mod drive;
mod edit;
mod faults;
mod items;
mod json;
mod names;
mod perms;
mod route;
mod scopes;
mod upload;
mod user;

pub use config::{FakeGraphConfig, PageLinks};
pub use faults::{Fault, FaultRule, RandomFaults};

use self::drive::{Conflict, Drive};
use crate::testkit::fake_identity::TokenScopes;
use crate::testkit::server::{FakeServer, RequestLog};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// An open upload session.
pub(crate) struct Session {
    parent: String,
    name: String,
    total: Option<u64>,
    received: Vec<u8>,
    conflict: Conflict,
    expired: bool,
}

/// Everything the two services share.
pub(crate) struct State {
    drive: Drive,
    sessions: HashMap<String, Session>,
    next_session: u64,
    next_perm: u64,
    faults: faults::Faults,
    accepted_tokens: Vec<String>,
    upload_auth_violations: u64,
    simple_upload_limit: u64,
    children_page_size: usize,
    max_page_size: usize,
    delta_page_size: usize,
    page_links: PageLinks,
    api_url: String,
    upload_url: String,
    arrivals: Vec<(Instant, String)>,
    corrupt_next_upload: bool,
    scope_rules: scopes::ScopeRules,
}

/// Flips the first byte (or adds one to an empty body): a bad upload for integrity tests.
fn corrupt(bytes: Bytes) -> Bytes {
    let mut v = bytes.to_vec();
    match v.first_mut() {
        Some(b) => *b ^= 0xFF,
        None => v.push(0),
    }
    Bytes::from(v)
}

/// The fake Graph: an API server and an upload server over one shared drive; both stop
/// when it is dropped.
pub struct FakeGraph {
    state: Arc<Mutex<State>>,
    api: FakeServer,
    upload: FakeServer,
}

impl std::fmt::Debug for FakeGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGraph")
            .field("api", &self.api.addr())
            .field("upload", &self.upload.addr())
            .finish()
    }
}

impl FakeGraph {
    /// Starts with the default configuration.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(FakeGraphConfig::default()).await
    }

    /// Starts with `config`.
    pub async fn start_with(config: FakeGraphConfig) -> std::io::Result<Self> {
        let mut drive = Drive::new(&config.app_name, config.quota_total);
        drive.cascade_tombstones = config.cascade_tombstones;
        drive.reserved_names = config.reserved_names;
        let state = Arc::new(Mutex::new(State {
            drive,
            sessions: HashMap::new(),
            next_session: 0,
            next_perm: 0,
            faults: faults::Faults::default(),
            accepted_tokens: config.accepted_tokens,
            upload_auth_violations: 0,
            simple_upload_limit: config.simple_upload_limit,
            children_page_size: config.children_page_size.max(1),
            max_page_size: config.max_page_size.max(1),
            delta_page_size: config.delta_page_size.max(1),
            page_links: PageLinks::Forward,
            api_url: String::new(),
            upload_url: String::new(),
            arrivals: Vec::new(),
            corrupt_next_upload: false,
            scope_rules: scopes::ScopeRules::default(),
        }));
        let api = FakeServer::start(Arc::new(api::GraphApi {
            state: state.clone(),
        }))
        .await?;
        let upload = FakeServer::start(Arc::new(upload::UploadHost {
            state: state.clone(),
        }))
        .await?;
        {
            let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
            s.api_url = api.url();
            s.upload_url = upload.url();
        }
        Ok(Self { state, api, upload })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The Graph base URL to give a client, `http://127.0.0.1:<port>/v1.0`.
    pub fn base_url(&self) -> String {
        format!("{}/v1.0", self.api.url())
    }

    /// The same drive, SharePoint-style: `http://127.0.0.1:<port>/_api/v2.0/drives/{id}`.
    pub fn sharepoint_url(&self) -> String {
        format!("{}/_api/v2.0/drives/{}", self.api.url(), self.drive_id())
    }

    /// The drive's id.
    pub fn drive_id(&self) -> String {
        self.lock().drive.drive_id.clone()
    }

    /// The API server (its own request counts and latency).
    pub fn api_server(&self) -> &FakeServer {
        &self.api
    }

    /// The upload-session server.
    pub fn upload_server(&self) -> &FakeServer {
        &self.upload
    }

    /// Requests served by both servers, per route (`GET /items/{id}/delta`,
    /// `PUT /upload/{session}`, …).
    pub fn requests(&self) -> RequestLog {
        let mut log = self.api.requests();
        for (route, n) in self.upload.requests().per_route {
            *log.per_route.entry(route).or_default() += n;
        }
        log
    }

    /// Forgets the requests counted so far (both servers).
    pub fn reset_requests(&self) {
        self.api.reset_requests();
        self.upload.reset_requests();
        self.lock().arrivals.clear();
    }

    /// When each request whose route starts with `route_prefix` arrived, in order.
    pub fn arrivals(&self, route_prefix: &str) -> Vec<Instant> {
        self.lock()
            .arrivals
            .iter()
            .filter(|(_, r)| r.starts_with(route_prefix))
            .map(|(t, _)| *t)
            .collect()
    }

    /// Adds a fault rule.
    pub fn inject(&self, rule: FaultRule) {
        self.lock().faults.add(rule);
    }

    /// Sets (or with `None` removes) seeded random faults.
    pub fn set_random_faults(&self, random: Option<RandomFaults>) {
        self.lock().faults.set_random(random);
    }

    /// Removes every fault rule and random fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Every fault injected so far, with its route.
    pub fn fault_log(&self) -> Vec<(String, Fault)> {
        self.lock().faults.log.clone()
    }

    /// Only these bearer tokens are accepted from now on (empty: any).
    pub fn set_accepted_tokens(&self, tokens: &[&str]) {
        self.lock().accepted_tokens = tokens.iter().map(|t| (*t).to_owned()).collect();
    }

    /// Requests to upload URLs that carried an `Authorization` header (each got a 401).
    pub fn upload_auth_violations(&self) -> u64 {
        self.lock().upload_auth_violations
    }

    /// Expires every open upload session (404 from now on).
    pub fn expire_upload_sessions(&self) {
        for session in self.lock().sessions.values_mut() {
            session.expired = true;
        }
    }

    /// Upload sessions open (not committed, cancelled or expired).
    pub fn open_upload_sessions(&self) -> usize {
        self.lock().sessions.values().filter(|s| !s.expired).count()
    }

    /// Bytes received so far by open upload sessions.
    pub fn session_bytes_received(&self) -> u64 {
        self.lock()
            .sessions
            .values()
            .map(|s| s.received.len() as u64)
            .sum()
    }

    /// Makes every delta token issued so far stale: the next use gets 410 `resyncRequired`.
    pub fn require_resync(&self) {
        self.lock().drive.epoch += 1;
    }

    /// Sets the drive's size: it is full once `bytes` are used (507 from then on).
    pub fn set_quota_total(&self, bytes: u64) {
        self.lock().drive.quota_total = bytes;
    }

    /// How paged answers (children, delta) link their pages from now on: a switch to serve
    /// a listing that goes round in a circle or gets stuck on a page.
    pub fn set_page_links(&self, links: PageLinks) {
        self.lock().page_links = links;
    }

    /// Shares a fake identity's token registry
    /// ([`FakeIdentity::token_scopes`](crate::testkit::fake_identity::FakeIdentity::token_scopes)):
    /// from now on, sharing (`createLink`, `invite`) answers 403 `accessDenied` to a token
    /// without `Files.ReadWrite`, as Graph does for personal accounts. Tokens the registry
    /// does not know are judged as before.
    pub fn check_token_scopes(&self, registry: TokenScopes) {
        self.lock().scope_rules.registry = Some(registry);
    }

    /// Reproduces the 2026 AppFolder refusal (onedrive-graph.md §0, §9, §12.2): with the
    /// registry `registry`, every drive call made with a token whose only file scope is
    /// `Files.ReadWrite.AppFolder` answers 403 `accessDenied`, until a token carrying
    /// `Files.ReadWrite` is used once (the reported one-time repair). Tokens with
    /// `Files.ReadWrite` always work.
    pub fn refuse_app_folder_only_tokens(&self, registry: TokenScopes) {
        let mut state = self.lock();
        state.scope_rules.registry = Some(registry);
        state.scope_rules.refuse_app_folder_only = true;
        state.scope_rules.repaired = false;
    }

    /// Requests answered 403 by the 2026 AppFolder refusal so far.
    pub fn app_folder_refusals(&self) -> u64 {
        self.lock().scope_rules.refused
    }

    /// The next uploaded file is stored with its first byte flipped (a hash mismatch).
    pub fn corrupt_next_upload(&self) {
        self.lock().corrupt_next_upload = true;
    }
}
