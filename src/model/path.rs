//! Paths inside the archive, relative to its root.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A path inside the archive, relative to the archive root: one or more
/// non-empty names joined by `/`.
///
/// An `ArchivePath` only guarantees its shape (no empty name, no `.` or `..`,
/// no `/` or `\` inside a name, no NUL). Whether each name is acceptable to a
/// given storage is the layout's job (see [`crate::layout::names`]).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ArchivePath(String);

/// Why a string is not an [`ArchivePath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid archive path {path:?}: {why}")]
pub struct InvalidArchivePath {
    /// The rejected input.
    pub path: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// A case-insensitive key for an archive path: two paths with the same key
/// name the same item on a case-insensitive store such as OneDrive.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PathKey(String);

impl PathKey {
    /// The key of a path given as a string (its lower-case form).
    pub fn of(path: &str) -> Self {
        Self(path.to_lowercase())
    }

    /// The key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Keys hash and compare as their strings, so a map keyed by `PathKey` can be searched
// with a `&str` lower-cased into a reused buffer.
impl std::borrow::Borrow<str> for PathKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl ArchivePath {
    /// Joins names into a path, checking each one.
    pub fn from_names<I, S>(names: I) -> Result<Self, InvalidArchivePath>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut joined = String::new();
        for name in names {
            if !joined.is_empty() {
                joined.push('/');
            }
            joined.push_str(name.as_ref());
        }
        Self::parse(joined)
    }

    /// Parses `a/b/c`, checking every name.
    pub fn parse(path: impl Into<String>) -> Result<Self, InvalidArchivePath> {
        let path = path.into();
        let why = if path.is_empty() {
            Some("it is empty")
        } else {
            path.split('/').find_map(|name| match name {
                "" => Some("it has an empty name (a leading, trailing or double '/')"),
                "." | ".." => Some("it has a '.' or '..' name"),
                n if n.contains('\\') => Some("a name contains '\\'"),
                n if n.contains('\0') => Some("a name contains NUL"),
                _ => None,
            })
        };
        match why {
            Some(why) => Err(InvalidArchivePath { path, why }),
            None => Ok(Self(path)),
        }
    }

    /// A path built from names the layout already made valid.
    pub(crate) fn from_trusted(path: String) -> Self {
        debug_assert!(Self::parse(path.clone()).is_ok(), "{path:?}");
        Self(path)
    }

    /// The path as a string, names joined by `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The names from the top down.
    pub fn names(&self) -> impl DoubleEndedIterator<Item = &str> + '_ {
        self.0.split('/')
    }

    /// The last name.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The path of the containing folder, or `None` at the top level.
    pub fn parent(&self) -> Option<ArchivePath> {
        self.0
            .rfind('/')
            .map(|i| ArchivePath(self.0[..i].to_owned()))
    }

    /// Every folder above this path, from the top down (`a`, `a/b` for `a/b/c`).
    pub fn ancestors(&self) -> impl Iterator<Item = ArchivePath> + '_ {
        self.0
            .match_indices('/')
            .map(|(i, _)| ArchivePath(self.0[..i].to_owned()))
    }

    /// This path with `name` appended.
    pub fn join(&self, name: &str) -> Result<ArchivePath, InvalidArchivePath> {
        Self::parse(format!("{}/{}", self.0, name))
    }

    /// How many names the path has.
    pub fn depth(&self) -> usize {
        self.0.split('/').count()
    }

    /// Whether `self` is `folder` or lies inside it (case-insensitively).
    pub fn starts_with(&self, folder: &ArchivePath) -> bool {
        let (me, f) = (self.key(), folder.key());
        me.0 == f.0 || (me.0.starts_with(&f.0) && me.0.as_bytes().get(f.0.len()) == Some(&b'/'))
    }

    /// This path with its leading `from` folder replaced by `to`.
    /// Returns `None` when the path is not inside `from`.
    pub fn rebase(&self, from: &ArchivePath, to: &ArchivePath) -> Option<ArchivePath> {
        if !self.starts_with(from) {
            return None;
        }
        // Lower-casing can change byte lengths, so count names, not bytes.
        let rest: Vec<&str> = self.names().skip(from.depth()).collect();
        let mut out = to.0.clone();
        for name in rest {
            out.push('/');
            out.push_str(name);
        }
        Some(ArchivePath(out))
    }

    /// The case-insensitive key of this path.
    pub fn key(&self) -> PathKey {
        PathKey::of(&self.0)
    }
}

impl fmt::Debug for ArchivePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for ArchivePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ArchivePath {
    type Error = InvalidArchivePath;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl From<ArchivePath> for String {
    fn from(p: ArchivePath) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_shapes() {
        for bad in ["", "/a", "a/", "a//b", "a/../b", ".", "a\\b", "a\0"] {
            assert!(ArchivePath::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn parents_and_ancestors() {
        let p = ArchivePath::parse("Main 1234/2026-11/f.pdf").unwrap();
        assert_eq!(p.parent().unwrap().as_str(), "Main 1234/2026-11");
        let anc: Vec<_> = p.ancestors().map(|a| a.to_string()).collect();
        assert_eq!(anc, ["Main 1234", "Main 1234/2026-11"]);
        assert_eq!(p.file_name(), "f.pdf");
        assert_eq!(p.depth(), 3);
    }

    #[test]
    fn starts_with_is_per_name_and_case_insensitive() {
        let p = ArchivePath::parse("Main/2026-11/f.pdf").unwrap();
        assert!(p.starts_with(&ArchivePath::parse("main").unwrap()));
        assert!(!p.starts_with(&ArchivePath::parse("Mai").unwrap()));
        let moved = p
            .rebase(
                &ArchivePath::parse("MAIN").unwrap(),
                &ArchivePath::parse("Renamed").unwrap(),
            )
            .unwrap();
        assert_eq!(moved.as_str(), "Renamed/2026-11/f.pdf");
    }
}
