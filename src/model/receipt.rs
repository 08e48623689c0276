//! A receipt: one attachment of a bank transaction, with the transaction it belongs to.

use super::{AccountId, Money, ReceiptId, TransactionId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The status of a bank transaction. Unknown values are kept, not rejected.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionStatus {
    /// Authorised but not settled yet; its settlement date and amount may still change.
    Pending,
    /// Settled.
    Completed,
    /// Refused by the bank: no money moved, so its receipts are not archived by default.
    Declined,
    /// Reversed after settlement.
    Reversed,
    /// A status this crate does not know, as the source spelled it.
    Other(String),
}

/// The bank transaction a receipt is attached to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The source's identifier.
    pub id: TransactionId,
    /// The account the transaction belongs to.
    pub account_id: AccountId,
    /// When the transaction was emitted. It never changes, so it dates the receipt.
    pub emitted_at: DateTime<Utc>,
    /// When the transaction settled; `None` while pending.
    pub settled_at: Option<DateTime<Utc>>,
    /// The signed amount: negative for a debit.
    pub amount: Money,
    /// The counterparty or label shown in the bank's interface.
    pub label: String,
    /// The transaction's status.
    pub status: TransactionStatus,
}

/// One receipt (an attachment) and its transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The source's identifier of the attachment.
    pub id: ReceiptId,
    /// The file name as uploaded to the bank, possibly without an extension.
    pub file_name: String,
    /// The MIME type, when known (for example `application/pdf`).
    pub content_type: Option<String>,
    /// The size in bytes, as the source announces it.
    pub size: u64,
    /// When the attachment was added.
    pub created_at: DateTime<Utc>,
    /// The transaction it is attached to.
    pub transaction: Transaction,
}
