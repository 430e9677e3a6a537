//! The sans-io `Connection`, in either role, driven by operations decoded
//! from the input: sending text, binary, pings and closes; receiving peer
//! bytes (well-formed traffic built with `encode_frame`, deliberately broken
//! frames, or raw input bytes) in input-sized pieces; writing the outgoing
//! queue in input-sized partial writes, through `chunk` or
//! `chunks_vectored`. Streamed messages both ways: `stream_next_message`,
//! `cancel_stream_request` and `discard_streamed_message` at any point,
//! input read with `receive` or `receive_event`; `send_fragment` of text or
//! binary fragments (empty ones too), `abandon_message`, and whole messages
//! sent in the middle of a fragmented one.
//!
//! Everything the connection writes is parsed back with a decoder of the
//! peer's role and checked: every frame decodes (so client frames are
//! masked and server frames not), data frames are our messages and
//! fragments in order and intact (a fragmented message well-formed: its
//! opcode first, continuations after, nothing else between but control
//! frames), pings ours, pongs echo the peer's pings in order with the last
//! one answered, nothing follows our close frame, an abandoned message is
//! followed by a close with 1011, and a returned protocol error put a close
//! frame with its close code on the wire. What is received, for any input:
//! a message start before its chunks and an end after them, never a chunk
//! or an end outside a message (so nothing after a discard until the next
//! message), never an empty chunk, text chunks UTF-8 on their own, nothing
//! at all after a failure. While the peer only sent well-formed traffic,
//! the messages received (whole or in chunks) are exactly the ones it
//! sent, and a limit error comes exactly where a limit was crossed.
//!
//! Input: `[config] [op]...`, ops `op % 22`; config bit 0 is the role,
//! bits 1-2 the limits, bits 3-4 the streamed message limit (the message
//! limit, none, 100 bytes, twice the message limit).

#![no_main]

use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use wsstream::proto::{
    CloseFrame, Connection, Frame, FrameDecoder, Limits, OpCode, ProtocolError, Received, Role,
    SendError,
};
use wsstream::{Message, MessageKind};
use wsstream_fuzz::{close_code, fragmented, frame, key, trace, Input, Sent};

/// (max_frame_size, max_message_size).
const LIMITS: [(usize, usize); 4] = [
    (16 << 20, 64 << 20),
    (125, 125),
    (1000, 3000),
    (70_000, 140_000),
];

/// An upper bound on one control frame on the wire.
const CONTROL_FRAME: usize = 14 + 125;

/// What the well-formed peer traffic says should happen, in order.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    Message(Sent),
    /// The peer's close frame: code and reason, or no body.
    Close(Option<(u16, String)>),
    /// A message with a frame that crosses the frame or message size
    /// limit. Read in chunks, it may begin before it fails; it never ends.
    OverLimit(Sent),
    /// A message over one of the message limits only, whole or streamed:
    /// it fails or arrives depending on how it is read. The model ends.
    MaybeOverLimit(Sent),
}

/// The message being read in chunks, as far as the harness knows.
#[derive(Debug)]
enum InState {
    /// Messages come whole.
    Idle,
    /// `stream_next_message` asked: the next message comes in chunks (it
    /// may have begun, unannounced).
    Requested,
    /// Its start was reported: its chunks come, then its end.
    Streaming {
        kind: MessageKind,
        got: Vec<u8>,
        /// Every chunk was seen (`receive` drops them).
        exact: bool,
    },
    /// Dropped part-way: nothing more of it comes.
    Discarding,
}

/// A message as it was received.
#[derive(Debug)]
enum GotMsg {
    Whole(Sent),
    /// The start of it (read in chunks, then discarded).
    Prefix(Sent),
    /// Read in chunks that were not all seen.
    Unknown,
}

impl GotMsg {
    fn matches(&self, expected: &Sent) -> bool {
        match (self, expected) {
            (Self::Whole(got), _) => got == expected,
            (Self::Prefix(Sent::Text(a)), Sent::Text(b))
            | (Self::Prefix(Sent::Binary(a)), Sent::Binary(b)) => b.starts_with(a),
            (Self::Prefix(_), _) => false,
            (Self::Unknown, _) => true,
        }
    }
}

fn sent_of(kind: MessageKind, payload: Vec<u8>) -> Sent {
    match kind {
        MessageKind::Text => Sent::Text(Bytes::from(payload)),
        MessageKind::Binary => Sent::Binary(Bytes::from(payload)),
    }
}

/// Our side's record of a close frame body.
type CloseBody = Option<(u16, String)>;

fn close_body(payload: &[u8]) -> CloseBody {
    match payload {
        [] => None,
        [a, b, reason @ ..] => Some((
            u16::from_be_bytes([*a, *b]),
            std::str::from_utf8(reason)
                .expect("our close reason is not UTF-8")
                .to_owned(),
        )),
        [_] => panic!("we sent a one-byte close payload"),
    }
}

struct Harness {
    role: Role,
    limits: (usize, usize),
    streamed_limit: u64,
    conn: Connection,

    // ---- what we asked the connection to send ----
    /// Data frames, in order: opcode, FIN, payload.
    sent_frames: Vec<(OpCode, bool, Bytes)>,
    /// The kind of the message being sent in fragments.
    sending: Option<MessageKind>,
    /// An abandoned message queued the close frame (1011).
    abandon_close: bool,
    /// Payloads we handed over and still hold: they must not change.
    shared: Vec<(Bytes, Vec<u8>)>,
    pings_sent: Vec<Bytes>,
    /// The close frame we queued with `close`, if it was the first.
    our_close: Option<CloseBody>,
    /// Bytes of our own frames (data, pings, our close) ever queued.
    own_pushed: usize,

    // ---- what the connection wrote, parsed back ----
    out_decoder: FrameDecoder,
    out_buf: BytesMut,
    out_data: usize,
    out_pings: usize,
    /// A fragmented message of ours is open on the wire.
    out_in_message: bool,
    /// Bytes of our own frames seen whole on the wire.
    own_written: usize,
    pongs_out: Vec<Bytes>,
    close_out: Option<CloseBody>,
    written: usize,

    // ---- the peer ----
    /// Bytes the peer sent that have not reached the connection yet.
    peer_wire: Vec<u8>,
    peer_sent: usize,
    /// Whether all peer traffic so far was well-formed.
    pristine: bool,
    events: Vec<Event>,
    /// The messages among `events`.
    expected: Vec<Sent>,
    /// The peer's message size so far, for the limit model.
    model_done: bool,
    /// Everything handed to the connection, before it unmasked it in place.
    delivered: Vec<u8>,
    read_buf: BytesMut,
    /// A decoder over the bytes the connection consumed: which pings and
    /// pongs it has seen.
    shadow: Option<FrameDecoder>,
    shadow_buf: BytesMut,
    shadow_fed: usize,
    /// Pings the connection saw while it had not sent a close: each may be
    /// answered, in order, and the last must be.
    answerable: Vec<Bytes>,
    pongs_in: Vec<Bytes>,
    pongs_taken: usize,

    // ---- what the connection reported ----
    received: Vec<GotMsg>,
    in_state: InState,
    error: Option<ProtocolError>,
    /// Whether a close frame was queued before the error was returned.
    closed_before_error: bool,
    /// The peer's close arrived before we had queued one.
    close_reply_expected: Option<CloseBody>,
}

impl Harness {
    fn new(role: Role, limits: (usize, usize), streamed_limit: u64) -> Self {
        let mut l = Limits::default();
        l.max_frame_size = limits.0;
        l.max_message_size = limits.1;
        l.max_streamed_message_size = streamed_limit;
        let peer = match role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        Self {
            role,
            limits,
            streamed_limit,
            conn: Connection::new(role, l),
            sent_frames: Vec::new(),
            sending: None,
            abandon_close: false,
            shared: Vec::new(),
            pings_sent: Vec::new(),
            our_close: None,
            own_pushed: 0,
            out_decoder: FrameDecoder::new(peer, usize::MAX),
            out_buf: BytesMut::new(),
            out_data: 0,
            out_pings: 0,
            out_in_message: false,
            own_written: 0,
            pongs_out: Vec::new(),
            close_out: None,
            written: 0,
            peer_wire: Vec::new(),
            peer_sent: 0,
            pristine: true,
            events: Vec::new(),
            expected: Vec::new(),
            model_done: false,
            delivered: Vec::new(),
            read_buf: BytesMut::new(),
            shadow: Some(FrameDecoder::new(role, limits.0)),
            shadow_buf: BytesMut::new(),
            shadow_fed: 0,
            answerable: Vec::new(),
            pongs_in: Vec::new(),
            pongs_taken: 0,
            received: Vec::new(),
            in_state: InState::Idle,
            error: None,
            closed_before_error: false,
            close_reply_expected: None,
        }
    }

    /// Whether frames the peer sends are masked.
    fn peer_masks(&self) -> bool {
        self.role == Role::Server
    }

    fn frame_len(payload: usize, masked: bool) -> usize {
        let len = match payload {
            0..=125 => 2,
            126..=0xFFFF => 4,
            _ => 10,
        };
        len + payload + if masked { 4 } else { 0 }
    }

    // ---- our side ----

    /// A close frame ends a message being sent in fragments (nothing may
    /// follow it, the peer drops the message).
    fn sync_sending(&mut self) {
        if self.conn.close_sent() {
            self.sending = None;
        }
    }

    fn send(&mut self, message: Message, keep: bool) {
        self.sync_sending();
        let closing = self.conn.close_sent();
        let fragmenting = self.sending.is_some();
        // A copy: the connection may mask a payload it alone holds in place.
        let expect = match &message {
            Message::Text(t) => (OpCode::Text, true, Bytes::copy_from_slice(t.as_bytes())),
            Message::Binary(b) => (OpCode::Binary, true, Bytes::copy_from_slice(b)),
        };
        if keep {
            if let Message::Binary(b) = &message {
                self.shared.push((b.clone(), b.to_vec()));
            }
        }
        let len = message.len();
        match self.conn.send(message) {
            Ok(()) => {
                assert!(!closing, "send accepted after our close frame");
                assert!(!fragmenting, "a message sent inside a fragmented one");
                self.own_pushed += Self::frame_len(len, self.role == Role::Client);
                self.sent_frames.push(expect);
            }
            Err(SendError::Closing) => {
                assert!(closing || fragmenting, "send refused before any close");
                // It would have gone inside the fragmented message: that
                // one is abandoned.
                if fragmenting {
                    self.abandoned(!closing);
                }
            }
            Err(err) => panic!("send failed: {err:?}"),
        }
        assert_eq!(self.conn.is_sending_fragments(), self.sending.is_some());
    }

    /// The message being sent in fragments was given up; `queued`: with a
    /// close frame of its own (1011).
    fn abandoned(&mut self, queued: bool) {
        self.sending = None;
        if queued {
            assert!(self.conn.close_sent(), "abandoned without a close");
            self.abandon_close = true;
            // Its reason is the library's: count a whole control frame.
            self.own_pushed += CONTROL_FRAME;
        }
    }

    fn send_fragment(&mut self, kind: MessageKind, payload: Vec<u8>, last: bool) {
        self.sync_sending();
        let closing = self.conn.close_sent();
        let len = payload.len();
        let result = self
            .conn
            .send_fragment(kind, Bytes::from(payload.clone()), last);
        trace!("  send_fragment({kind:?}, {len} bytes, last {last}) -> {result:?}");
        match result {
            Ok(()) => {
                assert!(!closing, "a fragment accepted after our close frame");
                let opcode = match (self.sending, kind) {
                    (Some(_), _) => OpCode::Continuation,
                    (None, MessageKind::Text) => OpCode::Text,
                    (None, MessageKind::Binary) => OpCode::Binary,
                };
                self.own_pushed += Self::frame_len(len, self.role == Role::Client);
                self.sent_frames.push((opcode, last, Bytes::from(payload)));
                self.sending = if last {
                    None
                } else {
                    Some(self.sending.unwrap_or(kind))
                };
            }
            Err(SendError::Closing) => assert!(closing, "a fragment refused before any close"),
            Err(err) => panic!("send_fragment failed: {err:?}"),
        }
        assert_eq!(self.conn.is_sending_fragments(), self.sending.is_some());
    }

    fn abandon(&mut self) {
        self.sync_sending();
        let expected = self.sending.is_some() && !self.conn.close_sent();
        let queued = self.conn.abandon_message();
        trace!("  abandon_message -> {queued}");
        assert_eq!(queued, expected, "abandon_message() answer");
        if self.sending.is_some() {
            self.abandoned(queued);
        }
        assert!(!self.conn.is_sending_fragments());
    }

    fn ping(&mut self, payload: Vec<u8>) {
        let closing = self.conn.close_sent();
        let len = payload.len();
        match self.conn.send_ping(Bytes::from(payload.clone())) {
            Ok(()) => {
                assert!(len <= 125, "a ping of {len} bytes accepted");
                assert!(!closing, "ping accepted after our close frame");
                self.own_pushed += Self::frame_len(len, self.role == Role::Client);
                self.pings_sent.push(Bytes::from(payload));
            }
            Err(SendError::ControlTooLong) => assert!(len > 125),
            Err(SendError::Closing) => assert!(closing && len <= 125),
            Err(err) => panic!("ping failed: {err:?}"),
        }
    }

    fn close(&mut self, frame: Option<CloseFrame>) {
        let could = !self.conn.close_sent() && self.conn.failure().is_none();
        let queued = self.conn.close(frame.as_ref());
        assert_eq!(queued, could, "close() answer");
        if queued {
            assert!(self.conn.close_sent());
            let body = frame.map(|f| (f.code().as_u16(), f.reason().to_owned()));
            let len = body.as_ref().map_or(0, |(_, r)| 2 + r.len());
            self.own_pushed += Self::frame_len(len, self.role == Role::Client);
            self.our_close = Some(body);
        }
    }

    /// Writes up to `n` queued bytes, as one `write` of the first chunk.
    fn write_chunk(&mut self, n: usize) {
        let queue = self.conn.outgoing();
        let chunk = queue.chunk();
        assert!(!chunk.is_empty() || queue.remaining() == 0, "empty chunk");
        let n = n.min(chunk.len());
        let bytes = chunk[..n].to_vec();
        queue.advance(n);
        self.parse_out(&bytes);
    }

    /// Writes up to `n` queued bytes over `slots` slices, as one `writev`.
    fn write_vectored(&mut self, slots: usize, n: usize) {
        let queue = self.conn.outgoing();
        let mut slices = [IoSlice::new(&[]); 64];
        let slots = slots.clamp(1, 64);
        let used = queue.chunks_vectored(&mut slices[..slots]);
        assert!(used <= slots);
        let all: Vec<u8> = slices[..used]
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect();
        assert!(slices[..used].iter().all(|s| !s.is_empty()), "empty iovec");
        if used < slots {
            assert_eq!(all.len(), queue.remaining(), "iovecs miss queued bytes");
        }
        if queue.remaining() > 0 {
            assert!(used > 0, "no iovec for a non-empty queue");
            assert_eq!(&all[..queue.chunk().len()], queue.chunk(), "first iovec");
        }
        let n = n.min(all.len());
        queue.advance(n);
        self.parse_out(&all[..n]);
    }

    fn drain_all(&mut self) {
        for _ in 0..1_000_000 {
            if self.conn.outgoing().is_empty() {
                return;
            }
            self.write_chunk(usize::MAX);
        }
        panic!("the outgoing queue never empties");
    }

    /// Parses what the connection wrote as the peer would.
    fn parse_out(&mut self, bytes: &[u8]) {
        self.written += bytes.len();
        if bytes.is_empty() {
            return;
        }
        assert!(
            self.close_out.is_none(),
            "{} bytes written after our close frame",
            bytes.len()
        );
        self.out_buf.extend_from_slice(bytes);
        loop {
            let frame = match self.out_decoder.decode(&mut self.out_buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(err) => panic!("our output does not decode: {err}"),
            };
            self.check_out_frame(frame);
            if self.close_out.is_some() {
                assert!(self.out_buf.is_empty(), "bytes after our close frame");
            }
        }
    }

    fn check_out_frame(&mut self, frame: Frame) {
        let Frame { header, payload } = frame;
        assert_eq!(header.rsv, 0);
        let masked = header.mask.is_some();
        let len = Self::frame_len(payload.len(), masked);
        match header.opcode {
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                if header.opcode == OpCode::Continuation {
                    assert!(
                        self.out_in_message,
                        "a continuation frame outside a message"
                    );
                } else {
                    assert!(
                        !self.out_in_message,
                        "a data frame inside a fragmented message"
                    );
                }
                self.out_in_message = !header.fin;
                let expect = self
                    .sent_frames
                    .get(self.out_data)
                    .unwrap_or_else(|| panic!("a data frame we did not send: {payload:?}"));
                assert_eq!(
                    (header.opcode, header.fin, &payload),
                    (expect.0, expect.1, &expect.2),
                    "data frame {} on the wire",
                    self.out_data
                );
                self.out_data += 1;
                self.own_written += len;
            }
            OpCode::Ping => {
                assert_eq!(
                    self.pings_sent.get(self.out_pings),
                    Some(&payload),
                    "ping {} on the wire",
                    self.out_pings
                );
                self.out_pings += 1;
                self.own_written += len;
            }
            OpCode::Pong => self.pongs_out.push(payload),
            OpCode::Close => {
                let body = close_body(&payload);
                let abandon = self.abandon_close && body.as_ref().map(|b| b.0) == Some(1011);
                if self.our_close.as_ref() == Some(&body) || abandon {
                    self.own_written += len;
                }
                self.close_out = Some(body);
            }
        }
    }

    // ---- the peer ----

    fn peer_raw(&mut self, bytes: &[u8]) {
        self.pristine = false;
        self.peer_wire.extend_from_slice(bytes);
    }

    fn peer_control(&mut self, input: &mut Input<'_>) -> Vec<u8> {
        let op = if input.bool() {
            OpCode::Ping
        } else {
            OpCode::Pong
        };
        let payload = input.payload(125);
        frame(true, op, key(input, self.peer_masks()), &payload)
    }

    fn peer_message(&mut self, input: &mut Input<'_>) {
        let text = input.bool();
        let (payload, sent) = if text {
            let s = input.text(self.limits.1.min(80_000) + 10);
            let b = Bytes::from(s.clone());
            (b.to_vec(), Sent::Text(b))
        } else {
            let p = input.payload(self.limits.1.min(80_000) + 10);
            (p.clone(), Sent::Binary(Bytes::from(p)))
        };
        let masked = self.peer_masks();
        let opcode = if text { OpCode::Text } else { OpCode::Binary };
        let interleave_controls = input.bool();
        let (bytes, sizes) = fragmented(
            input,
            opcode,
            &payload,
            |input| key(input, masked),
            |input, out| {
                if interleave_controls && input.bool() {
                    let op = if input.bool() {
                        OpCode::Ping
                    } else {
                        OpCode::Pong
                    };
                    let p = input.payload(125);
                    out.extend_from_slice(&frame(true, op, key(input, masked), &p));
                }
            },
        );
        // Read whole, the message limit applies; read in chunks, the
        // streamed one (and the frame limit either way).
        let over = |limit: u64| {
            let mut total = 0u64;
            sizes.iter().any(|&s| {
                total += s as u64;
                s > self.limits.0 || total > limit
            })
        };
        let over_whole = over(self.limits.1 as u64);
        let over_streamed = over(self.streamed_limit);
        self.peer_wire.extend_from_slice(&bytes);
        if !self.model_done {
            if over_whole != over_streamed {
                self.expected.push(sent.clone());
                self.events.push(Event::MaybeOverLimit(sent));
                self.model_done = true;
            } else if over_whole {
                self.events.push(Event::OverLimit(sent));
                self.model_done = true;
            } else {
                self.expected.push(sent.clone());
                self.events.push(Event::Message(sent));
            }
        }
    }

    fn peer_close(&mut self, input: &mut Input<'_>) {
        let body = if input.u8() % 4 == 0 {
            None
        } else {
            let code = close_code(input);
            let reason = input.text(123);
            Some((code.as_u16(), reason))
        };
        let mut payload = Vec::new();
        if let Some((code, reason)) = &body {
            payload.extend_from_slice(&code.to_be_bytes());
            payload.extend_from_slice(reason.as_bytes());
        }
        let masked = self.peer_masks();
        let bytes = frame(true, OpCode::Close, key(input, masked), &payload);
        self.peer_wire.extend_from_slice(&bytes);
        if !self.model_done {
            self.events.push(Event::Close(body));
            self.model_done = true;
        }
    }

    /// A frame that breaks a rule, each kind with its own close code.
    fn peer_broken(&mut self, input: &mut Input<'_>) {
        let masked = self.peer_masks();
        let k = key(input, masked);
        let bytes = match input.below(12) {
            0 => vec![
                0x80 | [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF][input.below(10)],
                0,
            ],
            1 => frame(true, OpCode::Binary, key(input, !masked), b"wrong mask"),
            2 => {
                let mut f = frame(true, OpCode::Text, k, b"rsv");
                f[0] |= [0x40, 0x20, 0x10][input.below(3)];
                f
            }
            3 => frame(false, OpCode::Ping, k, b"fragmented ping"),
            4 => {
                let mut f = frame(true, OpCode::Ping, k, &[b'p'; 126]);
                f.truncate(f.len() - 10);
                f
            }
            5 => {
                let code: u16 =
                    [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535][input.below(10)];
                frame(true, OpCode::Close, k, &code.to_be_bytes())
            }
            6 => frame(true, OpCode::Close, k, b"x"),
            7 => frame(true, OpCode::Close, k, b"\x03\xe8\xff\xfe"),
            8 => {
                let bad: &[u8] =
                    [&b"\xff"[..], b"\xc3", b"\xed\xa0\x80", b"a\xf4\x90\x80\x80"][input.below(4)];
                let (bytes, _) =
                    fragmented(input, OpCode::Text, bad, |i| key(i, masked), |_, _| {});
                bytes
            }
            9 => frame(true, OpCode::Continuation, k, b"stray"),
            10 => {
                let mut f = frame(false, OpCode::Text, k, b"first");
                f.extend_from_slice(&frame(true, OpCode::Binary, key(input, masked), b"second"));
                f
            }
            _ => {
                let mut f = vec![0x82, 0x7F | if masked { 0x80 } else { 0 }, 0x80];
                f.extend_from_slice(&[0; 7]);
                f
            }
        };
        self.peer_raw(&bytes);
    }

    /// Hands up to `n` of the peer's bytes to the connection and receives
    /// until it wants more.
    fn deliver(&mut self, n: usize, events: bool) {
        let n = n.min(self.peer_wire.len() - self.peer_sent);
        let piece = &self.peer_wire[self.peer_sent..self.peer_sent + n];
        self.read_buf.extend_from_slice(piece);
        self.delivered.extend_from_slice(piece);
        self.peer_sent += n;
        self.receive(events);
    }

    /// Receives until the connection wants more input: with
    /// `receive_event` if `events` (or a message was asked for in chunks
    /// and has not been announced: `receive` would hide how many messages
    /// it dropped), else with `receive`, which drops the chunks of a
    /// message being read in chunks.
    fn receive(&mut self, events: bool) {
        for _ in 0..100_000 {
            let closing = self.conn.close_sent();
            let use_events = events || matches!(self.in_state, InState::Requested);
            let streaming = matches!(self.in_state, InState::Streaming { .. });
            let before = self.read_buf.len();
            let result = if use_events {
                self.conn.receive_event(&mut self.read_buf)
            } else {
                self.conn
                    .receive(&mut self.read_buf)
                    .map(|m| m.map(Received::Message))
            };
            trace!(
                "  {} -> {}",
                if use_events {
                    "receive_event"
                } else {
                    "receive"
                },
                match &result {
                    Ok(Some(Received::Message(m))) =>
                        format!("message {} {}", m.is_text(), m.len()),
                    Ok(Some(Received::Chunk(c))) => format!("chunk {}", c.len()),
                    other => format!("{other:?}"),
                }
            );
            if self.error.is_some() {
                assert!(
                    matches!(result, Ok(None)),
                    "received after the failure: {result:?}"
                );
                assert_eq!(self.read_buf.len(), before, "input taken after the failure");
                return;
            }
            self.shadow(closing);
            self.check_state();
            if streaming && !use_events {
                self.dropped_chunks();
            }
            match result {
                Ok(Some(event)) => {
                    self.on_event(event);
                    self.settle();
                }
                Ok(None) => {
                    self.settle();
                    return;
                }
                Err(err) => {
                    assert!(self.error.is_none(), "a second protocol error: {err}");
                    assert_eq!(self.conn.failure(), Some(&err));
                    assert!(self.conn.close_sent(), "failed without queuing a close");
                    assert!(!self.conn.wants_input());
                    self.closed_before_error = closing;
                    self.error = Some(err);
                    // Returned once; the connection takes no more input.
                    let before = self.read_buf.len();
                    assert!(matches!(self.conn.receive(&mut self.read_buf), Ok(None)));
                    assert!(matches!(
                        self.conn.receive_event(&mut self.read_buf),
                        Ok(None)
                    ));
                    assert_eq!(self.read_buf.len(), before);
                    return;
                }
            }
        }
        panic!("receive never stops");
    }

    /// The message over a limit, if that is where the model ends.
    fn over_limit(&self) -> Option<&Sent> {
        match self.events.last() {
            Some(Event::OverLimit(sent)) => Some(sent),
            _ => None,
        }
    }

    /// The peer's `index`th message, as far as the model knows (the one
    /// over a limit too: read in chunks, it begins).
    fn expected_at(&self, index: usize) -> Option<&Sent> {
        let mut found = self.expected.get(index);
        if found.is_none() && index == self.expected.len() {
            found = self.over_limit();
        }
        if found.is_none() {
            // Past an ambiguous limit the model no longer follows.
            assert!(
                matches!(self.events.last(), Some(Event::MaybeOverLimit(_))),
                "message {index} received: the peer sent no such message"
            );
        }
        found
    }

    fn on_event(&mut self, event: Received) {
        let index = self.received.len();
        match event {
            Received::Message(message) => {
                assert!(
                    matches!(self.in_state, InState::Idle | InState::Discarding),
                    "a whole message while {:?}",
                    self.in_state
                );
                self.in_state = InState::Idle;
                let got = Sent::of(&message);
                if let Message::Text(t) = &message {
                    assert!(std::str::from_utf8(t.as_bytes()).is_ok());
                }
                if self.pristine {
                    self.not_over_limit(index);
                    if let Some(expected) = self.expected_at(index) {
                        assert_eq!(expected, &got, "message {index} received");
                    }
                }
                self.received.push(GotMsg::Whole(got));
            }
            Received::MessageStart(kind) => {
                assert!(
                    matches!(self.in_state, InState::Requested),
                    "a message start while {:?}",
                    self.in_state
                );
                if self.pristine {
                    if let Some(expected) = self.expected_at(index) {
                        let text = matches!(expected, Sent::Text(_));
                        assert_eq!(kind == MessageKind::Text, text, "message {index}: kind");
                    }
                }
                self.in_state = InState::Streaming {
                    kind,
                    got: Vec::new(),
                    exact: true,
                };
            }
            Received::Chunk(chunk) => {
                assert!(!chunk.is_empty(), "an empty chunk");
                let InState::Streaming { kind, got, exact } = &mut self.in_state else {
                    panic!("a chunk outside a message ({:?})", self.in_state);
                };
                if *kind == MessageKind::Text {
                    assert!(
                        std::str::from_utf8(&chunk).is_ok(),
                        "a text chunk that is not UTF-8 on its own: {chunk:?}"
                    );
                }
                got.extend_from_slice(&chunk);
                let (kind, exact) = (*kind, *exact);
                if self.pristine && exact {
                    let got = sent_of(kind, got.clone());
                    if let Some(expected) = self.expected_at(index) {
                        assert!(
                            GotMsg::Prefix(got).matches(expected),
                            "message {index}: chunks are not a prefix of it"
                        );
                    }
                }
            }
            Received::MessageEnd => {
                let InState::Streaming { kind, got, exact } =
                    std::mem::replace(&mut self.in_state, InState::Idle)
                else {
                    panic!("a message end outside a message ({:?})", self.in_state);
                };
                let got = if exact {
                    GotMsg::Whole(sent_of(kind, got))
                } else {
                    GotMsg::Unknown
                };
                if self.pristine {
                    self.not_over_limit(index);
                    if let Some(expected) = self.expected_at(index) {
                        assert!(
                            got.matches(expected),
                            "message {index} read in chunks: {got:?}"
                        );
                    }
                }
                self.received.push(got);
            }
        }
    }

    /// The `index`th message arrived whole: it must not be over a limit.
    fn not_over_limit(&self, index: usize) {
        assert!(
            index < self.expected.len() || self.over_limit().is_none(),
            "message {index}, over a limit, arrived"
        );
    }

    /// `receive` went on with a message being read in chunks: it dropped
    /// whatever chunks came, and its end.
    fn dropped_chunks(&mut self) {
        let InState::Streaming { kind, got, exact } =
            std::mem::replace(&mut self.in_state, InState::Idle)
        else {
            unreachable!("not streaming");
        };
        // Still open (a failure inside it leaves it so), or over: a
        // failure after its end is the next message's.
        if self.conn.is_streaming_in() {
            self.in_state = InState::Streaming {
                kind,
                got,
                exact: false,
            };
        } else {
            self.received.push(if exact {
                GotMsg::Prefix(sent_of(kind, got))
            } else {
                GotMsg::Unknown
            });
        }
    }

    /// A message dropped part-way ends on its own; checks the state
    /// against the connection's.
    fn settle(&mut self) {
        let streaming = self.conn.is_streaming_in();
        match self.in_state {
            InState::Discarding if !streaming => self.in_state = InState::Idle,
            InState::Idle => assert!(!streaming, "streaming a message no one asked for"),
            InState::Streaming { .. } => assert!(
                streaming || self.conn.failure().is_some(),
                "a message read in chunks ended unreported"
            ),
            _ => {}
        }
    }

    fn stream_next(&mut self) {
        self.settle();
        self.conn.stream_next_message();
        if let InState::Idle = self.in_state {
            self.in_state = InState::Requested;
        }
        self.settle();
    }

    fn cancel_stream(&mut self) {
        self.settle();
        let streaming = self.conn.is_streaming_in();
        let withdrawn = self.conn.cancel_stream_request();
        trace!("  cancel_stream_request -> {withdrawn}");
        assert_eq!(withdrawn, !streaming, "cancel_stream_request() answer");
        if withdrawn {
            self.in_state = InState::Idle;
        }
        self.settle();
    }

    fn discard(&mut self) {
        self.settle();
        let streaming = self.conn.is_streaming_in();
        self.conn.discard_streamed_message();
        self.in_state = match std::mem::replace(&mut self.in_state, InState::Idle) {
            InState::Idle => InState::Idle,
            InState::Requested if streaming => {
                // Begun, not announced: consumed unseen.
                self.received.push(GotMsg::Unknown);
                InState::Discarding
            }
            InState::Requested => InState::Idle,
            InState::Streaming { kind, got, exact } => {
                self.received.push(if exact {
                    GotMsg::Prefix(sent_of(kind, got))
                } else {
                    GotMsg::Unknown
                });
                InState::Discarding
            }
            InState::Discarding => InState::Discarding,
        };
        self.settle();
    }

    /// Feeds the bytes the connection consumed to the shadow decoder.
    fn shadow(&mut self, closing_before: bool) {
        let consumed = self.delivered.len() - self.read_buf.len();
        let Some(shadow) = &mut self.shadow else {
            return;
        };
        self.shadow_buf
            .extend_from_slice(&self.delivered[self.shadow_fed..consumed]);
        self.shadow_fed = consumed;
        loop {
            match shadow.decode(&mut self.shadow_buf) {
                Ok(Some(frame)) => match frame.header.opcode {
                    OpCode::Ping if !closing_before => self.answerable.push(frame.payload),
                    OpCode::Pong => self.pongs_in.push(frame.payload),
                    OpCode::Close if !closing_before => {
                        if self.conn.close_received().is_some() && self.conn.failure().is_none() {
                            let body = self.conn.close_received().cloned().flatten();
                            self.close_reply_expected =
                                Some(body.map(|f| (f.code().as_u16(), String::new())));
                        }
                    }
                    _ => {}
                },
                Ok(None) => return,
                Err(_) => {
                    self.shadow = None;
                    return;
                }
            }
        }
    }

    fn check_state(&self) {
        let c = &self.conn;
        assert_eq!(
            c.wants_input(),
            c.close_received().is_none() && c.failure().is_none()
        );
        assert_eq!(c.is_closed(), c.close_sent() && !c.wants_input());
        if c.failure().is_some() || c.close_received().is_some() {
            assert!(
                c.close_sent(),
                "peer close or failure without our close frame"
            );
        }
        // Pongs are bounded: a ping flood cannot grow the queue.
        let own_left = self.own_pushed - self.own_written;
        assert!(
            c.buffered() <= own_left + 20 * CONTROL_FRAME,
            "{} bytes queued, {own_left} of them ours",
            c.buffered()
        );
    }

    fn take_pong(&mut self) {
        let got = self.conn.take_pong();
        let fresh = &self.pongs_in[self.pongs_taken..];
        if self.shadow.is_some() {
            assert_eq!(got.as_ref(), fresh.last(), "take_pong");
        }
        self.pongs_taken = self.pongs_in.len();
    }

    // ---- the end ----

    fn finish(mut self) {
        self.deliver(usize::MAX, false);
        self.drain_all();
        self.check_state();
        assert!(self.out_buf.is_empty() || self.close_out.is_none());
        assert!(self.conn.outgoing().is_empty());

        // Every message and ping we queued is on the wire, intact, in order.
        assert_eq!(
            self.out_data,
            self.sent_frames.len(),
            "data frames missing from the wire"
        );
        assert_eq!(self.out_pings, self.pings_sent.len(), "pings missing");
        assert!(self.out_buf.is_empty(), "a partial frame left unwritten");
        for (shared, original) in &self.shared {
            assert_eq!(&shared[..], &original[..], "a payload we hold was modified");
        }

        // Our close frame: there iff queued, and the right one.
        assert_eq!(self.close_out.is_some(), self.conn.close_sent());
        if let Some(ours) = &self.our_close {
            assert_eq!(self.close_out.as_ref(), Some(ours), "our close frame");
        } else if self.abandon_close {
            let code = self
                .close_out
                .as_ref()
                .and_then(|b| b.as_ref())
                .map(|b| b.0);
            assert_eq!(code, Some(1011), "the close after an abandoned message");
        } else if let (Some(err), false) = (&self.error, self.closed_before_error) {
            let code = self
                .close_out
                .as_ref()
                .and_then(|b| b.as_ref())
                .map(|b| b.0);
            assert_eq!(
                code,
                Some(err.close_code().as_u16()),
                "close code for {err}"
            );
        } else if let Some(reply) = &self.close_reply_expected {
            assert_eq!(self.close_out.as_ref(), Some(reply), "close reply");
        }

        // Pongs echo the peer's pings in order, and the last ping is answered.
        if self.shadow.is_some() {
            let mut pings = self.answerable.iter();
            for pong in &self.pongs_out {
                assert!(
                    pings.any(|p| p == pong),
                    "pong {pong:?} answers no ping, or out of order"
                );
            }
            if let Some(last) = self.answerable.last() {
                assert_eq!(self.pongs_out.last(), Some(last), "last ping not answered");
            }
        }

        // Well-formed traffic gives exactly what was sent.
        if self.pristine {
            let mut messages = Vec::new();
            let mut end = None;
            for event in &self.events {
                match event {
                    Event::Message(m) => messages.push(m.clone()),
                    other => {
                        end = Some(other.clone());
                        break;
                    }
                }
            }
            let all_matched = |received: &[GotMsg], messages: &[Sent]| {
                for (i, (got, sent)) in received.iter().zip(messages).enumerate() {
                    assert!(
                        got.matches(sent),
                        "message {i}: received {got:?}, sent {sent:?}"
                    );
                }
            };
            if let Some(Event::MaybeOverLimit(sent)) = &end {
                // Over one limit only: received, or failed with 1009.
                all_matched(&self.received, &messages);
                assert!(self.received.len() >= messages.len(), "messages lost");
                match self.received.get(messages.len()) {
                    Some(got) => assert!(got.matches(sent), "message over one limit: {got:?}"),
                    None => assert!(
                        matches!(self.error, Some(ProtocolError::MessageTooLarge { .. })),
                        "a message over one limit neither arrived nor failed: {:?}",
                        self.error
                    ),
                }
                assert!(
                    matches!(
                        self.error,
                        None | Some(
                            ProtocolError::FrameTooLarge { .. }
                                | ProtocolError::MessageTooLarge { .. }
                        )
                    ),
                    "error on good traffic: {:?}",
                    self.error
                );
                return;
            }
            let mut received = &self.received[..];
            if let (Some(Event::OverLimit(sent)), Some(last)) = (&end, received.last()) {
                if received.len() == messages.len() + 1 {
                    // Begun in chunks and discarded before it failed.
                    assert!(!matches!(last, GotMsg::Whole(_)), "over a limit, received");
                    assert!(last.matches(sent), "over a limit: {last:?}");
                    received = &received[..messages.len()];
                }
            }
            assert_eq!(
                received.len(),
                messages.len(),
                "messages received: {:?}",
                self.received
            );
            all_matched(received, &messages);
            if self.error.is_none() {
                assert!(
                    !matches!(self.in_state, InState::Streaming { .. }),
                    "a message read in chunks never ended"
                );
            }
            match end {
                None => {
                    assert!(
                        self.error.is_none(),
                        "error on good traffic: {:?}",
                        self.error
                    );
                    assert!(self.conn.close_received().is_none());
                }
                Some(Event::Close(body)) => {
                    assert!(
                        self.error.is_none(),
                        "error on good traffic: {:?}",
                        self.error
                    );
                    let got = self
                        .conn
                        .close_received()
                        .expect("peer close not seen")
                        .as_ref()
                        .map(|f| (f.code().as_u16(), f.reason().to_owned()));
                    assert_eq!(got, body, "peer close frame");
                }
                Some(Event::OverLimit(_)) => assert!(
                    matches!(
                        self.error,
                        Some(
                            ProtocolError::FrameTooLarge { .. }
                                | ProtocolError::MessageTooLarge { .. }
                        )
                    ),
                    "limit crossed, got {:?}",
                    self.error
                ),
                Some(Event::Message(_) | Event::MaybeOverLimit(_)) => unreachable!(),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let config = input.u8();
    let role = if config & 1 == 0 {
        Role::Client
    } else {
        Role::Server
    };
    let limits = LIMITS[usize::from(config >> 1) & 3];
    let streamed_limit = match (config >> 3) & 3 {
        0 => limits.1 as u64,
        1 => u64::MAX,
        2 => 100,
        _ => 2 * limits.1 as u64,
    };
    let mut h = Harness::new(role, limits, streamed_limit);
    trace!("role {role:?}, limits {limits:?}, streamed {streamed_limit}");
    while !input.is_empty() {
        let op = input.u8() % 22;
        trace!(
            "op {op}: close_sent {} failure {:?} buffered {}",
            h.conn.close_sent(),
            h.conn.failure(),
            h.conn.buffered()
        );
        match op {
            0 => {
                let text = input.text(80_000);
                h.send(Message::text(text), false);
            }
            1 => {
                let keep = input.bool();
                let payload = input.payload(80_000);
                h.send(Message::binary(payload), keep);
            }
            2 => {
                let payload = input.payload(200);
                h.ping(payload);
            }
            3 => {
                let frame = if input.u8() % 4 == 0 {
                    None
                } else {
                    let code = close_code(&mut input);
                    let reason = input.text(123);
                    Some(CloseFrame::new(code, reason).expect("short reason"))
                };
                h.close(frame);
            }
            4 | 5 => h.peer_message(&mut input),
            6 => {
                let f = h.peer_control(&mut input);
                h.peer_wire.extend_from_slice(&f);
            }
            7 => {
                // A burst of pings: pongs must coalesce.
                let n = 1 + input.below(64);
                let masked = h.peer_masks();
                for i in 0..n {
                    let f = frame(true, OpCode::Ping, key(&mut input, masked), &[i as u8]);
                    h.peer_wire.extend_from_slice(&f);
                }
            }
            8 => h.peer_close(&mut input),
            9 => {
                let n = input.below(32);
                let raw = input.bytes(n);
                h.peer_raw(raw);
            }
            10 => h.peer_broken(&mut input),
            // 11: `receive`; 12: `receive_event`.
            11 | 12 => {
                let n = match input.u8() {
                    0 => 0,
                    n @ 1..=199 => usize::from(n),
                    n => usize::from(n - 199) * 2048,
                };
                h.deliver(n, op == 12);
            }
            13 => {
                let n = input.u16() as usize;
                h.write_chunk(n);
            }
            14 => {
                let slots = 1 + input.below(64);
                let n = input.u16() as usize * 4;
                h.write_vectored(slots, n);
            }
            15 => h.take_pong(),
            16 => h.stream_next(),
            17 => h.cancel_stream(),
            18 => h.discard(),
            19 | 20 => {
                let kind = if input.bool() {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                let last = input.u8().is_multiple_of(4);
                let payload = match kind {
                    MessageKind::Text => input.text(20_000).into_bytes(),
                    MessageKind::Binary => input.payload(20_000),
                };
                h.send_fragment(kind, payload, last);
            }
            _ => h.abandon(),
        }
    }
    h.finish();
});
