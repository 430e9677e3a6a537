//! The broadcast messages, made by the server and checked by the client:
//! message `n` carries `n` in its first 8 bytes (big-endian) and then a
//! pattern that depends on `n`, so that a message out of order, cut short
//! or mixed with another fails the client's check.

use bytes::Bytes;

/// The bytes of the pattern repeat with this period.
const PERIOD: usize = 251;
/// The bytes that carry the message's number.
pub(super) const NUMBER_LEN: usize = 8;

/// The messages of one size: byte `j` (from 8 on) of message `n` is
/// `(7n + j) mod 251`, a slice of one table, so that making and checking
/// a message are copies and comparisons of whole slices.
pub(super) struct Messages {
    size: usize,
    table: Vec<u8>,
}

impl Messages {
    pub(super) fn new(size: usize) -> Self {
        assert!(size >= NUMBER_LEN, "a message carries an 8-byte number");
        Self {
            size,
            table: (0..PERIOD + size).map(|k| (k % PERIOD) as u8).collect(),
        }
    }

    /// Message `n`'s payload.
    pub(super) fn payload(&self, n: u64) -> Bytes {
        let mut payload = Vec::with_capacity(self.size);
        payload.extend_from_slice(&n.to_be_bytes());
        payload.extend_from_slice(self.tail(n, NUMBER_LEN));
        payload.into()
    }

    /// Message `n`'s bytes from offset `from` (at least 8) to its end.
    pub(super) fn tail(&self, n: u64, from: usize) -> &[u8] {
        let start = (n % PERIOD as u64) as usize * 7 % PERIOD;
        &self.table[start + from..start + self.size]
    }
}
