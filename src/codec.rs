//! A tokio-util [`Decoder`]/[`Encoder`] for WebSocket frames, for users who
//! want raw frames in a `Framed` (proxies, tools, tests).
//!
//! It runs the same sans-io [`FrameDecoder`] as
//! [`WebSocketStream`](crate::WebSocketStream), so the rules are the same: masking by role,
//! reserved bits and opcodes, control-frame limits, the frame size limit.
//! Message-level rules (fragmentation, UTF-8, pings, close) are the
//! caller's; [`proto::Connection`](crate::proto::Connection) has them.
//!
//! ```
//! use bytes::BytesMut;
//! use tokio_util::codec::{Decoder, Encoder};
//! use wsstream::codec::FrameCodec;
//! use wsstream::proto::{OpCode, Role};
//! use wsstream::Message;
//!
//! let mut client = FrameCodec::new(Role::Client, 1 << 20);
//! let mut server = FrameCodec::new(Role::Server, 1 << 20);
//! let mut wire = BytesMut::new();
//! client.encode(Message::text("hello"), &mut wire).unwrap();
//! let frame = server.decode(&mut wire).unwrap().unwrap();
//! assert_eq!((frame.header.opcode, &frame.payload[..]), (OpCode::Text, &b"hello"[..]));
//! ```

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::proto::{
    encode_frame, Frame, FrameDecoder, FrameHeader, MaskKeys, Message, OpCode, Role, MAX_HEADER_LEN,
};
use crate::Error;

/// Frames in and out for one endpoint of `role`.
#[derive(Debug)]
pub struct FrameCodec {
    role: Role,
    decoder: FrameDecoder,
    keys: MaskKeys,
}

impl FrameCodec {
    /// A codec for an endpoint of `role` that accepts frames up to
    /// `max_frame_size` bytes.
    pub fn new(role: Role, max_frame_size: usize) -> Self {
        Self {
            role,
            decoder: FrameDecoder::new(role, max_frame_size),
            keys: MaskKeys,
        }
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Error> {
        Ok(self.decoder.decode(src)?)
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = Error;

    /// Writes the frame with the shortest length encoding; a client masks it
    /// with a fresh key (the header's own key is ignored), a server never.
    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), Error> {
        let mask = match self.role {
            Role::Client => Some(self.keys.next_key()?),
            Role::Server => None,
        };
        let header = FrameHeader {
            mask,
            ..frame.header
        };
        dst.reserve(MAX_HEADER_LEN + frame.payload.len());
        encode_frame(&header, &frame.payload, dst);
        Ok(())
    }
}

impl Encoder<Message> for FrameCodec {
    type Error = Error;

    /// Writes a message as one final frame.
    fn encode(&mut self, message: Message, dst: &mut BytesMut) -> Result<(), Error> {
        let opcode = if message.is_text() {
            OpCode::Text
        } else {
            OpCode::Binary
        };
        let frame = Frame {
            header: FrameHeader {
                fin: true,
                rsv: 0,
                opcode,
                mask: None,
                payload_len: 0,
            },
            payload: message.into_payload(),
        };
        self.encode(frame, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ProtocolError;

    #[test]
    fn frames_round_trip_between_roles_in_any_split() {
        let mut client = FrameCodec::new(Role::Client, 1 << 20);
        let mut server = FrameCodec::new(Role::Server, 1 << 20);
        let mut wire = BytesMut::new();
        let payloads: Vec<Vec<u8>> = vec![vec![], vec![1; 125], vec![2; 126], vec![3; 70_000]];
        for p in &payloads {
            client
                .encode(Message::binary(p.clone()), &mut wire)
                .unwrap();
        }
        let mut got = Vec::new();
        let mut fed = BytesMut::new();
        for chunk in wire.chunks(997) {
            fed.extend_from_slice(chunk);
            while let Some(frame) = server.decode(&mut fed).unwrap() {
                assert!(frame.header.mask.is_some());
                got.push(frame.payload.to_vec());
            }
        }
        assert_eq!(got, payloads);
    }

    #[test]
    fn decoder_enforces_role_masking() {
        let mut server = FrameCodec::new(Role::Server, 1 << 20);
        let mut also_server = FrameCodec::new(Role::Server, 1 << 20);
        let mut wire = BytesMut::new();
        also_server
            .encode(Message::text("unmasked"), &mut wire)
            .unwrap();
        assert!(matches!(
            server.decode(&mut wire),
            Err(Error::Protocol(ProtocolError::UnmaskedFrame))
        ));
    }
}
