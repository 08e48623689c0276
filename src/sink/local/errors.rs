//! How the sink's failures become the crate's [`Error`].

use super::SERVICE;
use crate::error::Error;
use crate::model::ArchivePath;
use std::io;
use std::path::PathBuf;

/// A failed step that writes to the disk (creates, links, renames, fsyncs). A full disk
/// (or a user's disk quota, or a file-size limit) is [`Error::DiskFull`]: it stops the
/// sync, since every other receipt would fail the same way, and says what to do.
pub(super) fn write_failed(operation: &'static str, path: PathBuf, e: io::Error) -> Error {
    crate::fs_util::write_error(operation, &path, e)
}

pub(super) fn symlink_refused(operation: &str, path: &ArchivePath) -> Error {
    Error::Rejected {
        service: SERVICE,
        operation: format!("{operation} {path}"),
        message: format!("{path} is a symbolic link; receipt-sync never follows one"),
    }
}

pub(super) fn already_exists(path: &ArchivePath) -> Error {
    Error::AlreadyExists {
        what: path.to_string(),
    }
}

pub(super) fn folder_missing(path: &ArchivePath) -> Error {
    Error::NotFound {
        what: format!("folder {path}"),
    }
}
