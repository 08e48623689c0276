//! Small file-system helpers shared by the stores and the local sink.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::path::Path;

/// Runs blocking file work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::Cancelled)?
}

/// A failed step that writes to the disk (creates, writes, renames, removes, fsyncs). A
/// full disk, a user's disk quota or a file-size limit becomes [`Error::DiskFull`], which
/// stops the sync and says what to do; anything else is [`Error::Io`].
pub(crate) fn write_error(operation: &'static str, path: &Path, e: std::io::Error) -> Error {
    if Error::is_disk_full(&e) {
        // The kind says it all; the OS text may repeat a temporary file's name.
        return Error::DiskFull {
            operation,
            path: path.to_owned(),
        };
    }
    Error::io(operation, path, e)
}

/// Makes a folder's entries (a new name, a removed name) durable. The fsync may be the
/// moment a full disk shows (delayed allocation, network file systems): that is
/// [`Error::DiskFull`].
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)
            .map_err(|e| Error::io("open folder", dir, e))?
            .sync_all()
            .map_err(|e| write_error("sync folder", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Creates `dir` and any missing parent, each new one usable by its owner only (0700 on
/// Unix, whatever the umask). A folder already there is left as it is: use this for a
/// folder the caller may share with others (a token file's), [`create_private_dir`] for
/// one of its own.
pub(crate) fn create_owner_only_dirs(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        // Given to mkdir(2): the umask can only take bits away from it.
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| write_error("create folder", dir, e))
}

/// Creates `dir` (and any missing parent) usable by its owner only (0700 on Unix, whatever
/// the umask), and narrows it to that if it already exists: the folder belongs to the
/// store that calls this, and nothing in it is meant for other users.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    create_owner_only_dirs(dir)?;
    // `create` leaves a folder that was already there as it was.
    let metadata = std::fs::metadata(dir).map_err(|e| Error::io("inspect", dir, e))?;
    narrow_to_owner(dir, &metadata, |permissions| {
        std::fs::set_permissions(dir, permissions)
    });
    Ok(())
}

/// Opens a file with `options`, readable by its owner only: created 0600 (on Unix,
/// whatever the umask), or narrowed to that if it already exists with wider permissions.
pub(crate) fn open_private(options: &mut OpenOptions, path: &Path) -> std::io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    // Through the open file (fchmod), so it is this very file that is narrowed.
    narrow_to_owner(path, &file.metadata()?, |permissions| {
        file.set_permissions(permissions)
    });
    Ok(file)
}

/// Takes the group's and others' permission bits off an existing file or folder.
///
/// A failure is a warning, not an error: some file systems (FAT, some network shares)
/// have no Unix permissions to change, and refusing to run there would help no one.
fn narrow_to_owner(
    path: &Path,
    metadata: &std::fs::Metadata,
    set: impl FnOnce(std::fs::Permissions) -> std::io::Result<()>,
) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode();
        if mode & 0o077 == 0 {
            return;
        }
        let narrowed = mode & 0o7700;
        // Expected once after an upgrade (older versions followed the umask): no action needed.
        tracing::info!(
            path = %path.display(),
            from = format_args!("{:o}", mode & 0o7777),
            to = format_args!("{narrowed:o}"),
            "narrowing permissions to the owner only"
        );
        if let Err(error) = set(std::fs::Permissions::from_mode(narrowed)) {
            tracing::warn!(
                path = %path.display(),
                %error,
                "could not narrow permissions: other users may be able to read this"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, metadata, set);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::io;

    #[test]
    fn a_full_disk_or_quota_while_writing_is_disk_full() {
        let path = Path::new("/state/.state.json.tmp");
        let mut full = vec![
            io::Error::from(io::ErrorKind::StorageFull),
            io::Error::from(io::ErrorKind::QuotaExceeded),
            io::Error::from(io::ErrorKind::FileTooLarge),
        ];
        // ENOSPC, EDQUOT and EFBIG as the kernel reports them.
        #[cfg(target_os = "linux")]
        full.extend([28, 122, 27].map(io::Error::from_raw_os_error));
        for e in full {
            let shown = e.to_string();
            let error = write_error("replace", path, e);
            assert_eq!(error.kind(), ErrorKind::DiskFull, "{shown}");
            assert!(error.stops_sync());
        }
        let denied = write_error(
            "replace",
            path,
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert_eq!(denied.kind(), ErrorKind::Io);
    }

    #[test]
    fn owner_only_dirs_leave_an_existing_folder_as_it_is() {
        let root = tempfile::tempdir().unwrap();
        let shared = root.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let new = shared.join("a").join("b");
        create_owner_only_dirs(&new).unwrap();
        assert!(new.is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode(&shared),
                0o755,
                "the folder already there is not narrowed"
            );
            assert_eq!(mode(&new) & 0o077, 0, "new folders are the owner's only");
            assert_eq!(mode(&shared.join("a")) & 0o077, 0);
        }
    }
}
