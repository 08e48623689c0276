//! `LocalDirSink` never escapes its root, whatever symbolic links a user plants in it:
//! folders swapped for links (to a folder outside, to `/`, to the root's parent, to the
//! root itself, to a folder inside, to nowhere), links where receipts will be written,
//! links in the root under an account folder's name. A sync then runs (new receipts
//! arrive, a reset brings everything back) and:
//! - nothing outside the root changes, nor the user's folder inside it that links point
//!   to (names, bytes, modification times);
//! - the sync ends with a report (receipts it cannot place are failures), never a panic.
#![cfg(all(unix, feature = "testkit"))]

use chrono::NaiveDate;
use proptest::prelude::*;
use receipt_sync::model::AccountId;
use receipt_sync::sink::LocalDirSink;
use receipt_sync::source::InMemorySource;
use receipt_sync::state::InMemoryStateStore;
use receipt_sync::sync::{SyncConfig, Syncer};
use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
enum Target {
    OutsideFolder,
    OutsideFile,
    FileSystemRoot,
    RootsParent,
    RootItself,
    UserFolderInside,
    Nowhere,
}

#[derive(Clone, Copy, Debug)]
enum Place {
    /// An existing folder (by index among them) becomes a link.
    Folder(u8),
    /// An existing file becomes a link.
    File(u8),
    /// A link in the root named as the account folder that a new account will get.
    NewAccountFolder,
    /// A link in the root under a random name.
    RootEntry,
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::OutsideFolder),
        Just(Target::OutsideFile),
        Just(Target::FileSystemRoot),
        Just(Target::RootsParent),
        Just(Target::RootItself),
        Just(Target::UserFolderInside),
        Just(Target::Nowhere),
    ]
}

fn place() -> impl Strategy<Value = Place> {
    prop_oneof![
        3 => any::<u8>().prop_map(Place::Folder),
        2 => any::<u8>().prop_map(Place::File),
        1 => Just(Place::NewAccountFolder),
        1 => Just(Place::RootEntry),
    ]
}

/// Everything under `dir`, links not followed: path → (what, modification time).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (String, Option<std::time::SystemTime>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = if meta.file_type().is_symlink() {
                format!("link to {:?}", std::fs::read_link(&path).unwrap())
            } else if meta.is_dir() {
                stack.push(path.clone());
                "folder".to_owned()
            } else {
                format!("file {:?}", std::fs::read(&path).unwrap())
            };
            out.insert(path, (what, meta.modified().ok()));
        }
    }
    out
}

fn add_receipts(bank: &InMemorySource, account: &str, from: usize, count: usize) {
    let id = AccountId::new(account);
    for i in from..from + count {
        let day = NaiveDate::from_ymd_opt(2026, 1 + (i % 3) as u32, 1 + (i % 27) as u32).unwrap();
        let receipt = InMemorySource::receipt(&format!("{account}-r{i}"), &id, day, "Shop", -500);
        bank.add_receipt(receipt, format!("receipt {account} {i}").into_bytes());
    }
}

async fn history(plants: Vec<(Place, Target)>) -> Result<(), TestCaseError> {
    let base = tempfile::tempdir().unwrap();
    let outside = base.path().join("outside");
    std::fs::create_dir_all(outside.join("folder")).unwrap();
    std::fs::write(outside.join("secret.txt"), "outside").unwrap();
    std::fs::write(outside.join("folder/kept.txt"), "outside too").unwrap();
    let root = base.path().join("archive");
    let sink = Arc::new(LocalDirSink::new(&root).unwrap());
    let user = root.join("My notes");
    std::fs::create_dir(&user).unwrap();
    std::fs::write(user.join("note.txt"), "mine").unwrap();

    let bank = InMemorySource::new();
    bank.add_account_named("acc-0", "Main");
    add_receipts(&bank, "acc-0", 0, 6);
    let store = InMemoryStateStore::new();
    let syncer = || {
        Syncer::new(
            Arc::new(bank.clone()),
            sink.clone(),
            Arc::new(store.clone()),
            SyncConfig::default(),
        )
    };
    syncer().run().await.unwrap();

    // The user plants links.
    let in_archive = snapshot(&root);
    let folders: Vec<&PathBuf> = in_archive
        .iter()
        .filter(|(p, (what, _))| what == "folder" && !p.starts_with(&user))
        .map(|(p, _)| p)
        .collect();
    let files: Vec<&PathBuf> = in_archive
        .iter()
        .filter(|(p, (what, _))| what.starts_with("file") && !p.starts_with(&user))
        .map(|(p, _)| p)
        .collect();
    for (n, (place, target)) in plants.iter().enumerate() {
        let at = match *place {
            Place::Folder(i) if !folders.is_empty() => {
                folders[usize::from(i) % folders.len()].clone()
            }
            Place::File(i) if !files.is_empty() => files[usize::from(i) % files.len()].clone(),
            Place::NewAccountFolder => root.join("Travel"),
            _ => root.join(format!("link {n}")),
        };
        let to = match target {
            Target::OutsideFolder => outside.join("folder"),
            Target::OutsideFile => outside.join("secret.txt"),
            Target::FileSystemRoot => PathBuf::from("/"),
            Target::RootsParent => PathBuf::from(".."),
            Target::RootItself => root.clone(),
            Target::UserFolderInside => user.clone(),
            Target::Nowhere => base.path().join("nowhere"),
        };
        // An earlier link may stand above this place now: never plant through it.
        let parent_is_real = at.parent().is_some_and(|parent| {
            parent
                .strip_prefix(&root)
                .unwrap()
                .ancestors()
                .all(|a| std::fs::symlink_metadata(root.join(a)).is_ok_and(|m| m.is_dir()))
        });
        if !parent_is_real {
            continue;
        }
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(&at).unwrap();
        } else if std::fs::symlink_metadata(&at).is_ok() {
            std::fs::remove_file(&at).unwrap();
        }
        symlink(&to, &at).unwrap();
    }
    let outside_before = snapshot(&outside);
    let user_before = snapshot(&user);

    // New receipts, a new account, then a reset: the sync writes wherever it may.
    add_receipts(&bank, "acc-0", 6, 6);
    bank.add_account_named("acc-1", "Travel");
    add_receipts(&bank, "acc-1", 0, 4);
    for step in 0..3 {
        if step == 2 {
            syncer().reset().await.unwrap();
        }
        let report = syncer().run().await;
        prop_assert!(report.is_ok(), "the sync ends with a report: {report:?}");
    }

    prop_assert_eq!(
        &outside_before,
        &snapshot(&outside),
        "outside the root changed"
    );
    prop_assert_eq!(&user_before, &snapshot(&user), "the user's folder changed");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn planted_links_are_never_followed(plants in prop::collection::vec((place(), target()), 1..5)) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(history(plants))?;
    }
}
