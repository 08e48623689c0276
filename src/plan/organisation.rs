//! Which organisation a state belongs to.
//!
//! A state's records describe one organisation's receipts in one archive. Read with
//! another organisation's key, its accounts would all look closed, and the next pass
//! would archive the other organisation's receipts under this state's records: the
//! two organisations would then share one state, and a reset or a deletion made for
//! one would act on both. So a pass whose source lists none of the accounts the state
//! knows is refused before anything is recorded.
//!
//! # The rule
//! 1. **The state knows no account yet** (a new state): any organisation is accepted;
//!    its accounts bind the state.
//! 2. **The source lists no account**: accepted (nothing will be read or archived; a
//!    bank listing nothing is no evidence of another organisation).
//! 3. **The source lists at least one account the state knows**, by id or by IBAN (an
//!    account first known by its IBAN, when Qonto did not give its id, may be listed
//!    by its id later): the same organisation; accounts opened since are added, closed
//!    ones stay archived.
//! 4. **Otherwise**: refused ([`crate::Error::Config`]).
//!
//! # Assumptions
//! - Account ids are unique across organisations (Qonto's are UUIDs), and so are IBANs.
//! - An organisation never replaces every one of its accounts between two passes; one
//!   that did would be refused, and needs a new state.

use crate::error::{Error, Result};
use crate::model::BankAccount;
use crate::state::SyncState;
use std::collections::HashSet;

/// Refuses `listed` when they are another organisation's accounts; see the module docs.
pub fn check_same_organisation(state: &SyncState, listed: &[BankAccount]) -> Result<()> {
    let known_ibans: HashSet<String> = state
        .accounts
        .values()
        .filter_map(|r| r.account.iban.as_deref().map(iban_key))
        .collect();
    let known = |a: &BankAccount| {
        state.accounts.contains_key(&a.id)
            || a.iban
                .as_deref()
                .is_some_and(|iban| known_ibans.contains(&iban_key(iban)))
    };
    if state.accounts.is_empty() || listed.is_empty() || listed.iter().any(known) {
        return Ok(());
    }
    let known: Vec<&str> = state
        .accounts
        .values()
        .map(|r| r.account.name.as_str())
        .collect();
    Err(Error::Config(format!(
        "this state archives the receipts of another organisation (its accounts: {}); the \
         credentials given read an organisation with none of them. Give each organisation \
         its own state, used only with that organisation's credentials; several \
         organisations can archive into the same drive, each in its own folders",
        known.join(", ")
    )))
}

/// An IBAN as written in any format: letters and digits only, upper-case.
fn iban_key(iban: &str) -> String {
    iban.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccountId, CurrencyCode};
    use crate::state::StateChange;

    fn account(id: &str) -> BankAccount {
        BankAccount {
            id: AccountId::new(id),
            name: format!("Account {id}"),
            iban: None,
            currency: CurrencyCode::EUR,
        }
    }

    #[test]
    fn another_organisations_accounts_are_refused_and_the_same_ones_accepted() {
        let mut state = SyncState::default();
        assert!(check_same_organisation(&state, &[account("a1")]).is_ok());
        state.apply(&StateChange::AccountsSeen(vec![
            account("a1"),
            account("a2"),
        ]));
        assert!(check_same_organisation(&state, &[account("a2"), account("a3")]).is_ok());
        assert!(check_same_organisation(&state, &[]).is_ok());
        let err = check_same_organisation(&state, &[account("b1")]).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config, "{err}");
        assert!(err.stops_sync(), "{err}");
        assert!(err.to_string().contains("its own state"), "{err}");
    }

    #[test]
    fn an_account_known_by_its_iban_and_listed_by_its_id_is_the_same() {
        let mut by_iban = account("FR7616958000010123456789037");
        by_iban.iban = Some("FR76 1695 8000 0101 2345 6789 037".into());
        let mut state = SyncState::default();
        state.apply(&StateChange::AccountsSeen(vec![by_iban]));
        let mut by_id = account("8d3f0c52-uuid");
        by_id.iban = Some("FR7616958000010123456789037".into());
        assert!(check_same_organisation(&state, &[by_id]).is_ok());
    }
}
