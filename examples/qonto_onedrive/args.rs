//! The flags of a sync pass, and the parsers that check a value before any work.

use crate::index_setting::{IndexRequest, parse_index};
use chrono::NaiveDate;

/// `--since`, for the commands that read the stored start date.
#[derive(clap::Args, Debug, Clone)]
pub struct SinceArg {
    /// Archive receipts of transactions since this day (not after today). When omitted:
    /// the start date stored by the first sync, or, on a first sync, the whole history.
    /// A different day changes the stored one: earlier adds the receipts in between,
    /// later stops archiving older ones (archived files stay).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_since)]
    pub since: Option<NaiveDate>,
}

/// `--index`, for the commands that read the stored index setting.
#[derive(clap::Args, Debug, Clone)]
pub struct IndexArg {
    /// The accountant's `index.csv` in each period folder: `on`, `off`, or its separator
    /// `,` or `;` (`;` for spreadsheets set up for French; either turns it on). When
    /// omitted: the stored setting; a new archive has it on with `,`, an archive made
    /// before the setting existed has it off. A different value changes the stored one;
    /// `off` stops writing indexes (those written stay).
    #[arg(long, value_name = "on|off|,|;", value_parser = parse_index)]
    pub index: Option<IndexRequest>,
}

/// The flags of a pass that writes.
#[derive(clap::Args, Debug, Clone)]
pub struct PassArgs {
    #[command(flatten)]
    pub since: SinceArg,
    #[command(flatten)]
    pub index: IndexArg,
    /// Uploads in flight at once.
    #[arg(long, default_value_t = PassArgs::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
}

impl PassArgs {
    /// Uploads in flight at once when `--concurrency` is not given.
    pub const DEFAULT_CONCURRENCY: usize = 8;
}

/// A `--since` day: a date, not after today (a start date in the future would archive
/// nothing, and be stored).
pub fn parse_since(value: &str) -> Result<NaiveDate, String> {
    let day = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|e| format!("{value:?} is not a day ({e}): write it as YYYY-MM-DD"))?;
    let today = chrono::Local::now().date_naive();
    if day > today {
        return Err(format!(
            "{day} is in the future: --since is the first day whose receipts are archived; \
             give today ({today}) or an earlier day"
        ));
    }
    Ok(day)
}

/// A `--tz` name: an IANA time zone; a wrong one gets the names that end the same way
/// (`paris` → `Europe/Paris`).
pub fn parse_tz(value: &str) -> Result<chrono_tz::Tz, String> {
    if let Ok(tz) = value.parse::<chrono_tz::Tz>() {
        return Ok(tz);
    }
    let wanted = value.trim().replace(' ', "_").to_lowercase();
    let suggestions: Vec<&str> = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| tz.name())
        .filter(|name| {
            let last = name.rsplit('/').next().unwrap_or(name);
            name.to_lowercase() == wanted || last.to_lowercase() == wanted
        })
        .take(5)
        .collect();
    Err(match suggestions.as_slice() {
        [] => format!(
            "unknown time zone {value:?}: give an IANA name such as Europe/Paris \
             (the list: https://en.wikipedia.org/wiki/List_of_tz_database_time_zones)"
        ),
        [one] => format!("unknown time zone {value:?}: did you mean {one}?"),
        many => format!(
            "unknown time zone {value:?}: did you mean one of {}?",
            many.join(", ")
        ),
    })
}
