//! OneDrive's naming rules, enforced by the sinks that keep them so that an archive
//! built anywhere can move to OneDrive unchanged (onedrive-graph.md §7).
//!
//! These checks refuse; making names valid is the layout's job.

use super::SinkCapabilities;
use crate::error::{Error, Result};
use crate::model::ArchivePath;

/// Characters OneDrive refuses in a name. The API docs omit `"`, which the service
/// refuses too (onedrive-graph.md §7, rclone's encoder).
const FORBIDDEN: &[char] = &['"', '*', ':', '<', '>', '?', '/', '\\', '|'];

/// Device names Windows reserves, with or without an extension. Whether OneDrive
/// Personal enforces them through the API is UNCERTAIN (§7): refusing them is the
/// safe reading.
const RESERVED_STEMS: &[&str] = &["con", "prn", "aux", "nul"];

/// Why `name` is not acceptable to OneDrive, if it is not.
fn name_problem(name: &str, max_len: usize) -> Option<String> {
    let len = name.encode_utf16().count();
    if len > max_len {
        return Some(format!(
            "the name is {len} UTF-16 units long; the limit is {max_len}"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| FORBIDDEN.contains(c) || c.is_control())
    {
        return Some(format!("the name contains the forbidden character {c:?}"));
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Some("the name starts or ends with a space".into());
    }
    if name.ends_with('.') {
        return Some("the name ends with a '.'".into());
    }
    let lower = name.to_lowercase();
    let stem = lower.split('.').next().unwrap_or(&lower);
    let numbered_device = (stem.starts_with("com") || stem.starts_with("lpt"))
        && stem.len() == 4
        && stem.as_bytes().get(3).is_some_and(u8::is_ascii_digit);
    if RESERVED_STEMS.contains(&stem) || numbered_device {
        return Some(format!("{name:?} is a reserved device name"));
    }
    if lower == ".lock"
        || lower == "desktop.ini"
        || lower.starts_with("~$")
        || lower.contains("_vti_")
    {
        return Some(format!("{name:?} is reserved by OneDrive"));
    }
    None
}

/// Checks every name of `path`, and its whole length, against OneDrive's rules and
/// the limits in `caps`.
///
/// # Errors
/// [`Error::Rejected`] saying which rule the path breaks.
pub(crate) fn check_path(
    path: &ArchivePath,
    caps: &SinkCapabilities,
    service: &'static str,
    operation: &str,
) -> Result<()> {
    let rejected = |message: String| Error::Rejected {
        service,
        operation: format!("{operation} {path}"),
        message,
    };
    for name in path.names() {
        if let Some(problem) = name_problem(name, caps.max_name_len) {
            return Err(rejected(problem));
        }
    }
    // The whole path, app-folder prefix included, must fit (§7: "fewer than 400").
    let len = caps.root_prefix_len + path.as_str().encode_utf16().count();
    if len > caps.max_path_len {
        return Err(rejected(format!(
            "the path is {len} UTF-16 units long with its prefix; the limit is {}",
            caps.max_path_len
        )));
    }
    Ok(())
}

/// The path `path` would have once renamed, in place, to `new_name`.
///
/// # Errors
/// [`Error::Rejected`] when `new_name` is not a single valid name (empty, `..`, a `/`).
pub(crate) fn renamed(
    path: &ArchivePath,
    new_name: &str,
    service: &'static str,
) -> Result<ArchivePath> {
    match path.parent() {
        Some(parent) => parent.join(new_name),
        None => ArchivePath::parse(new_name),
    }
    .ok()
    .filter(|target| target.depth() == path.depth())
    .ok_or_else(|| Error::Rejected {
        service,
        operation: format!("rename {path}"),
        message: format!("{new_name:?} is not a valid name"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str) -> Result<()> {
        let path = ArchivePath::parse(path).unwrap();
        check_path(&path, &SinkCapabilities::minimal(), "test", "write")
    }

    #[test]
    fn accepts_ordinary_names_and_refuses_onedrive_forbidden_ones() {
        check("Main/2026-11/2026-11-03 Office -12.34 EUR ab12cd.pdf").unwrap();
        check("Main/console.pdf").unwrap();
        check("Main/COM10").unwrap();
        for bad in [
            "a/b:c",
            "a/b?",
            "a/\"q\"",
            "a/ lead",
            "a/trail ",
            "a/dot.",
            "CON",
            "a/nul.txt",
            "a/com1.pdf",
            "a/LPT9",
            "desktop.ini",
            "a/~$x",
            "a/x_vti_y",
            "a/tab\t",
        ] {
            let err = check(bad).expect_err(bad);
            assert!(matches!(err, Error::Rejected { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn renamed_stays_beside_the_original() {
        let p = ArchivePath::parse("a/b").unwrap();
        assert_eq!(renamed(&p, "c", "t").unwrap().as_str(), "a/c");
        let top = ArchivePath::parse("a").unwrap();
        assert_eq!(renamed(&top, "z", "t").unwrap().as_str(), "z");
        for bad in ["", "..", "x/y", "x\\y"] {
            assert!(renamed(&p, bad, "t").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_count_utf16_units() {
        check(&"n".repeat(255)).unwrap();
        assert!(check(&"n".repeat(256)).is_err());
        // U+1F600 is two UTF-16 units: 128 of them are 256 units.
        assert!(check(&"😀".repeat(128)).is_err());
        let deep = vec!["n".repeat(99); 4].join("/"); // 399 units
        check(&deep).unwrap();
        assert!(check(&format!("{deep}x/y")).is_err());
    }
}
