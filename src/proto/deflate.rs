//! permessage-deflate's data path (RFC 7692 §7.2): compressing a message,
//! and inflating one frame at a time under the message size limit.
//!
//! The negotiated parameters decide the window size and whether the
//! context is kept between messages, each direction on its own. Both
//! streams are created on first use, so a connection that never sends (or
//! never receives) a compressed message holds no zlib state for it, and a
//! direction without context takeover frees its stream after every
//! message, so an idle connection holds none either.

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::prepared::SharedDeflate;
use super::Role;
use crate::handshake::DeflateParams;

/// What every message compressed with a sync flush ends with, and what
/// RFC 7692 removes before sending and appends before inflating.
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// zlib cannot make (and flate2 refuses to ask for) an 8-bit window. A
/// 9-bit compressor is safe to use instead: zlib never emits a distance
/// beyond `w_size - MIN_LOOKAHEAD` = 512 - 262 = 250, within 8 bits' 256
/// bytes. Inflating with 9 bits accepts every 8-bit stream.
const MIN_ZLIB_WINDOW_BITS: u8 = 9;

/// Why an incoming compressed message could not be inflated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// The inflated message grew past the limit.
    TooLarge {
        /// The size reached when inflating stopped.
        size: u64,
    },
    /// The data is not a valid DEFLATE stream.
    Corrupt,
}

/// One direction's settings.
#[derive(Debug, Clone, Copy)]
struct Direction {
    window_bits: u8,
    /// Reset the stream after every message (no context takeover).
    reset: bool,
}

/// The compression state of one connection.
pub(crate) struct MessageDeflate {
    level: Compression,
    threshold: usize,
    send: Direction,
    receive: Direction,
    compressor: Option<Box<Compress>>,
    decompressor: Option<Box<Decompress>>,
    /// The peer ended a message with a final block: the next one starts a
    /// fresh stream.
    receive_ended: bool,
    /// Of a message inflated in parts: how much of the sync tail has been
    /// inflated, and whether its data ended with a final block.
    tail_fed: usize,
    part_ended: bool,
}

impl MessageDeflate {
    /// The state for `role` under the negotiated `params`. Messages shorter
    /// than `threshold` bytes go uncompressed.
    pub(crate) fn new(role: Role, params: &DeflateParams, level: u32, threshold: usize) -> Self {
        let client = Direction {
            window_bits: params.client_max_window_bits,
            reset: params.client_no_context_takeover,
        };
        let server = Direction {
            window_bits: params.server_max_window_bits,
            reset: params.server_no_context_takeover,
        };
        let (send, receive) = match role {
            Role::Client => (client, server),
            Role::Server => (server, client),
        };
        Self {
            level: Compression::new(level.min(9)),
            threshold,
            send,
            receive,
            compressor: None,
            decompressor: None,
            receive_ended: false,
            tail_fed: 0,
            part_ended: false,
        }
    }

    /// Whether a message of `len` bytes should be sent compressed.
    pub(crate) fn should_compress(&self, len: usize) -> bool {
        len >= self.threshold
    }

    /// Compresses one whole message into its frame payload (the sync tail
    /// removed). `None` if zlib fails, which it does not on any input; the
    /// stream is then reset and the message should go uncompressed (the
    /// peer's window may keep old data: a fresh stream never refers to it).
    pub(crate) fn compress(&mut self, payload: &[u8]) -> Option<Bytes> {
        self.compress_fragment(payload, true)
    }

    /// Compresses the next fragment of a message sent in fragments. Each is
    /// flushed (a sync flush), so the peer can inflate everything sent so
    /// far: a message that trickles out is not held back in zlib. The
    /// intermediate flushes stay in the stream as empty stored blocks; the
    /// `last` fragment's sync tail is removed, as for a whole message.
    /// `None` if zlib fails (see [`compress`](Self::compress)).
    pub(crate) fn compress_fragment(&mut self, payload: &[u8], last: bool) -> Option<Bytes> {
        let (level, bits) = (self.level, self.send.window_bits.max(MIN_ZLIB_WINDOW_BITS));
        let compressor = self
            .compressor
            .get_or_insert_with(|| Box::new(Compress::new_with_window_bits(level, false, bits)));
        let Some(mut out) = sync_flush(compressor, payload) else {
            compressor.reset();
            return None;
        };
        if !last {
            return Some(Bytes::from(out));
        }
        end_message(&mut out);
        if self.send.reset {
            // No context to keep: free the stream (about 256 KiB with the
            // default settings) rather than hold it while idle.
            self.compressor = None;
        }
        Some(Bytes::from(out))
    }

    /// The settings under which a message this connection sends compresses
    /// to the same bytes as on any other connection with them: `Some` when
    /// it keeps no context between messages (each starts a fresh stream).
    pub(crate) fn shared_settings(&self) -> Option<SharedDeflate> {
        self.send.reset.then(|| SharedDeflate {
            level: self.level.level(),
            window_bits: self.send.window_bits,
        })
    }

    /// Inflates one frame's payload of a compressed message onto `out`,
    /// which may grow to `limit` bytes and no further. `last` marks the
    /// message's final frame, after which the sync tail is inflated too.
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        last: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        let bits = self.receive.window_bits.max(MIN_ZLIB_WINDOW_BITS);
        let decompressor = self
            .decompressor
            .get_or_insert_with(|| Box::new(Decompress::new_with_window_bits(false, bits)));
        if self.receive_ended {
            decompressor.reset(false);
            self.receive_ended = false;
        }
        let mut ended = inflate_into(decompressor, input, out, limit)?;
        if last {
            if !ended {
                ended = inflate_into(decompressor, &SYNC_TAIL, out, limit)?;
            }
            if self.receive.reset {
                self.decompressor = None;
            } else if ended {
                decompressor.reset(false);
            }
        } else if ended {
            self.receive_ended = true;
        }
        Ok(())
    }
}

impl MessageDeflate {
    /// Inflates the next part of a compressed message read in chunks: from
    /// `input` onto `out` until `out` is full (its capacity bounds what one
    /// chunk takes, however well the data compresses) or `input` is used
    /// up. Returns the input bytes consumed and whether the message is
    /// complete. `last` says `input` is the rest of the message's final
    /// frame: once it is all in, the sync tail is inflated too and the
    /// stream kept or reset for the next message, as by
    /// [`inflate`](Self::inflate). Call again with what is left (with
    /// `last`, even when nothing is) until it says complete.
    pub(crate) fn inflate_part(
        &mut self,
        input: &[u8],
        last: bool,
        out: &mut Vec<u8>,
    ) -> Result<(usize, bool), InflateError> {
        let bits = self.receive.window_bits.max(MIN_ZLIB_WINDOW_BITS);
        let decompressor = self
            .decompressor
            .get_or_insert_with(|| Box::new(Decompress::new_with_window_bits(false, bits)));
        if self.receive_ended {
            decompressor.reset(false);
            self.receive_ended = false;
        }
        let (consumed, ended) = if self.part_ended {
            // A final block came before the end of the input: nothing may
            // follow it.
            if input.is_empty() {
                (0, true)
            } else {
                return Err(InflateError::Corrupt);
            }
        } else {
            inflate_bounded(decompressor, input, out)?
        };
        self.part_ended |= ended;
        let full = out.len() == out.capacity();
        if !last || consumed < input.len() || full {
            if ended && !last {
                // As for whole messages: a final block before the last
                // frame, and the next frame starts a fresh stream.
                self.receive_ended = true;
                self.part_ended = false;
            }
            return Ok((consumed, false));
        }
        if !self.part_ended && self.tail_fed < SYNC_TAIL.len() {
            let (fed, _) = inflate_bounded(decompressor, &SYNC_TAIL[self.tail_fed..], out)?;
            self.tail_fed += fed;
            if self.tail_fed < SYNC_TAIL.len() || out.len() == out.capacity() {
                return Ok((consumed, false));
            }
        }
        if self.receive.reset {
            self.decompressor = None;
        } else if self.part_ended {
            decompressor.reset(false);
        }
        self.tail_fed = 0;
        self.part_ended = false;
        Ok((consumed, true))
    }
}

/// Feeds `input` through `decompressor` onto `out` until `out` is full or
/// the input is used up, never growing `out`. Returns the input consumed
/// and whether the stream ended (a final block).
fn inflate_bounded(
    decompressor: &mut Decompress,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(usize, bool), InflateError> {
    let start = decompressor.total_in();
    loop {
        let consumed = (decompressor.total_in() - start) as usize;
        if out.len() == out.capacity() {
            return Ok((consumed, false));
        }
        let status = decompressor
            .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)
            .map_err(|_| InflateError::Corrupt)?;
        let consumed = (decompressor.total_in() - start) as usize;
        match status {
            Status::StreamEnd if consumed < input.len() => return Err(InflateError::Corrupt),
            Status::StreamEnd => return Ok((consumed, true)),
            _ if consumed == input.len() && out.len() < out.capacity() => {
                return Ok((consumed, false))
            }
            Status::BufError if out.len() < out.capacity() => return Err(InflateError::Corrupt),
            _ => {}
        }
    }
}

/// Feeds all of `input` through `decompressor` onto `out` without letting
/// `out` pass `limit` bytes. Returns whether the stream ended (a final
/// block).
fn inflate_into(
    decompressor: &mut Decompress,
    input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<bool, InflateError> {
    let start = decompressor.total_in();
    loop {
        if out.len() == out.capacity() {
            // Grow geometrically, but never past one byte over the limit:
            // that byte is how we learn the message is too large.
            let room = limit.saturating_add(1).saturating_sub(out.len());
            out.reserve_exact(out.len().clamp(4096, 1 << 20).min(room).max(1));
        }
        let consumed = (decompressor.total_in() - start) as usize;
        let status = decompressor
            .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)
            .map_err(|_| InflateError::Corrupt)?;
        if out.len() > limit {
            return Err(InflateError::TooLarge {
                size: out.len() as u64,
            });
        }
        let consumed = (decompressor.total_in() - start) as usize;
        match status {
            Status::StreamEnd if consumed < input.len() => return Err(InflateError::Corrupt),
            Status::StreamEnd => return Ok(true),
            // All input taken and room left over: nothing is pending.
            _ if consumed == input.len() && out.len() < out.capacity() => return Ok(false),
            // No progress with room to write: the input is stuck.
            Status::BufError if out.len() < out.capacity() => return Err(InflateError::Corrupt),
            _ => {}
        }
    }
}

impl std::fmt::Debug for MessageDeflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageDeflate")
            .field("threshold", &self.threshold)
            .field("send", &self.send)
            .field("receive", &self.receive)
            .field("compressing", &self.compressor.is_some())
            .field("inflating", &self.decompressor.is_some())
            .finish()
    }
}

/// Compresses a whole message in a fresh stream under `settings`: the
/// payload every connection with these settings and no context takeover
/// would send. `None` if zlib fails.
pub(crate) fn compress_alone(settings: SharedDeflate, payload: &[u8]) -> Option<Bytes> {
    let bits = settings.window_bits.max(MIN_ZLIB_WINDOW_BITS);
    let level = Compression::new(settings.level.min(9));
    let mut compressor = Compress::new_with_window_bits(level, false, bits);
    let mut out = sync_flush(&mut compressor, payload)?;
    end_message(&mut out);
    Some(Bytes::from(out))
}

/// Compresses `payload` and flushes it (a sync flush): everything so far
/// can be inflated. `None` if zlib fails, which it does not on any input.
fn sync_flush(compressor: &mut Compress, payload: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(payload.len() / 2 + 64);
    let start = compressor.total_in();
    loop {
        let consumed = (compressor.total_in() - start) as usize;
        compressor
            .compress_vec(&payload[consumed..], &mut out, FlushCompress::Sync)
            .ok()?;
        let consumed = (compressor.total_in() - start) as usize;
        // Done once all input is in and the flush fitted: zlib leaves
        // room in the buffer only when it has nothing more to write.
        if consumed == payload.len() && out.len() < out.capacity() {
            return Some(out);
        }
        out.reserve(out.capacity().max(256));
    }
}

/// Ends a message's compressed payload as RFC 7692 sends it: the sync
/// tail removed.
fn end_message(out: &mut Vec<u8>) {
    if out.ends_with(&SYNC_TAIL) {
        out.truncate(out.len() - SYNC_TAIL.len());
    } else if out.is_empty() {
        // Nothing new since the last flush (an empty message with
        // context kept, or an empty last fragment): zlib writes nothing,
        // but the peer must still get an empty stored block, which is a
        // single 0x00 once its tail is removed (RFC 7692 §7.2.3.6).
        out.push(0x00);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(no_takeover: bool, bits: u8) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: no_takeover,
            client_no_context_takeover: no_takeover,
            server_max_window_bits: bits,
            client_max_window_bits: bits,
        }
    }

    fn pair(no_takeover: bool, bits: u8) -> (MessageDeflate, MessageDeflate) {
        let p = params(no_takeover, bits);
        (
            MessageDeflate::new(Role::Client, &p, 6, 0),
            MessageDeflate::new(Role::Server, &p, 6, 0),
        )
    }

    fn roundtrip(from: &mut MessageDeflate, to: &mut MessageDeflate, message: &[u8]) -> usize {
        let wire = from.compress(message).unwrap();
        let mut out = Vec::new();
        to.inflate(&wire, true, &mut out, usize::MAX).unwrap();
        assert_eq!(out, message);
        wire.len()
    }

    #[test]
    fn round_trips_with_and_without_context_takeover() {
        // Shorter than the smallest window, and not repetitive in itself,
        // so only context takeover can shrink the second copy.
        let text: &[u8] = b"{\"symbol\":\"ABCD\",\"price\":101.25,\"size\":300,\"venue\":\"XNAS\",\
                     \"ts\":1700000000123,\"side\":\"bid\",\"flags\":[\"odd-lot\",\"pre\"]}";
        for bits in [8, 9, 12, 15] {
            let (mut client, mut server) = pair(false, bits);
            let first = roundtrip(&mut client, &mut server, text);
            let second = roundtrip(&mut client, &mut server, text);
            assert!(second < first / 4, "context takeover: {second} vs {first}");
            roundtrip(&mut server, &mut client, text);

            let (mut client, mut server) = pair(true, bits);
            let first = roundtrip(&mut client, &mut server, text);
            let second = roundtrip(&mut client, &mut server, text);
            assert_eq!(first, second, "no context takeover resets the window");
        }
    }

    #[test]
    fn empty_and_incompressible_messages() {
        let (mut lone, _) = pair(false, 15);
        assert_eq!(lone.compress(b"").unwrap().as_ref(), [0x00]);
        let (mut client, mut server) = pair(false, 15);
        roundtrip(&mut client, &mut server, b"");
        let noise: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        roundtrip(&mut client, &mut server, &noise);
    }

    #[test]
    fn empty_messages_between_others_keep_the_streams_in_step() {
        let (mut client, mut server) = pair(false, 15);
        for message in [&b""[..], b"", b"after two empty ones", b"", b"and one more"] {
            roundtrip(&mut server, &mut client, message);
            roundtrip(&mut client, &mut server, message);
        }
    }

    #[test]
    fn a_message_may_arrive_in_fragments() {
        let (mut client, mut server) = pair(false, 15);
        let text = b"fragmented and compressed ".repeat(1000);
        let wire = client.compress(&text).unwrap();
        let mut out = Vec::new();
        let chunks: Vec<&[u8]> = wire.chunks(7).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            server
                .inflate(chunk, i + 1 == chunks.len(), &mut out, usize::MAX)
                .unwrap();
        }
        assert_eq!(out, text);
    }

    #[test]
    fn inflating_stops_at_the_limit() {
        let (mut client, mut server) = pair(false, 15);
        let bomb = client.compress(&vec![0u8; 8 << 20]).unwrap();
        assert!(bomb.len() < 16 << 10, "{}", bomb.len());
        let mut out = Vec::new();
        let err = server.inflate(&bomb, true, &mut out, 1 << 20).unwrap_err();
        assert_eq!(
            err,
            InflateError::TooLarge {
                size: (1 << 20) + 1
            }
        );
        assert!(out.capacity() <= (1 << 20) + 1, "{}", out.capacity());
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        let (_, mut server) = pair(false, 15);
        let mut out = Vec::new();
        assert_eq!(
            server.inflate(&[0xff; 64], true, &mut out, 1 << 20),
            Err(InflateError::Corrupt)
        );
    }

    #[test]
    fn a_final_block_ends_the_stream_for_the_next_message() {
        // A peer may end a message with BFINAL set; the next message then
        // starts a new stream.
        let (_, mut server) = pair(false, 15);
        let mut finished = Compress::new(Compression::default(), false);
        let mut wire = Vec::with_capacity(256);
        finished
            .compress_vec(b"first", &mut wire, FlushCompress::Finish)
            .unwrap();
        for _ in 0..2 {
            let mut out = Vec::new();
            server.inflate(&wire, true, &mut out, 1 << 20).unwrap();
            assert_eq!(out, b"first");
        }
    }

    /// Inflates `wire` (split into frames of `frame` bytes) in parts of at
    /// most `room` bytes out, as a streamed read does.
    fn inflate_in_parts(
        to: &mut MessageDeflate,
        wire: &[u8],
        frame: usize,
        room: usize,
    ) -> Vec<u8> {
        let mut message = Vec::new();
        let frames: Vec<&[u8]> = wire.chunks(frame.max(1)).collect();
        let frames = if frames.is_empty() {
            vec![&wire[..0]]
        } else {
            frames
        };
        for (i, frame) in frames.iter().enumerate() {
            let last = i + 1 == frames.len();
            let mut input = *frame;
            loop {
                let mut out = Vec::with_capacity(room);
                let (consumed, complete) = to.inflate_part(input, last, &mut out).unwrap();
                assert!(out.len() <= room);
                message.extend_from_slice(&out);
                input = &input[consumed..];
                if complete || (!last && input.is_empty() && out.len() < room) {
                    break;
                }
            }
        }
        message
    }

    #[test]
    fn a_message_inflates_in_bounded_parts_and_the_next_one_follows() {
        for no_takeover in [false, true] {
            let (mut client, mut server) = pair(no_takeover, 15);
            let big = b"streamed and compressed, part by part; ".repeat(20_000);
            for message in [&big[..], b"", b"small after", &big[..]] {
                let wire = client.compress(message).unwrap();
                assert_eq!(inflate_in_parts(&mut server, &wire, 1000, 4096), message);
            }
        }
    }

    #[test]
    fn fragments_compressed_one_by_one_make_one_message() {
        for no_takeover in [false, true] {
            let (mut client, mut server) = pair(no_takeover, 15);
            for _ in 0..2 {
                let parts: [&[u8]; 4] = [b"first fragment ", b"", b"third fragment ", b"last"];
                let mut wire = Vec::new();
                for (i, part) in parts.iter().enumerate() {
                    let last = i + 1 == parts.len();
                    wire.extend_from_slice(&client.compress_fragment(part, last).unwrap());
                }
                let mut out = Vec::new();
                server.inflate(&wire, true, &mut out, usize::MAX).unwrap();
                assert_eq!(out, parts.concat());
            }
            // An empty last fragment after data still ends the message.
            let mut wire = client.compress_fragment(b"data", false).unwrap().to_vec();
            wire.extend_from_slice(&client.compress_fragment(b"", true).unwrap());
            let mut out = Vec::new();
            server.inflate(&wire, true, &mut out, usize::MAX).unwrap();
            assert_eq!(out, b"data");
        }
    }

    #[test]
    fn a_bomb_inflated_in_parts_never_holds_more_than_a_part() {
        let (mut client, mut server) = pair(false, 15);
        let bomb = client.compress(&vec![0u8; 64 << 20]).unwrap();
        let mut input = &bomb[..];
        let mut total = 0usize;
        loop {
            let mut out = Vec::with_capacity(64 << 10);
            let (consumed, complete) = server.inflate_part(input, true, &mut out).unwrap();
            assert!(out.capacity() == 64 << 10);
            total += out.len();
            input = &input[consumed..];
            if complete {
                break;
            }
        }
        assert_eq!(total, 64 << 20);
    }
}
