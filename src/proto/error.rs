//! Protocol violations by the peer, each with the close code it earns.

use std::fmt;

use super::message::CloseCode;

/// A rule of RFC 6455 that the peer broke (or a limit it crossed).
///
/// Every variant knows the close code to send before the connection ends
/// ([`close_code`](Self::close_code)): 1002 for framing errors, 1007 for
/// invalid UTF-8 and 1009 for messages over the configured limits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame used one of the reserved opcodes 0x3–0x7 or 0xB–0xF.
    ReservedOpcode(u8),
    /// A frame set a reserved bit that no negotiated extension defines.
    ReservedBits(u8),
    /// A control frame had FIN unset.
    FragmentedControl,
    /// A control frame carried more than 125 bytes.
    ControlTooLong,
    /// A 64-bit payload length had its most significant bit set.
    InvalidLength,
    /// A client sent an unmasked frame.
    UnmaskedFrame,
    /// A server sent a masked frame.
    MaskedFrame,
    /// A continuation frame arrived with no message in progress.
    UnexpectedContinuation,
    /// A new text or binary frame arrived before the previous message ended.
    ExpectedContinuation,
    /// A text message or close reason was not valid UTF-8.
    InvalidUtf8,
    /// A close frame carried a code that may not appear on the wire.
    InvalidCloseCode(u16),
    /// A close frame carried a one-byte payload.
    InvalidClosePayload,
    /// A frame's payload was larger than the frame size limit.
    FrameTooLarge {
        /// The announced payload length.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// RSV1 (permessage-deflate's "compressed" bit) was set on a control
    /// frame or a continuation frame, where RFC 7692 §6 forbids it.
    MisplacedCompressionBit,
    /// A compressed message did not inflate: not a valid DEFLATE stream.
    InvalidCompressedData,
    /// A message grew past the message size limit.
    MessageTooLarge {
        /// The size the message would have reached.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
}

impl ProtocolError {
    /// The close code sent to the peer for this violation.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            Self::FrameTooLarge { .. } | Self::MessageTooLarge { .. } => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReservedOpcode(op) => write!(f, "frame uses reserved opcode {op:#x}"),
            Self::ReservedBits(bits) => {
                write!(f, "frame sets reserved bits {bits:#04x} with no extension")
            }
            Self::FragmentedControl => f.write_str("control frame is fragmented"),
            Self::ControlTooLong => f.write_str("control frame payload exceeds 125 bytes"),
            Self::InvalidLength => f.write_str("64-bit payload length has its top bit set"),
            Self::UnmaskedFrame => f.write_str("client frame is not masked"),
            Self::MaskedFrame => f.write_str("server frame is masked"),
            Self::UnexpectedContinuation => {
                f.write_str("continuation frame without a message in progress")
            }
            Self::ExpectedContinuation => {
                f.write_str("new message started before the previous one ended")
            }
            Self::InvalidUtf8 => f.write_str("text is not valid UTF-8"),
            Self::MisplacedCompressionBit => {
                f.write_str("RSV1 set on a control or continuation frame")
            }
            Self::InvalidCompressedData => f.write_str("compressed message does not inflate"),
            Self::InvalidCloseCode(code) => write!(f, "close code {code} may not be sent"),
            Self::InvalidClosePayload => f.write_str("close frame payload is one byte long"),
            Self::FrameTooLarge { size, limit } => {
                write!(f, "frame of {size} bytes exceeds the limit of {limit}")
            }
            Self::MessageTooLarge { size, limit } => {
                write!(f, "message of {size} bytes exceeds the limit of {limit}")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}
