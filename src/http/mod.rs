//! Plumbing shared by the HTTP connectors.

pub mod paging;
pub mod retry;

pub use paging::PagingLimits;
pub use retry::RetryConfig;
