//! Helpers shared by the fuzz targets: a reader that turns the fuzz input
//! into decisions, and well-formed frame and message builders, so inputs can
//! mix raw bytes with valid traffic and the fuzzer gets past the first check.

use bytes::{Bytes, BytesMut};
use wsstream::handshake::{HandshakeError, HeadScan, MAX_HEAD_LEN};
use wsstream::proto::{encode_frame, FrameHeader, OpCode};

/// Reads decisions from the fuzz input. Once the input is used up every read
/// returns zero, so a target never has to handle "no more input" specially.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// A value in `0..n` (`n` > 0), from one byte when `n` ≤ 256.
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 256 {
            usize::from(self.u8()) % n
        } else {
            self.u32() as usize % n
        }
    }

    /// Up to `n` bytes of input, taken as they are.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    /// A payload of a size chosen from the input, mostly small but sometimes
    /// crossing the 125 / 126 / 65535 / 65536 length-encoding edges and the
    /// 512-byte inline threshold of the send queue. Its bytes are a cheap
    /// pattern (not input bytes), so large payloads cost no input.
    pub fn payload(&mut self, max: usize) -> Vec<u8> {
        let len = self.size(max);
        let seed = self.u8();
        // A 256-byte pattern repeated: position-dependent, so misplaced or
        // duplicated pieces show, and cheap under coverage instrumentation.
        let block: Vec<u8> = (0..=255u8)
            .map(|i| i.wrapping_mul(31).wrapping_add(seed))
            .collect();
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let n = (len - out.len()).min(block.len());
            out.extend_from_slice(&block[..n]);
        }
        out
    }

    /// The size [`payload`](Self::payload) uses, at most `max`.
    pub fn size(&mut self, max: usize) -> usize {
        // Large payloads are rarer: masking them dominates the run time.
        match self.u8() % 16 {
            0..=9 => self.below(64),
            10 | 11 => [0, 1, 125, 126, 127, 511, 512, 513][self.below(8)],
            12 | 13 => self.below(2048),
            14 => [65535, 65536, 65537, 70000][self.below(4)],
            _ => self.u16() as usize,
        }
        .min(max)
    }

    /// Valid UTF-8 of about the size [`payload`](Self::payload) picks (at
    /// most `max` bytes), mixing one- to four-byte characters so fragment
    /// boundaries fall inside characters.
    pub fn text(&mut self, max: usize) -> String {
        const PATTERN: &str = "aé€𝄞 Zß中xyzé𝄞€ abcdefghß中𝄞";
        let target = self.size(max);
        let _ = self.u8(); // the payload seed, kept so the input format is one
        let start = usize::from(self.u8()) % 8;
        let pattern = &PATTERN[PATTERN.char_indices().nth(start).map_or(0, |(i, _)| i)..];
        let mut s = String::with_capacity(target + PATTERN.len());
        s.push_str(pattern);
        while s.len() < target {
            s.push_str(PATTERN);
        }
        let mut end = target.min(max).min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s
    }
}

/// A header with the given fields (the length is set by `encode_frame`).
pub fn header(fin: bool, opcode: OpCode, mask: Option<[u8; 4]>) -> FrameHeader {
    FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask,
        payload_len: 0,
    }
}

/// One encoded frame.
pub fn frame(fin: bool, opcode: OpCode, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(payload.len() + 14);
    encode_frame(&header(fin, opcode, mask), payload, &mut out);
    out.to_vec()
}

/// A message as the peer sent it, for comparing with what was received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Text(Bytes),
    Binary(Bytes),
}

impl Sent {
    pub fn of(message: &wsstream::Message) -> Self {
        match message {
            wsstream::Message::Text(t) => Self::Text(t.as_bytes().clone()),
            wsstream::Message::Binary(b) => Self::Binary(b.clone()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Text(b) | Self::Binary(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Splits `payload` into up to four fragments at input-chosen points (some
/// may be empty) and encodes them as one message: the first frame with
/// `opcode`, the rest continuations, FIN on the last. Control frames from
/// `interleave` are put between fragments, as RFC 6455 §5.4 allows.
/// Returns the bytes and the size of each fragment.
pub fn fragmented(
    input: &mut Input<'_>,
    opcode: OpCode,
    payload: &[u8],
    mut mask: impl FnMut(&mut Input<'_>) -> Option<[u8; 4]>,
    mut interleave: impl FnMut(&mut Input<'_>, &mut Vec<u8>),
) -> (Vec<u8>, Vec<usize>) {
    let pieces = 1 + input.below(4);
    let mut cuts: Vec<usize> = (1..pieces)
        .map(|_| input.below(payload.len() + 1))
        .collect();
    cuts.sort_unstable();
    cuts.push(payload.len());
    let mut out = Vec::with_capacity(payload.len() + 14 * pieces);
    let mut sizes = Vec::with_capacity(pieces);
    let mut start = 0;
    for (i, &end) in cuts.iter().enumerate() {
        let op = if i == 0 { opcode } else { OpCode::Continuation };
        let fin = i + 1 == cuts.len();
        let key = mask(input);
        let mut frame = BytesMut::new();
        encode_frame(&header(fin, op, key), &payload[start..end], &mut frame);
        out.extend_from_slice(&frame);
        sizes.push(end - start);
        start = end;
        if !fin {
            interleave(input, &mut out);
        }
    }
    (out, sizes)
}

/// A masking key from the input when `masked`.
pub fn key(input: &mut Input<'_>, masked: bool) -> Option<[u8; 4]> {
    masked.then(|| input.u32().to_be_bytes())
}

/// A close code that may be sent: 1000–1003, 1007–1014, 3000–4999.
pub fn close_code(input: &mut Input<'_>) -> wsstream::CloseCode {
    let raw = match input.below(4) {
        0 => 1000,
        1 => [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
        ][input.below(12)],
        _ => 3000 + input.below(2000) as u16,
    };
    wsstream::CloseCode::new(raw).expect("a valid close code")
}

/// Whether `WSFUZZ_TRACE` is set: the targets then print each operation,
/// which makes a crash input readable.
pub fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("WSFUZZ_TRACE").is_some())
}

/// Prints when [`tracing`] is on.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => {
        if $crate::tracing() {
            eprintln!($($arg)*);
        }
    };
}

/// Feeds `wire` to a head parser the way wsstream's own handshake loops do:
/// in chunks of the given sizes (cycled; 0 means "the rest"), parsing only
/// once `HeadScan` sees a blank line or the buffer passes `MAX_HEAD_LEN`.
/// Checks that an incomplete head consumes nothing. Returns the buffer left,
/// how many bytes were fed, and the parser's verdict, if it gave one.
pub fn feed_head<T>(
    wire: &[u8],
    sizes: &[usize],
    mut parse: impl FnMut(&mut bytes::BytesMut) -> Result<Option<T>, HandshakeError>,
) -> (bytes::BytesMut, usize, Option<Result<T, HandshakeError>>) {
    let mut buf = bytes::BytesMut::new();
    let mut scan = HeadScan::default();
    let mut fed = 0usize;
    let mut turn = 0usize;
    while fed < wire.len() {
        let size = match sizes.get(turn % sizes.len().max(1)) {
            Some(&s) if s > 0 => s,
            _ => wire.len(),
        };
        turn += 1;
        let end = (fed + size).min(wire.len());
        buf.extend_from_slice(&wire[fed..end]);
        fed = end;
        if !(scan.is_complete(&buf) || buf.len() > MAX_HEAD_LEN) {
            continue;
        }
        match parse(&mut buf) {
            Ok(None) => assert_eq!(buf.len(), fed, "an incomplete head consumed bytes"),
            Ok(Some(value)) => return (buf, fed, Some(Ok(value))),
            Err(err) => return (buf, fed, Some(Err(err))),
        }
    }
    (buf, fed, None)
}
