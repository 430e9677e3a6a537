//! Sending a [`PreparedMessage`]: a server queues the frame the message
//! encoded once, shared with every other connection that sends it.

use bytes::Bytes;

use super::{Connection, SendError};
use crate::proto::prepared::PreparedMessage;
use crate::proto::Role;

impl Connection {
    /// Queues a prepared message. A server queues its shared frame; with
    /// permessage-deflate, the shared compressed frame when this connection
    /// keeps no context between the messages it sends, else a compression
    /// of its own, as [`send`](Self::send) does. A client encodes and masks
    /// the message like any other.
    ///
    /// Fails, and abandons the message being sent in fragments, as `send`
    /// does.
    pub fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), SendError> {
        if self.role == Role::Client || self.sending.is_some() {
            return self.send(message.message().clone());
        }
        if self.close_sent {
            return Err(SendError::Closing);
        }
        #[cfg(feature = "deflate")]
        if let Some(deflate) = self.deflate.as_mut() {
            if deflate.should_compress(message.len()) {
                let Some(settings) = deflate.shared_settings() else {
                    return self.send(message.message().clone());
                };
                let compressed = message.compressed_server_frame(settings, |payload| {
                    crate::proto::deflate::compress_alone(settings, payload)
                });
                if let Some(frame) = compressed {
                    self.out.push_encoded(&frame);
                    return Ok(());
                }
            }
        }
        self.out.push_encoded(message.server_frame());
        Ok(())
    }

    /// Queues a run of prepared messages' joined plain frames as one
    /// shared chunk, when that is what sending each message would queue: a
    /// server, between messages, not closing, without permessage-deflate.
    /// Otherwise queues nothing and returns `false`: the messages go one by
    /// one.
    pub(crate) fn send_frame_run(&mut self, frames: &Bytes) -> bool {
        #[cfg(feature = "deflate")]
        if self.deflate.is_some() {
            return false;
        }
        if self.role == Role::Client || self.sending.is_some() || self.close_sent {
            return false;
        }
        self.out.push_encoded(frames);
        true
    }
}
