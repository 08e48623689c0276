//! Names that every sink accepts: OneDrive's and Windows' rules, applied once, here.
//!
//! The rules (onedrive-graph.md §7):
//! - no `" * : < > ? / \ |`, no control characters; `#` and `%` are avoided too
//!   (reserved on OneDrive for Business and awkward in URLs);
//! - no leading or trailing space, no trailing `.`; no leading `~` (Business) and,
//!   so that no name is hidden or taken for a lock file, no leading `.`;
//! - not a reserved name: `CON`, `PRN`, `AUX`, `NUL`, `COM0`–`COM9`, `LPT0`–`LPT9`,
//!   with or without an extension, and not `desktop.ini`; never `_vti_` anywhere;
//! - at most 255 UTF-16 code units a name, and fewer than 400 for the whole path,
//!   counted from the drive root (so the app folder's `Apps/<name>/` counts);
//! - NFC-normalized, so one name has one spelling;
//! - compared case-insensitively.

use std::borrow::Cow;
use unicode_normalization::UnicodeNormalization;

/// Characters OneDrive or Windows refuse in a name, plus `#` and `%`.
const FORBIDDEN: &[char] = &['"', '*', ':', '<', '>', '?', '/', '\\', '|', '#', '%'];

/// Device names Windows reserves, with or without an extension.
const RESERVED_STEMS: &[&str] = &["con", "prn", "aux", "nul"];

/// Why a name is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameViolation {
    /// The name is empty.
    #[error("the name is empty")]
    Empty,
    /// The name contains a character a sink refuses.
    #[error("the name contains the forbidden character {0:?}")]
    ForbiddenChar(char),
    /// The name starts or ends with a space, ends with a dot, or starts with `~` or `.`.
    #[error("the name starts or ends with a character a sink refuses there")]
    BadEdge,
    /// The name is reserved by Windows or OneDrive.
    #[error("the name is reserved")]
    Reserved,
    /// The name is longer than allowed.
    #[error("the name is {len} UTF-16 units long, more than {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name is not in Unicode normalization form C.
    #[error("the name is not NFC-normalized")]
    NotNfc,
}

/// The length of `s` as OneDrive and Windows count it: UTF-16 code units.
pub fn utf16_len(s: &str) -> usize {
    // Names are mostly ASCII: one unit a byte.
    if s.is_ascii() {
        return s.len();
    }
    s.chars().map(char::len_utf16).sum()
}

fn is_forbidden(c: char) -> bool {
    c.is_control() || FORBIDDEN.contains(&c)
}

fn is_reserved(name: &str) -> bool {
    if name.is_ascii() {
        return is_reserved_ascii(name.as_bytes());
    }
    // Lower-casing a non-ASCII name may turn it into a reserved one (the Kelvin sign
    // `K` becomes `k`), so compare its full lower-case form.
    let lower = name.to_lowercase();
    is_reserved_ascii(lower.as_bytes())
}

/// The rules of [`is_reserved`] on an ASCII (or already lower-cased) name, compared
/// case-insensitively without allocating: this runs once per receipt name.
fn is_reserved_ascii(name: &[u8]) -> bool {
    if name.eq_ignore_ascii_case(b"desktop.ini")
        || (name.contains(&b'_') && name.windows(5).any(|w| w.eq_ignore_ascii_case(b"_vti_")))
    {
        return true;
    }
    let stem = name.split(|&b| b == b'.').next().unwrap_or(b"");
    if RESERVED_STEMS
        .iter()
        .any(|r| stem.eq_ignore_ascii_case(r.as_bytes()))
    {
        return true;
    }
    // COM0–COM9 and LPT0–LPT9.
    stem.len() == 4
        && (stem[..3].eq_ignore_ascii_case(b"com") || stem[..3].eq_ignore_ascii_case(b"lpt"))
        && stem[3].is_ascii_digit()
}

#[cfg(test)]
fn is_reserved_by_lower_case(name: &str) -> bool {
    let lower = name.to_lowercase();
    if lower == "desktop.ini" || lower.contains("_vti_") {
        return true;
    }
    let stem = lower.split('.').next().unwrap_or("");
    if RESERVED_STEMS.contains(&stem) {
        return true;
    }
    // COM0–COM9 and LPT0–LPT9.
    let bytes = stem.as_bytes();
    bytes.len() == 4
        && (stem.starts_with("com") || stem.starts_with("lpt"))
        && bytes[3].is_ascii_digit()
}

/// Checks `name` against every rule, with `max_len` UTF-16 units at most.
pub fn check_name(name: &str, max_len: usize) -> Result<(), NameViolation> {
    if name.is_empty() {
        return Err(NameViolation::Empty);
    }
    if let Some(c) = name.chars().find(|&c| is_forbidden(c)) {
        return Err(NameViolation::ForbiddenChar(c));
    }
    if name.starts_with([' ', '~', '.']) || name.ends_with([' ', '.']) {
        return Err(NameViolation::BadEdge);
    }
    if is_reserved(name) {
        return Err(NameViolation::Reserved);
    }
    let len = utf16_len(name);
    if len > max_len {
        return Err(NameViolation::TooLong { len, max: max_len });
    }
    if !unicode_normalization::is_nfc(name) {
        return Err(NameViolation::NotNfc);
    }
    Ok(())
}

/// Turns arbitrary text (a bank label, an account name) into a name part: NFC,
/// forbidden characters replaced by `_`, every run of white space made one space,
/// `_vti_` defused, trimmed. It may be empty; it is not yet checked for edges or
/// reserved names, which only make sense for a whole name (see [`finish_name`]).
pub fn clean_text(text: &str) -> String {
    // ASCII is already NFC: skip the normalizer, the costliest part for bank labels.
    if text.is_ascii() {
        clean_chars(text.chars(), text.len())
    } else {
        clean_chars(text.nfc(), text.len())
    }
}

/// [`clean_text`], borrowing `text` when cleaning would not change it: the usual
/// bank label (printable ASCII, single spaces inside) costs no copy.
pub(crate) fn clean_text_cow(text: &str) -> Cow<'_, str> {
    if is_clean_ascii(text) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(clean_text(text))
    }
}

/// Whether [`clean_text`] gives `text` back unchanged, checked on ASCII alone.
fn is_clean_ascii(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.first() != Some(&b' ')
        && bytes.last() != Some(&b' ')
        && bytes
            .iter()
            .all(|&b| b == b' ' || (b.is_ascii_graphic() && !FORBIDDEN.contains(&char::from(b))))
        && !bytes.windows(2).any(|w| w == b"  ")
        && !bytes.windows(5).any(|w| w.eq_ignore_ascii_case(b"_vti_"))
}

fn clean_chars(chars: impl Iterator<Item = char>, len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut pending_space = false;
    for c in chars {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(if is_forbidden(c) { '_' } else { c });
    }
    defuse_vti(out)
}

fn defuse_vti(mut s: String) -> String {
    // Lower-casing can change lengths, so search the ASCII pattern case-insensitively by hand.
    loop {
        let found = s
            .as_bytes()
            .windows(5)
            .position(|w| w.eq_ignore_ascii_case(b"_vti_"));
        match found {
            Some(i) => s.replace_range(i..i + 5, "-vti-"),
            None => return s,
        }
    }
}

/// Cuts `s` to at most `max` UTF-16 units, at a character boundary.
pub fn truncate_utf16(s: &str, max: usize) -> &str {
    // A character never takes more UTF-16 units than UTF-8 bytes.
    if s.len() <= max {
        return s;
    }
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += c.len_utf16();
        if used > max {
            return &s[..i];
        }
    }
    s
}

/// Makes a whole name valid: cuts it to `max_len` UTF-16 units, trims the edges
/// sinks refuse, defuses reserved names; `fallback` replaces an empty result.
///
/// The input must come from [`clean_text`] (or be otherwise free of forbidden
/// characters and NFC); the output passes [`check_name`].
pub fn finish_name(name: &str, max_len: usize, fallback: &str) -> String {
    finish_owned_name(name.to_owned(), max_len, fallback)
}

/// [`finish_name`] on a name the caller owns: cut and trimmed in place.
pub(crate) fn finish_owned_name(mut name: String, max_len: usize, fallback: &str) -> String {
    let max_len = max_len.max(1);
    let kept = trim_edges(truncate_utf16(&name, max_len));
    let (start, end) = (kept.as_ptr() as usize - name.as_ptr() as usize, kept.len());
    name.truncate(start + end);
    name.drain(..start);
    if name.is_empty() {
        name = trim_edges(truncate_utf16(fallback, max_len)).to_owned();
    }
    if name.is_empty() {
        name = "_".to_owned();
    }
    if name.starts_with(['~', '.']) {
        name.replace_range(0..1, "_");
    }
    if is_reserved(&name) {
        // `CON.txt` → `CON_.txt`; `desktop.ini` → `desktop_.ini`; with no room to
        // grow, the stem's last character becomes `_` instead (`lpt9` → `lpt_`).
        let dot = name.find('.').unwrap_or(name.len());
        if utf16_len(&name) < max_len {
            name.insert(dot, '_');
        } else if let Some((at, c)) = name[..dot].char_indices().next_back() {
            name.replace_range(at..at + c.len_utf8(), "_");
        }
        name = defuse_vti(name);
    }
    name
}

fn trim_edges(s: &str) -> &str {
    s.trim_start_matches(' ').trim_end_matches([' ', '.'])
}

/// A short, stable, case-insensitive tag of `id`: 8 characters (40 bits) of a 64-bit
/// FNV-1a hash, mixed by MurmurHash3's finalizer so that ids differing only in their
/// last characters (consecutive UUIDs) still differ in every tag character, written
/// in Crockford's base 32 (lower case, no `i l o u`).
///
/// Written here, not taken from `std`, so that it never changes between Rust releases:
/// archive names must stay the same forever.
pub fn short_tag(id: &str) -> String {
    let tag = tag_bytes(id);
    tag.iter().map(|&b| b as char).collect()
}

/// [`short_tag`] without allocating: its 8 ASCII characters.
pub(crate) fn tag_bytes(id: &str) -> [u8; 8] {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in id.as_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    std::array::from_fn(|i| ALPHABET[((hash >> (i * 5)) & 31) as usize])
}

/// [`short_tag`] written at the end of `out`.
pub(crate) fn push_short_tag(out: &mut String, id: &str) {
    let tag = tag_bytes(id);
    // The alphabet is ASCII, so this never falls back.
    out.push_str(std::str::from_utf8(&tag).unwrap_or("00000000"));
}

/// The tag a receipt's file name carries (`… 7k2m9q4d.pdf` → `7k2m9q4d`), if it has one.
pub fn tag_in(file_name: &str) -> Option<&str> {
    let stem = file_name
        .rsplit_once('.')
        .map_or(file_name, |(stem, _)| stem);
    let (_, tag) = stem.rsplit_once(' ')?;
    let is_tag = tag.len() == 8
        && tag
            .bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_lowercase() && !b"ilou".contains(&b)));
    is_tag.then_some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_forbidden_and_space() {
        assert_eq!(clean_text("  ACME:\tInc \n*/ "), "ACME_ Inc __");
        assert_eq!(clean_text("a_VTI_b"), "a-vti-b");
        assert_eq!(clean_text("e\u{301}"), "é");
    }

    #[test]
    fn finishes_edges_and_reserved() {
        assert_eq!(finish_name("CON", 255, "x"), "CON_");
        assert_eq!(finish_name("lpt1.txt", 255, "x"), "lpt1_.txt");
        assert_eq!(finish_name("desktop.ini", 255, "x"), "desktop_.ini");
        assert_eq!(finish_name("~$doc", 255, "x"), "_$doc");
        assert_eq!(finish_name(".lock", 255, "x"), "_lock");
        assert_eq!(finish_name("name. . ", 255, "x"), "name");
        assert_eq!(finish_name("...", 255, "fallback"), "fallback");
        assert!(check_name(&finish_name("COM5", 255, "x"), 255).is_ok());
    }

    #[test]
    fn counts_utf16_units() {
        assert_eq!(utf16_len("a😀"), 3);
        assert_eq!(truncate_utf16("a😀b", 2), "a");
        assert_eq!(truncate_utf16("a😀b", 3), "a😀");
    }

    #[test]
    fn tags_are_found_in_names() {
        assert_eq!(
            tag_in("2026-01-03 Shop -1.00 EUR 3xv93kxe.pdf"),
            Some("3xv93kxe")
        );
        assert_eq!(tag_in("2026-01-03 Shop 3xv93kxe"), Some("3xv93kxe"));
        assert_eq!(tag_in("my notes.txt"), None);
        assert_eq!(tag_in("x 3XV93KXE.pdf"), None);
    }

    proptest::proptest! {
        #[test]
        fn fast_paths_agree_with_the_general_rules(name in "(?i)(com|lpt|con|nul|desktop|_vti_|k|\u{212a}|[a-zé. ~]){0,6}(\\.ini|\\.txt|[0-9])?") {
            proptest::prop_assert_eq!(is_reserved(&name), is_reserved_by_lower_case(&name));
            let by_normalizer = clean_chars(name.nfc(), name.len());
            proptest::prop_assert_eq!(clean_text(&name), by_normalizer);
            proptest::prop_assert_eq!(clean_text_cow(&name), clean_text(&name));
            let spaced = format!(" {name}  {name}\t");
            proptest::prop_assert_eq!(clean_text_cow(&spaced), clean_text(&spaced));
            proptest::prop_assert_eq!(utf16_len(&name), name.encode_utf16().count());
            for max in 0..8 {
                let general: String = name
                    .chars()
                    .scan(0, |used, c| {
                        *used += c.len_utf16();
                        (*used <= max).then_some(c)
                    })
                    .collect();
                proptest::prop_assert_eq!(truncate_utf16(&name, max), general);
            }
        }
    }

    #[test]
    fn reserved_names_are_found_without_lower_casing_ascii() {
        for name in [
            "CON",
            "con.txt",
            "Desktop.INI",
            "a_VtI_b",
            "LPT9",
            "com0.x",
            "des\u{212a}top.ini",
        ] {
            assert!(is_reserved(name), "{name}");
            assert!(is_reserved_by_lower_case(name), "{name}");
        }
        for name in ["CONS", "com", "lptx", "desktop.in", "_vti"] {
            assert!(!is_reserved(name), "{name}");
        }
    }

    #[test]
    fn tags_are_stable() {
        // Pinned: archive names depend on these never changing.
        assert_eq!(short_tag(""), "69aj9x2c");
        assert_eq!(
            short_tag("6f7bc2f1-0b7c-4d55-9f16-23c5b1b0d5aa"),
            "8hszn3sj"
        );
        assert_ne!(short_tag("a"), short_tag("b"));
    }
}
