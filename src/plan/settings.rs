//! The placement rules: which start date and layout a sync uses. They decide where
//! receipts go and which ones go at all, so they are stored once and change only when
//! asked to, never because a later run left a flag out.
//!
//! # The flow, at the start of every pass (and of a reset)
//! 1. **Nothing stored yet** (a new state, or one written before settings were
//!    stored): the requested values are adopted (the layout defaults when none is
//!    requested) and stored.
//! 2. **A value is not requested** (`None`): the stored one is used.
//! 3. **The requested start date differs from the stored one**: an explicit change.
//!    It is recorded in the state and reported ([`SettingsChange`]). An earlier date
//!    widens the archive: the accounts are read whole again from the new date, and the
//!    plan adds the receipts in between. A later date narrows what is archived from
//!    now on; files already archived stay where they are.
//! 4. **The requested layout differs from the stored one**: refused
//!    ([`crate::Error::Config`]). Archived files are never moved, and an archive laid
//!    out two ways at once would hold the same period in two folders; a different
//!    layout needs a new state and a new folder.
//! 5. **The account naming** ([`AccountNaming`]) is decided once, when nothing is
//!    stored, and never changes afterwards: a request for another one is not a
//!    refusal, the stored one is used (renaming every account folder would be the
//!    only effect). A state written before the naming was stored reads as
//!    [`AccountNaming::NameAndIban`], the names its folders have; so does a state
//!    that archived before any setting was stored ([`resolve_state_settings`]). A new
//!    archive gets [`AccountNaming::WithAccountTag`], which keeps organisations that
//!    share a drive apart (`docs/multiple-organisations.md`).
//!
//! # Guarantees
//! - A run that requests nothing uses exactly the stored settings.
//! - The stored settings change only through a recorded [`SettingsChange`].
//! - No archived file is moved or deleted because of a settings change, and no
//!   account folder of an existing archive is renamed because of a new naming.
//! - Pure: the same inputs give the same answer.
//!
//! # Assumptions
//! - A state whose settings were written before they were kept (each run overwrote
//!   them) holds the settings of its last run; they are taken as the stored ones.

use crate::error::{Error, Result};
use crate::layout::{AccountNaming, LayoutSettings};
use crate::state::{StateSettings, SyncState};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The placement settings a run asks for; `None` keeps what is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestedSettings {
    /// The start date to use from now on.
    pub start_date: Option<NaiveDate>,
    /// The layout (only ever adopted: a stored layout cannot change).
    pub layout: Option<LayoutSettings>,
}

/// [`resolve_settings`] for `state`: a state that archived before its settings were
/// stored keeps the account folder names it made (rule 5), whatever is requested.
pub fn resolve_state_settings(
    state: &SyncState,
    requested: &RequestedSettings,
) -> Result<(StateSettings, Option<SettingsChange>)> {
    let archived_before = state.settings.is_none()
        && (state.accounts.values().any(|r| r.folder_name.is_some())
            || !state.exported.is_empty()
            || !state.tombstones.is_empty());
    if !archived_before {
        return resolve_settings(state.settings.as_ref(), requested);
    }
    let layout = requested.layout.unwrap_or_default();
    let requested = RequestedSettings {
        layout: Some(LayoutSettings {
            account_naming: AccountNaming::NameAndIban,
            ..layout
        }),
        ..*requested
    };
    resolve_settings(None, &requested)
}

/// An explicit change of the stored settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsChange {
    /// The settings before; `None` when none were stored (rule 1).
    pub from: Option<StateSettings>,
    /// The settings from now on.
    pub to: StateSettings,
}

impl SettingsChange {
    /// Whether the start date moved earlier (or was dropped): receipts between the two
    /// dates are archived from now on, so the source must be read whole again.
    pub fn widens(&self) -> bool {
        let Some(from) = &self.from else {
            return false;
        };
        match (from.start_date, self.to.start_date) {
            (Some(before), Some(after)) => after < before,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// Whether the start date moved later: receipts before it are no longer archived;
    /// those already archived stay.
    pub fn narrows(&self) -> bool {
        let Some(from) = &self.from else {
            return false;
        };
        match (from.start_date, self.to.start_date) {
            (Some(before), Some(after)) => after > before,
            (None, Some(_)) => true,
            (_, None) => false,
        }
    }
}

impl fmt::Display for SettingsChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let day = |d: Option<NaiveDate>| d.map_or_else(|| "none".to_owned(), |d| d.to_string());
        let before = self.from.as_ref().and_then(|s| s.start_date);
        write!(
            f,
            "start date changed from {} to {}",
            day(before),
            day(self.to.start_date)
        )?;
        if self.widens() {
            f.write_str(": receipts between the two dates are added")?;
        } else if self.narrows() {
            f.write_str(": earlier receipts are no longer archived; archived files stay")?;
        }
        Ok(())
    }
}

/// The settings to use, and the change to record if there is one; see the module docs.
pub fn resolve_settings(
    stored: Option<&StateSettings>,
    requested: &RequestedSettings,
) -> Result<(StateSettings, Option<SettingsChange>)> {
    let Some(stored) = stored else {
        let adopted = StateSettings {
            start_date: requested.start_date,
            layout: requested.layout.unwrap_or_default(),
        };
        let change = SettingsChange {
            from: None,
            to: adopted.clone(),
        };
        return Ok((adopted, Some(change)));
    };
    if let Some(layout) = requested.layout
        && !layout.same_periods(&stored.layout)
    {
        return Err(Error::Config(format!(
            "this archive is laid out as {:?}; a different layout ({layout:?}) would move or \
             duplicate archived receipts: keep the stored layout, or start a new state and a new folder",
            stored.layout
        )));
    }
    match requested.start_date {
        Some(day) if stored.start_date != Some(day) => {
            let to = StateSettings {
                start_date: Some(day),
                layout: stored.layout,
            };
            let change = SettingsChange {
                from: Some(stored.clone()),
                to: to.clone(),
            };
            Ok((to, Some(change)))
        }
        _ => Ok((stored.clone(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Period;

    fn day(d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(2025, 6, d)
    }

    fn stored(start: Option<NaiveDate>) -> StateSettings {
        StateSettings {
            start_date: start,
            layout: LayoutSettings::default(),
        }
    }

    #[test]
    fn nothing_requested_keeps_what_is_stored() {
        let s = stored(day(10));
        let (used, change) = resolve_settings(Some(&s), &RequestedSettings::default()).unwrap();
        assert_eq!(used, s);
        assert_eq!(change, None);
    }

    #[test]
    fn the_first_run_adopts_what_it_requests() {
        let asked = RequestedSettings {
            start_date: day(10),
            layout: None,
        };
        let (used, change) = resolve_settings(None, &asked).unwrap();
        assert_eq!(used, stored(day(10)));
        let change = change.unwrap();
        assert!(change.from.is_none() && !change.widens() && !change.narrows());
    }

    #[test]
    fn an_earlier_date_widens_and_a_later_one_narrows() {
        let s = stored(day(10));
        let ask = |d| RequestedSettings {
            start_date: d,
            layout: None,
        };
        let (used, change) = resolve_settings(Some(&s), &ask(day(5))).unwrap();
        assert_eq!(used.start_date, day(5));
        assert!(change.as_ref().unwrap().widens());
        assert!(change.unwrap().to_string().contains("added"));
        let (_, change) = resolve_settings(Some(&s), &ask(day(20))).unwrap();
        assert!(change.unwrap().narrows());
        let (_, change) = resolve_settings(Some(&s), &ask(day(10))).unwrap();
        assert_eq!(change, None, "the same date is no change");
    }

    #[test]
    fn a_different_layout_is_refused_and_the_same_one_accepted() {
        let s = stored(None);
        let other = LayoutSettings {
            period: Period::Year,
            ..LayoutSettings::default()
        };
        let ask = |layout| RequestedSettings {
            start_date: None,
            layout: Some(layout),
        };
        let err = resolve_settings(Some(&s), &ask(other)).unwrap_err();
        assert!(!err.is_retryable(), "{err}");
        assert!(resolve_settings(Some(&s), &ask(LayoutSettings::default())).is_ok());
    }

    fn legacy_naming() -> LayoutSettings {
        LayoutSettings {
            account_naming: AccountNaming::NameAndIban,
            ..LayoutSettings::default()
        }
    }

    #[test]
    fn settings_stored_before_the_account_naming_keep_the_untagged_names() {
        let old = r#"{"start_date":null,"layout":{"period":"month","time_zone":"Europe/Paris"}}"#;
        let stored: StateSettings = serde_json::from_str(old).unwrap();
        assert_eq!(stored.layout, legacy_naming());
        // Asking for the default (tagged) layout is no refusal, and changes nothing.
        let ask = RequestedSettings {
            start_date: None,
            layout: Some(LayoutSettings::default()),
        };
        let (used, change) = resolve_settings(Some(&stored), &ask).unwrap();
        assert_eq!(used.layout, legacy_naming());
        assert_eq!(change, None);
    }

    #[test]
    fn a_new_archive_gets_account_tags_and_one_archived_without_settings_does_not() {
        let mut state = SyncState::default();
        let (used, _) = resolve_state_settings(&state, &RequestedSettings::default()).unwrap();
        assert_eq!(
            used.layout.account_naming,
            AccountNaming::WithAccountTag,
            "a new archive keeps organisations apart"
        );
        let account = crate::model::BankAccount {
            id: crate::model::AccountId::new("acc"),
            name: "Main".into(),
            iban: None,
            currency: crate::model::CurrencyCode::EUR,
        };
        state.apply(&crate::state::StateChange::AccountsSeen(vec![account]));
        let (used, _) = resolve_state_settings(&state, &RequestedSettings::default()).unwrap();
        assert_eq!(used.layout.account_naming, AccountNaming::WithAccountTag);
        state.apply(&crate::state::StateChange::AccountFolder {
            account: crate::model::AccountId::new("acc"),
            name: "Main 1234".into(),
            id: crate::model::SinkItemId::new("f"),
        });
        let asked = RequestedSettings {
            start_date: day(3),
            layout: Some(LayoutSettings::default()),
        };
        let (used, change) = resolve_state_settings(&state, &asked).unwrap();
        assert_eq!(used.layout, legacy_naming(), "its folders keep their names");
        assert_eq!(used.start_date, day(3));
        assert!(change.unwrap().from.is_none());
    }
}
