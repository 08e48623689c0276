//! The bytes of `index.csv`: RFC 4180, UTF-8 with a byte-order mark.

use super::rows::IndexRow;
use super::{COLUMNS, Separator};
use crate::model::{ArchivePath, Money, TransactionStatus};

/// The UTF-8 byte-order mark: spreadsheet programs read the file as UTF-8 only with it.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The index of the period folder at `folder`: the header, then one line per row.
/// A row's `receipt_files` names its receipts archived in `folder` itself, joined by
/// ` | `. Deterministic: the same rows give the same bytes.
pub fn render(rows: &[IndexRow], folder: &ArchivePath, separator: Separator) -> Vec<u8> {
    let mut out = Vec::with_capacity(BOM.len() + 128 * (rows.len() + 1));
    out.extend_from_slice(BOM);
    let sep = separator.byte();
    line(&mut out, sep, COLUMNS.iter().map(|c| (*c).to_owned()));
    for row in rows {
        let files: Vec<&str> = row
            .receipts
            .iter()
            .filter(|path| path.parent().as_ref() == Some(folder))
            .map(ArchivePath::file_name)
            .collect();
        line(
            &mut out,
            sep,
            [
                row.date.format("%Y-%m-%d").to_string(),
                inert(&row.label),
                decimal(row.amount.cents),
                row.amount.currency.to_string(),
                row.vat_amount
                    .map(|m: Money| decimal(m.cents))
                    .unwrap_or_default(),
                row.vat_rate.clone().unwrap_or_default(),
                inert(row.category.as_deref().unwrap_or_default()),
                inert(status(&row.status)),
                inert(row.note.as_deref().unwrap_or_default()),
                files.join(" | "),
                row.transaction_id.as_str().to_owned(),
            ]
            .into_iter(),
        );
    }
    out
}

/// A fingerprint of an index's bytes (64-bit FNV-1a), to tell whether an index
/// would change and whether the file in the archive is still the one written. Not a
/// defence against anyone: the archive's owner may write what they like there.
pub fn content_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn line(out: &mut Vec<u8>, sep: u8, fields: impl Iterator<Item = String>) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(sep);
        }
        field_into(out, sep, &field);
    }
    out.extend_from_slice(b"\r\n");
}

/// One field, quoted when it holds the separator, a quote or a line break (RFC 4180 §2.6,
/// §2.7: a quote inside is doubled).
fn field_into(out: &mut Vec<u8>, sep: u8, field: &str) {
    let needs_quotes = field
        .bytes()
        .any(|b| b == sep || b == b'"' || b == b'\r' || b == b'\n');
    if !needs_quotes {
        out.extend_from_slice(field.as_bytes());
        return;
    }
    out.push(b'"');
    for b in field.bytes() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Text from outside (a counterparty's label, a note) that a spreadsheet would take
/// for a formula (`=`, `+`, `-`, `@`, a tab or a carriage return first) gets a leading
/// `'`, which spreadsheets show as text: a label chosen by whoever sent a transfer must
/// not compute anything in the bookkeeper's spreadsheet.
pub(crate) fn inert(text: &str) -> String {
    match text.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

/// Cents as a signed decimal with `.` and two decimals: `-12.34`, `0.05`.
fn decimal(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

fn status(status: &TransactionStatus) -> &str {
    match status {
        TransactionStatus::Pending => "pending",
        TransactionStatus::Completed => "completed",
        TransactionStatus::Declined => "declined",
        TransactionStatus::Reversed => "reversed",
        TransactionStatus::Other(other) => other,
    }
}
