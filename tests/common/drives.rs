//! The archives the random histories run against, behind one test-only interface:
//! the sink the sync writes through, and what the user does to the archive by hand.

use receipt_sync::auth::StaticToken;
use receipt_sync::http::RetryConfig;
use receipt_sync::model::{ArchivePath, ArchiveSnapshot, EntryKind};
use receipt_sync::sink::{ArchiveSink, InMemorySink, LocalDirSink, OneDriveSink};
use receipt_sync::testkit::fake_graph::FakeGraph;
use std::path::PathBuf;
use std::sync::Arc;

/// An archive a test can sync into and meddle with.
pub trait TestDrive {
    /// The sink the sync writes through.
    fn sink(&self) -> Arc<dyn ArchiveSink>;
    /// Every file with its bytes, by archive path.
    fn files(&self) -> Vec<(String, Vec<u8>)>;
    /// Deletes a file or a folder, as the user would.
    fn delete(&self, path: &str);
    /// Renames an item in place.
    fn rename(&self, path: &str, new_name: &str);
    /// Moves an item into a folder.
    fn move_into(&self, path: &str, folder: &str);
    /// Adds a file of the user's own.
    fn add_user_file(&self, path: &str, bytes: &[u8]);
}

/// Folders and files now in the archive, through the sink's own full scan.
pub async fn listing(sink: &dyn ArchiveSink) -> (Vec<ArchivePath>, Vec<ArchivePath>) {
    let update = sink.scan(None).await.expect("a full scan");
    let snapshot = {
        let mut s = ArchiveSnapshot::new();
        s.apply(&update);
        s
    };
    let mut folders = Vec::new();
    let mut files = Vec::new();
    for entry in snapshot.entries() {
        let Some(path) = snapshot.path_of(&entry.id) else {
            continue;
        };
        match entry.kind {
            EntryKind::Folder => folders.push(path),
            EntryKind::File { .. } => files.push(path),
        }
    }
    folders.sort();
    files.sort();
    (folders, files)
}

fn parent_and(path: &str, name: &str) -> String {
    match path.rsplit_once('/') {
        Some((parent, _)) => format!("{parent}/{name}"),
        None => name.to_owned(),
    }
}

impl TestDrive for InMemorySink {
    fn sink(&self) -> Arc<dyn ArchiveSink> {
        Arc::new(self.clone())
    }
    fn files(&self) -> Vec<(String, Vec<u8>)> {
        InMemorySink::files(self)
            .into_iter()
            .map(|(p, b)| (p.to_string(), b))
            .collect()
    }
    fn delete(&self, path: &str) {
        if self.delete_file_as_user(path).is_err() {
            let _ = self.delete_folder_as_user(path);
        }
    }
    fn rename(&self, path: &str, new_name: &str) {
        let _ = self.rename_as_user(path, new_name);
    }
    fn move_into(&self, path: &str, folder: &str) {
        let _ = self.move_as_user(path, folder);
    }
    fn add_user_file(&self, path: &str, bytes: &[u8]) {
        let _ = InMemorySink::add_user_file(self, path, bytes.to_vec());
    }
}

/// A local folder archive, and the temporary folder that holds it.
pub struct LocalDrive {
    pub root: PathBuf,
    pub sink: LocalDirSink,
    _dir: tempfile::TempDir,
}

impl LocalDrive {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("archive");
        std::fs::create_dir_all(&root).unwrap();
        let sink = LocalDirSink::new(&root).unwrap();
        Self {
            root,
            sink,
            _dir: dir,
        }
    }
}

impl TestDrive for LocalDrive {
    fn sink(&self) -> Arc<dyn ArchiveSink> {
        Arc::new(self.sink.clone())
    }
    fn files(&self) -> Vec<(String, Vec<u8>)> {
        fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
            // A cancelled sync's write may still be finishing in the background:
            // skip its temporary file, and anything that vanishes while we look.
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".receipt-sync-")
                {
                    continue;
                }
                if path.is_dir() {
                    walk(root, &path, out);
                } else if let Ok(bytes) = std::fs::read(&path) {
                    let rel = path
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    out.push((rel, bytes));
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &self.root, &mut out);
        out.sort();
        out
    }
    fn delete(&self, path: &str) {
        let p = self.root.join(path);
        if p.is_dir() {
            let _ = std::fs::remove_dir_all(p);
        } else {
            let _ = std::fs::remove_file(p);
        }
    }
    fn rename(&self, path: &str, new_name: &str) {
        let to = self.root.join(parent_and(path, new_name));
        if !to.exists() {
            let _ = std::fs::rename(self.root.join(path), to);
        }
    }
    fn move_into(&self, path: &str, folder: &str) {
        let name = path.rsplit('/').next().unwrap();
        let to = self.root.join(folder).join(name);
        if !to.exists() && !folder.starts_with(path) {
            let _ = std::fs::rename(self.root.join(path), to);
        }
    }
    fn add_user_file(&self, path: &str, bytes: &[u8]) {
        let p = self.root.join(path);
        if p.parent().is_some_and(|d| d.is_dir()) && !p.exists() {
            std::fs::write(p, bytes).unwrap();
        }
    }
}

/// A OneDrive app folder on the fake Graph, through the real `OneDriveSink`.
pub struct GraphDrive {
    pub graph: FakeGraph,
    pub sink: OneDriveSink,
}

impl GraphDrive {
    pub async fn new() -> Self {
        let graph = FakeGraph::start().await.unwrap();
        let sink = OneDriveSink::builder(Arc::new(StaticToken::new("test-token")))
            .with_base_url(graph.base_url())
            .with_retry(RetryConfig::fast())
            .build()
            .unwrap();
        Self { graph, sink }
    }
}

impl TestDrive for GraphDrive {
    fn sink(&self) -> Arc<dyn ArchiveSink> {
        Arc::new(self.sink.clone())
    }
    fn files(&self) -> Vec<(String, Vec<u8>)> {
        let prefix = format!("{}/", self.graph.app_path(""));
        self.graph
            .files()
            .into_iter()
            .filter_map(|(p, b)| {
                p.strip_prefix(&prefix)
                    .map(|rel| (rel.to_owned(), b.to_vec()))
            })
            .collect()
    }
    fn delete(&self, path: &str) {
        self.graph.delete_as_user(&self.graph.app_path(path));
    }
    fn rename(&self, path: &str, new_name: &str) {
        self.graph
            .rename_as_user(&self.graph.app_path(path), new_name);
    }
    fn move_into(&self, path: &str, folder: &str) {
        if !folder.starts_with(path) {
            self.graph
                .move_as_user(&self.graph.app_path(path), &self.graph.app_path(folder));
        }
    }
    fn add_user_file(&self, path: &str, bytes: &[u8]) {
        self.graph
            .add_user_file(&self.graph.app_path(path), bytes.to_vec());
    }
}
