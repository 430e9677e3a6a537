//! The client's parser of one connection's byte stream: the server's
//! frames, each checked as its bytes arrive (header, number, pattern)
//! without copying a payload.

use crate::message::{Messages, NUMBER_LEN};

/// FIN and the binary opcode.
const FIN_BINARY: u8 = 0x82;
/// FIN and the close, ping and pong opcodes.
const FIN_CLOSE: u8 = 0x88;
const FIN_PING: u8 = 0x89;
const FIN_PONG: u8 = 0x8A;

/// Where the stream is.
#[derive(Debug, Clone, Copy)]
enum At {
    /// `have` header bytes read so far.
    Header { have: usize },
    /// `at` payload bytes of a binary message read so far.
    Message { at: usize },
    /// `left` payload bytes of a ping or pong still to skip (a keepalive
    /// ping goes unanswered: every run ends long before its timeout).
    Control { left: usize },
    /// `left` payload bytes of a close frame still to skip.
    Close { left: usize },
    /// After the close frame: nothing more may come.
    Closed,
}

/// One connection's stream: messages must come numbered 0, 1, 2, …; a
/// number skipped (the server dropped it) is counted, anything else
/// wrong panics.
pub(super) struct Parser {
    size: usize,
    at: At,
    head: [u8; 10],
    number: [u8; NUMBER_LEN],
    /// The next number expected.
    pub(super) next: u64,
    pub(super) received: u64,
    pub(super) missed: u64,
}

impl Parser {
    pub(super) fn new(size: usize) -> Self {
        Self {
            size,
            at: At::Header { have: 0 },
            head: [0; 10],
            number: [0; NUMBER_LEN],
            next: 0,
            received: 0,
            missed: 0,
        }
    }

    /// Whether the server sent a close frame.
    pub(super) fn closed(&self) -> bool {
        matches!(self.at, At::Closed | At::Close { .. })
    }

    /// Reads the next bytes of the stream.
    pub(super) fn feed(&mut self, mut data: &[u8], messages: &Messages) {
        while !data.is_empty() {
            let taken = match self.at {
                At::Header { have } => self.header(have, data),
                At::Message { at } => self.payload(at, data, messages),
                At::Control { left } => self.skip(
                    left,
                    data.len(),
                    |left| At::Control { left },
                    At::Header { have: 0 },
                ),
                At::Close { left } => {
                    self.skip(left, data.len(), |left| At::Close { left }, At::Closed)
                }
                At::Closed => panic!("{} bytes after the close frame", data.len()),
            };
            data = &data[taken..];
        }
    }

    /// Skips up to `left` payload bytes of `available`; returns how many.
    fn skip(&mut self, left: usize, available: usize, more: fn(usize) -> At, done: At) -> usize {
        let n = left.min(available);
        self.at = if n == left { done } else { more(left - n) };
        n
    }

    /// Takes header bytes; returns how many.
    fn header(&mut self, have: usize, data: &[u8]) -> usize {
        let mut have = have;
        let mut taken = 0;
        while have < self.header_len(have) && taken < data.len() {
            self.head[have] = data[taken];
            have += 1;
            taken += 1;
        }
        if have < self.header_len(have) {
            self.at = At::Header { have };
            return taken;
        }
        assert_eq!(self.head[1] & 0x80, 0, "a masked frame from the server");
        let len = match self.head[1] & 0x7F {
            126 => u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
            127 => u64::from_be_bytes(self.head[2..10].try_into().expect("8 bytes")),
            len => u64::from(len),
        };
        self.at = match self.head[0] {
            FIN_BINARY => {
                assert_eq!(len, self.size as u64, "message {}: length", self.next);
                At::Message { at: 0 }
            }
            FIN_PING | FIN_PONG if len == 0 => At::Header { have: 0 },
            FIN_PING | FIN_PONG => At::Control { left: len as usize },
            FIN_CLOSE if len == 0 => At::Closed,
            FIN_CLOSE => At::Close { left: len as usize },
            other => panic!("unexpected frame: first byte {other:#04x}"),
        };
        taken
    }

    /// The header's length, as far as its first `have` bytes tell.
    fn header_len(&self, have: usize) -> usize {
        if have < 2 {
            return 2;
        }
        match self.head[1] & 0x7F {
            126 => 4,
            127 => 10,
            _ => 2,
        }
    }

    /// Takes and checks payload bytes of the current message; returns how
    /// many.
    fn payload(&mut self, at: usize, data: &[u8], messages: &Messages) -> usize {
        let end = (at + data.len()).min(self.size);
        let chunk = &data[..end - at];
        // The number, perhaps split across reads.
        if at < NUMBER_LEN {
            let part = (NUMBER_LEN - at).min(chunk.len());
            self.number[at..at + part].copy_from_slice(&chunk[..part]);
            if at + part == NUMBER_LEN {
                self.check_number();
            }
        }
        let from = at.max(NUMBER_LEN);
        if end > from {
            let n = u64::from_be_bytes(self.number);
            assert!(
                chunk[from - at..] == messages.tail(n, from)[..end - from],
                "message {n}: wrong content"
            );
        }
        self.at = if end == self.size {
            self.received += 1;
            At::Header { have: 0 }
        } else {
            At::Message { at: end }
        };
        end - at
    }

    /// With the number read: it must be the next one, or later (the ones
    /// between were dropped).
    fn check_number(&mut self) {
        let n = u64::from_be_bytes(self.number);
        assert!(
            n >= self.next,
            "message {n} after message {}",
            self.next - 1
        );
        self.missed += n - self.next;
        self.next = n + 1;
    }
}
