//! How a fake Graph starts.

/// How a [`FakeGraph`](super::FakeGraph) starts.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FakeGraphConfig {
    /// The app folder's name (`Apps/<app_name>`); default `receipt-sync`.
    pub app_name: String,
    /// The drive's size in bytes; default 5 GiB.
    pub quota_total: u64,
    /// Whether deleting a folder also leaves a tombstone per descendant in delta
    /// (onedrive-graph.md §12.4 says it is unknown); default `false`: the folder's own only.
    pub cascade_tombstones: bool,
    /// Whether reserved names (`CON`, `desktop.ini`, `~$…`) are refused; default `true`.
    pub reserved_names: bool,
    /// Children per page when the client does not ask (`$top`); Graph's default is 200.
    pub children_page_size: usize,
    /// The largest page served, whatever `$top` asks; default 1000.
    pub max_page_size: usize,
    /// Delta items per page; default 200.
    pub delta_page_size: usize,
    /// The largest simple `PUT`; default 4 MiB (onedrive-graph.md §3, §12.1).
    pub simple_upload_limit: u64,
    /// Bearer tokens accepted; empty (the default) accepts any.
    pub accepted_tokens: Vec<String>,
}

impl Default for FakeGraphConfig {
    fn default() -> Self {
        Self {
            app_name: "receipt-sync".into(),
            quota_total: 5 * 1024 * 1024 * 1024,
            cascade_tombstones: false,
            reserved_names: true,
            children_page_size: 200,
            max_page_size: 1000,
            delta_page_size: 200,
            simple_upload_limit: 4 * 1024 * 1024,
            accepted_tokens: Vec::new(),
        }
    }
}

impl FakeGraphConfig {
    /// Sets [`app_name`](Self::app_name).
    pub fn with_app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = name.into();
        self
    }

    /// Sets [`quota_total`](Self::quota_total).
    pub fn with_quota_total(mut self, bytes: u64) -> Self {
        self.quota_total = bytes;
        self
    }

    /// Sets [`cascade_tombstones`](Self::cascade_tombstones).
    pub fn with_cascade_tombstones(mut self, cascade: bool) -> Self {
        self.cascade_tombstones = cascade;
        self
    }

    /// Sets [`reserved_names`](Self::reserved_names).
    pub fn with_reserved_names(mut self, enforce: bool) -> Self {
        self.reserved_names = enforce;
        self
    }

    /// Sets the page sizes: children when not asked, delta, and the largest served.
    pub fn with_page_sizes(mut self, children: usize, delta: usize, max: usize) -> Self {
        self.children_page_size = children;
        self.delta_page_size = delta;
        self.max_page_size = max;
        self
    }

    /// Sets [`simple_upload_limit`](Self::simple_upload_limit).
    pub fn with_simple_upload_limit(mut self, bytes: u64) -> Self {
        self.simple_upload_limit = bytes;
        self
    }

    /// Sets [`accepted_tokens`](Self::accepted_tokens).
    pub fn with_accepted_tokens(mut self, tokens: &[&str]) -> Self {
        self.accepted_tokens = tokens.iter().map(|t| (*t).to_owned()).collect();
        self
    }
}

/// How the pages of a children listing or a delta enumeration link to each other; set with
/// [`FakeGraph::set_page_links`](super::FakeGraph::set_page_links).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PageLinks {
    /// As Graph does: each page links to the next one; the last has no `@odata.nextLink`
    /// (children) or a `@odata.deltaLink` (delta).
    #[default]
    Forward,
    /// The last page links back to the first one (`@odata.nextLink`, never a deltaLink): the
    /// listing goes round in a circle, two pages long for a listing of two pages.
    BackToFirst,
    /// A page that has a next one links to itself instead (its own offset): followed
    /// naively, the listing never gets past it, and stopping there leaves it cut short.
    Stuck,
}

impl PageLinks {
    /// The offset the `@odata.nextLink` of the page at `skip` (of `top` items, out of
    /// `total`) points to; `None`: the listing ends there.
    pub(crate) fn next_offset(self, skip: usize, top: usize, total: usize) -> Option<usize> {
        let more = skip + top < total;
        match self {
            PageLinks::Forward => more.then_some(skip + top),
            PageLinks::BackToFirst => Some(if more { skip + top } else { 0 }),
            PageLinks::Stuck => more.then_some(skip),
        }
    }
}
