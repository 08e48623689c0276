//! A receipt source in memory: accounts, receipts and their bytes, for tests,
//! examples and embedders who feed receipts from elsewhere.

use super::{BankTransaction, ReceiptQuery, ReceiptSource, ReceiptStream, SourceEvent, Watermark};
use crate::error::{Error, Result};
use crate::model::{
    AccountId, BankAccount, Body, CurrencyCode, Money, Receipt, ReceiptId, Transaction,
    TransactionId, TransactionStatus,
};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{NaiveDate, NaiveTime};
use futures::stream::{self, StreamExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

const SERVICE: &str = "memory-source";

/// A [`ReceiptSource`] kept in memory. Clones share the same data and counters.
///
/// Every change to a receipt (adding it, editing its transaction) gives it a new
/// revision from one counter; a [`Watermark`] is that counter as a zero-padded
/// string, so reading `since` a watermark yields exactly the receipts changed after it.
/// Removing a receipt makes [`open`](ReceiptSource::open) answer
/// [`Error::NotFound`]; like a bank's API, the listing simply stops showing it.
///
/// ```
/// # use receipt_sync::source::{InMemorySource, ReceiptSource, ReceiptQuery};
/// # use receipt_sync::model::AccountId;
/// # use chrono::NaiveDate;
/// let source = InMemorySource::new();
/// let main = source.add_account_named("acc-1", "Main");
/// let day = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
/// source.add_receipt(InMemorySource::receipt("r1", &main, day, "Office supplies", -1234), "%PDF-1.7");
/// assert_eq!(source.len(), 1);
/// ```
#[derive(Clone, Debug, Default)]
pub struct InMemorySource {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    data: Mutex<Data>,
    account_calls: AtomicU64,
    list_calls: AtomicU64,
    opens: AtomicU64,
}

/// The bank's books, indexed so that a listing costs what it returns: a quiet day
/// (a read since the latest watermark) looks at nothing.
#[derive(Debug)]
struct Data {
    accounts: Vec<BankAccount>,
    /// Every receipt ever added, in the order added; `None` once removed.
    receipts: Vec<Option<Stored>>,
    /// Every receipt under the hash of the id it was added under (`hash`): ids are
    /// stored once, in the receipts; colliding ids are told apart by comparing them.
    by_id: BTreeSet<(u64, Slot)>,
    /// Transactions added as such (with or without receipts), in the order added.
    transactions: Vec<Listed>,
    /// Where each of those is in `transactions`, by the id it was added under.
    transaction_slots: HashMap<TransactionId, Slot>,
    /// Per account, every receipt and added transaction under its revision: a
    /// listing since a watermark reads the range after it.
    changes: HashMap<AccountId, BTreeSet<(u64, Item)>>,
    /// Every receipt under the hash of its transaction's id (`hash`), to
    /// find a transaction's receipts; colliding ids are told apart by comparing them.
    by_transaction: BTreeSet<(u64, Slot)>,
    hasher: RandomState,
    revision: u64,
    checkpoint_every: Option<usize>,
    chunk_size: usize,
}

/// A position in `Data::receipts` or `Data::transactions`.
type Slot = u32;

/// What `Data::changes` files under a revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    Receipt(Slot),
    Transaction(Slot),
}

impl Default for Data {
    fn default() -> Self {
        Self {
            accounts: Vec::new(),
            receipts: Vec::new(),
            by_id: BTreeSet::new(),
            transactions: Vec::new(),
            transaction_slots: HashMap::new(),
            changes: HashMap::new(),
            by_transaction: BTreeSet::new(),
            hasher: RandomState::new(),
            revision: 0,
            checkpoint_every: None,
            chunk_size: InMemorySource::DEFAULT_CHUNK_SIZE,
        }
    }
}

#[derive(Debug)]
struct Stored {
    receipt: Receipt,
    bytes: Bytes,
    revision: u64,
    /// The id it was added under, when an edit changed `receipt.id` since: the
    /// source still finds it, and orders it, by that one.
    added_as: Option<Box<ReceiptId>>,
}

impl Stored {
    /// The id the source files it under.
    fn key(&self) -> &ReceiptId {
        self.added_as.as_deref().unwrap_or(&self.receipt.id)
    }
}

/// A transaction added as such, with its revision.
#[derive(Debug)]
struct Listed {
    /// The id it was added under (an edit may change the transaction's own).
    id: TransactionId,
    transaction: BankTransaction,
    revision: u64,
}

impl Data {
    fn bump(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    /// Where `by_id` and `by_transaction` file an id.
    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    fn stored(&self, slot: Slot) -> Option<&Stored> {
        self.receipts.get(slot as usize)?.as_ref()
    }

    fn receipt_slot(&self, id: &ReceiptId) -> Option<Slot> {
        let key = self.hash(id.as_str());
        (self.by_id.range((key, Slot::MIN)..=(key, Slot::MAX)))
            .map(|&(_, slot)| slot)
            .find(|&slot| self.stored(slot).is_some_and(|s| s.key() == id))
    }

    /// Files receipt `slot` in the indexes, as it is now.
    fn index_receipt(&mut self, slot: Slot) {
        let Some(stored) = self.stored(slot) else {
            return;
        };
        let transaction = &stored.receipt.transaction;
        let (account, revision) = (transaction.account_id.clone(), stored.revision);
        let key = self.hash(transaction.id.as_str());
        self.by_transaction.insert((key, slot));
        let changes = self.changes.entry(account).or_default();
        changes.insert((revision, Item::Receipt(slot)));
    }

    /// Takes receipt `slot` out of the indexes, before it changes or goes.
    fn unindex_receipt(&mut self, slot: Slot) {
        let Some(stored) = self.receipts.get(slot as usize).and_then(Option::as_ref) else {
            return;
        };
        let transaction = &stored.receipt.transaction;
        let key = self.hasher.hash_one(transaction.id.as_str());
        if let Some(changes) = self.changes.get_mut(&transaction.account_id) {
            changes.remove(&(stored.revision, Item::Receipt(slot)));
        }
        self.by_transaction.remove(&(key, slot));
    }

    /// Changes receipt `slot` (kept in the indexes).
    fn update_receipt(&mut self, slot: Slot, change: impl FnOnce(&mut Stored)) {
        self.unindex_receipt(slot);
        if let Some(stored) = self
            .receipts
            .get_mut(slot as usize)
            .and_then(Option::as_mut)
        {
            change(stored);
        }
        self.index_receipt(slot);
    }

    /// Changes added transaction `slot` (kept in the indexes).
    fn update_transaction(&mut self, slot: Slot, change: impl FnOnce(&mut Listed)) {
        let Some(listed) = self.transactions.get_mut(slot as usize) else {
            return;
        };
        let old = (
            listed.transaction.transaction.account_id.clone(),
            listed.revision,
        );
        change(listed);
        let new = (
            listed.transaction.transaction.account_id.clone(),
            listed.revision,
        );
        if let Some(changes) = self.changes.get_mut(&old.0) {
            changes.remove(&(old.1, Item::Transaction(slot)));
        }
        let changes = self.changes.entry(new.0).or_default();
        changes.insert((new.1, Item::Transaction(slot)));
    }

    /// The receipts whose transaction is `id`, by the id they are filed under.
    fn receipts_of(&self, id: &TransactionId) -> Vec<(&ReceiptId, Slot)> {
        let key = self.hash(id.as_str());
        let mut found: Vec<(&ReceiptId, Slot)> = (self.by_transaction)
            .range((key, Slot::MIN)..=(key, Slot::MAX))
            .filter_map(|&(_, slot)| {
                let stored = self.stored(slot)?;
                (&stored.receipt.transaction.id == id).then(|| (stored.key(), slot))
            })
            .collect();
        found.sort_unstable();
        found
    }

    /// Gives every receipt of transaction `id` this version of it, at `revision`.
    fn retransact(&mut self, id: &TransactionId, transaction: &Transaction, revision: u64) {
        let slots: Vec<Slot> = self.receipts_of(id).into_iter().map(|(_, s)| s).collect();
        for slot in slots {
            self.update_receipt(slot, |stored| {
                stored.receipt.transaction = transaction.clone();
                stored.revision = revision;
            });
        }
    }
}

fn watermark(revision: u64) -> Watermark {
    // Zero-padded so that watermarks order as strings the way revisions order as numbers.
    Watermark::new(format!("{revision:020}"))
}

impl InMemorySource {
    /// The size of the chunks [`ReceiptSource::open`] streams by default: small, so
    /// that even small test files arrive in several pieces.
    pub const DEFAULT_CHUNK_SIZE: usize = 16 * 1024;

    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    fn data(&self) -> MutexGuard<'_, Data> {
        self.inner
            .data
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A plain receipt for tests: a completed debit or credit of `cents` euro cents,
    /// emitted and settled at noon UTC on `day`, attached to transaction `tx-<id>`,
    /// named `<id>.pdf`. Its size is set when it is added.
    pub fn receipt(
        id: &str,
        account: &AccountId,
        day: NaiveDate,
        label: &str,
        cents: i64,
    ) -> Receipt {
        let at = day.and_time(NaiveTime::MIN).and_utc() + chrono::Duration::hours(12);
        Receipt {
            id: ReceiptId::new(id),
            file_name: format!("{id}.pdf"),
            content_type: Some("application/pdf".into()),
            size: 0,
            created_at: at,
            transaction: Transaction {
                id: TransactionId::new(format!("tx-{id}")),
                account_id: account.clone(),
                emitted_at: at,
                settled_at: Some(at),
                amount: Money::new(cents, CurrencyCode::EUR),
                label: label.into(),
                status: TransactionStatus::Completed,
            },
        }
    }

    /// Adds an account, or replaces the one with the same id.
    pub fn add_account(&self, account: BankAccount) {
        let mut data = self.data();
        match data.accounts.iter_mut().find(|a| a.id == account.id) {
            Some(existing) => *existing = account,
            None => data.accounts.push(account),
        }
    }

    /// Adds a euro account named `name` and returns its id.
    pub fn add_account_named(&self, id: &str, name: &str) -> AccountId {
        let id = AccountId::new(id);
        self.add_account(BankAccount {
            id: id.clone(),
            name: name.into(),
            iban: None,
            currency: CurrencyCode::EUR,
        });
        id
    }

    /// Renames an account (its receipts do not change).
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such account.
    pub fn rename_account(&self, id: &AccountId, name: &str) -> Result<()> {
        let mut data = self.data();
        let account = data
            .accounts
            .iter_mut()
            .find(|a| &a.id == id)
            .ok_or_else(|| not_found(format!("account {id}")))?;
        account.name = name.into();
        Ok(())
    }

    /// Removes an account from the list; its receipts stay readable by id.
    pub fn remove_account(&self, id: &AccountId) -> bool {
        let mut data = self.data();
        let before = data.accounts.len();
        data.accounts.retain(|a| &a.id != id);
        data.accounts.len() != before
    }

    /// Adds a receipt with its bytes (its `size` is set to their length), or replaces
    /// the one with the same id. Either way it gets a new revision.
    pub fn add_receipt(&self, mut receipt: Receipt, bytes: impl Into<Bytes>) -> Receipt {
        let bytes = bytes.into();
        receipt.size = bytes.len() as u64;
        let mut data = self.data();
        let revision = data.bump();
        let stored = Stored {
            receipt: receipt.clone(),
            bytes,
            revision,
            added_as: None,
        };
        match data.receipt_slot(&receipt.id) {
            Some(slot) => data.update_receipt(slot, |old| *old = stored),
            None => {
                let slot =
                    Slot::try_from(data.receipts.len()).expect("fewer than 4 billion receipts");
                data.receipts.push(Some(stored));
                let key = data.hash(receipt.id.as_str());
                data.by_id.insert((key, slot));
                data.index_receipt(slot);
            }
        }
        receipt
    }

    /// Edits a receipt in place (its bytes stay), giving it a new revision.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such receipt.
    pub fn edit_receipt(&self, id: &ReceiptId, edit: impl FnOnce(&mut Receipt)) -> Result<()> {
        let mut data = self.data();
        let slot = data
            .receipt_slot(id)
            .ok_or_else(|| not_found(format!("receipt {id}")))?;
        let revision = data.bump();
        data.update_receipt(slot, |stored| {
            edit(&mut stored.receipt);
            stored.revision = revision;
            let added_as = stored.added_as.take().map_or_else(|| id.clone(), |b| *b);
            stored.added_as = (stored.receipt.id != added_as).then(|| Box::new(added_as));
        });
        Ok(())
    }

    /// Edits the transaction `receipt` is attached to (label, status, settlement, …).
    /// Every receipt of that transaction sees the change and gets a new revision, as
    /// a bank shows one transaction with all its attachments.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such receipt.
    pub fn edit_transaction(
        &self,
        receipt: &ReceiptId,
        edit: impl FnOnce(&mut Transaction),
    ) -> Result<()> {
        let mut data = self.data();
        let mut transaction = data
            .receipt_slot(receipt)
            .and_then(|slot| data.stored(slot))
            .map(|s| s.receipt.transaction.clone())
            .ok_or_else(|| not_found(format!("receipt {receipt}")))?;
        let old_id = transaction.id.clone();
        edit(&mut transaction);
        let revision = data.bump();
        data.retransact(&old_id, &transaction, revision);
        if let Some(&slot) = data.transaction_slots.get(&old_id) {
            data.update_transaction(slot, |listed| {
                listed.transaction.transaction = transaction;
                listed.revision = revision;
            });
        }
        Ok(())
    }

    /// Adds a transaction as the bank lists it, with or without receipts (its VAT,
    /// category and note show in the accountant's index), or replaces the one with
    /// the same id; either way it gets a new revision. Its receipts are those added
    /// with [`add_receipt`](Self::add_receipt) for the same transaction id: the
    /// `receipts` field is filled in when listing. A transaction of receipts added
    /// without it is listed too, with no VAT, category or note.
    pub fn add_transaction(&self, transaction: BankTransaction) {
        let mut data = self.data();
        let revision = data.bump();
        let id = transaction.transaction.id.clone();
        let listed = Listed {
            id: id.clone(),
            transaction,
            revision,
        };
        match data.transaction_slots.get(&id) {
            Some(&slot) => data.update_transaction(slot, |old| *old = listed),
            None => {
                let slot = Slot::try_from(data.transactions.len())
                    .expect("fewer than 4 billion transactions");
                // Filed under the account before it goes in: `update_transaction` moves it.
                data.transactions.push(listed);
                data.transaction_slots.insert(id, slot);
                data.update_transaction(slot, |_| {});
            }
        }
    }

    /// Edits a transaction added with [`add_transaction`](Self::add_transaction) (its
    /// note, its status, …), giving it and its receipts a new revision.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such transaction.
    pub fn edit_bank_transaction(
        &self,
        id: &TransactionId,
        edit: impl FnOnce(&mut BankTransaction),
    ) -> Result<()> {
        let mut data = self.data();
        let slot = *data
            .transaction_slots
            .get(id)
            .ok_or_else(|| not_found(format!("transaction {id}")))?;
        let revision = data.bump();
        let mut transaction = None;
        data.update_transaction(slot, |listed| {
            edit(&mut listed.transaction);
            listed.revision = revision;
            transaction = Some(listed.transaction.transaction.clone());
        });
        if let Some(transaction) = transaction {
            data.retransact(id, &transaction, revision);
        }
        Ok(())
    }

    /// Removes a receipt: it leaves the listing and [`open`](ReceiptSource::open) answers
    /// [`Error::NotFound`]. Returns whether it existed.
    pub fn remove_receipt(&self, id: &ReceiptId) -> bool {
        let mut data = self.data();
        let Some(slot) = data.receipt_slot(id) else {
            return false;
        };
        let key = data.hash(id.as_str());
        data.by_id.remove(&(key, slot));
        data.unindex_receipt(slot);
        data.receipts[slot as usize] = None;
        true
    }

    /// The receipt with this id, as currently listed.
    pub fn get(&self, id: &ReceiptId) -> Option<Receipt> {
        let data = self.data();
        let stored = data.stored(data.receipt_slot(id)?)?;
        Some(stored.receipt.clone())
    }

    /// How many receipts the source holds.
    pub fn len(&self) -> usize {
        self.data().by_id.len()
    }

    /// Whether the source holds no receipt.
    pub fn is_empty(&self) -> bool {
        self.data().by_id.is_empty()
    }

    /// Also yield a [`SourceEvent::Checkpoint`] after every `n` receipts
    /// (`None`: only at the end of each stream).
    pub fn set_checkpoint_every(&self, n: Option<usize>) {
        self.data().checkpoint_every = n.filter(|&n| n > 0);
    }

    /// The size of the chunks [`open`](ReceiptSource::open) streams (at least 1).
    pub fn set_chunk_size(&self, bytes: usize) {
        self.data().chunk_size = bytes.max(1);
    }

    /// How many times [`ReceiptSource::accounts`] was called.
    pub fn account_calls(&self) -> u64 {
        self.inner.account_calls.load(Ordering::SeqCst)
    }

    /// How many times [`ReceiptSource::receipts`] was called.
    pub fn list_calls(&self) -> u64 {
        self.inner.list_calls.load(Ordering::SeqCst)
    }

    /// How many times [`ReceiptSource::open`] was called (found or not).
    pub fn opens(&self) -> u64 {
        self.inner.opens.load(Ordering::SeqCst)
    }

    /// The events one `receipts` call yields, computed at once under the lock.
    fn list(&self, account: &AccountId, query: &ReceiptQuery) -> Result<Vec<SourceEvent>> {
        let data = self.data();
        if !data.accounts.iter().any(|a| &a.id == account) {
            return Err(not_found(format!("account {account}")));
        }
        let since = match &query.since {
            None => 0,
            Some(mark) => mark.as_str().parse::<u64>().map_err(|_| Error::Rejected {
                service: SERVICE,
                operation: "list receipts".into(),
                message: format!("{mark:?} is not a watermark this source issued"),
            })?,
        };
        let eligible = |t: &Transaction| {
            &t.account_id == account
                && query
                    .start_date
                    .is_none_or(|day| t.emitted_at.date_naive() >= day)
                && (query.include_declined || t.status != TransactionStatus::Declined)
        };
        // What changed in the account after the watermark: those receipts, by id, and
        // the transactions to list again, by the id they are filed under.
        let mut changed: BTreeMap<&ReceiptId, &Stored> = BTreeMap::new();
        let mut relisted: BTreeSet<&TransactionId> = BTreeSet::new();
        let after = (since.saturating_add(1), Item::Receipt(Slot::MIN));
        for &(_, item) in data
            .changes
            .get(account)
            .into_iter()
            .flat_map(|c| c.range(after..))
        {
            match item {
                Item::Receipt(slot) => {
                    let Some(stored) = data.stored(slot) else {
                        continue;
                    };
                    if eligible(&stored.receipt.transaction) {
                        changed.insert(stored.key(), stored);
                        relisted.insert(&stored.receipt.transaction.id);
                    }
                }
                Item::Transaction(slot) => {
                    let Some(listed) = data.transactions.get(slot as usize) else {
                        continue;
                    };
                    if eligible(&listed.transaction.transaction) {
                        relisted.insert(&listed.id);
                    }
                }
            }
        }
        // Every event with its revision; a transaction's is the latest of its own and
        // its receipts', so a receipt arriving lists its transaction again.
        let mut matching: Vec<(u64, SourceEvent)> = changed
            .values()
            .map(|s| {
                (
                    s.revision,
                    SourceEvent::Receipt(Box::new(s.receipt.clone())),
                )
            })
            .collect();
        for id in relisted {
            let listed = (data.transaction_slots.get(id))
                .and_then(|&slot| data.transactions.get(slot as usize))
                .filter(|l| eligible(&l.transaction.transaction));
            let receipts: Vec<&Stored> = (data.receipts_of(id).into_iter())
                .filter_map(|(_, slot)| data.stored(slot))
                .filter(|s| eligible(&s.receipt.transaction))
                .collect();
            let (mut event, mut at) = match (listed, receipts.first()) {
                (Some(listed), _) => (listed.transaction.clone(), listed.revision),
                (None, Some(first)) => (BankTransaction::new(first.receipt.transaction.clone()), 0),
                (None, None) => continue,
            };
            event.receipts = receipts.iter().map(|s| s.receipt.id.clone()).collect();
            at = receipts.iter().map(|s| s.revision).fold(at, u64::max);
            matching.push((at, SourceEvent::Transaction(Box::new(event))));
        }
        // By revision; within one, receipts before transactions, each by id.
        matching.sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| event_key(x).cmp(&event_key(y))));
        let mut events = Vec::with_capacity(matching.len() + 1);
        // Receipts since the last checkpoint: checkpoints count receipts only.
        let mut receipts = 0;
        for (i, (revision, event)) in matching.iter().enumerate() {
            events.push(event.clone());
            receipts += usize::from(matches!(event, SourceEvent::Receipt(_)));
            let last_of_revision = matching.get(i + 1).is_none_or(|(next, _)| next != revision);
            // A checkpoint may only sit between revisions: receipts sharing one (a
            // transaction edit) must all come before it, or resuming would skip some.
            if let Some(n) = data.checkpoint_every
                && receipts >= n
                && last_of_revision
                && i + 1 < matching.len()
            {
                receipts = 0;
                events.push(SourceEvent::Checkpoint(watermark(*revision)));
            }
        }
        events.push(SourceEvent::Checkpoint(watermark(data.revision.max(since))));
        Ok(events)
    }
}

/// Orders the events of one revision: receipts first, then transactions, each by id.
fn event_key(event: &SourceEvent) -> (u8, &str) {
    match event {
        SourceEvent::Receipt(r) => (0, r.id.as_str()),
        SourceEvent::Transaction(t) => (1, t.transaction.id.as_str()),
        SourceEvent::Checkpoint(w) => (2, w.as_str()),
    }
}

fn not_found(what: String) -> Error {
    Error::NotFound { what }
}

#[async_trait]
impl ReceiptSource for InMemorySource {
    async fn accounts(&self) -> Result<Vec<BankAccount>> {
        self.inner.account_calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.data().accounts.clone())
    }

    fn receipts(&self, account: &AccountId, query: &ReceiptQuery) -> ReceiptStream {
        self.inner.list_calls.fetch_add(1, Ordering::SeqCst);
        match self.list(account, query) {
            Ok(events) => stream::iter(events.into_iter().map(Ok)).boxed(),
            Err(e) => stream::once(async move { Err(e) }).boxed(),
        }
    }

    async fn open(&self, receipt: &Receipt) -> Result<Body> {
        self.inner.opens.fetch_add(1, Ordering::SeqCst);
        let data = self.data();
        let stored = (data.receipt_slot(&receipt.id))
            .and_then(|slot| data.stored(slot))
            .ok_or_else(|| not_found(format!("receipt {}", receipt.id)))?;
        let bytes = stored.bytes.clone();
        let chunk = data.chunk_size;
        let len = bytes.len();
        let chunks = (0..len)
            .step_by(chunk)
            .map(move |start| Ok(bytes.slice(start..len.min(start + chunk))));
        Ok(Body::new(len as u64, stream::iter(chunks).boxed()))
    }
}

#[cfg(test)]
mod tests;
