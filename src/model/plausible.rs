//! What a receipt's values may be: the bounds past which a value is a server's mistake,
//! not a fact.
//!
//! The decoders reject a receipt outside these bounds (a malformed field, for that
//! receipt alone); the planner skips one that an older state still holds; the layout
//! never converts a date outside them. So one poisoned value never stops a sync.

use super::Receipt;
use chrono::{DateTime, Utc};
use std::fmt;
use std::ops::Range;

/// The instants a receipt's dates are believed in: from 1970 up to (not including)
/// 2200, UTC.
///
/// Far wider than any bank's history, far narrower than chrono's calendar (±262,000
/// years), so every conversion to a local time zone stays in range.
pub const PLAUSIBLE_DATES: Range<DateTime<Utc>> = DateTime::<Utc>::UNIX_EPOCH..END_OF_2199;

/// 2200-01-01T00:00:00Z: 84,006 days after the Unix epoch.
const END_OF_2199: DateTime<Utc> = match DateTime::from_timestamp(84_006 * 86_400, 0) {
    Some(instant) => instant,
    None => panic!("2200-01-01 is within chrono's range"),
};

/// The largest file a receipt may announce: 250 GiB, the largest file OneDrive accepts
/// (onedrive-graph.md §3, "The largest allowed file is 250 GiB on Personal and
/// Business"). Qonto attachments are scanned receipts and invoices, far below it.
pub const MAX_RECEIPT_SIZE: u64 = 250 * 1024 * 1024 * 1024;

/// A value of a receipt outside the believed bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Implausible {
    /// Its transaction's emission instant is outside [`PLAUSIBLE_DATES`].
    EmissionDate,
    /// Its announced size is above [`MAX_RECEIPT_SIZE`].
    Size,
}

impl fmt::Display for Implausible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Implausible::EmissionDate => "its transaction's date is not between 1970 and 2199",
            Implausible::Size => "its announced size is larger than 250 GiB",
        })
    }
}

impl Receipt {
    /// The first value of this receipt that is outside the believed bounds, if any.
    ///
    /// Only what places and writes the receipt is checked: the emission date (it dates
    /// the file) and the size (it is what is written).
    pub fn implausibility(&self) -> Option<Implausible> {
        if !PLAUSIBLE_DATES.contains(&self.transaction.emitted_at) {
            Some(Implausible::EmissionDate)
        } else if self.size > MAX_RECEIPT_SIZE {
            Some(Implausible::Size)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone};

    #[test]
    fn the_date_bounds_are_1970_and_2200() {
        let end = PLAUSIBLE_DATES.end;
        assert_eq!((end.year(), end.month(), end.day()), (2200, 1, 1));
        assert_eq!(end, Utc.with_ymd_and_hms(2200, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(PLAUSIBLE_DATES.start.year(), 1970);
        assert_eq!(MAX_RECEIPT_SIZE, 268_435_456_000);
    }
}
