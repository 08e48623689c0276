//! Whether the accountant's indexes are written, and with which separator: stored in
//! `<home>/accountant-index.json`, so the daemon, cron and later runs keep it without
//! repeating `--index`.
//!
//! The library's stored settings are positional (postcard) and hold the placement rules;
//! this one decides no receipt's place, so the command keeps it beside the archive
//! binding, in a JSON file of its own.
//!
//! # The flow, at the start of every pass
//! 1. **Stored, not requested**: the stored setting is used.
//! 2. **Requested and different from the stored one**: an explicit change. It is stored
//!    and reported (a line on stderr, `index_change` in the `--json` document), never
//!    silent. `off` stops writing indexes; those already written stay.
//! 3. **Nothing stored, new archive** (no binding, no state): indexes are on, with `,`,
//!    unless asked otherwise; stored.
//! 4. **Nothing stored, existing archive** (made before the command had the setting):
//!    off, so it gains no file unasked, unless asked (`--index on`); stored.
//!
//! A dry run (`plan`) resolves the same way but stores nothing.

use receipt_sync::index::{IndexSettings, Separator};
use receipt_sync::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// The setting's file, in the home.
const SETTING_FILE: &str = "accountant-index.json";

/// What `--index` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexRequest {
    /// On, with the stored separator (`,` when none is stored).
    On,
    /// On, with this separator.
    With(Separator),
    /// Off: no index is written from now on (those written stay).
    Off,
}

/// An `--index` value: `on`, `off`, `,` (or `comma`), `;` (or `semicolon`).
pub fn parse_index(value: &str) -> std::result::Result<IndexRequest, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" => Ok(IndexRequest::On),
        "off" | "no" | "false" => Ok(IndexRequest::Off),
        "," | "comma" => Ok(IndexRequest::With(Separator::Comma)),
        ";" | "semicolon" => Ok(IndexRequest::With(Separator::Semicolon)),
        _ => Err(format!(
            "{value:?} is not an index setting: give `on`, `off`, `,` or `;` (the separator, \
             `;` for spreadsheets set up for French)"
        )),
    }
}

/// The stored setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSetting {
    /// Whether an `index.csv` is written in each period folder.
    pub enabled: bool,
    /// The field separator (kept while off, for the next `--index on`).
    pub separator: Separator,
}

impl IndexSetting {
    /// Off, with `,` for a later `--index on`.
    pub const OFF: Self = Self {
        enabled: false,
        separator: Separator::Comma,
    };
    /// On, with `,`: a new archive's.
    pub const ON: Self = Self {
        enabled: true,
        separator: Separator::Comma,
    };

    /// The library's settings.
    pub fn settings(&self) -> IndexSettings {
        if self.enabled {
            IndexSettings::with_separator(self.separator)
        } else {
            IndexSettings::disabled()
        }
    }

    /// The setting once `request` is applied.
    fn with(self, request: IndexRequest) -> Self {
        match request {
            IndexRequest::On => Self {
                enabled: true,
                ..self
            },
            IndexRequest::With(separator) => Self {
                enabled: true,
                separator,
            },
            IndexRequest::Off => Self {
                enabled: false,
                ..self
            },
        }
    }

    /// Machine-readable: `{"enabled": true, "separator": ","}`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "enabled": self.enabled,
            "separator": separator_char(self.separator),
        })
    }
}

impl fmt::Display for IndexSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.enabled {
            write!(
                f,
                "on, separator `{}` (an index.csv in each period folder)",
                separator_char(self.separator)
            )
        } else {
            f.write_str("off (`sync --index on` writes an index.csv in each period folder)")
        }
    }
}

/// The separator as written in the file.
pub fn separator_char(separator: Separator) -> &'static str {
    match separator {
        Separator::Semicolon => ";",
        _ => ",",
    }
}

/// An explicit change of the stored setting, or its adoption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexChange {
    /// Before; `None` when nothing was stored.
    pub from: Option<IndexSetting>,
    /// From now on.
    pub to: IndexSetting,
}

impl IndexChange {
    /// Machine-readable, for the pass's document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "before": self.from.map(|s| s.json()),
            "after": self.to.json(),
            "message": self.to_string(),
        })
    }
}

impl fmt::Display for IndexChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.from {
            None => write!(f, "accountant's index stored as {}", self.to),
            Some(from) if from.enabled && !self.to.enabled => write!(
                f,
                "accountant's index changed from {} to off: no index is written from now on; \
                 those written stay",
                from
            ),
            Some(from) => write!(f, "accountant's index changed from {from} to {}", self.to),
        }
    }
}

/// The setting a pass uses, and the change it makes (stored unless `dry_run`); see the
/// module docs.
pub fn resolve(
    home: &Path,
    request: Option<IndexRequest>,
    new_archive: bool,
    dry_run: bool,
) -> Result<(IndexSetting, Option<IndexChange>)> {
    let stored = read(home)?;
    let base = stored.unwrap_or(if new_archive {
        IndexSetting::ON
    } else {
        IndexSetting::OFF
    });
    let used = request.map_or(base, |r| base.with(r));
    if stored == Some(used) {
        return Ok((used, None));
    }
    if !dry_run {
        write(home, &used)?;
    }
    Ok((
        used,
        Some(IndexChange {
            from: stored,
            to: used,
        }),
    ))
}

/// The stored setting; `None` when nothing is stored yet.
pub fn read(home: &Path) -> Result<Option<IndexSetting>> {
    let file = home.join(SETTING_FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::Config(format!(
                "{} cannot be read ({e}): delete it and run `sync --index on` (or `--index off`) \
                 to choose again",
                file.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", &file, e)),
    }
}

/// Whether the home holds no archive yet: no binding and no state (a dry run leaves
/// only the state's lock). Its first pass makes a new archive.
pub fn is_new_archive(home: &Path) -> Result<bool> {
    let state = home.join("state");
    let recorded = ["state.bin", "state.json", "state.journal"]
        .iter()
        .map(|name| state.join(name))
        .chain(
            ["archive-binding.json", "archive-place"]
                .iter()
                .map(|name| home.join(name)),
        );
    for file in recorded {
        match std::fs::symlink_metadata(&file) {
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read", &file, e)),
        }
    }
    Ok(true)
}

fn write(home: &Path, setting: &IndexSetting) -> Result<()> {
    let file = home.join(SETTING_FILE);
    let text = serde_json::to_string_pretty(setting)
        .map_err(|e| Error::Config(format!("the index setting: {e}")))?;
    // Through a temporary file and a rename: a crash leaves the old setting or the new.
    let temporary = home.join(format!("{SETTING_FILE}.tmp"));
    std::fs::write(&temporary, format!("{text}\n"))
        .map_err(|e| Error::io("write", &temporary, e))?;
    std::fs::rename(&temporary, &file).map_err(|e| Error::io("write", &file, e))
}
