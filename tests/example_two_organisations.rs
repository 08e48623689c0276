//! Two organisations, each with its own key and its own home, archiving into one
//! OneDrive with `qonto-onedrive`: both have an account "Compte principal" whose IBAN
//! ends in the same four digits. Every receipt lands once, no folder holds both
//! organisations' receipts, and deleting A's account folder tombstones A's receipts
//! only: B's archive stays whole, and B's `status` and `plan` count nothing of A's. A
//! home used with the other organisation's key is refused (exit 2).
#![cfg(feature = "testkit")]

mod cli_support;

use chrono::{TimeZone, Utc};
use cli_support::Env;
use receipt_sync::testkit::fake_graph::FakeGraph;
use receipt_sync::testkit::fake_identity::{FakeIdentity, FakeIdentityConfig};
use receipt_sync::testkit::fake_qonto::{FakeOrganisation, FakeQonto, NewTransaction};
use receipt_sync::testkit::server::FakeServer;
use std::collections::{BTreeMap, BTreeSet};

/// One organisation: its key, its home, its OneDrive sign-in.
struct Organisation {
    name: &'static str,
    fake: FakeOrganisation,
    home: tempfile::TempDir,
    refresh_token: String,
}

struct World {
    qonto: FakeQonto,
    graph: FakeGraph,
    login: FakeServer,
    orgs: [Organisation; 2],
}

/// Nine receipts over two months in an account "Compte principal".
fn add_receipts(org: &FakeOrganisation, name: &str) {
    let account = org.add_account("Compte principal");
    for i in 0..9u32 {
        let at = Utc
            .with_ymd_and_hms(2026, 1 + i % 2, 3 + i, 10, 0, 0)
            .unwrap();
        let tx = org.add_transaction(
            &account.id,
            NewTransaction::debit(1000 + i64::from(i), "Fournisseur").emitted_at(at),
        );
        let bytes = format!("receipt {name}-{i};").into_bytes();
        org.add_attachment(&tx, &format!("{name}-{i}.pdf"), "application/pdf", bytes);
    }
}

impl World {
    async fn start() -> Self {
        let qonto = FakeQonto::start().await.unwrap();
        let graph = FakeGraph::start().await.unwrap();
        let identity = FakeIdentity::new(FakeIdentityConfig::default());
        let login = FakeServer::start(identity.clone()).await.unwrap();
        let org = |name, fake: FakeOrganisation| {
            add_receipts(&fake, name);
            let (_, refresh_token) =
                identity.issue_tokens(&["Files.ReadWrite.AppFolder", "offline_access"]);
            Organisation {
                name,
                fake,
                home: cli_support::indexcmd::home_without_indexes(),
                refresh_token,
            }
        };
        let a = org("A", qonto.organisation());
        let b = org("B", qonto.add_organisation("fake-org-5678"));
        Self {
            qonto,
            graph,
            login,
            orgs: [a, b],
        }
    }

    /// Runs the command for the organisation whose home is `home`, read with `key`'s credentials.
    async fn run_with(
        &self,
        home: &Organisation,
        key: &Organisation,
        args: &[&str],
    ) -> (i32, serde_json::Value, String) {
        let env = Env {
            qonto_url: self.qonto.url(),
            login_url: self.login.url(),
            graph_url: self.graph.base_url(),
            refresh_token: &home.refresh_token,
            home: home.home.path(),
        };
        let (login, secret) = key.fake.credentials();
        let out = env
            .command(args)
            .await
            .env("QONTO_LOGIN", login)
            .env("QONTO_SECRET_KEY", secret.expose())
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let doc = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("one JSON document ({e}): {stderr}"));
        (out.status.code().unwrap_or(-1), doc, stderr)
    }

    async fn run(&self, org: &Organisation, args: &[&str]) -> (i32, serde_json::Value, String) {
        self.run_with(org, org, args).await
    }

    /// The archive: receipt (`A-3`) → its paths, relative to the app folder.
    fn receipts(&self) -> BTreeMap<String, Vec<String>> {
        let root = format!("{}/", self.graph.app_path(""));
        let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (path, bytes) in self.graph.files() {
            let Some(relative) = path.strip_prefix(&root) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            let id = text
                .strip_prefix("receipt ")
                .and_then(|t| t.strip_suffix(';'))
                .unwrap_or_else(|| panic!("only receipts in the archive: {relative}"));
            found
                .entry(id.to_owned())
                .or_default()
                .push(relative.to_owned());
        }
        found
    }

    /// The top folder holding `org`'s receipts.
    fn account_folder(&self, org: &Organisation) -> String {
        let receipts = self.receipts();
        let (_, paths) = receipts
            .iter()
            .find(|(id, _)| id.starts_with(&format!("{}-", org.name)))
            .expect("an archived receipt");
        paths[0].split('/').next().unwrap().to_owned()
    }

    /// The app folder's tree, one path a line.
    fn tree(&self) -> String {
        let root = format!("{}/", self.graph.app_path(""));
        self.graph
            .tree()
            .into_iter()
            .filter_map(|p| p.strip_prefix(&root).map(str::to_owned))
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn done(doc: &serde_json::Value, kind: &str) -> u64 {
    doc["done"][kind].as_u64().unwrap_or(0)
}

/// Every receipt of `name` once, and the folders holding receipts of both: none.
fn assert_every_receipt_once_and_apart(world: &World, names: &[&str]) {
    let receipts = world.receipts();
    for name in names {
        for i in 0..9 {
            let id = format!("{name}-{i}");
            let paths = receipts.get(&id).map_or(0, Vec::len);
            assert_eq!(paths, 1, "{id} archived {paths} times:\n{}", world.tree());
        }
    }
    let mut owners: BTreeMap<String, BTreeSet<char>> = BTreeMap::new();
    for (id, paths) in &receipts {
        for path in paths {
            let (folder, _) = path.rsplit_once('/').unwrap();
            let mut prefix = String::new();
            for part in folder.split('/') {
                prefix.push_str(part);
                owners
                    .entry(prefix.clone())
                    .or_default()
                    .insert(id.chars().next().unwrap());
                prefix.push('/');
            }
        }
    }
    for (folder, orgs) in owners {
        assert_eq!(
            orgs.len(),
            1,
            "{folder} is shared by {orgs:?}:\n{}",
            world.tree()
        );
    }
}

#[tokio::test]
async fn two_organisations_share_one_drive_and_never_a_folder() {
    let world = World::start().await;
    let [a, b] = &world.orgs;
    for org in [a, b] {
        let (code, doc, stderr) = world.run(org, &["sync", "--json"]).await;
        assert_eq!(code, 0, "{}: {stderr}", org.name);
        assert_eq!(done(&doc, "upload"), 9, "{doc}");
    }
    assert_every_receipt_once_and_apart(&world, &["A", "B"]);
    let (a_folder, b_folder) = (world.account_folder(a), world.account_folder(b));
    assert!(a_folder.starts_with("Compte principal "), "{a_folder}");
    assert_ne!(a_folder.to_lowercase(), b_folder.to_lowercase());
    println!(
        "The app folder after both organisations' first sync:\n{}\n",
        world.tree()
    );

    // The user deletes A's account folder.
    let b_before: BTreeMap<_, _> = world
        .receipts()
        .into_iter()
        .filter(|(id, _)| id.starts_with("B-"))
        .collect();
    assert!(world.graph.delete_as_user(&world.graph.app_path(&a_folder)));
    let (code, doc, stderr) = world.run(a, &["sync", "--json"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(done(&doc, "tombstone"), 9, "{doc}");
    let (code, doc, stderr) = world.run(b, &["sync", "--json"]).await;
    assert_eq!(code, 0, "{stderr}");
    for kind in [
        "upload",
        "adopt",
        "tombstone",
        "rename-folder",
        "create-folder",
    ] {
        assert_eq!(done(&doc, kind), 0, "B did {kind}: {doc}");
    }
    let b_after: BTreeMap<_, _> = world.receipts();
    assert_eq!(b_after, b_before, "B's archive is whole, A's is gone");
    // A second pass of A changes nothing either: its receipts stay deleted.
    let (code, doc, stderr) = world.run(a, &["sync", "--json"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(done(&doc, "upload"), 0, "{doc}");

    // B's status and plan count B's receipts only, and nothing to do.
    let (code, status, stderr) = world.run(b, &["status", "--json"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(status["archived"], 9, "{status}");
    assert_eq!(status["tombstoned"], 0, "{status}");
    assert_eq!(status["to_upload"], 0, "{status}");
    assert_eq!(status["to_adopt"], 0, "{status}");
    let (code, plan, stderr) = world.run(b, &["plan", "--json"]).await;
    assert_eq!(code, 0, "{stderr}");
    for kind in ["upload", "adopt", "tombstone"] {
        assert_eq!(plan["counts"][kind].as_u64().unwrap_or(0), 0, "{plan}");
    }
    println!(
        "The app folder after A's account folder was deleted:\n{}\n",
        world.tree()
    );
}

#[tokio::test]
async fn a_home_used_with_another_organisations_key_is_refused() {
    let world = World::start().await;
    let [a, b] = &world.orgs;
    let (code, _, stderr) = world.run(a, &["sync", "--json"]).await;
    assert_eq!(code, 0, "{stderr}");
    let before = world.tree();
    let (code, doc, stderr) = world.run_with(a, b, &["sync", "--json"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(doc["exit_code"], 2, "{doc}");
    assert!(stderr.contains("another organisation"), "{stderr}");
    assert!(stderr.contains("its own state"), "{stderr}");
    assert_eq!(world.tree(), before, "nothing written");
    // A's home still works with A's key, and B's first sync into the drive too.
    let (code, doc, stderr) = world.run(a, &["sync", "--json"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(done(&doc, "upload"), 0, "{doc}");
    let (code, doc, stderr) = world.run(b, &["sync", "--json"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(done(&doc, "upload"), 9, "{doc}");
    assert_every_receipt_once_and_apart(&world, &["A", "B"]);
}
