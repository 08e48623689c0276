//! A bank transaction as a source lists it, with or without receipts: what the
//! accountant's index (`index.csv`) shows, one row each.

use crate::model::{Money, ReceiptId, Transaction};
use serde::{Deserialize, Serialize};

/// One transaction of an account, as listed, whether or not it has receipts.
///
/// A source yields it as [`SourceEvent::Transaction`](super::SourceEvent::Transaction)
/// from the same listing that yields the receipts (a bank lists transactions with their
/// attachments), so knowing the receipt-less ones costs no extra request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BankTransaction {
    /// The transaction itself (id, account, dates, amount, label, status).
    pub transaction: Transaction,
    /// The VAT amount, when the bank knows it.
    #[serde(default)]
    pub vat_amount: Option<Money>,
    /// The VAT rate in percent as a decimal with `.` (`20`, `5.5`), when known.
    #[serde(default)]
    pub vat_rate: Option<String>,
    /// The bank's category (for example `gas_station`).
    #[serde(default)]
    pub category: Option<String>,
    /// The note the account holder wrote on it.
    #[serde(default)]
    pub note: Option<String>,
    /// The ids of its receipts (attachments), as the bank lists them.
    #[serde(default)]
    pub receipts: Vec<ReceiptId>,
}

impl BankTransaction {
    /// A transaction with no VAT, category, note or receipt.
    pub fn new(transaction: Transaction) -> Self {
        Self {
            transaction,
            vat_amount: None,
            vat_rate: None,
            category: None,
            note: None,
            receipts: Vec::new(),
        }
    }

    /// Sets the VAT amount and rate (`rate` in percent, `.` as decimal separator).
    pub fn with_vat(mut self, amount: Option<Money>, rate: Option<String>) -> Self {
        self.vat_amount = amount;
        self.vat_rate = rate;
        self
    }

    /// Sets the category.
    pub fn with_category(mut self, category: Option<String>) -> Self {
        self.category = category;
        self
    }

    /// Sets the note.
    pub fn with_note(mut self, note: Option<String>) -> Self {
        self.note = note;
        self
    }

    /// Sets the ids of its receipts.
    pub fn with_receipts(mut self, receipts: Vec<ReceiptId>) -> Self {
        self.receipts = receipts;
        self
    }
}
