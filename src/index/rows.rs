//! The rows of every index, from the catalog.

use crate::layout::Layout;
use crate::model::{
    AccountId, ArchivePath, Money, PLAUSIBLE_DATES, Receipt, Transaction, TransactionId,
    TransactionStatus,
};
use crate::source::BankTransaction;
use crate::state::SyncState;
use chrono::{NaiveDate, TimeDelta};
use std::collections::BTreeMap;

/// One account's period: the account and the layout's period key (year and month,
/// quarter, or 0 for a whole year).
pub type PeriodKey = (AccountId, (i32, u32));

/// One row: a transaction and where its receipts were archived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexRow {
    /// The day that dates it, in the layout's time zone (the same day as its receipts).
    pub date: NaiveDate,
    /// The transaction's id.
    pub transaction_id: TransactionId,
    /// The label shown at the bank.
    pub label: String,
    /// The signed amount.
    pub amount: Money,
    /// The VAT amount, when known.
    pub vat_amount: Option<Money>,
    /// The VAT rate in percent, when known.
    pub vat_rate: Option<String>,
    /// The bank's category.
    pub category: Option<String>,
    /// The status.
    pub status: TransactionStatus,
    /// The account holder's note.
    pub note: Option<String>,
    /// Where its receipts were archived (paths as recorded), sorted.
    pub receipts: Vec<ArchivePath>,
}

/// The rows of one account's period, sorted by date then transaction id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodRows {
    /// A day of the period (its first transaction's), to name its folder.
    pub day: NaiveDate,
    /// The rows.
    pub rows: Vec<IndexRow>,
}

/// Every eligible transaction of the catalog, grouped by account and period: those
/// listed as such ([`SyncState::transactions`]) and those known through their receipts.
/// Declined transactions (unless `include_declined`), those dated before `start_date`
/// and those with an implausible date are left out, as the sync leaves out their
/// receipts.
pub fn collect(
    state: &SyncState,
    layout: &Layout,
    start_date: Option<NaiveDate>,
    include_declined: bool,
) -> BTreeMap<PeriodKey, PeriodRows> {
    let mut receipts_of: BTreeMap<&TransactionId, Vec<&Receipt>> = BTreeMap::new();
    for receipt in state.receipts.values() {
        receipts_of
            .entry(&receipt.transaction.id)
            .or_default()
            .push(receipt);
    }
    // The listed transaction when there is one (it knows VAT, category and note),
    // else the one its receipts carry.
    let mut transactions: BTreeMap<&TransactionId, (&Transaction, Option<&BankTransaction>)> =
        BTreeMap::new();
    for (id, receipts) in &receipts_of {
        if let Some(first) = receipts.first() {
            transactions.insert(id, (&first.transaction, None));
        }
    }
    for (id, listed) in &state.transactions {
        transactions.insert(id, (&listed.transaction, Some(listed)));
    }
    let mut periods: BTreeMap<PeriodKey, PeriodRows> = BTreeMap::new();
    for (id, (transaction, listed)) in transactions {
        if !PLAUSIBLE_DATES.contains(&transaction.emitted_at)
            || (transaction.status == TransactionStatus::Declined && !include_declined)
        {
            continue;
        }
        let date = day_of(layout, transaction);
        if start_date.is_some_and(|start| date < start) {
            continue;
        }
        let mut archived: Vec<ArchivePath> = receipts_of
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|r| state.exported.get(&r.id).map(|e| e.path.clone()))
            .collect();
        archived.sort();
        let row = IndexRow {
            date,
            transaction_id: id.clone(),
            label: transaction.label.clone(),
            amount: transaction.amount,
            vat_amount: listed.and_then(|l| l.vat_amount),
            vat_rate: listed.and_then(|l| l.vat_rate.clone()),
            category: listed.and_then(|l| l.category.clone()),
            status: transaction.status.clone(),
            note: listed.and_then(|l| l.note.clone()),
            receipts: archived,
        };
        let key = (transaction.account_id.clone(), layout.period_of(date));
        periods
            .entry(key)
            .or_insert_with(|| PeriodRows {
                day: date,
                rows: Vec::new(),
            })
            .rows
            .push(row);
    }
    for period in periods.values_mut() {
        period
            .rows
            .sort_by(|a, b| (a.date, &a.transaction_id).cmp(&(b.date, &b.transaction_id)));
        period.day = period.rows.first().map_or(period.day, |r| r.date);
    }
    periods
}

/// The day that dates a transaction, as [`Layout::receipt_day`] dates its receipts.
fn day_of(layout: &Layout, transaction: &Transaction) -> NaiveDate {
    let last = PLAUSIBLE_DATES.end - TimeDelta::nanoseconds(1);
    transaction
        .emitted_at
        .clamp(PLAUSIBLE_DATES.start, last)
        .with_timezone(&layout.settings().time_zone)
        .date_naive()
}
