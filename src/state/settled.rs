//! What lets a quiet day skip loading the state: [`Settled`], a summary of a stored state
//! whose plan was empty.
//!
//! A pass plans from the whole state, which grows with the archive. But when the last
//! pass ended with nothing left to do, and since then the source shows nothing new and
//! the archive's change feed shows nothing at all, the state is the same and so is its
//! plan: empty. A pass can tell that from much less than the state:
//! - its head ([`StateHead`]): the settings, the accounts, the read positions, the scan
//!   cursor, the last run;
//! - under which options the empty plan was made ([`SettledKey`]): a pass with other
//!   options plans again;
//! - what the catalog holds ([`CatalogDigest`]): a source read from a watermark re-reads
//!   the last receipts it showed (the positions overlap), and those must be told apart
//!   from new or changed ones without the catalog itself;
//! - what the last pass wrote (its echoes): the change feed reports the pass's own
//!   writes back once, and those change nothing.
//!
//! A store keeps a `Settled` next to the state only for as long as nothing else is
//! saved or recorded ([`super::StateStore::load_settled`]).

use super::records::{AccountRecord, RunSummary, StateSettings, SyncState};
use crate::model::{AccountId, Receipt, ScanCursor, SinkEntry};
use crate::source::{BankTransaction, Watermark};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The small part of a [`SyncState`] a pass reads before it knows whether anything
/// changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateHead {
    /// As [`SyncState::settings`].
    pub settings: Option<StateSettings>,
    /// As [`SyncState::accounts`].
    pub accounts: BTreeMap<AccountId, AccountRecord>,
    /// As [`SyncState::watermarks`].
    pub watermarks: BTreeMap<AccountId, Watermark>,
    /// As [`SyncState::scan_cursor`].
    pub scan_cursor: Option<crate::model::ScanCursor>,
    /// As [`SyncState::last_run`].
    pub last_run: Option<RunSummary>,
}

impl StateHead {
    /// The head of `state`.
    pub fn of(state: &SyncState) -> Self {
        Self {
            settings: state.settings.clone(),
            accounts: state.accounts.clone(),
            watermarks: state.watermarks.clone(),
            scan_cursor: state.scan_cursor.clone(),
            last_run: state.last_run.clone(),
        }
    }

    /// An account's read position moved.
    pub fn advance(&mut self, account: &AccountId, watermark: Watermark) {
        self.watermarks.insert(account.clone(), watermark);
    }

    /// The archive's change feed resumes from `cursor` next time.
    pub fn move_cursor(&mut self, cursor: ScanCursor) {
        self.scan_cursor = Some(cursor);
    }

    /// A run ended.
    pub fn finish_run(&mut self, summary: RunSummary) {
        self.last_run = Some(summary);
    }
}

/// The options a plan was made under, as far as they change what it holds: the same
/// state planned under the same key gives the same plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledKey(Vec<u8>);

impl SettledKey {
    /// A key from everything a plan depends on besides the state, serialised (the
    /// caller's serde types, so that any new option changes the key).
    pub fn of(options: &impl Serialize) -> Self {
        // Postcard of the options' own types: a different option gives different bytes.
        Self(postcard::to_allocvec(options).unwrap_or_default())
    }
}

/// What the catalog holds, by digest: one 128-bit SHA-256 prefix per receipt (not
/// vanished) and per transaction, sorted, so that a pass can tell whether a receipt or
/// transaction it reads is exactly one the catalog has, without the catalog.
///
/// A digest is of the state's own encoding of the record, id included: a receipt that
/// changed in any field, or a new one, is not held. Two different records share a
/// digest with a probability of about 2⁻¹²⁸ (a collision would make a pass take a
/// changed receipt for a known one).
#[derive(Clone, Debug, Default)]
pub struct CatalogDigest {
    sorted: Vec<[u8; 16]>,
    /// Its [`id`](Self::id), once computed or read back with it.
    id: std::sync::OnceLock<[u8; 32]>,
}

impl PartialEq for CatalogDigest {
    fn eq(&self, other: &Self) -> bool {
        self.sorted == other.sorted
    }
}

impl Eq for CatalogDigest {}

/// The length of one digest, in bytes.
const DIGEST_LEN: usize = 16;

fn digest(domain: u8, record: &impl Serialize) -> [u8; 16] {
    let mut hasher = Sha256::new();
    // The same encoding as the base file: positional, no field skipped, so equal bytes
    // mean equal records. Records are small: encoded on the stack when they fit.
    let mut buf = [0u8; 512];
    buf[0] = domain;
    match postcard::to_slice(record, &mut buf[1..]) {
        Ok(encoded) => {
            let len = encoded.len() + 1;
            hasher.update(&buf[..len]);
        }
        Err(_) => {
            hasher.update([domain]);
            hasher.update(postcard::to_allocvec(record).unwrap_or_default());
        }
    }
    let full = hasher.finalize();
    let mut out = [0; DIGEST_LEN];
    out.copy_from_slice(&full[..DIGEST_LEN]);
    out
}

const RECEIPT: u8 = b'r';
const TRANSACTION: u8 = b't';

impl CatalogDigest {
    /// The digest of `state`'s catalog: its receipts that have not vanished, and its
    /// transactions.
    pub fn of(state: &SyncState) -> Self {
        let receipts = state
            .receipts
            .values()
            .filter(|r| !state.vanished.contains_key(&r.id))
            .map(|r| digest(RECEIPT, r));
        let transactions = state.transactions.values().map(|t| digest(TRANSACTION, t));
        let mut sorted: Vec<[u8; 16]> = receipts.chain(transactions).collect();
        sorted.sort_unstable();
        sorted.dedup();
        Self {
            sorted,
            id: std::sync::OnceLock::new(),
        }
    }

    /// Whether the catalog holds exactly `receipt`, and it has not vanished.
    pub fn holds_receipt(&self, receipt: &Receipt) -> bool {
        self.sorted.binary_search(&digest(RECEIPT, receipt)).is_ok()
    }

    /// Whether the catalog holds exactly `transaction`.
    pub fn holds_transaction(&self, transaction: &BankTransaction) -> bool {
        self.sorted
            .binary_search(&digest(TRANSACTION, transaction))
            .is_ok()
    }

    /// How many records it covers.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether it covers none.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// What names this digest among others: the SHA-256 of its bytes. Equal ids mean
    /// equal digests, so a store can tell whether the digest it keeps is this one
    /// without comparing them whole.
    pub fn id(&self) -> [u8; 32] {
        *self.id.get_or_init(|| {
            let mut hasher = Sha256::new();
            for digest in &self.sorted {
                hasher.update(digest);
            }
            hasher.finalize().into()
        })
    }

    /// `self`, whose id is known to be `id` (kept with it by a store, whose own
    /// checksum says it is intact): not computed again.
    pub(crate) fn with_id(self, id: [u8; 32]) -> Self {
        let known = std::sync::OnceLock::new();
        let _ = known.set(id);
        Self {
            sorted: self.sorted,
            id: known,
        }
    }

    /// Its bytes, as [`from_bytes`](Self::from_bytes) reads them.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.sorted.concat()
    }

    /// A digest from [`to_bytes`](Self::to_bytes); `None` when `bytes` are not one (a
    /// length that is not a whole number of digests, or digests out of order).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (chunks, rest) = bytes.as_chunks::<DIGEST_LEN>();
        if !rest.is_empty() {
            return None;
        }
        let sorted = chunks.to_vec();
        sorted
            .windows(2)
            .all(|pair| pair[0] < pair[1])
            .then_some(Self {
                sorted,
                id: std::sync::OnceLock::new(),
            })
    }
}

/// What the last pass wrote, by digest: one 128-bit SHA-256 prefix per item it wrote
/// and per folder above one, of the entry as the state holds it (id, parent, name,
/// kind), sorted. The change feed reports those items back once; a report of an entry
/// held here changes nothing. Digests rather than entries: an export of 1,000,000
/// receipts leaves 16 MB here instead of some 150 MB of entries in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchoDigest {
    sorted: Vec<[u8; 16]>,
}

const ENTRY: u8 = b'e';

impl EchoDigest {
    /// The digest of `entries`.
    pub fn of<'a>(entries: impl IntoIterator<Item = &'a SinkEntry>) -> Self {
        let mut sorted: Vec<[u8; 16]> = entries.into_iter().map(|e| digest(ENTRY, e)).collect();
        sorted.sort_unstable();
        sorted.dedup();
        Self { sorted }
    }

    /// Whether `entry` is one of them, exactly.
    pub fn holds(&self, entry: &SinkEntry) -> bool {
        self.sorted.binary_search(&digest(ENTRY, entry)).is_ok()
    }

    /// The digests of `entries` when every one of them is held, once each (an entry
    /// reported twice may have changed and changed back); `None` otherwise. What
    /// [`forget`](Self::forget) takes.
    pub fn all_held<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a SinkEntry>,
    ) -> Option<HeldEchoes> {
        let mut held: Vec<[u8; 16]> = entries.into_iter().map(|e| digest(ENTRY, e)).collect();
        held.sort_unstable();
        if held.windows(2).any(|pair| pair[0] == pair[1]) {
            return None;
        }
        // Both sorted: one walk of each (a million lookups one by one miss the cache).
        let mut echoes = self.sorted.iter();
        for wanted in &held {
            echoes
                .by_ref()
                .find(|echo| *echo >= wanted)
                .filter(|echo| *echo == wanted)?;
        }
        Some(HeldEchoes(held))
    }

    /// Forgets what was reported back: those items are not expected again.
    pub fn forget(&mut self, held: &HeldEchoes) {
        let mut gone = held.0.iter().peekable();
        self.sorted.retain(|echo| {
            while gone.next_if(|g| *g < echo).is_some() {}
            gone.peek() != Some(&echo)
        });
    }

    /// How many items it covers.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether it covers none.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }
}

/// Echoes reported back, from [`EchoDigest::all_held`].
#[derive(Debug)]
pub struct HeldEchoes(Vec<[u8; 16]>);

impl HeldEchoes {
    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A stored state's summary, given when its plan was empty (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    /// The state's head.
    pub head: StateHead,
    /// The options the empty plan was made under.
    pub key: SettledKey,
    /// What that plan counted: only skips (e.g. `skip: before start date` → 3), which
    /// a pass that does not plan reports as they were.
    pub skipped: BTreeMap<String, usize>,
    /// The catalog's digest.
    pub catalog: CatalogDigest,
    /// Items the state holds exactly so, written by the pass that made the summary (and
    /// their folders), which the archive's change feed has not reported back yet: such
    /// a report changes nothing.
    pub echoes: EchoDigest,
}

/// A [`Settled`] without its catalog, as stores keep it (the catalog apart, since it
/// grows with the archive and changes less often).
#[derive(Serialize, Deserialize)]
pub(crate) struct SettledMeta {
    pub head: StateHead,
    pub key: SettledKey,
    pub skipped: BTreeMap<String, usize>,
    pub echoes: EchoDigest,
}

impl SettledMeta {
    /// All of `settled` but its catalog.
    pub fn of(settled: &Settled) -> Self {
        Self {
            head: settled.head.clone(),
            key: settled.key.clone(),
            skipped: settled.skipped.clone(),
            echoes: settled.echoes.clone(),
        }
    }

    /// The settled state with `catalog`.
    pub fn with_catalog(self, catalog: CatalogDigest) -> Settled {
        Settled {
            head: self.head,
            key: self.key,
            skipped: self.skipped,
            catalog,
            echoes: self.echoes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::InMemorySource;
    use crate::state::StateChange;

    fn receipt(id: &str, amount: i64) -> Receipt {
        let account = AccountId::new("acc");
        let day = chrono::NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        InMemorySource::receipt(id, &account, day, "Shop", amount)
    }

    #[test]
    fn the_digest_holds_exactly_the_catalogs_receipts() {
        let mut state = SyncState::default();
        state.apply(&StateChange::ReceiptsSeen(vec![
            receipt("a", -100),
            receipt("b", -200),
        ]));
        let digest = CatalogDigest::of(&state);
        assert_eq!(digest.len(), 2);
        assert!(digest.holds_receipt(&receipt("a", -100)));
        assert!(!digest.holds_receipt(&receipt("a", -101)), "changed");
        assert!(!digest.holds_receipt(&receipt("c", -100)), "new");

        state.apply(&StateChange::Vanished {
            receipt: crate::model::ReceiptId::new("b"),
            at: chrono::Utc::now(),
        });
        let digest = CatalogDigest::of(&state);
        assert!(
            !digest.holds_receipt(&receipt("b", -200)),
            "a vanished receipt that comes back is news"
        );
    }

    #[test]
    fn echoes_hold_exactly_the_entries_written_until_forgotten() {
        use crate::model::{EntryKind, SinkItemId};
        let entry = |id: &str, name: &str| SinkEntry {
            id: SinkItemId::new(id),
            parent: Some(SinkItemId::new("folder")),
            name: name.into(),
            kind: EntryKind::File { size: 3 },
        };
        let (a, b) = (entry("a", "a.pdf"), entry("b", "b.pdf"));
        let mut echoes = EchoDigest::of([&a, &b]);
        assert!(echoes.holds(&a) && echoes.holds(&b));
        assert!(!echoes.holds(&entry("a", "renamed.pdf")), "changed since");
        assert!(echoes.all_held([&a, &entry("a", "renamed.pdf")]).is_none());
        assert!(echoes.all_held([&a, &a]).is_none(), "reported twice");
        let held = echoes.all_held([&a]).expect("held");
        echoes.forget(&held);
        assert!(!echoes.holds(&a) && echoes.holds(&b));
        assert_eq!(echoes.len(), 1);
    }

    proptest::proptest! {
        /// `all_held` and `forget` are set membership and difference, whatever the
        /// order and repeats of what is reported.
        #[test]
        fn echoes_behave_as_a_set(
            written in proptest::collection::btree_set(0u8..40, 0..30),
            reported in proptest::collection::vec(0u8..40, 0..30),
        ) {
            use crate::model::{EntryKind, SinkItemId};
            let entry = |n: u8| SinkEntry {
                id: SinkItemId::new(format!("item-{n}")),
                parent: None,
                name: format!("{n}.pdf"),
                kind: EntryKind::File { size: u64::from(n) },
            };
            let written_entries: Vec<SinkEntry> = written.iter().map(|&n| entry(n)).collect();
            let mut echoes = EchoDigest::of(&written_entries);
            let reported_entries: Vec<SinkEntry> = reported.iter().map(|&n| entry(n)).collect();
            let distinct: std::collections::BTreeSet<u8> = reported.iter().copied().collect();
            let expect_held = distinct.len() == reported.len() && distinct.is_subset(&written);
            let held = echoes.all_held(&reported_entries);
            proptest::prop_assert_eq!(held.is_some(), expect_held);
            if let Some(held) = held {
                echoes.forget(&held);
                for n in 0..40u8 {
                    let expected = written.contains(&n) && !distinct.contains(&n);
                    proptest::prop_assert_eq!(echoes.holds(&entry(n)), expected);
                }
            }
        }
    }

    #[test]
    fn a_digest_reads_back_and_refuses_what_is_not_one() {
        let mut state = SyncState::default();
        state.apply(&StateChange::ReceiptsSeen(
            (0..50).map(|i| receipt(&format!("r{i}"), i)).collect(),
        ));
        let digest = CatalogDigest::of(&state);
        let bytes = digest.to_bytes();
        assert_eq!(CatalogDigest::from_bytes(&bytes), Some(digest));
        assert_eq!(CatalogDigest::from_bytes(&bytes[..bytes.len() - 1]), None);
        let mut swapped = bytes.clone();
        swapped.rotate_left(DIGEST_LEN);
        assert_eq!(CatalogDigest::from_bytes(&swapped), None, "out of order");
        assert_eq!(
            CatalogDigest::from_bytes(&[]),
            Some(CatalogDigest::default())
        );
    }
}
