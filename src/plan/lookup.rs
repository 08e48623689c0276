//! Helpers that keep the planner's per-receipt work free of allocations and repeated
//! searches: case-insensitive keys written into a reused buffer, and lookups in the
//! state's sorted maps that walk along with the receipts instead of searching anew.

use crate::model::ReceiptId;
use std::collections::btree_map;
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

    #[test]
    fn sorted_lookups_find_what_the_map_has() {
        let map: BTreeMap<ReceiptId, u32> =
            [("b", 1), ("d", 2), ("e", 3)].map(|(k, v)| (ReceiptId::new(k), v)).into();
        let mut lookup = SortedLookup::new(&map);
        let found: Vec<Option<u32>> = ["a", "b", "c", "e", "f"]
            .iter()
            .map(|id| lookup.get(&ReceiptId::new(*id)).copied())
            .collect();
        assert_eq!(found, [None, Some(1), None, Some(3), None]);
    }
}
