//! Helpers that keep the planner's per-receipt work free of allocations and repeated
//! searches: case-insensitive keys written into a reused buffer, and lookups in the
//! state's sorted maps that walk along with the receipts instead of searching anew.

use super::{Action, SkipReason};
use crate::model::{ArchivePath, PathKey, ReceiptId};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet, btree_map};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::iter::Peekable;

/// Writes the case-insensitive key of `path` (what [`crate::model::PathKey::of`]
/// makes) into `buf`, replacing its content.
pub(super) fn key_into<'b>(buf: &'b mut String, path: &str) -> &'b str {
    buf.clear();
    if path.is_ascii() {
        // The common case: the same as `to_lowercase`, without a new string.
        buf.push_str(path);
        buf.make_ascii_lowercase();
    } else {
        // Full Unicode rules (a final sigma depends on its neighbours): the slow path.
        buf.push_str(&path.to_lowercase());
    }
    buf
}

/// Looks up receipts, in increasing id order, in a map sorted by receipt id: one walk
/// along the map for all of them, instead of one search each.
pub(super) struct SortedLookup<'a, V> {
    entries: Peekable<btree_map::Iter<'a, ReceiptId, V>>,
}

impl<'a, V> SortedLookup<'a, V> {
    pub(super) fn new(map: &'a std::collections::BTreeMap<ReceiptId, V>) -> Self {
        Self {
            entries: map.iter().peekable(),
        }
    }

    /// The value of `id`. Each call's `id` must not be smaller than the previous one's.
    pub(super) fn get(&mut self, id: &ReceiptId) -> Option<&'a V> {
        while let Some((key, _)) = self.entries.peek() {
            match (*key).cmp(id) {
                std::cmp::Ordering::Less => {
                    self.entries.next();
                }
                std::cmp::Ordering::Equal => return self.entries.peek().map(|(_, v)| *v),
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }
}

/// The paths a plan writes or adopts at, case-insensitively, without a copy of each:
/// a hash of each path's key, and where to find the path to compare with when two
/// hashes meet (the action that holds it, almost always).
pub(super) struct Targets<S = RandomState> {
    hasher: S,
    by_hash: HashMap<u64, Target, BuildHasherDefault<HashedAlready>>,
    /// Keys of targets no action holds (adopted elsewhere, or blocked).
    spilled: Vec<Box<str>>,
    /// Keys whose hash another key already had: practically never used.
    overflow: HashSet<Box<str>>,
}

#[derive(Clone, Copy)]
enum Target {
    /// `actions[i]` holds the path.
    Action(u32),
    /// `spilled[i]` is the key.
    Spilled(u32),
}

/// A free target, to record once its action is planned.
#[derive(Clone, Copy)]
pub(super) enum Claim {
    Hash(u64),
    Overflow,
}

/// What holds a claimed target once it is planned.
pub(super) enum Holder<'k> {
    /// The last action pushed holds it.
    LastAction,
    /// No action holds it: its key.
    Key(&'k str),
}

/// The path an action writes or adopts at, as [`Targets`] finds it again.
fn claimed_path(action: &Action) -> Option<&ArchivePath> {
    match action {
        Action::Adopt { path, .. } | Action::Upload { path, .. } => Some(path),
        Action::Skip {
            reason: SkipReason::TargetOccupied(path),
            ..
        } => Some(path),
        _ => None,
    }
}

impl Targets {
    pub(super) fn new() -> Self {
        Self::with_hasher(RandomState::new())
    }
}

impl<S: BuildHasher> Targets<S> {
    fn with_hasher(hasher: S) -> Self {
        Self {
            hasher,
            by_hash: HashMap::default(),
            spilled: Vec::new(),
            overflow: HashSet::new(),
        }
    }

    fn key_of<'s>(&'s self, target: Target, actions: &'s [Action]) -> Cow<'s, str> {
        match target {
            Target::Action(i) => {
                let path = usize::try_from(i)
                    .ok()
                    .and_then(|i| actions.get(i))
                    .and_then(claimed_path);
                Cow::Owned(
                    path.map_or_else(String::new, |p| PathKey::of(p.as_str()).as_str().to_owned()),
                )
            }
            Target::Spilled(i) => Cow::Borrowed(
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.spilled.get(i))
                    .map_or("", |k| k),
            ),
        }
    }

    /// Claims the target whose key is `key`; `None` if another action has it.
    pub(super) fn claim(&self, key: &str, actions: &[Action]) -> Option<Claim> {
        if !self.overflow.is_empty() && self.overflow.contains(key) {
            return None;
        }
        let hash = self.hasher.hash_one(key);
        match self.by_hash.get(&hash) {
            None => Some(Claim::Hash(hash)),
            Some(&target) if self.key_of(target, actions) == key => None,
            Some(_) => Some(Claim::Overflow),
        }
    }

    /// Records a claimed target as planned, held as `holder` says.
    pub(super) fn record(&mut self, claim: Claim, holder: Holder<'_>, actions: &[Action]) {
        let target = match (claim, &holder) {
            (Claim::Overflow, _) => None,
            (Claim::Hash(_), Holder::LastAction) => actions
                .len()
                .checked_sub(1)
                .and_then(|i| u32::try_from(i).ok())
                .map(Target::Action),
            (Claim::Hash(_), Holder::Key(key)) => u32::try_from(self.spilled.len()).ok().map(|i| {
                self.spilled.push((*key).into());
                Target::Spilled(i)
            }),
        };
        match (claim, target) {
            (Claim::Hash(hash), Some(target)) => {
                self.by_hash.insert(hash, target);
            }
            _ => {
                // A shared hash (or a plan too large to index): keep the key itself.
                let key = match holder {
                    Holder::Key(key) => key.to_owned(),
                    Holder::LastAction => actions
                        .last()
                        .and_then(claimed_path)
                        .map_or_else(String::new, |p| PathKey::of(p.as_str()).as_str().to_owned()),
                };
                self.overflow.insert(key.into_boxed_str());
            }
        }
    }
}

/// A hasher for keys that are hashes already.
#[derive(Default)]
struct HashedAlready(u64);

impl Hasher for HashedAlready {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PathKey;
    use std::collections::BTreeMap;

    #[test]
    fn keys_match_path_keys() {
        let mut buf = String::new();
        for path in ["Main 1234/2026-11/A.PDF", "ΟΔΟΣ/Σ", "İstanbul/K", ""] {
            assert_eq!(key_into(&mut buf, path), PathKey::of(path).as_str());
        }
    }

    /// Every key hashes alike: each target after the first must be told apart by its key.
    struct SameHash;
    struct Constant;
    impl Hasher for Constant {
        fn finish(&self) -> u64 {
            7
        }
        fn write(&mut self, _: &[u8]) {}
    }
    impl BuildHasher for SameHash {
        type Hasher = Constant;
        fn build_hasher(&self) -> Constant {
            Constant
        }
    }

    fn upload(path: &str) -> Action {
        Action::Upload {
            receipt: ReceiptId::new(path),
            path: ArchivePath::parse(path).unwrap(),
            size: 1,
            reason: super::super::UploadReason::New,
        }
    }

    #[test]
    fn targets_are_told_apart_by_key_when_hashes_meet() {
        let mut targets = Targets::with_hasher(SameHash);
        let mut actions = Vec::new();
        for path in ["A/x.pdf", "A/y.pdf", "A/z.pdf"] {
            let key = PathKey::of(path);
            let claim = targets.claim(key.as_str(), &actions).expect("free");
            actions.push(upload(path));
            targets.record(claim, Holder::LastAction, &actions);
        }
        let claim = targets.claim("b/spilled.pdf", &actions).expect("free");
        targets.record(claim, Holder::Key("b/spilled.pdf"), &actions);
        for taken in ["a/X.PDF", "a/y.pdf", "A/Z.pdf", "B/Spilled.pdf"] {
            let key = PathKey::of(taken);
            assert!(targets.claim(key.as_str(), &actions).is_none(), "{taken}");
        }
        assert!(targets.claim("a/w.pdf", &actions).is_some());
    }

    #[test]
    fn sorted_lookups_find_what_the_map_has() {
        let map: BTreeMap<ReceiptId, u32> = [("b", 1), ("d", 2), ("e", 3)]
            .map(|(k, v)| (ReceiptId::new(k), v))
            .into();
        let mut lookup = SortedLookup::new(&map);
        let found: Vec<Option<u32>> = ["a", "b", "c", "e", "f"]
            .iter()
            .map(|id| lookup.get(&ReceiptId::new(*id)).copied())
            .collect();
        assert_eq!(found, [None, Some(1), None, Some(3), None]);
    }
}
