//! What the connections say: every data message carries a header (its
//! connection's id, its sequence number, its length) and a body derived
//! from them, so that the server checks each message byte for byte as it
//! arrives and the client checks each echo the same way; and the text
//! message with which the client asks the server to close.
//!
//! Text bodies are words from a small list with two-, three- and
//! four-byte characters among them (UTF-8 validation across many sizes);
//! binary bodies are random bytes in 8-byte chunks of which half repeat
//! the previous one. Both compress, so permessage-deflate has work to do.

use bytes::{BufMut, BytesMut};
use wsstream::Message;

use crate::rng::{mix, Rng};

/// `T` + id (16 hex digits) + `.` + sequence number (8) + `.` + length
/// (8) + `|`.
const TEXT_HEADER: usize = 36;
/// `B` + id (8 bytes) + sequence number (4) + length (4), big-endian.
const BINARY_HEADER: usize = 17;
/// How a close request starts.
const CLOSE_REQUEST: &str = "CLOSE ";

/// The words of text bodies.
const WORDS: [&str; 16] = [
    "the ",
    "soak ",
    "é",
    "€uro ",
    "𝄞 ",
    "stream ",
    "socket ",
    "frame ",
    "ping ",
    "close ",
    "wsstream ",
    "tokio ",
    "ß",
    "日本 ",
    "data ",
    "\n",
];

/// The shortest data message of a kind: its header.
pub(crate) fn header_len(text: bool) -> usize {
    if text {
        TEXT_HEADER
    } else {
        BINARY_HEADER
    }
}

/// Message `seq` of connection `id`: text or binary, `len` bytes in all
/// (at least [`header_len`]).
pub(crate) fn message(id: u64, seq: u32, text: bool, len: usize) -> Message {
    let len = len.max(header_len(text));
    let mut out = BytesMut::with_capacity(len);
    if text {
        out.put_slice(format!("T{id:016x}.{seq:08x}.{len:08x}|").as_bytes());
    } else {
        out.put_u8(b'B');
        out.put_u64(id);
        out.put_u32(seq);
        out.put_u32(len as u32);
    }
    body(&mut out, id, seq, text, len);
    let bytes = out.freeze();
    if text {
        Message::text(String::from_utf8(bytes.to_vec()).expect("the body is UTF-8"))
    } else {
        Message::binary(bytes)
    }
}

/// Appends the body of message `seq` of connection `id` to its header in
/// `out`, up to `len` bytes in all.
fn body(out: &mut BytesMut, id: u64, seq: u32, text: bool, len: usize) {
    let mut rng = Rng::of(id, u64::from(seq) | u64::from(text) << 32);
    if text {
        while out.len() < len {
            let word = WORDS[rng.below(WORDS.len() as u64) as usize];
            if out.len() + word.len() <= len {
                out.put_slice(word.as_bytes());
            } else {
                out.put_bytes(b'x', len - out.len());
            }
        }
    } else {
        let mut chunk = rng.next_u64().to_le_bytes();
        while out.len() < len {
            if rng.percent(50) {
                chunk = rng.next_u64().to_le_bytes();
            }
            let n = chunk.len().min(len - out.len());
            out.put_slice(&chunk[..n]);
        }
    }
}

/// A data message's header, once checked against its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) id: u64,
    pub(crate) seq: u32,
}

/// What arrived, as the server reads it.
pub(crate) enum Incoming {
    Data(Header),
    /// Close with this code and reason.
    CloseRequest(u16, String),
}

/// Why a message is not what its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mismatch {
    /// No header, or one that cannot be read.
    Header,
    /// The header's length is not the message's.
    Length,
    /// The body differs from the one the header calls for.
    Content,
}

impl Mismatch {
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::Header => "mismatch.header",
            Self::Length => "mismatch.length",
            Self::Content => "mismatch.content",
        }
    }
}

/// Reads the header of a data message or a close request, and checks a
/// data message's length and every byte of its body.
pub(crate) fn read(message: &Message) -> Result<Incoming, Mismatch> {
    let payload = message.as_payload();
    if let Some(text) = message.as_text() {
        if let Some(request) = text.strip_prefix(CLOSE_REQUEST) {
            let (code, reason) = request.split_once(' ').ok_or(Mismatch::Header)?;
            let code = code.parse().map_err(|_| Mismatch::Header)?;
            return Ok(Incoming::CloseRequest(code, reason.to_owned()));
        }
    }
    let text = message.is_text();
    let (header, len) = parse_header(payload, text).ok_or(Mismatch::Header)?;
    if len != payload.len() {
        return Err(Mismatch::Length);
    }
    let mut want = BytesMut::with_capacity(len);
    want.put_slice(&payload[..header_len(text)]);
    body(&mut want, header.id, header.seq, text, len);
    if want[..] != payload[..] {
        return Err(Mismatch::Content);
    }
    Ok(Incoming::Data(header))
}

/// The header, and the length it gives.
fn parse_header(payload: &[u8], text: bool) -> Option<(Header, usize)> {
    if text {
        let head = std::str::from_utf8(payload.get(..TEXT_HEADER)?).ok()?;
        let head = head.strip_prefix('T')?.strip_suffix('|')?;
        let mut fields = head.split('.');
        let id = u64::from_str_radix(fields.next()?, 16).ok()?;
        let seq = u32::from_str_radix(fields.next()?, 16).ok()?;
        let len = usize::from_str_radix(fields.next()?, 16).ok()?;
        Some((Header { id, seq }, len))
    } else {
        let head = payload.get(..BINARY_HEADER)?;
        if head[0] != b'B' {
            return None;
        }
        let id = u64::from_be_bytes(head[1..9].try_into().ok()?);
        let seq = u32::from_be_bytes(head[9..13].try_into().ok()?);
        let len = u32::from_be_bytes(head[13..17].try_into().ok()?);
        Some((Header { id, seq }, len as usize))
    }
}

/// The request that the server close with `code` and `reason`.
pub(crate) fn close_request(code: u16, reason: &str) -> Message {
    Message::text(format!("{CLOSE_REQUEST}{code} {reason}"))
}

/// The close reason for connection `id` closing with `code`: 0 to 123
/// bytes (the most a close frame holds), with two-byte characters, the
/// same on both sides.
pub(crate) fn close_reason(id: u64, code: u16) -> String {
    let len = (mix(id ^ u64::from(code) << 48) % 124) as usize;
    let mut reason = format!("bye {id:x} ");
    reason.truncate(len);
    while reason.len() < len {
        reason.push(if len - reason.len() >= 2 && reason.len() % 3 == 0 {
            'é'
        } else {
            'x'
        });
    }
    reason
}

/// A random valid close code for `close(code, reason)`: 1000 or
/// 3000–4999.
pub(crate) fn close_code(rng: &mut Rng) -> u16 {
    if rng.percent(20) {
        1000
    } else {
        rng.between(3000, 4999) as u16
    }
}
