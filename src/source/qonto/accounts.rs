//! Bank accounts: `GET /v2/organization`, and `GET /v2/bank_accounts` for missing ids.

use super::convert::object;
use super::error::malformed;
use super::model::{BankAccountDto, Lenient, OrganizationEnvelope};
use super::{Inner, Target};
use crate::error::{ErrorKind, Result};
use crate::model::{AccountId, BankAccount, CurrencyCode};
use std::collections::HashMap;

/// One account as the organisation lists it, before ids are resolved.
pub(super) struct Listed {
    id: Option<String>,
    iban: Option<String>,
    name: Option<String>,
    currency: CurrencyCode,
}

/// The organisation's accounts, remembering how to query each one.
pub(crate) async fn list(inner: &Inner) -> Result<Vec<BankAccount>> {
    let listed = listed_accounts(inner.client.organization().await?)?;
    // qonto.md §2.1, §8.6: the documented example of /v2/organization has no
    // `bank_accounts[].id`; /v2/bank_accounts has it, so look the IBAN up there.
    let missing = listed.iter().any(|a| a.id.is_none() && a.iban.is_some());
    let by_iban = if missing {
        ids_by_iban(inner).await?
    } else {
        HashMap::new()
    };
    let mut accounts = Vec::with_capacity(listed.len());
    let mut targets = HashMap::new();
    for account in listed {
        let target = match (account.id, account.iban.as_ref()) {
            (Some(id), _) => Target::Id(id),
            (None, Some(iban)) => match by_iban.get(iban) {
                Some(id) => Target::Id(id.clone()),
                // Still unknown: the IBAN is the id, and transactions are read by `iban`.
                None => Target::Iban(iban.clone()),
            },
            (None, None) => {
                // Nothing can select its transactions: there is nothing to read.
                tracing::warn!("a Qonto bank account has neither an id nor an IBAN; skipped");
                continue;
            }
        };
        let id = match &target {
            Target::Id(id) | Target::Iban(id) => AccountId::new(id.clone()),
        };
        accounts.push(BankAccount {
            name: account.name.unwrap_or_else(|| id.as_str().to_owned()),
            id: id.clone(),
            iban: account.iban,
            currency: account.currency,
        });
        targets.insert(id, target);
    }
    inner
        .targets
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .extend(targets);
    Ok(accounts)
}

/// The bank accounts of a `GET /v2/organization` answer, as listed (pure).
pub(super) fn listed_accounts(envelope: OrganizationEnvelope) -> Result<Vec<Listed>> {
    let organization = match envelope.organization {
        Lenient::Present(org) => org,
        _ => return Err(malformed("organization", "missing or not an object")),
    };
    let raw = match organization.bank_accounts {
        Lenient::Present(list) => list,
        Lenient::Missing => Vec::new(),
        Lenient::Invalid(kind) => {
            return Err(malformed(
                "organization.bank_accounts",
                format!("expected an array, got {kind}"),
            ));
        }
    };
    let mut listed = Vec::with_capacity(raw.len());
    for (i, value) in raw.into_iter().enumerate() {
        listed.push(listed_account(
            object(value, &format!("organization.bank_accounts[{i}]"))?,
            i,
        )?);
    }
    Ok(listed)
}

fn listed_account(dto: BankAccountDto, i: usize) -> Result<Listed> {
    let path = format!("organization.bank_accounts[{i}]");
    let currency = match dto.currency {
        // Qonto accounts are in euros; the field is always in the docs' examples.
        Lenient::Missing => CurrencyCode::EUR,
        Lenient::Present(code) => CurrencyCode::parse(&code)
            .ok_or_else(|| malformed(format!("{path}.currency"), "not a currency code"))?,
        Lenient::Invalid(kind) => {
            return Err(malformed(
                format!("{path}.currency"),
                format!("expected a currency code, got {kind}"),
            ));
        }
    };
    let text = |v: Lenient<String>| {
        v.ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let iban = text(dto.iban).map(|iban| normalize_iban(&iban));
    Ok(Listed {
        id: text(dto.id),
        name: text(dto.name)
            .or_else(|| text(dto.slug))
            .or_else(|| iban.clone()),
        iban,
        currency,
    })
}

/// Every account id of `GET /v2/bank_accounts`, by IBAN. Where that endpoint is
/// refused or absent, the IBAN fallback still works, so only other errors propagate.
async fn ids_by_iban(inner: &Inner) -> Result<HashMap<String, String>> {
    let fetched = inner
        .pager
        .collect(|paging, page| async move { inner.client.bank_accounts(&paging, page).await })
        .await;
    let items = match fetched {
        Ok(items) => items,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::NotFound | ErrorKind::Forbidden | ErrorKind::Rejected
            ) =>
        {
            tracing::warn!(error = %e, "cannot list Qonto bank accounts; reading by IBAN");
            return Ok(HashMap::new());
        }
        Err(e) => return Err(e),
    };
    let mut by_iban = HashMap::new();
    for (i, value) in items.into_iter().enumerate() {
        let Ok(dto) = object::<BankAccountDto>(value, &format!("bank_accounts[{i}]")) else {
            continue;
        };
        if let (Lenient::Present(id), Lenient::Present(iban)) = (dto.id, dto.iban)
            && !id.is_empty()
        {
            by_iban.insert(normalize_iban(&iban), id);
        }
    }
    Ok(by_iban)
}

/// An IBAN without spaces, upper-case.
fn normalize_iban(iban: &str) -> String {
    iban.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// Whether an account id is an IBAN (two letters, two digits, then letters and
/// digits, 15 to 34 in all) rather than a Qonto UUID.
pub(crate) fn looks_like_iban(id: &str) -> bool {
    let b = id.as_bytes();
    (15..=34).contains(&b.len())
        && b.iter().take(2).all(u8::is_ascii_uppercase)
        && b.iter().skip(2).take(2).all(u8::is_ascii_digit)
        && b.iter().all(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibans_and_uuids_are_told_apart() {
        assert!(looks_like_iban("FR7616958000010123456789037"));
        assert!(!looks_like_iban("018f71db-c635-78b5-b90a-ea05de98c2bf"));
        assert!(!looks_like_iban("fr76"));
        assert_eq!(normalize_iban("fr76 1695 8000"), "FR7616958000");
    }
}
