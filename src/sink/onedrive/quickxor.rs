//! QuickXorHash, the one content hash OneDrive guarantees on Personal and Business drives
//! (onedrive-graph.md §3 "Item size and hashes"; algorithm described at
//! <https://learn.microsoft.com/en-us/onedrive/developer/code-snippets/quickxorhash>).
//!
//! The hash is a 160-bit circular register: input byte `i` is XORed into the register
//! starting at bit `(11 × i) mod 160` (bits numbered little-endian through the 20 output
//! bytes, wrapping from bit 159 to bit 0); at the end the total length, as a 64-bit
//! little-endian integer, is XORed into the last 8 bytes. Because `11 × 160 ≡ 0 (mod 160)`,
//! bytes 160 apart land on the same bits, so this implementation first folds the input into
//! 160 byte "lanes" (one XOR per input byte) and only spreads the lanes over the register
//! when the digest is asked for.

use std::fmt;

const WIDTH_BITS: usize = 160;
const WIDTH_BYTES: usize = WIDTH_BITS / 8;
const SHIFT: usize = 11;

/// A streaming QuickXorHash.
///
/// ```
/// use receipt_sync::sink::onedrive::QuickXorHash;
/// let mut h = QuickXorHash::new();
/// h.update(b"J");
/// assert_eq!(h.to_base64(), "SgAAAAAAAAAAAAAAAQAAAAAAAAA=");
/// ```
#[derive(Clone)]
pub struct QuickXorHash {
    /// `lanes[r]` is the XOR of every input byte whose index is `r` modulo 160.
    lanes: [u8; WIDTH_BITS],
    /// The index of the next input byte, modulo 160.
    pos: usize,
    /// Bytes hashed so far.
    len: u64,
}

impl Default for QuickXorHash {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for QuickXorHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuickXorHash")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl QuickXorHash {
    /// A hash of nothing yet.
    pub fn new() -> Self {
        Self {
            lanes: [0; WIDTH_BITS],
            pos: 0,
            len: 0,
        }
    }

    /// The digest of `data` in one call.
    pub fn digest(data: &[u8]) -> [u8; WIDTH_BYTES] {
        let mut h = Self::new();
        h.update(data);
        h.finalize()
    }

    /// Hashes `data` after what was hashed before.
    pub fn update(&mut self, data: &[u8]) {
        let mut rest = data;
        while !rest.is_empty() {
            let room = WIDTH_BITS - self.pos;
            let (now, later) = rest.split_at(room.min(rest.len()));
            for (lane, byte) in self.lanes[self.pos..].iter_mut().zip(now) {
                *lane ^= byte;
            }
            self.pos = (self.pos + now.len()) % WIDTH_BITS;
            rest = later;
        }
        self.len = self.len.wrapping_add(data.len() as u64);
    }

    /// The number of bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The 20-byte digest of everything hashed so far.
    pub fn finalize(&self) -> [u8; WIDTH_BYTES] {
        let mut out = [0u8; WIDTH_BYTES];
        for (lane, &value) in self.lanes.iter().enumerate() {
            if value == 0 {
                continue;
            }
            let bit = (lane * SHIFT) % WIDTH_BITS;
            let (byte, offset) = (bit / 8, bit % 8);
            out[byte] ^= value << offset;
            if offset > 0 {
                // The high bits spill into the next byte, wrapping past the last one.
                out[(byte + 1) % WIDTH_BYTES] ^= value >> (8 - offset);
            }
        }
        for (slot, len_byte) in out[WIDTH_BYTES - 8..]
            .iter_mut()
            .zip(self.len.to_le_bytes())
        {
            *slot ^= len_byte;
        }
        out
    }

    /// The digest in standard, padded base64: the form Graph reports in
    /// `file.hashes.quickXorHash`.
    pub fn to_base64(&self) -> String {
        base64(&self.finalize())
    }
}

/// Standard base64 with padding (RFC 4648 §4).
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group.first().copied().unwrap_or(0),
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= group.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_examples() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn split_updates_equal_one_update() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let whole = QuickXorHash::digest(&data);
        for step in [1, 3, 159, 160, 161, 999] {
            let mut h = QuickXorHash::new();
            for chunk in data.chunks(step) {
                h.update(chunk);
            }
            assert_eq!(h.finalize(), whole, "step {step}");
        }
    }
}
