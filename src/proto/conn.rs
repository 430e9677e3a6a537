//! The connection state machine: message reassembly, UTF-8 and size checks,
//! pings and pongs, and the close handshake. It reads frames from a
//! `BytesMut` and queues everything it must send (user messages, pongs,
//! close replies) in an [`OutQueue`]; moving bytes is the caller's job.

use std::collections::VecDeque;
use std::io;

use bytes::{BufMut, Bytes, BytesMut};

use super::decode::{Frame, FrameDecoder};
#[cfg(feature = "deflate")]
use super::deflate::{InflateError, MessageDeflate};
use super::error::ProtocolError;
use super::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, RSV1};
use super::mask::MaskKeys;
use super::message::{CloseCode, CloseFrame, Message, Utf8Bytes};
use super::outqueue::OutQueue;
use super::Role;

mod incoming;
mod prepared_out;
mod streamed_in;
mod streamed_out;

use incoming::{Incoming, MessageChecks};
pub use streamed_in::Received;
use streamed_in::StreamedIn;
use streamed_out::Sending;

/// Size limits on what the peer may send. Crossing one fails the connection
/// with close code 1009.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest frame payload accepted (default 16 MiB).
    pub max_frame_size: usize,
    /// The largest message accepted, all fragments together (default 64 MiB).
    pub max_message_size: usize,
    /// The largest message accepted when it is read in chunks
    /// ([`Connection::stream_next_message`]), which never holds it whole
    /// (default: no limit). `max_message_size` does not apply to it;
    /// `max_frame_size` does, to each of its frames.
    pub max_streamed_message_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_streamed_message_size: u64::MAX,
        }
    }
}

/// Pongs queued but not yet written, beyond which further pings are answered
/// by one coalesced pong (for the latest ping) once the queue drains.
const MAX_QUEUED_PONGS: usize = 16;

/// Why a message could not be queued.
#[derive(Debug)]
pub enum SendError {
    /// A close frame has been queued already; nothing may follow it.
    Closing,
    /// A control frame payload was longer than 125 bytes.
    ControlTooLong,
    /// The operating system gave no randomness for the masking key.
    Random(io::Error),
}

/// What a connection holds of pings, pongs and its end.
#[derive(Debug, Default)]
struct ControlState {
    /// Stream positions at which queued pongs end.
    queued_pongs: VecDeque<u64>,
    /// The payload of the latest ping not yet answered because too many
    /// pongs were queued.
    pending_pong: Option<Bytes>,
    /// The payload of the keepalive ping whose pong is awaited.
    awaited_pong: Option<Bytes>,
    close_received: Option<Option<CloseFrame>>,
    /// The close frame we sent (`Some(None)` when it had no body).
    close_sent: Option<Option<CloseFrame>>,
    failure: Option<ProtocolError>,
}

impl ControlState {
    fn is_idle(&self) -> bool {
        self.queued_pongs.is_empty()
            && self.pending_pong.is_none()
            && self.awaited_pong.is_none()
            && self.close_received.is_none()
            && self.close_sent.is_none()
            && self.failure.is_none()
    }
}

/// One WebSocket connection, without I/O.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    limits: Limits,
    decoder: FrameDecoder,
    incoming: Incoming,
    out: OutQueue,
    keys: MaskKeys,
    /// Pings, pongs, the peer's close and a failure: boxed, and only
    /// while any is in play, since most of a connection's life (and every
    /// idle connection's) needs none of it.
    control: Option<Box<ControlState>>,
    close_sent: bool,
    /// Where the last queued control frame ends: until it is written, the
    /// queue should be flushed without waiting for the writer.
    urgent_end: u64,
    /// The payload of the latest pong received, until taken.
    pong: Option<Bytes>,
    /// permessage-deflate, when negotiated.
    #[cfg(feature = "deflate")]
    deflate: Option<Box<MessageDeflate>>,
    /// A message read in chunks.
    stream_in: Option<Box<StreamedIn>>,
    /// A message being sent in fragments.
    sending: Option<Sending>,
}

impl Connection {
    /// A connection for the endpoint of `role`.
    pub fn new(role: Role, limits: Limits) -> Self {
        Self {
            role,
            limits,
            decoder: FrameDecoder::new(role, limits.max_frame_size),
            incoming: Incoming::default(),
            out: OutQueue::default(),
            keys: MaskKeys,
            control: None,
            close_sent: false,
            urgent_end: 0,
            pong: None,
            #[cfg(feature = "deflate")]
            deflate: None,
            stream_in: None,
            sending: None,
        }
    }

    /// Turns on permessage-deflate with the negotiated `params`; `config`
    /// gives the compression level and the size below which messages go
    /// uncompressed. RSV1 is accepted on the first frame of a message from
    /// then on.
    #[cfg(feature = "deflate")]
    pub fn enable_deflate(
        &mut self,
        params: &crate::handshake::DeflateParams,
        config: &crate::handshake::DeflateConfig,
    ) {
        self.decoder.allow_rsv(RSV1);
        self.deflate = Some(Box::new(MessageDeflate::new(
            self.role,
            params,
            config.level,
            config.threshold,
        )));
    }

    /// This endpoint's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The limits on what the peer may send.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Consumes frames from `buf` until a whole message is ready or `buf`
    /// holds no whole frame. Pings queue pongs; a close frame queues the
    /// reply. Once the peer's close has arrived, or the connection has
    /// failed, nothing more is read and this returns `Ok(None)`.
    ///
    /// A protocol error queues a close frame with the matching code (unless
    /// one was sent already) and is returned once; the connection is failed
    /// from then on.
    ///
    /// A message read in chunks ([`stream_next_message`](Self::stream_next_message))
    /// is reported only by [`receive_event`](Self::receive_event); here its
    /// chunks are read and dropped.
    pub fn receive(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        if self.stream_requested() || self.incoming.streamed {
            while let Some(event) = self.receive_event(buf)? {
                if let Received::Message(message) = event {
                    return Ok(Some(message));
                }
            }
            return Ok(None);
        }
        self.receive_whole(buf)
    }

    /// What the next frames bring: a whole message, or the start, a chunk
    /// or the end of a message read in chunks. Otherwise as
    /// [`receive`](Self::receive).
    pub fn receive_event(&mut self, buf: &mut BytesMut) -> Result<Option<Received>, ProtocolError> {
        if !self.stream_requested() && !self.incoming.streamed {
            // Checked before the call too: the reader asks before every
            // read, and this spares it the call and the result's moves.
            if self.nothing_to_decode(buf) {
                return Ok(None);
            }
            return Ok(self.receive_whole(buf)?.map(Received::Message));
        }
        self.receive_streamed(buf).map_err(|err| self.fail(err))
    }

    /// Handles the well-formed control frames at the front of `buf`
    /// (answering pings, taking the peer's close) and stops at anything
    /// else: a data frame, or a frame that would fail, is left in `buf`
    /// untouched for [`receive`](Self::receive) to judge in its turn. For
    /// a writer that must answer pings while no one reads: it takes nothing
    /// out of order and fails nothing early. Returns `true` when it stopped
    /// at such a frame, `false` when it wants more bytes.
    pub fn receive_control(&mut self, buf: &mut BytesMut) -> bool {
        while self.wants_input() {
            let control = match self.decoder.partial_header() {
                Some(header) => header.opcode.is_control(),
                None => match FrameHeader::parse(buf) {
                    Ok(Some((header, _))) => header.opcode.is_control(),
                    Ok(None) => return false,
                    Err(_) => return true,
                },
            };
            if !control {
                return true;
            }
            let mut checks = MessageChecks {
                incoming: &mut self.incoming,
                max_message_size: self.limits.max_message_size,
                streamed_limit: None,
            };
            // A frame that fails its checks is not consumed: the reader
            // judges it when it gets there.
            let frame = match self.decoder.decode_observed(buf, &mut checks) {
                Ok(Some(frame)) => frame,
                Ok(None) => return false,
                Err(_) => return true,
            };
            if let Err(err) = self.on_frame(frame) {
                // A bad close frame: it was the peer's last word anyway.
                self.fail(err);
                return true;
            }
        }
        false
    }

    /// No byte waits and no frame is in progress: what a reader finds
    /// before every read. Reading a whole message then yields nothing.
    #[inline]
    fn nothing_to_decode(&self, buf: &BytesMut) -> bool {
        buf.is_empty() && self.decoder.partial_header().is_none()
    }

    fn receive_whole(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        if self.nothing_to_decode(buf) {
            return Ok(None);
        }
        while self.wants_input() {
            let mut checks = MessageChecks {
                incoming: &mut self.incoming,
                max_message_size: self.limits.max_message_size,
                streamed_limit: None,
            };
            let frame = match self.decoder.decode_observed(buf, &mut checks) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(None),
                Err(err) => return Err(self.fail(err)),
            };
            match self.on_frame(frame) {
                Ok(Some(message)) => return Ok(Some(message)),
                Ok(None) => {}
                Err(err) => return Err(self.fail(err)),
            }
        }
        Ok(None)
    }

    fn on_frame(&mut self, frame: Frame) -> Result<Option<Message>, ProtocolError> {
        let Frame { header, payload } = frame;
        match header.opcode {
            // A whole message in one frame, the common case: no state to
            // keep (its UTF-8 was checked as it arrived).
            OpCode::Text if header.fin && header.rsv & RSV1 == 0 => {
                self.incoming
                    .utf8
                    .finish()
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
                return Ok(Some(Message::Text(Utf8Bytes::from_validated(payload))));
            }
            OpCode::Binary if header.fin && header.rsv & RSV1 == 0 => {
                return Ok(Some(Message::Binary(payload)));
            }
            OpCode::Text | OpCode::Binary => {
                let text = header.opcode == OpCode::Text;
                if header.rsv & RSV1 != 0 {
                    self.incoming.start_compressed(text);
                    self.inflate(&payload, header.fin)?;
                } else {
                    self.incoming.start(text, payload);
                }
            }
            OpCode::Continuation if self.incoming.compressed => {
                self.inflate(&payload, header.fin)?;
            }
            OpCode::Continuation => self.incoming.push(payload),
            OpCode::Ping => {
                if !self.close_sent {
                    self.control_mut().pending_pong = Some(payload);
                    self.queue_pending_pong();
                }
                return Ok(None);
            }
            OpCode::Pong => {
                // Checked here, pong by pong: one read can hold the
                // matching pong and unsolicited ones after it.
                if let Some(control) = self.control.as_mut() {
                    if control.awaited_pong.as_ref() == Some(&payload) {
                        control.awaited_pong = None;
                        self.release_control();
                    }
                }
                self.pong = Some(payload);
                return Ok(None);
            }
            OpCode::Close => {
                let close = parse_close(&payload)?;
                if !self.close_sent {
                    // Echo the code, as peers expect (RFC 6455 §5.5.1).
                    let reply = close
                        .as_ref()
                        .map(|c| CloseFrame::from_parts(c.code(), Utf8Bytes::default()));
                    self.queue_close(reply.as_ref());
                }
                self.control_mut().close_received = Some(close);
                return Ok(None);
            }
        }
        if header.fin {
            self.incoming.finish().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Inflates a frame of a compressed message onto the message, under
    /// the message size limit, validating text as it comes out.
    #[cfg(feature = "deflate")]
    fn inflate(&mut self, payload: &[u8], fin: bool) -> Result<(), ProtocolError> {
        let limit = self.limits.max_message_size;
        // RSV1 is accepted only once deflate is on, so it is here.
        let deflate = self
            .deflate
            .as_mut()
            .ok_or(ProtocolError::ReservedBits(RSV1))?;
        let incoming = &mut self.incoming;
        let before = incoming.inflated.len();
        deflate
            .inflate(payload, fin, &mut incoming.inflated, limit)
            .map_err(|err| match err {
                InflateError::TooLarge { size } => ProtocolError::MessageTooLarge { size, limit },
                InflateError::Corrupt => ProtocolError::InvalidCompressedData,
            })?;
        incoming.size = incoming.inflated.len() as u64;
        if incoming.text == Some(true) {
            incoming
                .utf8
                .feed(&incoming.inflated[before..])
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(())
    }

    #[cfg(not(feature = "deflate"))]
    fn inflate(&mut self, _payload: &[u8], _fin: bool) -> Result<(), ProtocolError> {
        Err(ProtocolError::ReservedBits(RSV1))
    }

    /// Queues a message, compressed if permessage-deflate is on and the
    /// message is not below its threshold. Fails once a close frame has
    /// been queued.
    ///
    /// Sending a message while one is being sent in fragments would put it
    /// inside that one: the fragmented message is abandoned instead
    /// ([`abandon_message`](Self::abandon_message)) and this fails.
    pub fn send(&mut self, message: Message) -> Result<(), SendError> {
        if self.sending.is_some() {
            self.abandon_message();
            return Err(SendError::Closing);
        }
        let opcode = match message {
            Message::Text(_) => OpCode::Text,
            Message::Binary(_) => OpCode::Binary,
        };
        let payload = message.into_payload();
        #[cfg(feature = "deflate")]
        if let Some(deflate) = self.deflate.as_mut() {
            if self.close_sent {
                return Err(SendError::Closing);
            }
            if deflate.should_compress(payload.len()) {
                if let Some(compressed) = deflate.compress(&payload) {
                    return self
                        .push(opcode, RSV1, true, compressed)
                        .map_err(SendError::Random);
                }
            }
        }
        self.send_frame(opcode, payload)
    }

    /// Queues a ping.
    pub fn send_ping(&mut self, payload: Bytes) -> Result<(), SendError> {
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlTooLong);
        }
        self.send_frame(OpCode::Ping, payload)
    }

    /// Queues a ping whose pong is awaited:
    /// [`awaiting_pong`](Self::awaiting_pong) stays `true` until a pong
    /// with the same payload arrives, whatever other pongs (unsolicited
    /// ones, RFC 6455 §5.5.3) come before or after it. A later call
    /// replaces the awaited payload.
    pub fn send_keepalive_ping(&mut self, payload: Bytes) -> Result<(), SendError> {
        self.send_ping(payload.clone())?;
        self.control_mut().awaited_pong = Some(payload);
        Ok(())
    }

    /// Whether the pong for the last
    /// [`send_keepalive_ping`](Self::send_keepalive_ping) is still awaited.
    pub fn awaiting_pong(&self) -> bool {
        self.control
            .as_ref()
            .is_some_and(|c| c.awaited_pong.is_some())
    }

    /// The payload of the latest pong the peer sent since the last call.
    /// Earlier pongs of the same read are not kept: to wait for the answer
    /// to a ping, use [`send_keepalive_ping`](Self::send_keepalive_ping).
    pub fn take_pong(&mut self) -> Option<Bytes> {
        self.pong.take()
    }

    /// Starts the close handshake: queues a close frame (with no body when
    /// `frame` is `None`). Returns `false`, queuing nothing, if a close frame
    /// was queued already or the connection has failed.
    pub fn close(&mut self, frame: Option<&CloseFrame>) -> bool {
        if self.close_sent || self.failure().is_some() {
            return false;
        }
        self.queue_close(frame);
        true
    }

    /// The bytes to write, in order. Advance it by what was written.
    pub fn outgoing(&mut self) -> &mut OutQueue {
        self.queue_pending_pong();
        &mut self.out
    }

    /// Bytes queued and not yet written.
    pub fn buffered(&self) -> usize {
        self.out.len()
    }

    /// Whether a control frame (pong, ping, close) waits to be written: the
    /// reader should flush rather than leave it to the writer's batching.
    pub fn has_urgent(&self) -> bool {
        self.out.consumed_position() < self.urgent_end
            || self
                .control
                .as_ref()
                .is_some_and(|c| c.pending_pong.is_some())
    }

    /// Whether a close frame has been queued (by us, as initiator or reply).
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// The peer's close frame, once it arrived (`Some(None)` when it had no
    /// body).
    pub fn close_received(&self) -> Option<&Option<CloseFrame>> {
        self.control.as_ref()?.close_received.as_ref()
    }

    /// The close frame we queued, once we did (`Some(None)` when it had no
    /// body): as initiator, as the reply to the peer's, or for a failure.
    pub fn close_frame_sent(&self) -> Option<&Option<CloseFrame>> {
        self.control.as_ref()?.close_sent.as_ref()
    }

    /// The protocol error that failed the connection.
    pub fn failure(&self) -> Option<&ProtocolError> {
        self.control.as_ref()?.failure.as_ref()
    }

    /// Whether incoming bytes still matter: neither the peer's close has
    /// arrived nor has the connection failed.
    pub fn wants_input(&self) -> bool {
        self.control
            .as_ref()
            .is_none_or(|c| c.close_received.is_none() && c.failure.is_none())
    }

    /// Whether the close handshake is over (both close frames exchanged, or
    /// the connection failed and our close frame is queued): once the queue
    /// is written, the transport may be shut down.
    pub fn is_closed(&self) -> bool {
        self.close_sent && !self.wants_input()
    }

    fn send_frame(&mut self, opcode: OpCode, payload: Bytes) -> Result<(), SendError> {
        if self.close_sent {
            return Err(SendError::Closing);
        }
        self.push(opcode, 0, true, payload)
            .map_err(SendError::Random)
    }

    fn push(&mut self, opcode: OpCode, rsv: u8, fin: bool, payload: Bytes) -> io::Result<()> {
        let mask = match self.role {
            Role::Client => Some(self.keys.next_key()?),
            Role::Server => None,
        };
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        self.out.push_frame(&header, payload);
        if opcode.is_control() {
            self.urgent_end = self.out.pushed_position();
        }
        Ok(())
    }

    fn queue_pending_pong(&mut self) {
        let written = self.out.consumed_position();
        let close_sent = self.close_sent;
        let Some(control) = self.control.as_mut() else {
            return;
        };
        while control
            .queued_pongs
            .front()
            .is_some_and(|&end| end <= written)
        {
            control.queued_pongs.pop_front();
        }
        if control.queued_pongs.len() < MAX_QUEUED_PONGS && !close_sent {
            if let Some(payload) = control.pending_pong.take() {
                // A failed key draw leaves the pong unsent; the next I/O
                // error or close ends the connection anyway.
                if self.push(OpCode::Pong, 0, true, payload).is_ok() {
                    let end = self.out.pushed_position();
                    self.control_mut().queued_pongs.push_back(end);
                }
            }
        }
        self.release_control();
    }

    fn control_mut(&mut self) -> &mut ControlState {
        self.control.get_or_insert_with(Box::default)
    }

    /// Frees the control state once nothing in it is in play.
    fn release_control(&mut self) {
        if self.control.as_ref().is_some_and(|c| c.is_idle()) {
            self.control = None;
        }
    }

    fn queue_close(&mut self, frame: Option<&CloseFrame>) {
        // Answer the last ping before the close: nothing may follow it.
        if let Some(payload) = self.control.as_mut().and_then(|c| c.pending_pong.take()) {
            let _ = self.push(OpCode::Pong, 0, true, payload);
        }
        let mut body = BytesMut::new();
        if let Some(frame) = frame {
            body.put_u16(frame.code().as_u16());
            body.put_slice(frame.reason().as_bytes());
        }
        // Without a masking key the close cannot be sent; the connection is
        // over either way.
        let _ = self.push(OpCode::Close, 0, true, body.freeze());
        self.close_sent = true;
        self.control_mut().close_sent = Some(frame.cloned());
        // Nothing follows a close frame: a message being sent in fragments
        // stays unfinished, and the peer drops it.
        self.sending = None;
    }

    /// Fails the connection with `err`: queues the close frame with its
    /// code (unless one was sent) and reads nothing more. The layer above
    /// uses it for a limit it enforces itself.
    pub(crate) fn fail(&mut self, err: ProtocolError) -> ProtocolError {
        if self.failure().is_none() {
            self.control_mut().failure = Some(err.clone());
            if !self.close_sent {
                let frame = CloseFrame::truncated(err.close_code(), &err.to_string());
                self.queue_close(Some(&frame));
            }
            self.control_mut().pending_pong = None;
            self.incoming = Incoming::default();
            self.stream_in = None;
        }
        err
    }
}

/// Parses and checks a close frame's body.
fn parse_close(payload: &Bytes) -> Result<Option<CloseFrame>, ProtocolError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(ProtocolError::InvalidClosePayload),
        _ => {
            let raw = u16::from_be_bytes([payload[0], payload[1]]);
            let code = CloseCode::new(raw).ok_or(ProtocolError::InvalidCloseCode(raw))?;
            let reason =
                Utf8Bytes::try_from(payload.slice(2..)).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Some(CloseFrame::from_parts(code, reason)))
        }
    }
}
