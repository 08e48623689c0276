//! The file extension of a receipt: from its file name, else from its content type.

/// Extensions of the types receipts usually come in, by MIME type.
const BY_CONTENT_TYPE: &[(&str, &str)] = &[
    ("application/pdf", "pdf"),
    ("image/jpeg", "jpg"),
    ("image/jpg", "jpg"),
    ("image/pjpeg", "jpg"),
    ("image/png", "png"),
    ("image/gif", "gif"),
    ("image/webp", "webp"),
    ("image/heic", "heic"),
    ("image/heif", "heif"),
    ("image/tiff", "tiff"),
    ("image/bmp", "bmp"),
    ("image/svg+xml", "svg"),
    ("text/plain", "txt"),
    ("text/html", "html"),
    ("text/csv", "csv"),
    ("text/xml", "xml"),
    ("application/xml", "xml"),
    ("application/json", "json"),
    ("application/zip", "zip"),
    ("message/rfc822", "eml"),
    ("application/msword", "doc"),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    ),
    ("application/vnd.ms-excel", "xls"),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
    ),
    ("application/vnd.oasis.opendocument.text", "odt"),
    ("application/vnd.oasis.opendocument.spreadsheet", "ods"),
];

/// The longest extension taken from a file name; longer ones are not extensions.
const MAX_EXTENSION_LEN: usize = 8;

/// The extension for a receipt, lower-case ASCII without the dot: the file name's own
/// when it has a plausible one, else the content type's, else `bin`.
pub fn extension_for(file_name: &str, content_type: Option<&str>) -> String {
    let mut ext = String::new();
    push_extension(&mut ext, file_name, content_type);
    ext
}

/// [`extension_for`] written at the end of `out`, without allocating.
pub(crate) fn push_extension(out: &mut String, file_name: &str, content_type: Option<&str>) {
    if let Some((stem, ext)) = file_name.trim().rsplit_once('.')
        && !stem.is_empty()
        && (1..=MAX_EXTENSION_LEN).contains(&ext.len())
        && ext.bytes().all(|b| b.is_ascii_alphanumeric())
        && ext.bytes().any(|b| b.is_ascii_alphabetic())
    {
        out.extend(ext.chars().map(|c| c.to_ascii_lowercase()));
        return;
    }
    // The known types are lower case: comparing ASCII case-insensitively is the same
    // as lower-casing the type first.
    let mime = content_type
        .and_then(|ct| ct.split(';').next())
        .map(str::trim);
    let known = mime.and_then(|mime| {
        BY_CONTENT_TYPE
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(mime))
            .map(|(_, ext)| *ext)
    });
    out.push_str(known.unwrap_or("bin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_first_then_type_then_bin() {
        assert_eq!(extension_for("Facture.PDF", Some("image/png")), "pdf");
        assert_eq!(extension_for("Foobar", Some("image/png; q=1")), "png");
        assert_eq!(extension_for("scan.2026", Some("application/pdf")), "pdf");
        assert_eq!(extension_for(".pdf", None), "bin");
        assert_eq!(extension_for("a.toolongextension", None), "bin");
        assert_eq!(extension_for("x", Some("application/x-unknown")), "bin");
    }
}
