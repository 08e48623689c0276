//! A bank account, whose receipts get a folder of their own in the archive.

use super::{AccountId, CurrencyCode};
use serde::{Deserialize, Serialize};

/// A bank account of the organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankAccount {
    /// The source's identifier.
    pub id: AccountId,
    /// The name the user gave the account; it names the account's folder.
    pub name: String,
    /// The IBAN, when the source knows it.
    pub iban: Option<String>,
    /// The account's currency.
    pub currency: CurrencyCode,
}
