//! Pure: where each receipt goes in the archive.
//!
//! ```text
//! <account folder>/<period folder>/<YYYY-MM-DD> <counterparty> <±amount currency> <tag>.<ext>
//! Main account 4321 3hq8c1vz/2026-11/2026-11-03 Amazon EU -12.34 EUR 7k2m9q4d.pdf
//! ```
//!
//! - The account folder carries a tag of the account's IBAN, or of its id when it has
//!   none ([`AccountNaming`]): both are unique across organisations, so several
//!   organisations archiving into one drive never share a folder, even with accounts of
//!   the same name and IBAN ending. Archives made before the tag keep their folder names.
//! - The date is the transaction's **emission** day in the layout's time zone: it never
//!   changes, unlike the settlement date of a pending transaction.
//! - The tag is derived from the receipt id alone ([`names::short_tag`]), so the same
//!   receipt always gets the same name whatever other receipts exist, and two receipts
//!   only share a name if every part, tag included, is equal.
//! - Every name passes [`names::check_name`]; paths stay under the sink's length limit,
//!   counting the prefix from the drive root to the archive root. Names sort by date.
//!
//! No I/O, no clock: the same input always gives the same path.

mod account;
mod extension;
pub mod names;

pub use account::AccountNaming;
pub use extension::extension_for;

use crate::model::{ArchivePath, Money, PLAUSIBLE_DATES, Receipt};
use chrono::{Datelike, NaiveDate, TimeDelta};
use chrono_tz::Tz;
use names::{finish_owned_name, push_short_tag, utf16_len};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// How receipts are grouped into folders under their account's folder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// One folder a month: `2026-11`.
    #[default]
    Month,
    /// One folder a quarter: `2026-Q4`.
    Quarter,
    /// One folder a year: `2026`.
    Year,
}

/// The layout choices a state is made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LayoutSettings {
    /// The period folders.
    pub period: Period,
    /// The time zone that dates receipts (a payment at 00:30 in Paris is dated that day).
    pub time_zone: Tz,
    /// How account folders are named. A state written before this setting existed
    /// reads as [`AccountNaming::NameAndIban`], the names its folders already have; a
    /// new archive gets [`AccountNaming::WithAccountTag`] (the default).
    #[serde(default = "AccountNaming::before_tags")]
    pub account_naming: AccountNaming,
}

impl LayoutSettings {
    /// Whether both place receipts in the same period folders and dates: all but the
    /// account naming, which an existing archive always keeps
    /// ([`crate::plan::settings`]).
    pub fn same_periods(&self, other: &Self) -> bool {
        self.period == other.period && self.time_zone == other.time_zone
    }
}

impl Default for LayoutSettings {
    fn default() -> Self {
        Self {
            period: Period::Month,
            time_zone: chrono_tz::Europe::Paris,
            account_naming: AccountNaming::WithAccountTag,
        }
    }
}

/// The length limits names must fit, in UTF-16 code units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameLimits {
    /// The longest name.
    pub max_name_len: usize,
    /// The longest path, counted from the drive root; paths are kept strictly shorter.
    pub max_path_len: usize,
    /// The length of the path from the drive root to the archive root, its `/` included.
    pub root_prefix_len: usize,
}

impl Default for NameLimits {
    /// OneDrive's limits, with the app folder `Apps/receipt-sync/` as the prefix.
    fn default() -> Self {
        Self {
            max_name_len: 255,
            max_path_len: 400,
            root_prefix_len: "Apps/receipt-sync/".len(),
        }
    }
}

/// The longest counterparty part of a file name, so names stay readable.
const MAX_LABEL_LEN: usize = 60;

/// Turns receipts into archive paths; see the module docs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    settings: LayoutSettings,
    limits: NameLimits,
}

impl Layout {
    /// A layout with `settings` that fits `limits`.
    pub fn new(settings: LayoutSettings, limits: NameLimits) -> Self {
        Self { settings, limits }
    }

    /// The layout's settings.
    pub fn settings(&self) -> LayoutSettings {
        self.settings
    }

    /// The limits it fits.
    pub fn limits(&self) -> NameLimits {
        self.limits
    }

    /// The period folder for a day: `2026-11`, `2026-Q4` or `2026`.
    pub fn period_folder(&self, day: NaiveDate) -> String {
        match self.settings.period {
            Period::Month => format!("{:04}-{:02}", day.year(), day.month()),
            Period::Quarter => format!("{:04}-Q{}", day.year(), day.month0() / 3 + 1),
            Period::Year => format!("{:04}", day.year()),
        }
    }

    /// The day that dates a receipt: its transaction's emission, in the layout's time zone.
    ///
    /// An emission outside [`PLAUSIBLE_DATES`] (which the decoders refuse, but an older
    /// state may hold, and which the planner skips) is first brought to the nearest
    /// bound: near the ends of chrono's calendar a local time may not exist, and
    /// converting to it would panic.
    pub fn receipt_day(&self, receipt: &Receipt) -> NaiveDate {
        let last = PLAUSIBLE_DATES.end - TimeDelta::nanoseconds(1);
        receipt
            .transaction
            .emitted_at
            .clamp(PLAUSIBLE_DATES.start, last)
            .with_timezone(&self.settings.time_zone)
            .date_naive()
    }

    /// The receipt's path under the account folder named `account_folder`.
    pub fn receipt_path(&self, account_folder: &str, receipt: &Receipt) -> ArchivePath {
        let day = self.receipt_day(receipt);
        self.receipt_path_in(&self.receipt_folder(account_folder, day), receipt, day)
    }

    /// Which period folder `day` falls in, as a key: equal keys, same period folder.
    pub(crate) fn period_of(&self, day: NaiveDate) -> (i32, u32) {
        match self.settings.period {
            Period::Month => (day.year(), day.month()),
            Period::Quarter => (day.year(), day.month0() / 3 + 1),
            Period::Year => (day.year(), 0),
        }
    }

    /// The period folder of `day` under the account folder named `account_folder`:
    /// the same for every receipt of the period, so a caller naming many receipts
    /// computes it once a folder (see [`Layout::period_of`]).
    pub(crate) fn receipt_folder(&self, account_folder: &str, day: NaiveDate) -> ReceiptFolder {
        let period = self.period_folder(day);
        // Room left for the file name within the path limit (strictly fewer units).
        let used = self.limits.root_prefix_len + utf16_len(account_folder) + 1 + period.len() + 1;
        let room = self
            .limits
            .max_path_len
            .saturating_sub(1)
            .saturating_sub(used)
            .min(self.limits.max_name_len);
        ReceiptFolder {
            prefix: format!("{account_folder}/{period}/"),
            room,
        }
    }

    /// The path of a receipt dated `day` in `folder` (from [`Layout::receipt_folder`]
    /// for the same day).
    pub(crate) fn receipt_path_in(
        &self,
        folder: &ReceiptFolder,
        receipt: &Receipt,
        day: NaiveDate,
    ) -> ArchivePath {
        let file = self.file_name(receipt, day, folder.room);
        let mut path = String::with_capacity(folder.prefix.len() + file.len());
        path.push_str(&folder.prefix);
        path.push_str(&file);
        // Every part is a finished name (non-empty, no `/`, no leading dot), so the
        // path is well-formed.
        ArchivePath::from_trusted(path)
    }

    fn file_name(&self, receipt: &Receipt, day: NaiveDate, room: usize) -> String {
        let tx = &receipt.transaction;
        // `<day> <label> <amount> <tag>.<ext>`, built in one buffer: the fixed parts
        // first (the head, then the tail after it), the label cut to fit between them.
        let mut fixed = String::with_capacity(64);
        push_day(&mut fixed, day);
        let head_len = fixed.len();
        push_amount(&mut fixed, tx.amount);
        fixed.push(' ');
        push_short_tag(&mut fixed, receipt.id.as_str());
        fixed.push('.');
        extension::push_extension(
            &mut fixed,
            &receipt.file_name,
            receipt.content_type.as_deref(),
        );
        let (head, tail) = fixed.split_at(head_len);
        let fixed_len = utf16_len(head) + utf16_len(tail) + 2;
        let label = names::clean_text_cow(&tx.label);
        let label_room = room.saturating_sub(fixed_len).min(MAX_LABEL_LEN);
        let label = names::truncate_utf16(&label, label_room).trim_end_matches([' ', '.']);
        let mut name = String::with_capacity(fixed.len() + label.len() + 2);
        name.push_str(head);
        name.push(' ');
        if !label.is_empty() {
            name.push_str(label);
            name.push(' ');
        }
        name.push_str(tail);
        finish_owned_name(name, room.max(1), "receipt")
    }
}

/// Writes `day` as its `Display` does (`2026-11-03`), without the formatting machinery
/// for the years every receipt has.
fn push_day(out: &mut String, day: NaiveDate) {
    match u32::try_from(day.year()) {
        Ok(year) if year <= 9999 => {
            push_digits(out, year, 4);
            out.push('-');
            push_digits(out, day.month(), 2);
            out.push('-');
            push_digits(out, day.day(), 2);
        }
        _ => write!(out, "{day}").expect("writing to a String never fails"),
    }
}

/// Writes `amount` as its `Display` does (`-12.34 EUR`), digit by digit.
fn push_amount(out: &mut String, amount: Money) {
    match amount.cents.signum() {
        -1 => out.push('-'),
        1 => out.push('+'),
        _ => {}
    }
    let abs = amount.cents.unsigned_abs();
    let units = abs / 100;
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = units;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
    out.push('.');
    push_digits(out, (abs % 100) as u32, 2);
    out.push(' ');
    out.push_str(amount.currency.as_str());
}

/// Writes `n` with exactly `width` digits (`n` must fit).
fn push_digits(out: &mut String, n: u32, width: u32) {
    for place in (0..width).rev() {
        out.push(char::from(b'0' + (n / 10u32.pow(place) % 10) as u8));
    }
}

/// A period folder under an account folder, named once for all its receipts.
#[derive(Clone, Debug)]
pub(crate) struct ReceiptFolder {
    /// `<account folder>/<period folder>/`.
    prefix: String,
    /// UTF-16 units left for a file name in it.
    room: usize,
}

#[cfg(test)]
mod tests;
