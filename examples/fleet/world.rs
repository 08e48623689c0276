//! The fakes for N demo organisations: one fake Qonto serving every organisation (each
//! its own API key), one fake Microsoft identity, and one fake Graph per organisation
//! (a fake Graph serves one drive). Also what they can tell afterwards: the files each
//! drive holds and the uploads it received.

use receipt_sync::testkit::fake_graph::FakeGraph;
use receipt_sync::testkit::fake_identity::{FakeIdentity, FakeIdentityConfig};
use receipt_sync::testkit::fake_qonto::{FakeQonto, NewTransaction};
use receipt_sync::testkit::server::FakeServer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The app registration the fake identity accepts.
pub const CLIENT_ID: &str = "fake-client-id";

/// What a worker needs to reach the fakes: written by `fakes`, read by `workers
/// --fakes FILE`. Fake credentials only.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FakesInfo {
    /// The fake Qonto's API.
    pub qonto_url: String,
    /// The fake identity's base URL.
    pub login_url: String,
    /// The client id it accepts.
    pub client_id: String,
    /// The organisations.
    pub organisations: Vec<OrgInfo>,
}

/// One demo organisation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrgInfo {
    /// Its id in the fleet.
    pub id: String,
    /// Its name for people.
    pub display_name: String,
    /// Its own drive's Graph base URL.
    pub graph_url: String,
    /// Its Qonto API key: login.
    pub qonto_login: String,
    /// Its Qonto API key: secret key (a fake's).
    pub qonto_secret_key: String,
    /// Its Microsoft refresh token (a fake's).
    pub refresh_token: String,
    /// Receipts at its bank.
    pub receipts: usize,
}

/// What one organisation's drive shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveReport {
    /// Receipts at the bank.
    pub receipts: usize,
    /// Files in the app folder.
    pub files: usize,
    /// Receipts whose bytes are in no file.
    pub missing: usize,
    /// Files beyond one per receipt (a receipt archived twice, or a stray file).
    pub duplicates: usize,
    /// Upload requests received (simple uploads and upload sessions opened): more
    /// than `receipts` means some upload was sent again.
    pub uploads: u64,
}

/// The running fakes.
pub struct World {
    qonto: FakeQonto,
    login: FakeServer,
    orgs: Vec<(OrgInfo, FakeGraph, Vec<Vec<u8>>)>,
}

impl World {
    /// Fakes for `count` organisations of `receipts` receipts each, every request
    /// delayed by `latency` (so that a pass lasts long enough to be interrupted).
    pub async fn start(count: usize, receipts: usize, latency: Duration) -> std::io::Result<Self> {
        let qonto = FakeQonto::start().await?;
        qonto.set_latency(latency);
        let identity = FakeIdentity::new(FakeIdentityConfig::default().with_client_id(CLIENT_ID));
        let login = FakeServer::start(identity.clone()).await?;
        let mut orgs = Vec::with_capacity(count);
        for n in 1..=count {
            let organisation = qonto.add_organisation(&format!("fleet-demo-{n}"));
            let account = organisation.add_account("Compte principal");
            let mut expected = Vec::with_capacity(receipts);
            for r in 0..receipts {
                let label = format!("Fournisseur {r} — société {n}");
                let tx = organisation
                    .add_transaction(&account.id, NewTransaction::debit(1_000 + r as i64, &label));
                let mut bytes = format!("%PDF-1.7 organisation {n} receipt {r};").into_bytes();
                bytes.resize(bytes.len() + 2_000 + 97 * r, b'.');
                organisation.add_attachment(
                    &tx,
                    &format!("receipt-{r}.pdf"),
                    "application/pdf",
                    bytes.clone(),
                );
                expected.push(bytes);
            }
            let graph = FakeGraph::start().await?;
            graph.api_server().set_latency(latency);
            graph.upload_server().set_latency(latency);
            // Graph refuses tokens the identity did not issue or that expired.
            graph.check_token_scopes(identity.token_scopes());
            let (_, refresh_token) =
                identity.issue_tokens(&["Files.ReadWrite.AppFolder", "offline_access"]);
            let (login_name, secret) = organisation.credentials();
            let info = OrgInfo {
                id: format!("demo-org-{n:02}"),
                display_name: format!("Demo company {n}"),
                graph_url: graph.base_url(),
                qonto_login: login_name,
                qonto_secret_key: secret.expose().to_owned(),
                refresh_token,
                receipts,
            };
            orgs.push((info, graph, expected));
        }
        Ok(Self { qonto, login, orgs })
    }

    /// How to reach them.
    pub fn info(&self) -> FakesInfo {
        FakesInfo {
            qonto_url: self.qonto.url(),
            login_url: self.login.url(),
            client_id: CLIENT_ID.to_owned(),
            organisations: self.orgs.iter().map(|(info, ..)| info.clone()).collect(),
        }
    }

    /// Each organisation's drive, by organisation id.
    pub fn report(&self) -> BTreeMap<String, DriveReport> {
        self.orgs
            .iter()
            .map(|(info, graph, expected)| (info.id.clone(), drive_report(graph, expected)))
            .collect()
    }
}

fn drive_report(graph: &FakeGraph, expected: &[Vec<u8>]) -> DriveReport {
    let root = format!("{}/", graph.app_path(""));
    let files: Vec<Vec<u8>> = graph
        .files()
        .into_iter()
        .filter(|(path, _)| path.starts_with(&root))
        .map(|(_, bytes)| bytes.to_vec())
        .collect();
    let mut counts: BTreeMap<&[u8], usize> = BTreeMap::new();
    for file in &files {
        *counts.entry(file.as_slice()).or_default() += 1;
    }
    let missing = expected
        .iter()
        .filter(|bytes| !counts.contains_key(bytes.as_slice()))
        .count();
    let requests = graph.requests();
    let uploads = requests
        .per_route
        .iter()
        .filter(|(route, _)| {
            (route.starts_with("PUT ") && route.ends_with("/content"))
                || route.ends_with("/createUploadSession")
        })
        .map(|(_, n)| n)
        .sum();
    DriveReport {
        receipts: expected.len(),
        files: files.len(),
        missing,
        duplicates: files.len().saturating_sub(expected.len() - missing),
        uploads,
    }
}
