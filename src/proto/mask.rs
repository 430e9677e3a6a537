//! Payload masking (RFC 6455 §5.3), done a machine word at a time.

/// XORs `buf` with the masking key, as if the key had already been applied
/// to `offset` bytes before `buf` (so a payload can be unmasked in pieces as
/// it arrives).
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    // Bytes before the first 8-byte boundary: at most 7.
    let head_len = buf.as_ptr().align_offset(8).min(buf.len());
    let (head, rest) = buf.split_at_mut(head_len);
    xor_bytes(head, key);
    let key = rotate_key(key, head_len);
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = rest.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    xor_bytes(chunks.into_remainder(), key);
}

#[inline]
fn rotate_key(key: [u8; 4], by: usize) -> [u8; 4] {
    let mut key = key;
    key.rotate_left(by % 4);
    key
}

#[inline]
fn xor_bytes(buf: &mut [u8], key: [u8; 4]) {
    for (byte, k) in buf.iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

/// A source of masking keys: OS randomness, fetched in batches so that a
/// client does not make a system call per frame.
#[derive(Debug)]
pub struct MaskKeys {
    batch: [u8; 256],
    used: usize,
}

impl Default for MaskKeys {
    fn default() -> Self {
        Self {
            batch: [0; 256],
            used: 256,
        }
    }
}

impl MaskKeys {
    /// The next key, unpredictable to the peer.
    pub fn next_key(&mut self) -> std::io::Result<[u8; 4]> {
        if self.used == self.batch.len() {
            getrandom::getrandom(&mut self.batch)?;
            self.used = 0;
        }
        let key = [
            self.batch[self.used],
            self.batch[self.used + 1],
            self.batch[self.used + 2],
            self.batch[self.used + 3],
        ];
        self.used += 4;
        Ok(key)
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
        let mut keys = MaskKeys::default();
        let all: Vec<[u8; 4]> = (0..200).map(|_| keys.next_key().unwrap()).collect();
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        // 200 random 32-bit keys collide with probability ~5e-6.
        assert!(distinct.len() >= 199);
    }
}
