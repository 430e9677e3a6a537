//! Sending one message in fragments, as its data becomes available: the
//! first frame carries the message's opcode (and, compressed, RSV1), the
//! rest are continuations, and the last has FIN. Control frames may go
//! between them; another data message may not.

use bytes::Bytes;

use super::{Connection, SendError};
use crate::proto::frame::OpCode;
use crate::proto::message::{CloseCode, CloseFrame, MessageKind};

/// A message being sent in fragments.
#[derive(Debug)]
pub(super) struct Sending {
    /// Whether it goes compressed: decided by its first fragment.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    compressed: bool,
}

/// The reason sent with the close frame that abandons a message.
const ABANDONED: &str = "message abandoned part-way";

impl Connection {
    /// Queues the next fragment of a message sent in fragments, starting a
    /// message of `kind` if none is in progress; `last` ends it. With
    /// permessage-deflate on, the message is compressed as one (RSV1 on its
    /// first frame only), each fragment flushed so that the peer can read
    /// everything sent so far. An empty fragment is sent as an empty frame.
    ///
    /// The caller keeps text valid: the fragments together must be UTF-8
    /// (each one need not be).
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: Bytes,
        last: bool,
    ) -> Result<(), SendError> {
        if self.close_sent {
            return Err(SendError::Closing);
        }
        let (opcode, compressed) = match &self.sending {
            Some(sending) => (OpCode::Continuation, sending.compressed),
            None => (
                match kind {
                    MessageKind::Text => OpCode::Text,
                    MessageKind::Binary => OpCode::Binary,
                },
                self.deflate_on(),
            ),
        };
        let (rsv, payload) = if compressed {
            match self.compress_fragment(&payload, last) {
                Some(wire) if opcode == OpCode::Continuation => (0, wire),
                Some(wire) => (crate::proto::frame::RSV1, wire),
                None => {
                    // zlib failed mid-message (it does not on any input):
                    // the message cannot go on compressed, nor restart.
                    self.sending = Some(Sending { compressed });
                    self.abandon_message();
                    return Err(SendError::Closing);
                }
            }
        } else {
            (0, payload)
        };
        self.push(opcode, rsv, last, payload)
            .map_err(SendError::Random)?;
        self.sending = (!last).then_some(Sending { compressed });
        Ok(())
    }

    /// Gives up the message being sent in fragments: it cannot be finished
    /// truthfully and nothing else may follow a part of it, so the close
    /// handshake starts with 1011 (RFC 6455 §7.4.1; the peer drops the
    /// unfinished message). Returns whether a close frame was queued.
    pub fn abandon_message(&mut self) -> bool {
        if self.sending.take().is_none() {
            return false;
        }
        self.close(Some(&CloseFrame::truncated(
            CloseCode::INTERNAL_ERROR,
            ABANDONED,
        )))
    }

    /// Whether a message is being sent in fragments.
    pub fn is_sending_fragments(&self) -> bool {
        self.sending.is_some()
    }

    #[cfg(feature = "deflate")]
    fn deflate_on(&self) -> bool {
        self.deflate.is_some()
    }

    #[cfg(not(feature = "deflate"))]
    fn deflate_on(&self) -> bool {
        false
    }

    #[cfg(feature = "deflate")]
    fn compress_fragment(&mut self, payload: &[u8], last: bool) -> Option<Bytes> {
        self.deflate.as_mut()?.compress_fragment(payload, last)
    }

    #[cfg(not(feature = "deflate"))]
    fn compress_fragment(&mut self, _payload: &[u8], _last: bool) -> Option<Bytes> {
        None
    }
}
