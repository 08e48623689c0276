//! Qonto pagination: `meta.next_page`, and the `page` / `current_page` question.
//!
//! qonto.md §2.6: the docs say `page`, most clients and Qonto's own MCP server send
//! `current_page`; which one the server honours is UNCERTAIN. The default
//! ([`PagingMode::Detect`]) follows the doc's advice: send `page`, check that
//! `meta.current_page` echoes it, and otherwise switch to `current_page` for good.
//!
//! Whatever the server says, a listing ends: `meta.next_page` must move forward (a page
//! number seen before would go round in a circle), a page may not repeat the one before it
//! item for item (a server that ignores the paging parameter and does not echo it), and
//! [`PagingLimits`] bound its pages and items. Each of these stops the listing with
//! [`Error::Malformed`](crate::Error::Malformed) at `meta.next_page`.

use super::client::Query;
use super::error::SERVICE;
use super::error::malformed;
use super::model::{Int, Lenient, ListPage};
use crate::error::Result;
use crate::http::PagingLimits;
use crate::http::paging::PageCount;
use serde_json::Value;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};

/// Items per page: the maximum Qonto allows (qonto.md §2.6).
pub(crate) const PER_PAGE: u32 = 100;

/// Which query parameter selects a page (qonto.md §2.6, UNCERTAIN).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PagingMode {
    /// Send `page`; when `meta.current_page` does not echo it, re-ask with
    /// `current_page` and keep using it.
    #[default]
    Detect,
    /// Always `page`.
    Page,
    /// Always `current_page`.
    CurrentPage,
    /// Both parameters on every request.
    Both,
}

/// Pages through one list endpoint, remembering what the server honours.
#[derive(Debug)]
pub(crate) struct Pager {
    configured: PagingMode,
    /// Set once `page` was seen ignored (only in [`PagingMode::Detect`]).
    switched: AtomicBool,
    limits: PagingLimits,
}

impl Pager {
    pub(crate) fn new(configured: PagingMode, limits: PagingLimits) -> Self {
        Self {
            configured,
            switched: AtomicBool::new(false),
            limits,
        }
    }

    /// A new listing's progress, bounded by this pager's limits.
    pub(crate) fn progress(&self) -> Progress {
        Progress {
            count: PageCount::new(SERVICE, "meta.next_page", self.limits),
            previous: None,
        }
    }

    fn params(&self, page: u32) -> Query {
        let page = page.to_string();
        let mut query: Query = vec![("per_page", PER_PAGE.to_string())];
        match self.configured {
            PagingMode::Detect if self.switched.load(Ordering::Relaxed) => {
                query.push(("current_page", page));
            }
            PagingMode::Detect | PagingMode::Page => query.push(("page", page)),
            PagingMode::CurrentPage => query.push(("current_page", page)),
            PagingMode::Both => {
                query.push(("page", page.clone()));
                query.push(("current_page", page));
            }
        }
        query
    }

    /// Fetches page `page` with `fetch` (given the paging parameters and the page
    /// number); `None` past the last page.
    pub(crate) async fn fetch<F, Fut>(&self, page: u32, fetch: F) -> Result<Option<ListPage>>
    where
        F: Fn(Query, u32) -> Fut,
        Fut: Future<Output = Result<Option<ListPage>>>,
    {
        let detecting =
            self.configured == PagingMode::Detect && !self.switched.load(Ordering::Relaxed);
        let Some(list) = fetch(self.params(page), page).await? else {
            return Ok(None);
        };
        match echoed(&list) {
            Some(echo) if echo != i64::from(page) => {
                if !detecting {
                    return Err(not_echoed(page, echo));
                }
                tracing::info!(
                    "Qonto ignored the `page` parameter; switching to `current_page` (qonto.md §2.6)"
                );
                self.switched.store(true, Ordering::Relaxed);
                let Some(list) = fetch(self.params(page), page).await? else {
                    return Ok(None);
                };
                match echoed(&list) {
                    Some(echo) if echo != i64::from(page) => Err(not_echoed(page, echo)),
                    _ => Ok(Some(list)),
                }
            }
            _ => Ok(Some(list)),
        }
    }

    /// Every item of a list endpoint, page after page.
    pub(crate) async fn collect<F, Fut>(&self, fetch: F) -> Result<Vec<Value>>
    where
        F: Fn(Query, u32) -> Fut,
        Fut: Future<Output = Result<Option<ListPage>>>,
    {
        let mut items = Vec::new();
        let mut page = 1;
        let mut progress = self.progress();
        while let Some(list) = self.fetch(page, &fetch).await? {
            let next = progress.advance(&list, page)?;
            items.extend(list.items);
            match next {
                Some(next) => page = next,
                None => break,
            }
        }
        Ok(items)
    }
}

/// One listing's way through its pages.
#[derive(Debug)]
pub(crate) struct Progress {
    count: PageCount,
    /// A fingerprint of the previous page's items, when it had any.
    previous: Option<u64>,
}

impl Progress {
    /// Checks page `page`, just read, and returns the page after it (`None` at the end). An
    /// error when the listing must stop: past the limits, a next page that does not move
    /// forward, or a page that repeats the one before it.
    pub(crate) fn advance(&mut self, list: &ListPage, page: u32) -> Result<Option<u32>> {
        self.count.read(list.items.len())?;
        let fingerprint = fingerprint(&list.items);
        if fingerprint.is_some() && fingerprint == self.previous {
            return Err(self.count.stopped(format!(
                "page {page} repeats page {} item for item: the server seems to ignore the \
                 paging parameter; choose the PagingMode it honours",
                page.saturating_sub(1)
            )));
        }
        self.previous = fingerprint;
        let next = next_page(list, page)?;
        if next.is_some() {
            self.count.before_next()?;
        }
        Ok(next)
    }
}

/// A hash of a page's items, `None` for an empty page (two empty pages in a row say
/// nothing about paging; the page limit still bounds them).
fn fingerprint(items: &[Value]) -> Option<u64> {
    if items.is_empty() {
        return None;
    }
    let mut hasher = DefaultHasher::new();
    for item in items {
        // serde_json's maps are ordered, so the same item always prints the same.
        item.to_string().hash(&mut hasher);
    }
    Some(hasher.finish())
}

fn echoed(list: &ListPage) -> Option<i64> {
    match &list.meta.current_page {
        Lenient::Present(Int(n)) => Some(*n),
        _ => None,
    }
}

fn not_echoed(page: u32, echo: i64) -> crate::Error {
    malformed(
        "meta.current_page",
        format!("asked for page {page}, the server answered page {echo}"),
    )
}

/// The page after `page`, from `meta.next_page`; `None` at the end. A next page
/// that does not move forward is an error, never a loop.
pub(crate) fn next_page(list: &ListPage, page: u32) -> Result<Option<u32>> {
    match &list.meta.next_page {
        Lenient::Missing => Ok(None),
        Lenient::Present(Int(n)) if *n > i64::from(page) => u32::try_from(*n)
            .map(Some)
            .map_err(|_| malformed("meta.next_page", "out of range")),
        Lenient::Present(Int(n)) => Err(malformed(
            "meta.next_page",
            format!(
                "page {page} says the next page is {n}, which does not move forward: the \
                 listing would go round in a circle, so it was stopped"
            ),
        )),
        Lenient::Invalid(kind) => Err(malformed(
            "meta.next_page",
            format!("expected a page number, got {kind}"),
        )),
    }
}
