#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod auth;
pub mod error;
mod fs_util;
pub mod http;
pub mod layout;
pub mod model;
pub mod plan;
pub mod sink;
pub mod source;
pub mod state;
pub mod sync;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::{Error, ErrorKind, Result};
