//! The load generator's frames, encoded and parsed by hand: masked client
//! frames made once before the run, and a parser of the server's echoes
//! that checks what it can without copying a payload.

use std::io::IoSlice;

/// FIN and the binary opcode: the first byte of every frame here.
const FIN_BINARY: u8 = 0x82;
/// The mask bit of the second byte.
const MASKED: u8 = 0x80;

/// The header of a binary frame of `len` payload bytes, unmasked (as the
/// server sends it): FIN, opcode 2, and the 7-bit, 16-bit or 64-bit length
/// (RFC 6455 §5.2).
pub(super) fn binary_header(len: usize) -> Vec<u8> {
    let mut head = vec![FIN_BINARY];
    match len {
        0..=125 => head.push(len as u8),
        126..=0xFFFF => {
            head.push(126);
            head.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            head.push(127);
            head.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    head
}

/// A masked client frame of `payload` under `key`, appended to `out`.
pub(super) fn put_client_frame(payload: &[u8], key: [u8; 4], out: &mut Vec<u8>) {
    let mut head = binary_header(payload.len());
    head[1] |= MASKED;
    out.extend_from_slice(&head);
    out.extend_from_slice(&key);
    out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
}

/// A fresh masking key from the OS: the frames are made before the run,
/// so its cost does not count.
pub(super) fn random_key() -> [u8; 4] {
    let mut key = [0; 4];
    getrandom::getrandom(&mut key).expect("getrandom");
    key
}

/// A ring of masked copies of one payload, each under its own random key,
/// back to back in one buffer: the frames due on a connection are always
/// one or two slices of it, so sending costs no copy and no masking.
pub(super) struct FramePool {
    bytes: Vec<u8>,
    frame_len: usize,
}

impl FramePool {
    /// `copies` frames of `payload`.
    pub(super) fn new(payload: &[u8], copies: usize) -> Self {
        let mut bytes = Vec::new();
        for _ in 0..copies {
            put_client_frame(payload, random_key(), &mut bytes);
        }
        Self {
            frame_len: bytes.len() / copies,
            bytes,
        }
    }

    pub(super) fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// The ring's length in bytes.
    pub(super) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The `len` bytes from offset `at` on, wrapping at the end of the
    /// ring (`len` at most the ring's length).
    pub(super) fn slices(&self, at: usize, len: usize) -> [IoSlice<'_>; 2] {
        let first = &self.bytes[at..(at + len).min(self.bytes.len())];
        let second = &self.bytes[..len - first.len()];
        [IoSlice::new(first), IoSlice::new(second)]
    }
}

/// Follows the server's byte stream, which must be echoes of one payload:
/// checks each frame's header (FIN, binary, unmasked, the length) byte for
/// byte and the first and last payload bytes, and counts whole frames.
/// Anything else panics.
pub(super) struct EchoParser {
    header: Vec<u8>,
    frame_len: usize,
    first: u8,
    last: u8,
    /// How far into the current frame the stream is.
    pos: usize,
}

impl EchoParser {
    pub(super) fn new(payload: &[u8]) -> Self {
        assert!(!payload.is_empty(), "the payload must not be empty");
        let header = binary_header(payload.len());
        Self {
            frame_len: header.len() + payload.len(),
            header,
            first: payload[0],
            last: payload[payload.len() - 1],
            pos: 0,
        }
    }

    /// Reads the next bytes of the stream; returns how many echoes they
    /// completed.
    pub(super) fn feed(&mut self, mut data: &[u8]) -> usize {
        let mut done = 0;
        while !data.is_empty() {
            let taken = self.step(data);
            data = &data[taken..];
            if self.pos == self.frame_len {
                self.pos = 0;
                done += 1;
            }
        }
        done
    }

    /// Checks the bytes of `data` that belong to the current frame (up to
    /// its end) and returns how many those are.
    fn step(&mut self, data: &[u8]) -> usize {
        let start = self.pos;
        let end = (start + data.len()).min(self.frame_len);
        for at in start..end.min(self.header.len()) {
            let (want, got) = (self.header[at], data[at - start]);
            assert_eq!(
                got, want,
                "echo header byte {at}: got {got:#04x}, want {want:#04x} (FIN + binary, unmasked, the payload's length)"
            );
        }
        let first_at = self.header.len();
        if (start..end).contains(&first_at) {
            assert_eq!(data[first_at - start], self.first, "echo: first byte");
        }
        let last_at = self.frame_len - 1;
        if (start..end).contains(&last_at) {
            assert_eq!(data[last_at - start], self.last, "echo: last byte");
        }
        self.pos = end;
        end - start
    }
}
