//! Test kit (feature `testkit`): the conformance suites, fault wrappers and fake
//! servers this crate tests itself with, public so that embedders and authors of
//! new connectors can run the same checks.

pub mod decode;
pub mod fake_graph;
pub mod fake_identity;
pub mod fake_qonto;
pub mod faults;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod server;
pub mod sink;
pub mod source;
pub mod state;
mod suite;

pub use suite::SuiteReport;
