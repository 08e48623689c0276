//! The drive's indexes against a naive drive that keeps nothing but its items and
//! finds everything by looking at all of them.

use super::drive::{Change, Drive};
use bytes::Bytes;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};

/// Every name hashes alike, so every lookup goes through the collision path.
#[derive(Default)]
struct Colliding;

struct SameHash;

impl Hasher for SameHash {
    fn finish(&self) -> u64 {
        7
    }
    fn write(&mut self, _: &[u8]) {}
}

impl BuildHasher for Colliding {
    type Hasher = SameHash;
    fn build_hasher(&self) -> SameHash {
        SameHash
    }
}

/// The drive's contract, computed by walking every item.
#[derive(Default)]
struct Naive {
    /// id → (parent, name, last change)
    items: BTreeMap<u64, (Option<u64>, String, u64)>,
    next_id: u64,
    seq: u64,
    /// (deletion, id) of every item removed by name.
    removed: Vec<(u64, u64)>,
    /// (last change, deletion, id) of the descendants removed with a folder.
    removed_with_parent: Vec<(u64, u64, u64)>,
}

impl Naive {
    fn child(&self, parent: Option<u64>, name: &str) -> Option<u64> {
        let folded = name.to_lowercase();
        self.items
            .iter()
            .find(|(_, (p, n, _))| *p == parent && n.to_lowercase() == folded)
            .map(|(&id, _)| id)
    }

    fn tick(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn insert(&mut self, parent: Option<u64>, name: &str) {
        self.next_id += 1;
        let changed = self.tick();
        self.items
            .insert(self.next_id, (parent, name.to_owned(), changed));
    }

    fn touch(&mut self, id: u64) {
        let changed = self.tick();
        self.items.get_mut(&id).expect("live").2 = changed;
    }

    fn relocate(&mut self, id: u64, parent: Option<u64>, name: &str) {
        self.touch(id);
        let item = self.items.get_mut(&id).expect("live");
        (item.0, item.1) = (parent, name.to_owned());
    }

    fn is_under(&self, id: u64, ancestor: u64) -> bool {
        let mut current = Some(id);
        while let Some(cur) = current {
            if cur == ancestor {
                return true;
            }
            current = self.items.get(&cur).and_then(|i| i.0);
        }
        false
    }

    fn remove(&mut self, id: u64) {
        let doomed: Vec<u64> = (self.items.keys().copied())
            .filter(|&other| self.is_under(other, id))
            .collect();
        let seq = self.tick();
        for gone in doomed {
            let (_, _, changed) = self.items.remove(&gone).expect("live");
            if gone != id {
                self.removed_with_parent.push((changed, seq, gone));
            }
        }
        self.removed.push((seq, id));
    }

    fn changes_since(&self, since: u64) -> Vec<(bool, u64)> {
        let mut out: Vec<(u64, (bool, u64))> = (self.items.iter())
            .filter(|(_, i)| i.2 > since)
            .map(|(&id, i)| (i.2, (false, id)))
            .collect();
        out.extend(
            (self.removed.iter())
                .filter(|(seq, _)| *seq > since)
                .map(|&(seq, id)| (seq, (true, id))),
        );
        out.extend(
            (self.removed_with_parent.iter())
                .filter(|(changed, _, _)| *changed > since)
                .map(|&(_, seq, id)| (seq, (true, id))),
        );
        out.sort_by_key(|(seq, _)| *seq);
        out.into_iter().map(|(_, c)| c).collect()
    }
}

fn feed<S: BuildHasher>(drive: &Drive<S>, since: u64) -> Vec<(bool, u64)> {
    (drive.changes_since(since).into_iter())
        .map(|c| match c {
            Change::Upsert(id) => (false, id),
            Change::Removed(id) => (true, id),
        })
        .collect()
}

/// Names that differ by case only, and Greek words whose lower case depends on
/// where a sigma stands (`ΟΔΟΣ` lower-cases to `οδος`, not `οδοσ`).
const NAMES: [&str; 8] = ["a", "A", "b.pdf", "B.PDF", "ΟΔΟΣ", "οδοσ", "οδος", "x"];

#[derive(Clone, Debug)]
enum Op {
    Insert {
        parent: usize,
        name: usize,
        folder: bool,
    },
    Replace(usize),
    Relocate {
        item: usize,
        parent: usize,
        name: usize,
    },
    Remove(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<usize>(), 0..NAMES.len(), any::<bool>())
            .prop_map(|(parent, name, folder)| Op::Insert { parent, name, folder }),
        1 => any::<usize>().prop_map(Op::Replace),
        2 => (any::<usize>(), any::<usize>(), 0..NAMES.len())
            .prop_map(|(item, parent, name)| Op::Relocate { item, parent, name }),
        1 => any::<usize>().prop_map(Op::Remove),
    ]
}

/// Plays `ops` on both drives, checking every name lookup after each step and the
/// feed from every cursor at the end.
fn agree<S: BuildHasher + Default>(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut drive = Drive::<S>::default();
    let mut naive = Naive::default();
    for op in ops {
        let items: Vec<u64> = naive.items.keys().copied().collect();
        let folders: Vec<Option<u64>> = std::iter::once(None)
            .chain(
                (items.iter().copied())
                    .filter(|&id| drive.node(id).is_some_and(|n| n.is_folder()))
                    .map(Some),
            )
            .collect();
        let pick = |n: usize| items.get(n % items.len().max(1)).copied();
        match *op {
            Op::Insert {
                parent,
                name,
                folder,
            } => {
                let parent = folders[parent % folders.len()];
                if naive.child(parent, NAMES[name]).is_none() {
                    let bytes = (!folder).then(|| Bytes::from(NAMES[name]));
                    drive.insert(parent, NAMES[name], bytes);
                    naive.insert(parent, NAMES[name]);
                }
            }
            Op::Replace(item) => {
                if let Some(id) = pick(item).filter(|&id| !folders.contains(&Some(id))) {
                    drive.replace_bytes(id, Bytes::from_static(b"new"));
                    naive.touch(id);
                }
            }
            Op::Relocate { item, parent, name } => {
                let parent = folders[parent % folders.len()];
                if let Some(id) = pick(item) {
                    let free = naive.child(parent, NAMES[name]).is_none_or(|o| o == id);
                    let cycle = parent.is_some_and(|p| naive.is_under(p, id));
                    if free && !cycle {
                        drive.relocate(id, parent, NAMES[name]);
                        naive.relocate(id, parent, NAMES[name]);
                    }
                }
            }
            Op::Remove(item) => {
                if let Some(id) = pick(item) {
                    drive.remove(id);
                    naive.remove(id);
                }
            }
        }
        for &parent in &folders {
            for name in NAMES {
                prop_assert_eq!(drive.child(parent, name), naive.child(parent, name));
            }
        }
    }
    prop_assert_eq!(drive.seq(), naive.seq);
    for since in 0..=naive.seq {
        prop_assert_eq!(
            feed(&drive, since),
            naive.changes_since(since),
            "since {}",
            since
        );
    }
    Ok(())
}

proptest! {
    #[test]
    fn the_feed_and_the_names_agree_with_a_naive_drive(ops in prop::collection::vec(op(), 0..60)) {
        agree::<std::hash::RandomState>(&ops)?;
    }

    #[test]
    fn colliding_names_are_told_apart(ops in prop::collection::vec(op(), 0..40)) {
        agree::<Colliding>(&ops)?;
    }
}

/// A reader that is up to date reads nothing from a large drive, then exactly the
/// one change that follows. (What the feed costs, which used to be a walk of every
/// item, is measured by `benches/state_quiet.rs`, not here.)
#[test]
fn an_up_to_date_reader_of_a_large_drive_reads_only_what_follows() {
    let mut drive: Drive = Drive::default();
    let folder = drive.insert(None, "Main", None);
    for i in 0..10_000 {
        drive.insert(
            Some(folder),
            &format!("r{i}.pdf"),
            Some(Bytes::from_static(b"x")),
        );
    }
    let now = drive.seq();
    assert!(drive.changes_since(now).is_empty());
    drive.replace_bytes(folder + 1, Bytes::from_static(b"y"));
    assert!(matches!(drive.changes_since(now)[..], [Change::Upsert(id)] if id == folder + 1));
}
