//! Reading a message in chunks, as its bytes arrive, without ever holding
//! it whole: the payload of each frame is handed out piece by piece
//! ([`FrameDecoder::decode_piece`](crate::proto::FrameDecoder::decode_piece)),
//! a compressed message is inflated a bounded chunk at a time, and text is
//! cut on character boundaries and validated as it goes, so an invalid byte
//! fails the message after every valid byte before it was handed out.

use bytes::{Bytes, BytesMut};

use super::incoming::MessageChecks;
use super::Connection;
use crate::proto::decode::Frame;
use crate::proto::error::ProtocolError;
use crate::proto::frame::OpCode;
use crate::proto::message::{Message, MessageKind};
use crate::proto::utf8::TextChunker;

/// Inflated bytes per chunk, at most: what one chunk of a compressed
/// message can hold, however well it compresses.
#[cfg(feature = "deflate")]
const INFLATE_CHUNK: usize = 64 * 1024;

/// What [`Connection::receive_event`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A whole message.
    Message(Message),
    /// A message read in chunks begins; its chunks follow.
    MessageStart(MessageKind),
    /// The next chunk of the message read in chunks: never empty; for text,
    /// valid UTF-8 on its own.
    Chunk(Bytes),
    /// The message read in chunks is complete.
    MessageEnd,
}

/// The state of a message read in chunks.
#[derive(Debug, Default)]
pub(super) struct StreamedIn {
    /// The next message, or the one in progress, is to be read in chunks.
    pub(super) requested: bool,
    /// Its start has been reported.
    announced: bool,
    /// The rest of it is read and checked but not reported.
    discarding: bool,
    /// Payload ready to hand out (through the chunker, for text).
    plain: Bytes,
    /// Payload of a compressed message not yet inflated.
    compressed: Bytes,
    /// The message's final frame is off the buffer.
    final_frame: bool,
    /// All of a compressed message is inflated.
    inflated_all: bool,
    text: TextChunker,
    /// An error found after valid bytes, which are handed out first.
    deferred: Option<ProtocolError>,
}

impl Connection {
    /// Has the next message, or the one being read, read in chunks:
    /// [`receive_event`](Self::receive_event) reports its start, then its
    /// payload as it arrives, then its end. It is not bounded by
    /// `max_message_size` but by `max_streamed_message_size`. A message
    /// partly reassembled already is handed out from where it is.
    pub fn stream_next_message(&mut self) {
        // Nothing more is read once the peer's close arrived or the
        // connection failed (a frame left half-read in the decoder stays so).
        if self.stream_requested() || self.incoming.streamed || !self.wants_input() {
            return;
        }
        slot(&mut self.stream_in).requested = true;
        // The message's first frame may have begun in the decoder before
        // reassembly did (its header and part of its payload read).
        let first_frame = self
            .decoder
            .partial_header()
            .filter(|header| matches!(header.opcode, OpCode::Text | OpCode::Binary))
            .map(|header| header.opcode == OpCode::Text);
        if self.incoming.text.is_some() || first_frame.is_some() {
            // Reassembly had begun: what it holds is the first chunk (the
            // decoder hands out the rest of a frame it is in, from the
            // start of what it still holds).
            let held = std::mem::take(&mut self.incoming);
            self.incoming.text = held.text.or(first_frame);
            self.incoming.compressed = held.compressed;
            self.incoming.size = held.size;
            self.incoming.streamed = true;
            slot(&mut self.stream_in).plain = held.take_payload();
        }
    }

    /// Withdraws [`stream_next_message`](Self::stream_next_message) if that
    /// message has not begun; `false` if it has, and is read in chunks.
    pub fn cancel_stream_request(&mut self) -> bool {
        if self.incoming.streamed {
            return false;
        }
        // Nothing of a message is held before it begins.
        self.stream_in = None;
        true
    }

    /// Drops the rest of the message being read in chunks: it is still read
    /// and checked (its text validated, its compression followed), but
    /// nothing more of it is reported, not even its end.
    pub fn discard_streamed_message(&mut self) {
        if self.incoming.streamed {
            slot(&mut self.stream_in).discarding = true;
        } else {
            self.stream_in = None;
        }
    }

    /// Whether a message is being read in chunks.
    pub fn is_streaming_in(&self) -> bool {
        self.incoming.streamed
    }

    pub(super) fn receive_streamed(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<Received>, ProtocolError> {
        loop {
            if let Some(err) = self.stream_in.as_mut().and_then(|s| s.deferred.take()) {
                return Err(err);
            }
            if !self.stream_requested() && !self.incoming.streamed {
                // The message is over (discarded): the next is read whole.
                return Ok(self.receive_whole(buf)?.map(Received::Message));
            }
            let text = self.incoming.text == Some(true);
            let s = slot(&mut self.stream_in);
            if self.incoming.streamed && !s.announced {
                s.announced = true;
                let kind = if text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                if !s.discarding {
                    return Ok(Some(Received::MessageStart(kind)));
                }
            }
            if !s.plain.is_empty() {
                let chunk = if text {
                    match s.text.next_chunk(&mut s.plain) {
                        Ok(Some(chunk)) => chunk,
                        Ok(None) => continue,
                        Err(valid) => {
                            s.plain = Bytes::new();
                            s.deferred = Some(ProtocolError::InvalidUtf8);
                            valid
                        }
                    }
                } else {
                    std::mem::take(&mut s.plain)
                };
                if s.discarding || chunk.is_empty() {
                    continue;
                }
                return Ok(Some(Received::Chunk(chunk)));
            }
            let compressed = self.incoming.compressed;
            if compressed && !s.inflated_all && (!s.compressed.is_empty() || s.final_frame) {
                self.inflate_chunk()?;
                continue;
            }
            if s.final_frame && (!compressed || s.inflated_all) {
                let discarding = s.discarding;
                let complete = if text { s.text.finish() } else { Ok(()) };
                self.end_streamed();
                complete.map_err(|_| ProtocolError::InvalidUtf8)?;
                if discarding {
                    continue;
                }
                return Ok(Some(Received::MessageEnd));
            }
            if !self.wants_input() {
                return Ok(None);
            }
            if !self.take_piece(buf)? {
                return Ok(None);
            }
        }
    }

    /// Takes the next piece of a frame off `buf`: a control frame is
    /// handled, a data frame's payload is kept for handing out. `false`
    /// when `buf` has nothing new.
    fn take_piece(&mut self, buf: &mut BytesMut) -> Result<bool, ProtocolError> {
        let mut checks = MessageChecks {
            incoming: &mut self.incoming,
            max_message_size: self.limits.max_message_size,
            streamed_limit: self
                .stream_in
                .as_ref()
                .is_some_and(|s| s.requested)
                .then_some(self.limits.max_streamed_message_size),
        };
        let Some(piece) = self.decoder.decode_piece(buf, &mut checks)? else {
            return Ok(false);
        };
        let header = piece.header;
        if header.opcode.is_control() {
            // Control frames come whole and leave the message as it is.
            self.on_frame(Frame {
                header,
                payload: piece.payload,
            })?;
            return Ok(true);
        }
        if piece.first && header.opcode != OpCode::Continuation {
            self.incoming.text = Some(header.opcode == OpCode::Text);
            self.incoming.size = 0;
        }
        let s = slot(&mut self.stream_in);
        s.final_frame = piece.last && header.fin;
        if self.incoming.compressed {
            s.compressed = piece.payload;
        } else {
            self.incoming.size += piece.payload.len() as u64;
            s.plain = piece.payload;
        }
        Ok(true)
    }

    /// Inflates the next chunk of a compressed message, under the streamed
    /// limit.
    #[cfg(feature = "deflate")]
    fn inflate_chunk(&mut self) -> Result<(), ProtocolError> {
        use bytes::Buf;

        use crate::proto::deflate::InflateError;
        use crate::proto::frame::RSV1;

        let s = slot(&mut self.stream_in);
        let deflate = self
            .deflate
            .as_mut()
            .ok_or(ProtocolError::ReservedBits(RSV1))?;
        let mut out = Vec::with_capacity(INFLATE_CHUNK);
        let (consumed, complete) = deflate
            .inflate_part(&s.compressed, s.final_frame, &mut out)
            .map_err(|err| match err {
                InflateError::TooLarge { .. } | InflateError::Corrupt => {
                    ProtocolError::InvalidCompressedData
                }
            })?;
        s.compressed.advance(consumed);
        s.inflated_all = complete;
        self.incoming.size += out.len() as u64;
        let limit = self.limits.max_streamed_message_size;
        if self.incoming.size > limit {
            return Err(ProtocolError::MessageTooLarge {
                size: self.incoming.size,
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            });
        }
        s.plain = Bytes::from(out);
        Ok(())
    }

    #[cfg(not(feature = "deflate"))]
    fn inflate_chunk(&mut self) -> Result<(), ProtocolError> {
        Err(ProtocolError::ReservedBits(crate::proto::frame::RSV1))
    }

    /// The message read in chunks is over: the next one is read whole
    /// unless asked for again.
    fn end_streamed(&mut self) {
        self.incoming.text = None;
        self.incoming.streamed = false;
        self.incoming.compressed = false;
        self.incoming.size = 0;
        self.stream_in = None;
    }

    /// Whether the next message, or the one being read, is to be read in
    /// chunks.
    pub(super) fn stream_requested(&self) -> bool {
        self.stream_in.as_ref().is_some_and(|s| s.requested)
    }
}

/// The state of a message read in chunks, made on first use. It lives in
/// a box only while such a message is asked for or read: a connection that
/// never streams (or is idle between messages) holds none.
fn slot(state: &mut Option<Box<StreamedIn>>) -> &mut StreamedIn {
    state.get_or_insert_with(Box::default)
}
