//! [`Folder`] where std offers no `openat` (Windows): a path, each step checked
//! with `symlink_metadata` first. A link swapped in between the check and the step
//! is followed; the sink's docs say so.

use super::{Kind, Listed, Space};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A folder, by its path.
#[derive(Debug)]
pub(in crate::sink::local) struct Folder {
    path: PathBuf,
}

/// The path of the one entry `name` names in `folder`.
fn entry(folder: &Path, name: &str) -> io::Result<PathBuf> {
    let separators: &[char] = &['/', '\\', '\0', ':'];
    if name.is_empty() || name == "." || name == ".." || name.contains(separators) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a single file name",
        ));
    }
    Ok(folder.join(name))
}

fn kind_of(meta: &fs::Metadata) -> Kind {
    let kind = meta.file_type();
    if kind.is_symlink() {
        Kind::Link
    } else if kind.is_dir() {
        Kind::Folder
    } else if kind.is_file() {
        Kind::File { size: meta.len() }
    } else {
        Kind::Other
    }
}

fn probe(path: &Path) -> io::Result<Option<Kind>> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(kind_of(&meta))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl Folder {
    /// The folder at `path`, which must be one.
    pub fn open_root(path: &Path) -> io::Result<Self> {
        if !fs::metadata(path)?.is_dir() {
            return Err(io::ErrorKind::NotADirectory.into());
        }
        Ok(Self {
            path: path.to_owned(),
        })
    }

    /// A second handle on the same folder.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            path: self.path.clone(),
        })
    }

    /// The sub-folder `name`; `None` when no folder is there under that name: it is
    /// missing, a file, or a link.
    pub fn open_folder(&self, name: &str) -> io::Result<Option<Self>> {
        let path = entry(&self.path, name)?;
        Ok((probe(&path)? == Some(Kind::Folder)).then_some(Self { path }))
    }

    /// What sits at `name`, links not followed; `None` when nothing does.
    pub fn kind(&self, name: &str) -> io::Result<Option<Kind>> {
        probe(&entry(&self.path, name)?)
    }

    /// Whether `a` and `b` name the same entry. Not known here: a case-only rename
    /// is refused as taken.
    pub fn same_entry(&self, a: &str, b: &str) -> io::Result<bool> {
        entry(&self.path, a)?;
        entry(&self.path, b)?;
        Ok(false)
    }

    /// Creates the sub-folder `name`.
    pub fn create_folder(&self, name: &str) -> io::Result<()> {
        fs::create_dir(entry(&self.path, name)?)
    }

    /// Creates the file `name` for writing; fails if anything is there.
    pub fn create_file(&self, name: &str) -> io::Result<File> {
        File::options()
            .write(true)
            .create_new(true)
            .open(entry(&self.path, name)?)
    }

    /// Gives the file `name` a second name, `to_name` in `to`; never replaces.
    pub fn link(&self, name: &str, to: &Folder, to_name: &str) -> io::Result<()> {
        fs::hard_link(entry(&self.path, name)?, entry(&to.path, to_name)?)
    }

    /// Renames `from` to `to`, failing with `AlreadyExists` rather than replace.
    pub fn rename_no_replace(&self, from: &str, to: &str) -> io::Result<()> {
        if self.kind(to)?.is_some() {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        self.rename(from, to)
    }

    /// Renames `from` to `to`.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(entry(&self.path, from)?, entry(&self.path, to)?)
    }

    /// Removes the name `name`.
    pub fn remove_file(&self, name: &str) -> io::Result<()> {
        fs::remove_file(entry(&self.path, name)?)
    }

    /// Folder entries need no fsync here.
    pub fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    /// The folder's entries, links not followed.
    pub fn list(&self) -> io::Result<Vec<Listed>> {
        let mut out = Vec::new();
        for item in fs::read_dir(&self.path)? {
            let item = item?;
            // `DirEntry::metadata` does not follow links.
            let kind = match item.metadata() {
                Ok(meta) => kind_of(&meta),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            out.push(Listed {
                name: item.file_name(),
                kind,
            });
        }
        Ok(out)
    }

    /// When the regular file `name` was last written; `None` when it is gone or is
    /// not a regular file.
    pub fn modified(&self, name: &str) -> io::Result<Option<SystemTime>> {
        match fs::symlink_metadata(entry(&self.path, name)?) {
            Ok(meta) if meta.is_file() => meta.modified().map(Some),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Free space is not read here.
    pub fn space(&self) -> io::Result<Option<Space>> {
        Ok(None)
    }
}
