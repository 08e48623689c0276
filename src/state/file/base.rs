//! The base file's format (`state.bin`, format 2): the whole state in a compact binary
//! encoding, framed so that a damaged or foreign file is told apart from a state.
//!
//! ```text
//! magic      8 bytes  "RSSTATE\n"
//! format     u32 LE   STATE_VERSION (2); a higher one is refused, whatever follows
//! length     u64 LE   bytes of the body
//! checksum   u32 LE   CRC-32 of the body
//! body       postcard encoding of `Body` (fields in the order below)
//! ```
//!
//! Why binary: a quiet day loads the whole state before it plans, and parsing JSON of
//! 100,000 receipts took most of that day (see `docs/architecture.md`). Postcard keeps
//! strings as they are (varint length, then the bytes) and numbers as varints, and needs
//! no field names. It is not self-describing, so the body's fields are listed here once,
//! in order, and a new field means a new format number. The checksum is there because a
//! positional encoding reads damaged bytes as *some* other state rather than failing: a
//! flipped bit must be an error, never a silently different archive record.
//!
//! Decoding never panics and never trusts a length: the framing is checked first, and
//! postcard reads collections element by element from the bytes it was given.

use crate::model::AccountId;
use crate::model::TransactionId;
use crate::model::{ArchiveSnapshot, Receipt, ReceiptId, ScanCursor};
use crate::source::{BankTransaction, Watermark};
use crate::state::records::{
    AccountRecord, ExportRecord, IndexRecord, PendingRename, RunSummary, STATE_VERSION,
    StateSettings, SyncState, Tombstone,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The first bytes of every base file.
pub(super) const MAGIC: &[u8; 8] = b"RSSTATE\n";

const HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// The state's fields, borrowed, in the body's order.
#[derive(Serialize)]
struct BodyRef<'a> {
    settings: &'a Option<StateSettings>,
    accounts: &'a BTreeMap<AccountId, AccountRecord>,
    receipts: &'a BTreeMap<ReceiptId, Receipt>,
    exported: &'a BTreeMap<ReceiptId, ExportRecord>,
    tombstones: &'a BTreeMap<ReceiptId, Tombstone>,
    vanished: &'a BTreeMap<ReceiptId, DateTime<Utc>>,
    watermarks: &'a BTreeMap<AccountId, Watermark>,
    snapshot: &'a ArchiveSnapshot,
    scan_cursor: &'a Option<ScanCursor>,
    last_run: &'a Option<RunSummary>,
    pending_renames: &'a Vec<PendingRename>,
    transactions: &'a BTreeMap<TransactionId, BankTransaction>,
    indexes: &'a BTreeMap<String, IndexRecord>,
}

/// The state's fields, owned, in the body's order (as [`BodyRef`]).
#[derive(Deserialize)]
struct Body {
    settings: Option<StateSettings>,
    accounts: BTreeMap<AccountId, AccountRecord>,
    receipts: BTreeMap<ReceiptId, Receipt>,
    exported: BTreeMap<ReceiptId, ExportRecord>,
    tombstones: BTreeMap<ReceiptId, Tombstone>,
    vanished: BTreeMap<ReceiptId, DateTime<Utc>>,
    watermarks: BTreeMap<AccountId, Watermark>,
    snapshot: ArchiveSnapshot,
    scan_cursor: Option<ScanCursor>,
    last_run: Option<RunSummary>,
    pending_renames: Vec<PendingRename>,
    transactions: BTreeMap<TransactionId, BankTransaction>,
    indexes: BTreeMap<String, IndexRecord>,
}

/// Why a base file could not be read.
#[derive(Debug)]
pub(super) enum Unreadable {
    /// Written by a newer receipt-sync, in this format number.
    Newer(u32),
    /// Damaged, cut, or not a base file at all.
    Corrupt(String),
}

/// The base file holding `state`.
pub(super) fn encode(state: &SyncState) -> Result<Vec<u8>, String> {
    let body = BodyRef {
        settings: &state.settings,
        accounts: &state.accounts,
        receipts: &state.receipts,
        exported: &state.exported,
        tombstones: &state.tombstones,
        vanished: &state.vanished,
        watermarks: &state.watermarks,
        snapshot: &state.snapshot,
        scan_cursor: &state.scan_cursor,
        last_run: &state.last_run,
        pending_renames: &state.pending_renames,
        transactions: &state.transactions,
        indexes: &state.indexes,
    };
    let mut out = Vec::with_capacity(HEADER_LEN + 256);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&STATE_VERSION.to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    let mut out = postcard::to_extend(&body, out).map_err(|e| e.to_string())?;
    let body_len = (out.len() - HEADER_LEN) as u64;
    let checksum = crc32fast::hash(&out[HEADER_LEN..]);
    out[12..20].copy_from_slice(&body_len.to_le_bytes());
    out[20..24].copy_from_slice(&checksum.to_le_bytes());
    Ok(out)
}

/// The state a base file holds.
pub(super) fn decode(bytes: &[u8]) -> Result<SyncState, Unreadable> {
    let corrupt = |why: &str| Unreadable::Corrupt(why.to_owned());
    let rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| corrupt("it does not start as a receipt-sync state"))?;
    // The format number first: a newer format may lay out what follows differently.
    let (format, rest) = split_u32(rest).ok_or_else(|| corrupt("it is cut short"))?;
    if format > STATE_VERSION {
        return Err(Unreadable::Newer(format));
    }
    if format != STATE_VERSION {
        return Err(Unreadable::Corrupt(format!("unknown format {format}")));
    }
    let (length, rest) = split_u64(rest).ok_or_else(|| corrupt("it is cut short"))?;
    let (checksum, body) = split_u32(rest).ok_or_else(|| corrupt("it is cut short"))?;
    if u64::try_from(body.len()).ok() != Some(length) {
        return Err(Unreadable::Corrupt(format!(
            "it holds {} bytes of state where its header says {length}",
            body.len()
        )));
    }
    if crc32fast::hash(body) != checksum {
        return Err(corrupt("its checksum does not match (damaged bytes)"));
    }
    let (body, trailing) =
        postcard::take_from_bytes::<Body>(body).map_err(|e| Unreadable::Corrupt(e.to_string()))?;
    if !trailing.is_empty() {
        return Err(corrupt("bytes follow the state"));
    }
    Ok(SyncState {
        version: STATE_VERSION,
        settings: body.settings,
        accounts: body.accounts,
        receipts: body.receipts,
        exported: body.exported,
        tombstones: body.tombstones,
        vanished: body.vanished,
        watermarks: body.watermarks,
        snapshot: body.snapshot,
        scan_cursor: body.scan_cursor,
        last_run: body.last_run,
        pending_renames: body.pending_renames,
        transactions: body.transactions,
        indexes: body.indexes,
    })
}

/// The length and checksum of the body, from the first [`HEADER_LEN`] bytes of a base
/// file of this format: what names one base file among others without reading it.
pub(super) fn header_id(header: &[u8]) -> Option<(u64, u32)> {
    let rest = header.strip_prefix(MAGIC.as_slice())?;
    let (format, rest) = split_u32(rest)?;
    let (length, rest) = split_u64((format == STATE_VERSION).then_some(rest)?)?;
    let (checksum, _) = split_u32(rest)?;
    Some((length, checksum))
}

/// How many bytes [`header_id`] reads.
pub(super) const HEADER_BYTES: usize = HEADER_LEN;

fn split_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*head), rest))
}

fn split_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*head), rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SinkEntry, SinkItemId};
    use crate::state::StateChange;

    fn state() -> SyncState {
        let mut state = SyncState::default();
        state.apply(&StateChange::WatermarkAdvanced {
            account: AccountId::new("acc"),
            watermark: Watermark::new("w1"),
        });
        state.apply(&StateChange::ItemWritten(SinkEntry {
            id: SinkItemId::new("f"),
            parent: None,
            name: "Main".into(),
            kind: crate::model::EntryKind::Folder,
        }));
        state.scan_cursor = Some(ScanCursor::new("c"));
        state
    }

    /// Frames `body` as a valid file (right length, right checksum).
    fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&STATE_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn a_state_reads_back_as_written() {
        let state = state();
        let bytes = encode(&state).unwrap();
        assert_eq!(
            decode(&bytes).unwrap(),
            SyncState {
                version: STATE_VERSION,
                ..state
            }
        );
        assert_eq!(framed(&bytes[HEADER_LEN..]), bytes);
    }

    /// The checksum stops damaged bytes before the decoder sees them; behind it, the
    /// decoder itself must still never panic on a body it did not write (a checksum
    /// that happens to match): every cut and changed byte of a body, framed as valid.
    #[test]
    fn the_decoder_never_panics_on_a_body_it_did_not_write() {
        let bytes = encode(&state()).unwrap();
        let body = &bytes[HEADER_LEN..];
        for len in 0..body.len() {
            let _ = decode(&framed(&body[..len]));
        }
        for at in 0..body.len() {
            for value in [0x00u8, 0x01, 0x7f, 0x80, 0xff] {
                let mut changed = body.to_vec();
                changed[at] = value;
                let _ = decode(&framed(&changed));
            }
        }
        // A length that claims far more than there is.
        let _ = decode(&framed(&[0xff, 0xff, 0xff, 0xff, 0x0f]));
    }
}
