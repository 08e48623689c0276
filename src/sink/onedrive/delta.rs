//! Scanning the archive: Graph's delta feed as a small state machine, and a plain children
//! walk for when delta is off.
//!
//! ```text
//!  no cursor ──▶ enumerate(/items/{root}/delta) ──▶ Full + cursor(deltaLink)
//!  cursor ─────▶ follow deltaLink ──▶ Changes + cursor(new deltaLink)
//!                    │ 410 resync (Location) / unusable token
//!                    └──▶ enumerate(Location or /items/{root}/delta) ──▶ Full + cursor
//! ```
//!
//! # Assumptions (onedrive-graph.md §4)
//! - Folder-scoped delta works on Personal and only reports items of that folder's subtree;
//!   its first page includes the folder itself, which is dropped.
//! - The same item may appear more than once: the **last occurrence wins**.
//! - Deleted items carry the `deleted` facet and may lack `size`; a deleted folder may be
//!   reported by its own tombstone only, so [`SinkChange::Removed`] of a folder means
//!   "everything under it is gone too" (the snapshot cascades).
//! - Unless `deltaExcludeParent` is sent (it is not), a change also reports the item's
//!   ancestors, so an item whose parent is neither the root, nor in the same feed, nor a
//!   folder this sink already knows, has left the archive: it is reported as removed.
//! - A 410 carries a `Location` that starts a fresh enumeration; a token the service cannot
//!   read (400) or a root that vanished (404) also restart from scratch. Either way the
//!   answer is [`ScanUpdate::Full`].
//!
//! # Guarantees
//! - A listing is complete or an error, never cut short: a page link already followed in
//!   the same listing (a cycle), a page with no way forward, or a listing past its
//!   [`PagingLimits`] fails with [`Error::Malformed`](crate::Error::Malformed) at
//!   `@odata.nextLink`. (A partial listing would make the missing files look deleted, and the
//!   deletion rules would record tombstones for them.)

use super::error::malformed;
use super::model::DriveItem;
use super::request::{Failure, GraphClient};
use crate::error::Result;
use crate::http::PagingLimits;
use crate::http::paging::PageCount;
use crate::model::{EntryKind, ScanCursor, SinkChange, SinkEntry, SinkItemId};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};

/// Fresh starts after a 410 in the middle of an enumeration.
const MAX_RESYNCS: usize = 3;
/// Deeper parent chains are treated as cycles.
const MAX_DEPTH: usize = 64;

/// The scan cursor: the root's id (so a scan with a cursor needs no extra request) and the
/// deltaLink to call next.
#[derive(Serialize, Deserialize)]
struct Cursor {
    v: u8,
    root: String,
    link: String,
}

pub(crate) fn encode_cursor(root: &str, link: &str) -> ScanCursor {
    let cursor = Cursor {
        v: 1,
        root: root.to_owned(),
        link: link.to_owned(),
    };
    ScanCursor::new(serde_json::to_string(&cursor).unwrap_or_default())
}

/// The root id and deltaLink in a cursor this sink issued; `None` for anything else.
pub(crate) fn decode_cursor(cursor: &ScanCursor) -> Option<(String, String)> {
    let parsed: Cursor = serde_json::from_str(cursor.expose()).ok()?;
    (parsed.v == 1).then_some((parsed.root, parsed.link))
}

/// What following a cursor gave.
pub(crate) enum Followed {
    Changes(Vec<SinkChange>, String),
    /// Start over, from the `Location` when the service gave one.
    Resync(Option<String>),
}

/// The page links of one listing: counted against the limits, and remembered, so that a
/// link back to a page already read is caught when it is given, not after the page limit.
pub(super) struct LinkWalk {
    count: PageCount,
    followed: HashSet<String>,
}

impl LinkWalk {
    pub(super) fn new(limits: PagingLimits) -> Self {
        Self {
            count: PageCount::new(super::error::SERVICE, "@odata.nextLink", limits),
            followed: HashSet::new(),
        }
    }

    /// Records that the listing is about to read the page at `url`: an error past the page
    /// limit, or when that page was read already.
    pub(super) fn visit(&mut self, url: &str) -> Result<()> {
        self.count.before_next()?;
        if !self.followed.insert(url.to_owned()) {
            return Err(self.count.cycle());
        }
        Ok(())
    }

    /// Counts a page of `items` items just read.
    pub(super) fn read(&mut self, items: usize) -> Result<()> {
        self.count.read(items)
    }
}

/// Every item from `start` to the deltaLink, last occurrence winning.
async fn enumerate(
    client: &GraphClient,
    start: String,
    limits: PagingLimits,
) -> Result<(Vec<DriveItem>, String), Failure> {
    let mut walk = LinkWalk::new(limits);
    let mut items = Vec::new();
    let mut url = start;
    loop {
        walk.visit(&url)?;
        let page = client.delta_page(&url).await?;
        walk.read(page.value.len())?;
        items.extend(page.value);
        match (page.delta_link, page.next_link) {
            (Some(delta), _) => return Ok((last_wins(items), delta)),
            (None, Some(next)) => url = next,
            (None, None) => {
                return Err(malformed(
                    "@odata.nextLink",
                    "a delta page has neither a nextLink nor a deltaLink, so the listing \
                     cannot be completed",
                )
                .into());
            }
        }
    }
}

/// A full enumeration of the root's subtree, from `start` (a 410's `Location`) or from the
/// beginning; returns the entries and the deltaLink.
pub(crate) async fn full(
    client: &GraphClient,
    root_id: &str,
    start: Option<String>,
    limits: PagingLimits,
) -> Result<(Vec<SinkEntry>, String)> {
    let mut start = start.unwrap_or_else(|| client.delta_url(root_id));
    for _ in 0..MAX_RESYNCS {
        match enumerate(client, start, limits).await {
            Ok((items, link)) => return Ok((entries(&items, root_id)?, link)),
            // Told to resync in the middle of an enumeration: start again.
            Err(Failure::Graph(g)) if g.status.as_u16() == 410 => {
                start = g.location.unwrap_or_else(|| client.delta_url(root_id));
            }
            Err(f) => return Err(f.into_error("read changes", client.app_folder)),
        }
    }
    Err(malformed("delta", "the service kept asking for a resync"))
}

/// The changes since `link`; `known` says whether a folder id is already known to be in the
/// archive.
pub(crate) async fn follow(
    client: &GraphClient,
    root_id: &str,
    link: String,
    limits: PagingLimits,
    known: impl Fn(&str) -> bool,
) -> Result<Followed> {
    let (items, next) = match enumerate(client, link, limits).await {
        Ok(found) => found,
        Err(Failure::Graph(g)) => {
            let status = g.status.as_u16();
            if status == 410 {
                return Ok(Followed::Resync(g.location));
            }
            // A malformed token is a 400 invalidRequest, and a vanished root a 404
            // (onedrive-graph.md §4 "Resync", §12.11): a full listing answers both.
            if status == 404 || (status == 400 && g.has_code("invalidRequest")) {
                tracing::warn!(status, "the delta cursor is unusable; listing everything");
                return Ok(Followed::Resync(None));
            }
            return Err(Failure::Graph(g).into_error("read changes", client.app_folder));
        }
        Err(f) => return Err(f.into_error("read changes", client.app_folder)),
    };
    let changes = changes(&items, root_id, known)?;
    Ok(Followed::Changes(changes, next))
}

/// The live items of a full enumeration inside the root, as entries (pure).
pub(crate) fn entries(items: &[DriveItem], root_id: &str) -> Result<Vec<SinkEntry>> {
    let inside = inside(items, root_id, |_| false);
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let Some(id) = item.id.as_deref() else {
            continue;
        };
        if item.deleted.is_none() && id != root_id && inside.contains(id) {
            entries.push(to_entry(item, root_id)?);
        }
    }
    Ok(entries)
}

/// The items of a delta since a cursor, as changes to the snapshot (pure); `known` says
/// whether a folder id is already known to be in the archive.
pub(crate) fn changes(
    items: &[DriveItem],
    root_id: &str,
    known: impl Fn(&str) -> bool,
) -> Result<Vec<SinkChange>> {
    let deleted: HashSet<&str> = items
        .iter()
        .filter(|i| i.deleted.is_some())
        .filter_map(|i| i.id.as_deref())
        .collect();
    let inside = inside(items, root_id, |id| known(id) && !deleted.contains(id));
    let mut changes = Vec::with_capacity(items.len());
    for item in items {
        let Some(id) = item.id.as_deref() else {
            continue;
        };
        if id == root_id {
            continue;
        }
        if item.deleted.is_some() || !inside.contains(id) {
            changes.push(SinkChange::Removed(SinkItemId::new(id)));
        } else {
            changes.push(SinkChange::Upsert(to_entry(item, root_id)?));
        }
    }
    Ok(changes)
}

/// Every item under the root by listing children folder by folder (`$top=1000`,
/// following `@odata.nextLink`); the limits bound the whole walk.
pub(crate) async fn list_all(
    client: &GraphClient,
    root_id: &str,
    limits: PagingLimits,
) -> Result<Vec<SinkEntry>> {
    let mut walk = LinkWalk::new(limits);
    let mut entries = Vec::new();
    let mut queue = VecDeque::from([root_id.to_owned()]);
    let mut seen = HashSet::new();
    while let Some(folder) = queue.pop_front() {
        if !seen.insert(folder.clone()) {
            continue;
        }
        let mut next = Some(client.children_url(&folder));
        while let Some(url) = next {
            walk.visit(&url)?;
            let page = client.children_page(&url).await?;
            walk.read(page.value.len())?;
            for item in page.value {
                let mut entry = to_entry(&item, root_id)?;
                // The folder listed is the parent, whatever parentReference says.
                entry.parent = (folder != root_id).then(|| SinkItemId::new(folder.clone()));
                if entry.is_folder() {
                    queue.push_back(entry.id.as_str().to_owned());
                }
                entries.push(entry);
            }
            next = page.next_link;
        }
    }
    Ok(entries)
}

pub(crate) fn last_wins(items: Vec<DriveItem>) -> Vec<DriveItem> {
    let mut index: HashMap<String, usize> = HashMap::with_capacity(items.len());
    let mut slots: Vec<Option<DriveItem>> = Vec::with_capacity(items.len());
    for item in items {
        let Some(id) = item.id.clone() else {
            tracing::debug!("a delta item without an id was skipped");
            continue;
        };
        if let Some(&earlier) = index.get(&id)
            && let Some(slot) = slots.get_mut(earlier)
        {
            *slot = None;
        }
        index.insert(id, slots.len());
        slots.push(Some(item));
    }
    slots.into_iter().flatten().collect()
}

/// The ids of live items whose parents lead to the root through live items of the feed or
/// through folders already `known` to be inside.
fn inside(items: &[DriveItem], root_id: &str, known: impl Fn(&str) -> bool) -> HashSet<String> {
    let live: HashMap<&str, &DriveItem> = items
        .iter()
        .filter(|i| i.deleted.is_none())
        .filter_map(|i| Some((i.id.as_deref()?, i)))
        .collect();
    let mut memo: HashMap<&str, bool> = HashMap::with_capacity(live.len());
    for &id in live.keys() {
        let mut chain = Vec::new();
        let mut current = id;
        let answer = loop {
            if let Some(&known_answer) = memo.get(current) {
                break known_answer;
            }
            if chain.len() > MAX_DEPTH {
                break false;
            }
            let Some(item) = live.get(current) else {
                break known(current);
            };
            chain.push(current);
            match item.parent_id() {
                Some(parent) if parent == root_id => break true,
                Some(parent) => current = parent,
                None => break false,
            }
        };
        for link in chain {
            memo.insert(link, answer);
        }
    }
    memo.into_iter()
        .filter(|(id, inside)| *inside && live.contains_key(id))
        .map(|(id, _)| id.to_owned())
        .collect()
}

/// A live driveItem as an entry; the root's children get `parent: None`.
pub(crate) fn to_entry(item: &DriveItem, root_id: &str) -> Result<SinkEntry> {
    let id = item
        .id
        .as_deref()
        .ok_or_else(|| malformed("value[].id", "missing"))?;
    let name = item
        .name
        .as_deref()
        .ok_or_else(|| malformed("value[].name", format!("missing on item {id}")))?;
    let parent = item
        .parent_id()
        .filter(|p| *p != root_id)
        .map(SinkItemId::new);
    let kind = if item.is_folder() {
        EntryKind::Folder
    } else {
        EntryKind::File {
            size: item.size.unwrap_or(0),
        }
    };
    Ok(SinkEntry {
        id: SinkItemId::new(id),
        parent,
        name: name.to_owned(),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, parent: &str, folder: bool) -> DriveItem {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": id, "size": 1,
            "parentReference": {"id": parent},
            "folder": if folder { Some(serde_json::json!({})) } else { None },
        }))
        .unwrap()
    }

    #[test]
    fn last_occurrence_wins_and_outsiders_are_out() {
        let mut renamed = item("a", "root", true);
        renamed.name = Some("renamed".into());
        let items = last_wins(vec![
            item("a", "root", true),
            item("f", "a", false),
            renamed,
            item("g", "elsewhere", false),
            item("h", "known", false),
        ]);
        assert_eq!(items.len(), 4);
        assert_eq!(items.last().and_then(|i| i.name.as_deref()), Some("h"));
        let inside = inside(&items, "root", |id| id == "known");
        assert!(inside.contains("a") && inside.contains("f") && inside.contains("h"));
        assert!(!inside.contains("g"));
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_ignored() {
        let c = encode_cursor("R!1", "https://graph/delta?token=x");
        assert_eq!(
            decode_cursor(&c),
            Some(("R!1".into(), "https://graph/delta?token=x".into()))
        );
        assert_eq!(decode_cursor(&ScanCursor::new("garbage")), None);
    }
}
