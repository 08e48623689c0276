//! OneDrive's naming rules, as the fake enforces them (onedrive-graph.md §7).

/// Characters OneDrive refuses in a name (`"` included: rclone found it refused too).
const INVALID_CHARS: &[char] = &['"', '*', ':', '<', '>', '?', '/', '\\', '|'];

/// Reserved device and system names (checked case-insensitively, with or without an
/// extension, as abraunegg does). Whether Personal enforces them through the API is
/// uncertain (onedrive-graph.md §12.9); the fake does, which is the safe reading.
const RESERVED: &[&str] = &[
    ".lock",
    "con",
    "prn",
    "aux",
    "nul",
    "com0",
    "com1",
    "com2",
    "com3",
    "com4",
    "com5",
    "com6",
    "com7",
    "com8",
    "com9",
    "lpt0",
    "lpt1",
    "lpt2",
    "lpt3",
    "lpt4",
    "lpt5",
    "lpt6",
    "lpt7",
    "lpt8",
    "lpt9",
    "desktop.ini",
];

/// The longest name, in UTF-16 code units.
pub(crate) const MAX_NAME_LEN: usize = 255;
/// A whole path from the drive root must be shorter than this (onedrive-graph.md §7).
pub(crate) const MAX_PATH_LEN: usize = 400;

/// Why a name is refused, or `None` if it is fine.
pub(crate) fn check_name(name: &str, reserved: bool) -> Option<&'static str> {
    if name.is_empty() {
        return Some("The name is empty.");
    }
    if name.contains(INVALID_CHARS) || name.chars().any(char::is_control) {
        return Some("The provided name cannot contain any illegal characters.");
    }
    if name.starts_with(' ') || name.ends_with(' ') || name.ends_with('.') {
        return Some("The provided name contains an invalid leading or trailing character.");
    }
    if name.encode_utf16().count() > MAX_NAME_LEN {
        return Some("The provided name is too long.");
    }
    if reserved {
        let lower = name.to_lowercase();
        let stem = lower.split('.').next().unwrap_or(&lower);
        if RESERVED.contains(&lower.as_str())
            || (!stem.is_empty() && RESERVED.contains(&stem))
            || lower.starts_with("~$")
            || lower.contains("_vti_")
        {
            return Some("The provided name is reserved.");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_onedrive_refuses() {
        for bad in [
            "a:b", "x?", "q\"", "trail.", "trail ", " lead", "CON", "con.txt", "~$x", "a_vti_b", "",
        ] {
            assert!(check_name(bad, true).is_some(), "{bad:?} accepted");
        }
        for good in [
            "2026-11",
            "Boulangerie 12.40 EUR.pdf",
            "a+b #1 %.pdf",
            "été",
        ] {
            assert_eq!(check_name(good, true), None, "{good:?} refused");
        }
        assert_eq!(check_name("CON", false), None);
    }
}
