//! The message being read: its reassembly when it is read whole, and the
//! checks every frame gets against it as soon as its header and payload
//! pieces arrive.

use bytes::{BufMut, Bytes, BytesMut};

use crate::proto::decode::FrameObserver;
use crate::proto::error::ProtocolError;
use crate::proto::frame::{FrameHeader, OpCode, RSV1};
use crate::proto::message::{Message, Utf8Bytes};
use crate::proto::utf8::Utf8Validator;

/// The message being reassembled.
#[derive(Debug, Default)]
pub(super) struct Incoming {
    /// `Some(true)` while a text message is in progress, `Some(false)` for binary.
    pub(super) text: Option<bool>,
    /// The message is read in chunks (see `streamed_in`), not reassembled:
    /// its limit is the streamed one, and its text is checked as it is
    /// handed out.
    pub(super) streamed: bool,
    /// The first fragment, kept as is in case it is the only one.
    first: Option<Bytes>,
    /// The fragments joined, once there is more than one.
    joined: BytesMut,
    /// The payload size so far (inflated, for a compressed message).
    pub(super) size: u64,
    pub(super) utf8: Utf8Validator,
    /// The message is compressed: frames are inflated onto `inflated`.
    pub(super) compressed: bool,
    pub(super) inflated: Vec<u8>,
}

impl Incoming {
    pub(super) fn start(&mut self, text: bool, payload: Bytes) {
        self.text = Some(text);
        self.size = payload.len() as u64;
        self.first = Some(payload);
    }

    pub(super) fn start_compressed(&mut self, text: bool) {
        self.text = Some(text);
        self.size = 0;
        self.compressed = true;
    }

    pub(super) fn push(&mut self, payload: Bytes) {
        if payload.is_empty() {
            return;
        }
        self.size += payload.len() as u64;
        if let Some(first) = self.first.take() {
            self.joined.reserve(first.len() + payload.len());
            self.joined.put_slice(&first);
        }
        self.joined.put_slice(&payload);
    }

    /// The payload reassembled so far, for a message that goes on being
    /// read in chunks.
    pub(super) fn take_payload(self) -> Bytes {
        match self.first {
            Some(first) => first,
            None if self.compressed => Bytes::from(self.inflated),
            None => self.joined.freeze(),
        }
    }

    pub(super) fn finish(&mut self) -> Result<Message, ProtocolError> {
        let text = self.text.take();
        let payload = match self.first.take() {
            Some(first) => first,
            None if self.compressed => Bytes::from(std::mem::take(&mut self.inflated)),
            None => self.joined.split().freeze(),
        };
        self.compressed = false;
        self.size = 0;
        self.streamed = false;
        if text == Some(true) {
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Message::Text(Utf8Bytes::from_validated(payload)))
        } else {
            Ok(Message::Binary(payload))
        }
    }
}

/// Checks each frame against the message in progress as soon as its header
/// and payload pieces arrive.
pub(super) struct MessageChecks<'a> {
    pub(super) incoming: &'a mut Incoming,
    pub(super) max_message_size: usize,
    /// The streamed limit, when the next message is to be streamed.
    pub(super) streamed_limit: Option<u64>,
}

impl FrameObserver for MessageChecks<'_> {
    fn header(&mut self, header: &FrameHeader) -> Result<(), ProtocolError> {
        let compressed = header.rsv & RSV1 != 0;
        if compressed && !matches!(header.opcode, OpCode::Text | OpCode::Binary) {
            return Err(ProtocolError::MisplacedCompressionBit);
        }
        let size = match header.opcode {
            OpCode::Text | OpCode::Binary if self.incoming.text.is_some() => {
                return Err(ProtocolError::ExpectedContinuation)
            }
            OpCode::Text | OpCode::Binary if self.streamed_limit.is_some() => {
                self.incoming.streamed = true;
                self.incoming.compressed = compressed;
                if compressed {
                    return Ok(());
                }
                header.payload_len
            }
            // The limit applies to the inflated size, checked as it grows.
            OpCode::Text | OpCode::Binary if compressed => {
                self.incoming.compressed = true;
                return Ok(());
            }
            OpCode::Text | OpCode::Binary => {
                self.incoming.compressed = false;
                header.payload_len
            }
            OpCode::Continuation if self.incoming.text.is_none() => {
                return Err(ProtocolError::UnexpectedContinuation)
            }
            OpCode::Continuation if self.incoming.compressed => return Ok(()),
            OpCode::Continuation => self.incoming.size + header.payload_len,
            _ => return Ok(()),
        };
        let limit = match self.streamed_limit {
            Some(limit) if self.incoming.streamed => limit,
            _ => self.max_message_size as u64,
        };
        if size > limit {
            return Err(ProtocolError::MessageTooLarge {
                size,
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            });
        }
        Ok(())
    }

    fn payload(&mut self, header: &FrameHeader, piece: &[u8]) -> Result<(), ProtocolError> {
        let text = match header.opcode {
            OpCode::Text => true,
            OpCode::Continuation => self.incoming.text == Some(true),
            _ => false,
        };
        // Compressed text is validated as it inflates, streamed text as it
        // is handed out.
        if text && !self.incoming.compressed && !self.incoming.streamed {
            self.incoming
                .utf8
                .feed(piece)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(())
    }
}
