//! Frame headers (RFC 6455 §5.2): opcodes, parsing and encoding.

use bytes::BytesMut;

use super::error::ProtocolError;
use super::mask::put_masked;

/// The largest header: 2 bytes, a 64-bit length and a masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload a control frame may carry (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame's opcode. Reserved opcodes never make it into this type: the parser
/// rejects them with close code 1002.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// A continuation of a fragmented message (0x0).
    Continuation,
    /// The first frame of a text message (0x1).
    Text,
    /// The first frame of a binary message (0x2).
    Binary,
    /// A close frame (0x8).
    Close,
    /// A ping (0x9).
    Ping,
    /// A pong (0xA).
    Pong,
}

impl OpCode {
    /// The opcode for a 4-bit value, or `None` for the reserved values.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0x0 => Some(Self::Continuation),
            0x1 => Some(Self::Text),
            0x2 => Some(Self::Binary),
            0x8 => Some(Self::Close),
            0x9 => Some(Self::Ping),
            0xA => Some(Self::Pong),
            _ => None,
        }
    }

    /// The 4-bit wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Close, ping and pong: at most 125 bytes and never fragmented.
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// The reserved bits of the first header byte, as they sit on the wire
/// (`0x40` is RSV1, `0x20` RSV2, `0x10` RSV3).
pub const RSV1: u8 = 0x40;
/// Mask of all three reserved bits.
pub const RSV_ALL: u8 = 0x70;

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Whether this is the final frame of a message.
    pub fin: bool,
    /// The reserved bits, in wire position (see [`RSV1`]).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on every frame a client sends.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed, or the header and its
    /// length in bytes. Checks what a header alone can tell: reserved opcodes,
    /// control-frame rules and the 64-bit length's top bit. Role-dependent
    /// rules (masking, reserved bits, limits) are the caller's.
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let (b0, b1) = match buf {
            [b0, b1, ..] => (*b0, *b1),
            _ => return Ok(None),
        };
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(ProtocolError::ReservedOpcode(b0 & 0x0F))?;
        let fin = b0 & 0x80 != 0;
        let masked = b1 & 0x80 != 0;
        let (payload_len, len_bytes) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 2),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(b);
                    let len = u64::from_be_bytes(word);
                    if len >> 63 != 0 {
                        return Err(ProtocolError::InvalidLength);
                    }
                    (len, 8)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 0),
        };
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControl);
            }
            if payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlTooLong);
            }
        }
        let mut header_len = 2 + len_bytes;
        let mask = if masked {
            let key = match buf.get(header_len..header_len + 4) {
                Some(k) => [k[0], k[1], k[2], k[3]],
                None => return Ok(None),
            };
            header_len += 4;
            Some(key)
        } else {
            None
        };
        let header = Self {
            fin,
            rsv: b0 & RSV_ALL,
            opcode,
            mask,
            payload_len,
        };
        Ok(Some((header, header_len)))
    }

    /// Encodes the header into `out` with the shortest length encoding and
    /// returns how many bytes it used.
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | (self.rsv & RSV_ALL) | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut len = 2;
        if self.payload_len < 126 {
            out[1] = mask_bit | self.payload_len as u8;
        } else if let Ok(short) = u16::try_from(self.payload_len) {
            out[1] = mask_bit | 126;
            out[2..4].copy_from_slice(&short.to_be_bytes());
            len = 4;
        } else {
            out[1] = mask_bit | 127;
            out[2..10].copy_from_slice(&self.payload_len.to_be_bytes());
            len = 10;
        }
        if let Some(key) = self.mask {
            out[len..len + 4].copy_from_slice(&key);
            len += 4;
        }
        len
    }

    /// The number of bytes [`encode`](Self::encode) writes for this header.
    pub fn encoded_len(&self) -> usize {
        let len = match self.payload_len {
            0..=125 => 2,
            126..=0xFFFF => 4,
            _ => 10,
        };
        len + if self.mask.is_some() { 4 } else { 0 }
    }
}

/// Appends a whole frame to `dst`: the header, then the payload masked with
/// the header's key if it has one (masked as it is copied, in one pass).
/// The header's length field is taken from `payload`.
pub fn encode_frame(header: &FrameHeader, payload: &[u8], dst: &mut BytesMut) {
    let header = FrameHeader {
        payload_len: payload.len() as u64,
        ..*header
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let head_len = header.encode(&mut head);
    dst.extend_from_slice(&head[..head_len]);
    match header.mask {
        Some(key) => put_masked(dst, payload, key),
        None => dst.extend_from_slice(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(header: FrameHeader) {
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut out);
        assert_eq!(n, header.encoded_len());
        for cut in 0..n {
            assert_eq!(FrameHeader::parse(&out[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(FrameHeader::parse(&out[..n]), Ok(Some((header, n))));
    }

    #[test]
    fn lengths_use_the_shortest_encoding() {
        for (len, expect) in [
            (0u64, 2),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (1 << 40, 10),
        ] {
            let header = FrameHeader {
                fin: true,
                rsv: 0,
                opcode: OpCode::Binary,
                mask: None,
                payload_len: len,
            };
            assert_eq!(header.encoded_len(), expect, "len {len}");
            roundtrip(header);
            roundtrip(FrameHeader {
                mask: Some([1, 2, 3, 4]),
                ..header
            });
        }
    }

    #[test]
    fn reserved_opcodes_are_rejected() {
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                FrameHeader::parse(&[0x80 | op, 0]),
                Err(ProtocolError::ReservedOpcode(op))
            );
        }
    }

    #[test]
    fn control_frames_are_short_and_final() {
        assert_eq!(
            FrameHeader::parse(&[0x09, 0]),
            Err(ProtocolError::FragmentedControl)
        );
        assert_eq!(
            FrameHeader::parse(&[0x89, 126, 0, 126]),
            Err(ProtocolError::ControlTooLong)
        );
        assert!(FrameHeader::parse(&[0x89, 125]).is_ok());
    }

    #[test]
    fn top_bit_of_64_bit_length_is_rejected() {
        let buf = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(FrameHeader::parse(&buf), Err(ProtocolError::InvalidLength));
    }

    #[test]
    fn reserved_bits_are_reported_not_judged() {
        let (header, _) = FrameHeader::parse(&[0xF2, 0]).unwrap().unwrap();
        assert_eq!(header.rsv, RSV_ALL);
    }
}
