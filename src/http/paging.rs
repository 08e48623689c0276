//! Bounds on one paged listing, so that a server whose pages never end cannot keep a sync
//! reading forever, and a listing cut short is never passed off as complete.
//!
//! A listing missing its last pages is worse than no listing: in the archive it makes files
//! look deleted (and the deletion rules then record tombstones), in the bank it hides
//! receipts. So a listing that reaches a limit fails with [`Error::Malformed`] naming the link
//! field; nothing read so far is taken as the whole.

use crate::error::{Error, Result};

/// Pages one listing may read by default: 5,000,000 bank transactions at Qonto's 100 per
/// page, or an archive of millions of files at Graph's usual 200 to 1,000 per page.
pub const DEFAULT_MAX_PAGES: u32 = 50_000;

/// Items one listing may read by default: five times the million receipts a sync is
/// designed to handle.
pub const DEFAULT_MAX_ITEMS: u64 = 5_000_000;

/// Limits on one paged listing: one account's transactions, the bank accounts, a delta
/// enumeration of the archive, or a folder-by-folder walk of it.
///
/// Defaults: [`DEFAULT_MAX_PAGES`] pages and [`DEFAULT_MAX_ITEMS`] items. A listing that
/// needs more fails with [`Error::Malformed`] (permanent); raise the limits for an archive or
/// a bank history that really is that large. A link back to a page already read fails at
/// once, whatever the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PagingLimits {
    /// Pages read in one listing, the first included (0 counts as 1).
    pub max_pages: u32,
    /// Items read in one listing, over all its pages.
    pub max_items: u64,
}

impl Default for PagingLimits {
    fn default() -> Self {
        Self {
            max_pages: DEFAULT_MAX_PAGES,
            max_items: DEFAULT_MAX_ITEMS,
        }
    }
}

impl PagingLimits {
    /// Sets the number of pages one listing may read (at least 1).
    pub fn with_max_pages(mut self, pages: u32) -> Self {
        self.max_pages = pages.max(1);
        self
    }

    /// Sets the number of items one listing may read.
    pub fn with_max_items(mut self, items: u64) -> Self {
        self.max_items = items;
        self
    }
}

/// Pages and items of one listing, counted against its [`PagingLimits`].
#[derive(Debug)]
pub(crate) struct PageCount {
    limits: PagingLimits,
    /// The service, for the error.
    service: &'static str,
    /// The field that leads to the next page (`@odata.nextLink`, `meta.next_page`).
    link_field: &'static str,
    pages: u32,
    items: u64,
}

impl PageCount {
    pub(crate) fn new(
        service: &'static str,
        link_field: &'static str,
        limits: PagingLimits,
    ) -> Self {
        Self {
            limits,
            service,
            link_field,
            pages: 0,
            items: 0,
        }
    }

    /// Counts a page of `items` items just read; an error past the item limit.
    pub(crate) fn read(&mut self, items: usize) -> Result<()> {
        self.pages = self.pages.saturating_add(1);
        self.items = self
            .items
            .saturating_add(u64::try_from(items).unwrap_or(u64::MAX));
        if self.items > self.limits.max_items {
            return Err(self.stopped(format!(
                "more than {} items in one listing (PagingLimits::max_items; raise it if the \
                 data really is that large)",
                self.limits.max_items
            )));
        }
        Ok(())
    }

    /// Checks that one more page may be read; an error once the page limit is reached.
    pub(crate) fn before_next(&self) -> Result<()> {
        if self.pages >= self.limits.max_pages.max(1) {
            return Err(self.stopped(format!(
                "more than {} pages in one listing (PagingLimits::max_pages; raise it if the \
                 data really is that large)",
                self.limits.max_pages.max(1)
            )));
        }
        Ok(())
    }

    /// The error for a listing stopped because `why`.
    pub(crate) fn stopped(&self, why: String) -> Error {
        Error::Malformed {
            service: self.service,
            field: self.link_field.to_owned(),
            detail: format!("{why}; the listing was stopped and nothing was taken as complete"),
        }
    }

    /// The error for a link back to a page already read.
    pub(crate) fn cycle(&self) -> Error {
        self.stopped(format!(
            "page {} leads back to a page already read, so the listing would never end \
             (a fault of the service: try again later)",
            self.pages
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn pages_and_items_are_bounded_and_the_errors_name_the_link() {
        let limits = PagingLimits::default().with_max_pages(2).with_max_items(5);
        let mut count = PageCount::new("test", "next", limits);
        count.read(3).unwrap();
        count.before_next().unwrap();
        count.read(2).unwrap();
        let past_pages = count.before_next().unwrap_err();
        assert_eq!(past_pages.kind(), ErrorKind::Malformed);
        assert!(!past_pages.is_retryable() && !past_pages.stops_sync());
        assert!(past_pages.to_string().contains("at next"), "{past_pages}");
        assert!(past_pages.to_string().contains("more than 2 pages"));
        let past_items = count.read(1).unwrap_err();
        assert!(past_items.to_string().contains("more than 5 items"));
        assert!(count.cycle().to_string().contains("page 3 leads back"));
    }

    #[test]
    fn a_zero_page_limit_still_reads_one_page() {
        let limits = PagingLimits::default().with_max_pages(0);
        assert_eq!(limits.max_pages, 1);
        let mut count = PageCount::new("test", "next", limits);
        count.read(1).unwrap();
        assert!(count.before_next().is_err());
    }
}
