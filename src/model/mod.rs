//! Plain shared data: identifiers, bank accounts, receipts, money and archive paths.
//!
//! Nothing in here does I/O. Every other module speaks in these types, so a
//! source and a sink never need to know about each other.

mod account;
mod body;
mod ids;
mod money;
mod path;
mod plausible;
mod receipt;
mod scan;

pub use account::BankAccount;
pub use body::Body;
pub use ids::{AccountId, ReceiptId, SinkItemId, TransactionId};
pub use money::{CurrencyCode, Money};
pub use path::{ArchivePath, InvalidArchivePath, PathKey};
pub use plausible::{Implausible, MAX_RECEIPT_SIZE, PLAUSIBLE_DATES};
pub use receipt::{Receipt, Transaction, TransactionStatus};
pub use scan::{
    ArchiveSnapshot, EntryKind, PathIndex, ScanCursor, ScanUpdate, SinkChange, SinkEntry,
};
