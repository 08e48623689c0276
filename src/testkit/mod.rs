//! Test kit (feature `testkit`): the conformance suites, fault wrappers and fake
//! servers this crate tests itself with, public so that embedders and authors of
//! new connectors can run the same checks.

pub mod fake_identity;
pub mod server;
