//! An open folder, and the one-name steps [`super::LocalDirSink`] takes in it.
//!
//! Every step names a single entry of an open folder: nothing is ever reached through
//! a path of several names, and no step follows a symbolic link. On Unix a [`Folder`]
//! is a file descriptor and each step is an `*at` system call on it (`openat` with
//! `O_NOFOLLOW`, `mkdirat`, `linkat`, `renameat2`/`renameatx_np` with no-replace,
//! `unlinkat`, `fstatat` with `AT_SYMLINK_NOFOLLOW`, `fdopendir`): a folder swapped
//! for a link after it was opened changes nothing, since the handle still names the
//! real folder. Elsewhere it is a path, checked with `symlink_metadata` before each
//! step, which leaves a window of a few system calls (see the sink's assumptions).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(super) use unix::Folder;

#[cfg(not(unix))]
mod other;
#[cfg(not(unix))]
pub(super) use other::Folder;

/// What sits at a name in a folder, links not followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A real folder.
    Folder,
    /// A regular file of `size` bytes.
    File {
        /// Its length.
        size: u64,
    },
    /// A symbolic link, whatever it points to.
    Link,
    /// Anything else: a socket, a pipe, a device.
    Other,
}

/// One entry of a folder's listing.
#[derive(Debug)]
pub(super) struct Listed {
    /// Its name, as the file system holds it (not necessarily UTF-8).
    pub name: std::ffi::OsString,
    /// What it is.
    pub kind: Kind,
}

/// The space of the file system a folder is on, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(unix), allow(dead_code))] // only read from `statvfs`
pub(super) struct Space {
    /// Its size.
    pub total: u64,
    /// What is in use.
    pub used: u64,
    /// What this process may still write (blocks reserved for the superuser excluded).
    pub available: u64,
}
