//! QuickXorHash against vectors derived from the algorithm's description and against an
//! independent, deliberately naive bit-by-bit implementation.
//!
//! The description (onedrive-graph.md §3 "Item size and hashes"; Microsoft's
//! "QuickXorHash" code snippet): a 160-bit register; input byte `i` is XORed in starting at
//! bit `(11·i) mod 160`, bits numbered little-endian through the 20 output bytes and
//! wrapping from bit 159 to bit 0; finally the input length, as a little-endian 64-bit
//! integer, is XORed into the last 8 bytes (bytes 12..20). The digest is sent base64-encoded.

use receipt_sync::sink::onedrive::QuickXorHash;

/// The naive reading of the description: flip one bit at a time.
fn reference(data: &[u8]) -> [u8; 20] {
    let mut out = [0u8; 20];
    for (i, byte) in data.iter().enumerate() {
        for bit in 0..8 {
            if byte >> bit & 1 == 1 {
                let position = (11 * i + bit) % 160;
                out[position / 8] ^= 1 << (position % 8);
            }
        }
    }
    for (k, b) in (data.len() as u64).to_le_bytes().iter().enumerate() {
        out[12 + k] ^= b;
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let mut n = 0u32;
        for (k, b) in group.iter().enumerate() {
            n |= u32::from(*b) << (16 - 8 * k);
        }
        for k in 0..4 {
            out.push(if k <= group.len() {
                A[(n >> (18 - 6 * k) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

fn quick(data: &[u8]) -> String {
    let mut h = QuickXorHash::new();
    h.update(data);
    h.to_base64()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
}

#[test]
fn hand_derived_vectors() {
    // Nothing: no bits, length 0.
    assert_eq!(quick(b""), "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    // "J" (0x4A) lands on bits 0..8 = byte 0; the length 1 is XORed into byte 12.
    assert_eq!(quick(b"J"), "SgAAAAAAAAAAAAAAAQAAAAAAAAA=");
    // "AB": 0x41 in byte 0; 0x42 at bit 11 is 0x210 over bytes 1–2 (0x10, 0x02);
    // length 2 in byte 12 → 41 10 02 00×9 02 00×7.
    assert_eq!(quick(b"AB"), "QRACAAAAAAAAAAAAAgAAAAAAAAA=");
}

#[test]
fn agrees_with_the_naive_reference() {
    let texts: [&[u8]; 4] = [
        b"hello world",
        b"The quick brown fox jumps over the lazy dog",
        // 15 bytes: byte 14 starts at bit 154 and wraps from byte 19 into byte 0.
        b"fifteen bytes!!",
        &[0xFF; 40],
    ];
    for text in texts {
        assert_eq!(quick(text), base64(&reference(text)), "{text:?}");
    }
    for len in [159, 160, 161, 200, 320, 1000, 4096] {
        let data = pattern(len);
        assert_eq!(quick(&data), base64(&reference(&data)), "{len} bytes");
    }
}

#[test]
fn pinned_vectors_beyond_one_register() {
    // Pinned from the reference above, so a change to either is caught.
    assert_eq!(quick(b"hello world"), base64(&reference(b"hello world")));
    let over_160 = pattern(200);
    assert_eq!(quick(&over_160), PINNED_200);
    let mib = pattern(1 << 20);
    assert_eq!(quick(&mib), PINNED_1_MIB);
    assert_eq!(base64(&reference(&mib)), PINNED_1_MIB);
}

#[test]
fn chunking_does_not_matter() {
    let data = pattern(100_003);
    let whole = quick(&data);
    for step in [1, 7, 159, 160, 161, 4096, 65_536] {
        let mut h = QuickXorHash::new();
        for chunk in data.chunks(step) {
            h.update(chunk);
        }
        assert_eq!(h.to_base64(), whole, "chunks of {step}");
        assert_eq!(h.len(), data.len() as u64);
    }
}

const PINNED_200: &str = "q/alSGlL+g+pqsnxUu5qRXoKhKI=";
const PINNED_1_MIB: &str = "WlqhFpNRXDHq64zHLkfPfQTrJz8=";
