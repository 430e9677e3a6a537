//! Sending a [`PreparedMessage`]: a server queues the frame the message
//! encoded once, shared with every other connection that sends it.

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
}
