//! Writing your own sink: receipts archived into an S3-style object store.
//!
//! The store is a small in-process fake with the operations such stores have: flat keys,
//! a put that fails when the key exists (S3's `If-None-Match: *`), listing by prefix,
//! copy and delete. Folders are zero-byte marker objects whose key ends in `/`, as most
//! S3 tools make them. The example implements [`ArchiveSink`] over it, runs the
//! conformance suite every sink of this crate passes
//! (`receipt_sync::testkit::sink::run_all`), then syncs a few receipts into it.
//!
//! ```sh
//! cargo run --example custom_sink
//! ```

use async_trait::async_trait;
use bytes::Bytes;
use chrono::NaiveDate;
use receipt_sync::model::SinkItemId;
use receipt_sync::model::{ArchivePath, Body, EntryKind, ScanCursor, ScanUpdate, SinkEntry};
use receipt_sync::sink::{ArchiveSink, Quota, SinkCapabilities};
use receipt_sync::source::InMemorySource;
use receipt_sync::state::InMemoryStateStore;
use receipt_sync::sync::{SyncConfig, Syncer};
use receipt_sync::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The object store: key → bytes. Stands in for a bucket.
#[derive(Debug, Default)]
struct ObjectStore {
    objects: Mutex<BTreeMap<String, Bytes>>,
}

impl ObjectStore {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Bytes>> {
        self.objects.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts `key` unless it, or `also_absent`, exists: one atomic step, as a conditional
    /// put is on the server.
    fn put_if_absent(&self, key: &str, also_absent: &str, bytes: Bytes) -> bool {
        let mut objects = self.lock();
        if objects.contains_key(key) || objects.contains_key(also_absent) {
            return false;
        }
        objects.insert(key.to_owned(), bytes);
        true
    }

    /// Every key under `prefix`, with its size.
    fn list(&self, prefix: &str) -> Vec<(String, u64)> {
        self.lock()
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.len() as u64))
            .collect()
    }

    /// Moves every key under `from` to the same key under `to`, unless `to_file` or
    /// anything under `to` exists already. A real store copies then deletes, object by object: not atomic, so
    /// a crash midway leaves both; the next scan shows both, and nothing is lost.
    fn move_prefix(&self, from: &str, to: &str, to_file: &str) -> bool {
        let mut objects = self.lock();
        if objects.contains_key(to_file) || objects.keys().any(|k| k.starts_with(to)) {
            return false;
        }
        let moving: Vec<String> = objects
            .keys()
            .filter(|k| k.starts_with(from))
            .cloned()
            .collect();
        for key in moving {
            if let Some(bytes) = objects.remove(&key) {
                objects.insert(format!("{to}{}", &key[from.len()..]), bytes);
            }
        }
        true
    }
}

/// An [`ArchiveSink`] over the object store, under a key prefix.
///
/// Item ids are paths (the store has no ids), so [`SinkCapabilities::stable_ids`] is off
/// and the planner treats a renamed folder as deleted. There is no change feed, so every
/// scan is a full listing, and no quota.
#[derive(Debug)]
struct ObjectStoreSink {
    store: Arc<ObjectStore>,
    prefix: String,
}

impl ObjectStoreSink {
    fn new(store: Arc<ObjectStore>, prefix: &str) -> Self {
        Self {
            store,
            prefix: format!("{}/", prefix.trim_end_matches('/')),
        }
    }

    fn file_key(&self, path: &ArchivePath) -> String {
        format!("{}{}", self.prefix, path.as_str())
    }

    fn folder_key(&self, path: &ArchivePath) -> String {
        format!("{}{}/", self.prefix, path.as_str())
    }

    fn entry(path: &ArchivePath, kind: EntryKind) -> SinkEntry {
        SinkEntry {
            id: SinkItemId::new(path.as_str()),
            parent: path.parent().map(|p| SinkItemId::new(p.as_str())),
            name: path.file_name().to_owned(),
            kind,
        }
    }

    /// Whether the folder at `path` exists: its marker, or any key below it (stores show
    /// "folders" that only exist through the keys under them).
    fn folder_exists(&self, path: &ArchivePath) -> bool {
        !self.store.list(&self.folder_key(path)).is_empty()
    }

    fn check_parent(&self, path: &ArchivePath) -> Result<()> {
        match path.parent() {
            Some(parent) if !self.folder_exists(&parent) => Err(Error::NotFound {
                what: format!("folder {parent}"),
            }),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl ArchiveSink for ObjectStoreSink {
    fn capabilities(&self) -> SinkCapabilities {
        let mut caps = SinkCapabilities::minimal();
        // Keys are case-sensitive. Names keep OneDrive's 255 limit (the layout makes
        // names valid everywhere); S3 keys are at most 1,024 UTF-8 bytes, and a UTF-16
        // unit is at most 3 of them.
        caps.case_insensitive = false;
        caps.max_path_len = 1024 / 3;
        caps.root_prefix_len = self.prefix.chars().map(char::len_utf8).sum();
        caps
    }

    async fn scan(&self, _cursor: Option<&ScanCursor>) -> Result<ScanUpdate> {
        let mut folders = BTreeSet::new();
        let mut files = Vec::new();
        for (key, size) in self.store.list(&self.prefix) {
            let rel = &key[self.prefix.len()..];
            let (is_folder, rel) = match rel.strip_suffix('/') {
                Some(folder) => (true, folder),
                None => (false, rel),
            };
            let Ok(path) = ArchivePath::parse(rel) else {
                continue; // A key this sink could not have written: not part of the archive.
            };
            // Every folder above a key exists, marker or not.
            folders.extend(path.ancestors());
            if is_folder {
                folders.insert(path);
            } else {
                files.push(Self::entry(&path, EntryKind::File { size }));
            }
        }
        let mut entries: Vec<SinkEntry> = folders
            .iter()
            .map(|p| Self::entry(p, EntryKind::Folder))
            .collect();
        entries.extend(files);
        Ok(ScanUpdate::Full {
            entries,
            cursor: None,
        })
    }

    async fn create_folder(&self, path: &ArchivePath) -> Result<SinkEntry> {
        self.check_parent(path)?;
        let key = self.folder_key(path);
        if self
            .store
            .put_if_absent(&key, &self.file_key(path), Bytes::new())
            || self.folder_exists(path)
        {
            return Ok(Self::entry(path, EntryKind::Folder));
        }
        Err(Error::AlreadyExists {
            what: format!("file {path}"),
        })
    }

    async fn write_file(&self, path: &ArchivePath, body: Body) -> Result<SinkEntry> {
        self.check_parent(path)?;
        // In memory for this toy store; a real one streams the body into a multipart
        // upload, part by part, and completes it only when the length matches.
        let bytes = body.collect(path.as_str()).await?;
        let size = bytes.len() as u64;
        if self
            .store
            .put_if_absent(&self.file_key(path), &self.folder_key(path), bytes.into())
        {
            Ok(Self::entry(path, EntryKind::File { size }))
        } else {
            Err(Error::AlreadyExists {
                what: path.to_string(),
            })
        }
    }

    async fn rename_folder(
        &self,
        id: &SinkItemId,
        path: &ArchivePath,
        new_name: &str,
    ) -> Result<SinkEntry> {
        if id.as_str() != path.as_str() || !self.folder_exists(path) {
            return Err(Error::NotFound {
                what: format!("folder {path}"),
            });
        }
        let target = match path.parent() {
            Some(parent) => parent.join(new_name),
            None => ArchivePath::parse(new_name),
        }
        .map_err(|e| Error::Rejected {
            service: "object store",
            operation: "rename folder".into(),
            message: format!("folder name {new_name:?}: {e}"),
        })?;
        let moved = self.store.move_prefix(
            &self.folder_key(path),
            &self.folder_key(&target),
            &self.file_key(&target),
        );
        if !moved {
            return Err(Error::AlreadyExists {
                what: target.to_string(),
            });
        }
        Ok(Self::entry(&target, EntryKind::Folder))
    }

    async fn quota(&self) -> Result<Option<Quota>> {
        Ok(None)
    }
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(ObjectStore::default());

    // 1. The conformance suite, on an empty archive. It panics at the first broken rule.
    let suite = receipt_sync::testkit::sink::run_all(&ObjectStoreSink::new(
        store.clone(),
        "conformance-run",
    ))
    .await;
    println!("Conformance suite: {suite}");

    // 2. A sync into it, from receipts in memory.
    let source = InMemorySource::new();
    let account = source.add_account_named("acc-1", "Main account");
    let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).ok_or("bad day");
    for (id, d, label, cents) in [
        ("r1", 2, "Boulangerie", -420),
        ("r2", 9, "SNCF: Paris/Lyon", -8_900),
        ("r3", 17, "Client payment", 120_000),
    ] {
        let receipt = InMemorySource::receipt(id, &account, day(d)?, label, cents);
        source.add_receipt(receipt, format!("%PDF-1.7 receipt {id}"));
    }
    let sink = Arc::new(ObjectStoreSink::new(store.clone(), "receipts"));
    let syncer = Syncer::new(
        Arc::new(source),
        sink,
        Arc::new(InMemoryStateStore::new()),
        SyncConfig::default(),
    );
    let first = syncer.run().await?;
    print!("First sync: {first}");
    let again = syncer.run().await?;
    print!("Second sync: {again}");

    println!("Bucket keys under receipts/:");
    for (key, size) in store.list("receipts/") {
        println!("  {key}  ({size} bytes)");
    }
    if first.is_complete() && again.is_complete() && again.count("upload") == 0 {
        Ok(())
    } else {
        Err("a sync did not complete".into())
    }
}
