//! The settled summary's files: `state.settled` and `state.catalog`.
//!
//! ```text
//! magic      8 bytes  "RSSETTL\n" or "RSCATLG\n"
//! format     u32 LE   1
//! length     u64 LE   bytes of the body
//! checksum   u32 LE   CRC-32 of the body
//! body       state.settled: postcard of `Summary`;
//!            state.catalog: the catalog's id (32 bytes, `CatalogDigest::id`), then the
//!            digests
//! ```
//!
//! A summary names the files it describes: the base file by its length and checksum
//! (from its header), the journal by its length, the catalog by its id (a SHA-256, so
//! that a changed catalog is never taken for the one kept). It is used only while all
//! three still match, so a record (the journal
//! grows) or a save (the base file changes, and the summary is removed first) makes it
//! stale at once. Both files are a cache: anything wrong with them (missing, cut,
//! damaged, of another format) means "no summary", and the pass loads the whole state.
//! That is also why they are written without `fsync`: a crash can only lose them or
//! leave a file whose checksum fails.
//!
//! The catalog's digests live in a file of their own because they grow with the
//! archive while the summary does not: a quiet day rewrites the summary (its head moved)
//! and leaves the catalog as it is.

use crate::state::{CatalogDigest, SettledMeta};
use serde::{Deserialize, Serialize};

/// The first bytes of `state.settled`.
pub(super) const SUMMARY_MAGIC: &[u8; 8] = b"RSSETTL\n";
/// The first bytes of `state.catalog`.
pub(super) const CATALOG_MAGIC: &[u8; 8] = b"RSCATLG\n";

const FORMAT: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// A file by the length and checksum of its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FileId {
    pub len: u64,
    pub checksum: u32,
}

/// What `state.settled` holds.
#[derive(Serialize, Deserialize)]
pub(super) struct Summary {
    /// The base file it describes.
    pub base: FileId,
    /// The journal's length then, in bytes (0: none).
    pub journal_len: u64,
    /// The id of the catalog it goes with.
    pub catalog: [u8; 32],
    /// The rest of the settled state.
    pub meta: SettledMeta,
}

/// `body` framed under `magic`, and the id of the body.
pub(super) fn frame(magic: &[u8; 8], body: &[u8]) -> (Vec<u8>, FileId) {
    let id = FileId {
        len: body.len() as u64,
        checksum: crc32fast::hash(body),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&id.len.to_le_bytes());
    out.extend_from_slice(&id.checksum.to_le_bytes());
    out.extend_from_slice(body);
    (out, id)
}

/// The id a framed file's header gives, when it is one of this format.
pub(super) fn header_id(magic: &[u8; 8], bytes: &[u8]) -> Option<FileId> {
    let rest = bytes.strip_prefix(magic.as_slice())?;
    let (format, rest) = rest.split_first_chunk::<4>()?;
    if u32::from_le_bytes(*format) != FORMAT {
        return None;
    }
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let (checksum, _) = rest.split_first_chunk::<4>()?;
    Some(FileId {
        len: u64::from_le_bytes(*len),
        checksum: u32::from_le_bytes(*checksum),
    })
}

/// The body of a framed file, when it is whole.
pub(super) fn unframe<'a>(magic: &[u8; 8], bytes: &'a [u8]) -> Option<(&'a [u8], FileId)> {
    let id = header_id(magic, bytes)?;
    let body = bytes.get(HEADER_LEN..)?;
    (u64::try_from(body.len()).ok() == Some(id.len) && crc32fast::hash(body) == id.checksum)
        .then_some((body, id))
}

/// The summary a `state.settled` file holds, if it is whole.
pub(super) fn decode_summary(bytes: &[u8]) -> Option<Summary> {
    let (body, _) = unframe(SUMMARY_MAGIC, bytes)?;
    match postcard::take_from_bytes::<Summary>(body) {
        Ok((summary, [])) => Some(summary),
        _ => None,
    }
}

/// The length of a catalog file's id.
const CATALOG_ID_LEN: usize = 32;

/// A `state.catalog` file holding `catalog`.
pub(super) fn encode_catalog(catalog: &CatalogDigest) -> Vec<u8> {
    let mut body = catalog.id().to_vec();
    body.extend_from_slice(&catalog.to_bytes());
    frame(CATALOG_MAGIC, &body).0
}

/// The digests a `state.catalog` file holds, if it is whole, and their id.
pub(super) fn decode_catalog(bytes: &[u8]) -> Option<(CatalogDigest, [u8; 32])> {
    let (body, _) = unframe(CATALOG_MAGIC, bytes)?;
    let (id, digests) = body.split_first_chunk::<CATALOG_ID_LEN>()?;
    Some((CatalogDigest::from_bytes(digests)?.with_id(*id), *id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{SettledKey, StateHead};
    use std::collections::BTreeMap;

    fn summary() -> Summary {
        Summary {
            base: FileId {
                len: 10,
                checksum: 7,
            },
            journal_len: 3,
            catalog: [7; 32],
            meta: SettledMeta {
                head: StateHead::default(),
                key: SettledKey::of(&("options", 1)),
                skipped: BTreeMap::from([("skip: declined".to_owned(), 2)]),
                echoes: Default::default(),
            },
        }
    }

    #[test]
    fn a_summary_reads_back_and_any_damage_is_no_summary() {
        let body = postcard::to_allocvec(&summary()).unwrap();
        let (bytes, _) = frame(SUMMARY_MAGIC, &body);
        let read = decode_summary(&bytes).expect("whole");
        assert_eq!(read.base, summary().base);
        assert_eq!(read.meta.skipped, summary().meta.skipped);
        for len in 0..bytes.len() {
            assert!(decode_summary(&bytes[..len]).is_none(), "cut at {len}");
        }
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 0x01;
            assert!(decode_summary(&changed).is_none(), "byte {at} flipped");
        }
        let (catalog, _) = frame(CATALOG_MAGIC, &body);
        assert!(decode_summary(&catalog).is_none(), "another file");
    }

    #[test]
    fn a_catalog_reads_back_under_its_id() {
        let catalog = CatalogDigest::from_bytes(&[[1u8; 16], [2; 16]].concat()).unwrap();
        let bytes = encode_catalog(&catalog);
        assert_eq!(
            decode_catalog(&bytes),
            Some((catalog.clone(), catalog.id()))
        );
        assert_ne!(catalog.id(), CatalogDigest::default().id());
        let mut damaged = bytes.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert_eq!(decode_catalog(&damaged), None);
    }
}
