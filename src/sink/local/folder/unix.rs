//! [`Folder`] on Unix: a file descriptor, and `*at` system calls relative to it.

use super::{Kind, Listed, Space};
use rustix::fs::{self as sys, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::time::SystemTime;

/// An open folder. Its handle keeps naming the same folder whatever is renamed,
/// removed or swapped for a link on the way to it.
#[derive(Debug)]
pub(in crate::sink::local) struct Folder {
    fd: OwnedFd,
}

/// The one entry `name` names in a folder: never a path of several names, nor the
/// folder itself or its parent. Archive paths are checked long before this; this
/// keeps the guarantee local.
fn one_name(name: &str) -> io::Result<&str> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a single file name",
        ));
    }
    Ok(name)
}

fn kind_of(stat: &sys::Stat) -> Kind {
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::Directory => Kind::Folder,
        FileType::RegularFile => Kind::File {
            size: u64::try_from(stat.st_size).unwrap_or(0),
        },
        FileType::Symlink => Kind::Link,
        _ => Kind::Other,
    }
}

/// `renameat2`/`renameatx_np` answer one of these when the file system has no
/// no-replace rename (some network and FUSE file systems).
#[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
fn no_replace_unsupported(e: Errno) -> bool {
    [Errno::INVAL, Errno::NOSYS, Errno::NOTSUP, Errno::OPNOTSUPP].contains(&e)
}

impl Folder {
    /// Opens the folder at `path`. Links on the way are followed: where the root
    /// lives is the caller's choice; only what is inside it is guarded.
    pub fn open_root(path: &Path) -> io::Result<Self> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Ok(Self {
            fd: sys::open(path, flags, Mode::empty())?,
        })
    }

    /// A second handle on the same folder.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            fd: self.fd.try_clone()?,
        })
    }

    /// The sub-folder `name`; `None` when no folder is there under that name: it is
    /// missing, a file, or a link (`O_NOFOLLOW`: `ELOOP`, or `ENOTDIR` with
    /// `O_DIRECTORY`, on Linux; `EMLINK` on FreeBSD).
    pub fn open_folder(&self, name: &str) -> io::Result<Option<Self>> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match sys::openat(&self.fd, one_name(name)?, flags, Mode::empty()) {
            Ok(fd) => Ok(Some(Self { fd })),
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::MLINK) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// What sits at `name`, links not followed; `None` when nothing does.
    pub fn kind(&self, name: &str) -> io::Result<Option<Kind>> {
        match sys::statat(&self.fd, one_name(name)?, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(kind_of(&stat))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `a` and `b` name the same entry (a case-only rename on a
    /// case-insensitive disk).
    pub fn same_entry(&self, a: &str, b: &str) -> io::Result<bool> {
        let a = sys::statat(&self.fd, one_name(a)?, AtFlags::SYMLINK_NOFOLLOW)?;
        let b = sys::statat(&self.fd, one_name(b)?, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(a.st_dev == b.st_dev && a.st_ino == b.st_ino)
    }

    /// Creates the sub-folder `name` (`EEXIST` if anything, even a link, is there).
    pub fn create_folder(&self, name: &str) -> io::Result<()> {
        let mode = Mode::RWXU | Mode::RWXG | Mode::RWXO; // narrowed by the umask
        Ok(sys::mkdirat(&self.fd, one_name(name)?, mode)?)
    }

    /// Creates the file `name`, readable by its owner only, for writing. `O_EXCL`
    /// fails on anything already there, a dangling link included.
    pub fn create_file(&self, name: &str) -> io::Result<File> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        let fd = sys::openat(
            &self.fd,
            one_name(name)?,
            flags | OFlags::CLOEXEC,
            Mode::RUSR | Mode::WUSR,
        )?;
        Ok(File::from(fd))
    }

    /// Gives the file `name` a second name, `to_name` in `to`. `linkat(2)` without
    /// `AT_SYMLINK_FOLLOW` follows no link and never replaces: `EEXIST`.
    pub fn link(&self, name: &str, to: &Folder, to_name: &str) -> io::Result<()> {
        let (name, to_name) = (one_name(name)?, one_name(to_name)?);
        Ok(sys::linkat(
            &self.fd,
            name,
            &to.fd,
            to_name,
            AtFlags::empty(),
        )?)
    }

    /// Renames `from` to `to` in this folder, failing with `EEXIST` rather than
    /// replace anything (`rename(2)` would replace a file or an empty folder).
    pub fn rename_no_replace(&self, from: &str, to: &str) -> io::Result<()> {
        let (from, to) = (one_name(from)?, one_name(to)?);
        #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
        match sys::renameat_with(&self.fd, from, &self.fd, to, sys::RenameFlags::NOREPLACE) {
            Err(e) if no_replace_unsupported(e) => {}
            done => return Ok(done?),
        }
        // No atomic no-replace here: check, then rename (a race window of one call).
        if self.kind(to)?.is_some() {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        self.rename(from, to)
    }

    /// Renames `from` to `to` in this folder, replacing what `rename(2)` replaces.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (from, to) = (one_name(from)?, one_name(to)?);
        Ok(sys::renameat(&self.fd, from, &self.fd, to)?)
    }

    /// Removes the name `name` (a link is removed, not what it points to).
    pub fn remove_file(&self, name: &str) -> io::Result<()> {
        Ok(sys::unlinkat(&self.fd, one_name(name)?, AtFlags::empty())?)
    }

    /// Makes this folder's entries (a new name, a removed name) durable.
    pub fn sync(&self) -> io::Result<()> {
        Ok(sys::fsync(&self.fd)?)
    }

    /// The folder's entries, links not followed. An entry removed while it is being
    /// listed is left out.
    pub fn list(&self) -> io::Result<Vec<Listed>> {
        let mut reader = sys::Dir::read_from(&self.fd)?;
        let mut out = Vec::new();
        while let Some(entry) = reader.read() {
            let entry = entry?;
            let name = entry.file_name();
            if matches!(name.to_bytes(), b"." | b"..") {
                continue;
            }
            let kind = match entry.file_type() {
                FileType::Directory => Kind::Folder,
                FileType::Symlink => Kind::Link,
                // A file's size, and what an entry is when the file system does not
                // say in its listing (`DT_UNKNOWN`), need one `fstatat` each.
                FileType::RegularFile | FileType::Unknown => {
                    match sys::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(stat) => kind_of(&stat),
                        Err(Errno::NOENT) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                _ => Kind::Other,
            };
            let name = OsString::from_vec(name.to_bytes().to_vec());
            out.push(Listed { name, kind });
        }
        Ok(out)
    }

    /// When the regular file `name` was last written; `None` when it is gone or is
    /// not a regular file. `O_NONBLOCK`: a pipe swapped in never blocks the open.
    pub fn modified(&self, name: &str) -> io::Result<Option<SystemTime>> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match sys::openat(&self.fd, one_name(name)?, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::LOOP) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let meta = File::from(fd).metadata()?;
        meta.is_file().then(|| meta.modified()).transpose()
    }

    /// The space of the file system this folder is on; `None` when it reports no
    /// size (some pseudo and network file systems).
    pub fn space(&self) -> io::Result<Option<Space>> {
        let vfs = sys::fstatvfs(&self.fd)?;
        let block = if vfs.f_frsize > 0 {
            vfs.f_frsize
        } else {
            vfs.f_bsize
        };
        if vfs.f_blocks == 0 || block == 0 {
            return Ok(None);
        }
        let bytes = |blocks: u64| blocks.min(vfs.f_blocks).saturating_mul(block);
        Ok(Some(Space {
            total: bytes(vfs.f_blocks),
            used: bytes(vfs.f_blocks.saturating_sub(vfs.f_bfree)),
            available: bytes(vfs.f_bavail),
        }))
    }
}
