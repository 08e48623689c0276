//! Pure: where each receipt goes in the archive.
//!
//! `<account folder>/<period folder>/<YYYY-MM-DD> <counterparty> <±amount currency> <short id>.<ext>`

use serde::{Deserialize, Serialize};

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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LayoutSettings {
    /// The period folders.
    pub period: Period,
}
