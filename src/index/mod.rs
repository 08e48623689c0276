//! Pure: the accountant's index, `index.csv` in each period folder of each account.
//!
//! It answers the bookkeeper's monthly question, *which transactions have no receipt
//! yet?*: one row per transaction of the account in the period, receipts or not,
//! sorted by date then id, with the archived file names of its receipts in that
//! folder. Its content is computed from the state's catalog only (no I/O, no clock),
//! so the same catalog always gives the same bytes: the planner writes an index only
//! when they change ([`crate::plan`]).
//!
//! The file is CSV as RFC 4180 writes it (fields quoted when they hold the separator,
//! a quote, or a line break; quotes doubled; lines ended by CRLF), in UTF-8 with a
//! byte-order mark so that spreadsheet programs read accents right. The separator is
//! `,` by default, `;` on request (what French spreadsheets expect); the decimal
//! separator stays `.` either way. See `docs/accountant-index.md`.

mod csv;
mod rows;

pub use csv::{content_hash, render};
pub use rows::{IndexRow, PeriodKey, PeriodRows, collect};

use serde::{Deserialize, Serialize};

/// The name of the index file in each period folder.
pub const INDEX_FILE_NAME: &str = "index.csv";

/// The column names, in order, as the header row spells them.
pub const COLUMNS: [&str; 11] = [
    "date",
    "label",
    "amount",
    "currency",
    "vat_amount",
    "vat_rate",
    "category",
    "status",
    "note",
    "receipt_files",
    "transaction_id",
];

/// The field separator of `index.csv`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Separator {
    /// `,` (RFC 4180).
    #[default]
    Comma,
    /// `;`, what spreadsheets set up for French expect.
    Semicolon,
}

impl Separator {
    /// The separator as a byte.
    pub fn byte(self) -> u8 {
        match self {
            Separator::Comma => b',',
            Separator::Semicolon => b';',
        }
    }
}

/// How indexes are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexSettings {
    /// Write an `index.csv` in each period folder (default no).
    pub enabled: bool,
    /// The field separator.
    pub separator: Separator,
}

/// Off: an embedder (or the command) turns indexes on with
/// [`IndexSettings::with_separator`], so archives made before them gain no file unasked.
impl Default for IndexSettings {
    fn default() -> Self {
        Self::disabled()
    }
}

impl IndexSettings {
    /// Indexes written with `separator`.
    pub fn with_separator(separator: Separator) -> Self {
        Self {
            enabled: true,
            separator,
        }
    }

    /// No index at all.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            separator: Separator::Comma,
        }
    }
}

#[cfg(test)]
mod tests;
