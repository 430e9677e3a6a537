//! Payload masking (RFC 6455 §5.3), done a machine word at a time, and the
//! masking keys.

use std::cell::RefCell;

use bytes::BytesMut;

use chacha20::rand_core::{Rng, SeedableRng};
use chacha20::ChaCha12Rng;

/// XORs `buf` with the masking key, as if the key had already been applied
/// to `offset` bytes before `buf` (so a payload can be unmasked in pieces as
/// it arrives).
///
/// Eight bytes at a time with unaligned loads: no alignment prologue, which
/// on short payloads cost more than it saved.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // Starting `offset` bytes into the key: rotate it by as many bytes
    // (a right rotation of the little-endian word moves byte 1 to byte 0).
    let key = (u32::from_le_bytes(key).rotate_right(8 * (offset % 4) as u32)).to_le_bytes();
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    // 32 bytes a turn, then words, then bytes: the wide turn lets the
    // compiler keep two vector registers in flight.
    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        for chunk in block.chunks_exact_mut(8) {
            xor_word(chunk, word);
        }
    }
    let mut chunks = blocks.into_remainder().chunks_exact_mut(8);
    for chunk in &mut chunks {
        xor_word(chunk, word);
    }
    // The remainder (at most 7 bytes) starts a multiple of 4 bytes in.
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i & 3];
    }
}

#[inline(always)]
fn xor_word(chunk: &mut [u8], word: u64) {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(chunk);
    chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
}

/// Appends `src` to `dst` masked with `key` (from offset 0), in one pass:
/// each word is read from `src`, masked, and written once into `dst`'s
/// spare capacity. Copying and then masking in place reads the bytes twice.
pub fn put_masked(dst: &mut BytesMut, src: &[u8], key: [u8; 4]) {
    dst.reserve(src.len());
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let spare = &mut dst.spare_capacity_mut()[..src.len()];
    let mut out = spare.chunks_exact_mut(8);
    let mut inp = src.chunks_exact(8);
    for (slots, bytes) in (&mut out).zip(&mut inp) {
        let mut value = [0u8; 8];
        value.copy_from_slice(bytes);
        let masked = (u64::from_ne_bytes(value) ^ word).to_ne_bytes();
        for (slot, byte) in slots.iter_mut().zip(masked) {
            slot.write(byte);
        }
    }
    // The remainder (at most 7 bytes) starts a multiple of 4 bytes in.
    let tail = out.into_remainder().iter_mut().zip(inp.remainder());
    for (i, (slot, byte)) in tail.enumerate() {
        slot.write(byte ^ key[i & 3]);
    }
    let len = dst.len() + src.len();
    #[allow(unsafe_code)]
    // SAFETY: `reserve` made room for `src.len()` more bytes, and the two
    // loops above wrote every one of the first `src.len()` spare bytes:
    // the 8-byte chunks and their remainder partition the `spare` slice,
    // which has exactly `src.len()` bytes, as the chunks of `src` do.
    unsafe {
        dst.set_len(len);
    }
}

thread_local! {
    /// Each thread's key generator, created at its first key.
    static KEY_RNG: RefCell<Option<ChaCha12Rng>> = const { RefCell::new(None) };
}

/// A source of masking keys: a ChaCha12 generator per thread, seeded with
/// 32 bytes of OS randomness, as `rand`'s thread generator is. RFC 6455
/// (§5.3, §10.3) asks for keys a server or proxy cannot predict from
/// earlier ones; a cryptographic generator gives that without a system call
/// per frame (the kernel's generator, four bytes at a time, was 6% of a
/// client's CPU on small messages). The handle holds nothing: an idle
/// connection carries no key state.
#[derive(Debug, Default, Clone, Copy)]
pub struct MaskKeys;

impl MaskKeys {
    /// The next key, unpredictable to the peer. Fails only when the OS
    /// cannot seed this thread's generator.
    pub fn next_key(&mut self) -> std::io::Result<[u8; 4]> {
        KEY_RNG.with(|cell| {
            let mut slot = cell.borrow_mut();
            let rng = match &mut *slot {
                Some(rng) => rng,
                None => {
                    let mut seed = [0u8; 32];
                    getrandom::getrandom(&mut seed)?;
                    slot.insert(ChaCha12Rng::from_seed(seed))
                }
            };
            Ok(rng.next_u32().to_ne_bytes())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(i + offset) % 4];
        }
    }

    #[test]
    fn matches_bytewise_masking_at_every_alignment_length_and_offset() {
        let key = [0x12, 0x34, 0x56, 0x78];
        let source: Vec<u8> = (0..200u8).collect();
        for start in 0..9 {
            for len in 0..70 {
                for offset in 0..5 {
                    let mut fast = source.clone();
                    let mut slow = source.clone();
                    apply_mask(&mut fast[start..start + len], key, offset);
                    bytewise(&mut slow[start..start + len], key, offset);
                    assert_eq!(fast, slow, "start {start} len {len} offset {offset}");
                }
            }
        }
    }

    #[test]
    fn put_masked_equals_copy_then_mask_at_every_length_and_spare_room() {
        let key = [0xA1, 0xB2, 0xC3, 0xD4];
        let source: Vec<u8> = (0..200u8).map(|b| b.wrapping_mul(31)).collect();
        for len in 0..70 {
            for start in 0..9 {
                let src = &source[start..start + len];
                for room in [0, 1, 7, 64] {
                    // A buffer that already holds bytes, with or without
                    // spare capacity: those bytes must stay as they were.
                    let mut fused = BytesMut::with_capacity(3 + room);
                    fused.extend_from_slice(b"abc");
                    put_masked(&mut fused, src, key);
                    let mut slow = b"abc".to_vec();
                    let mut masked = src.to_vec();
                    bytewise(&mut masked, key, 0);
                    slow.extend_from_slice(&masked);
                    assert_eq!(&fused[..], &slow[..], "len {len} start {start}");
                }
            }
        }
    }

    #[test]
    fn masking_in_pieces_equals_masking_at_once() {
        let key = [9, 8, 7, 6];
        let mut whole: Vec<u8> = (0..=255u8).collect();
        let mut pieces = whole.clone();
        apply_mask(&mut whole, key, 0);
        let mut done = 0;
        for piece in [1usize, 2, 3, 5, 8, 13, 21, 34, 55, 114] {
            apply_mask(&mut pieces[done..done + piece], key, done);
            done += piece;
        }
        assert_eq!(done, 256);
        assert_eq!(whole, pieces);
    }

    #[test]
    fn keys_differ() {
        let mut keys = MaskKeys;
        let all: Vec<[u8; 4]> = (0..200).map(|_| keys.next_key().unwrap()).collect();
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        // 200 random 32-bit keys collide with probability ~5e-6.
        assert!(distinct.len() >= 199);
    }

    #[test]
    fn threads_get_generators_of_their_own() {
        let keys = || {
            (0..8)
                .map(|_| MaskKeys.next_key().unwrap())
                .collect::<Vec<_>>()
        };
        let here = keys();
        let there = std::thread::spawn(keys).join().unwrap();
        assert_ne!(here, there, "two threads must not share a seed");
    }

    #[test]
    fn key_bits_are_balanced() {
        // 4096 keys, 131072 bits: the count of ones is within 6 standard
        // deviations (~6 * 181) of half; a stuck or constant generator is not.
        let ones: u32 = (0..4096)
            .map(|_| u32::from_ne_bytes(MaskKeys.next_key().unwrap()).count_ones())
            .sum();
        let half = 4096 * 16;
        assert!(ones.abs_diff(half) < 1100, "{ones} ones of {}", 2 * half);
    }
}
