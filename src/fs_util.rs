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

/// Makes a folder's entries (a new name, a removed name) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("sync folder", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Creates `dir` (and any missing parent) usable by its owner only (0700 on Unix, whatever
/// the umask), and narrows it to that if it already exists: the folder belongs to the
/// store that calls this, and nothing in it is meant for other users.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
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
        .map_err(|e| Error::io("create folder", dir, e))?;
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
