//! Plumbing shared by the HTTP connectors.

pub mod retry;

pub use retry::RetryConfig;
