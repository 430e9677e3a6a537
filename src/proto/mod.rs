//! The sans-io protocol core: frames, masking, UTF-8 validation, message
//! reassembly, control frames and the close handshake.
//!
//! Nothing here knows about sockets, tasks or clocks. Bytes go in through
//! [`Connection::receive`] and come out of [`Connection::outgoing`]; the
//! tokio layer only moves them. The same code runs under the fuzzer.

mod conn;
mod decode;
#[cfg(feature = "deflate")]
mod deflate;
mod error;
mod frame;
mod mask;
mod message;
mod outqueue;
mod prepared;
mod utf8;

#[cfg(test)]
mod prepared_tests;
#[cfg(test)]
mod streamed_tests;
#[cfg(test)]
mod tests;

pub use conn::{Connection, Limits, Received, SendError};
pub use decode::{Frame, FrameDecoder, FrameObserver, Piece};
pub use error::ProtocolError;
pub use frame::{
    encode_frame, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, RSV1, RSV_ALL,
};
pub use mask::{apply_mask, put_masked, MaskKeys};
pub use message::{
    CloseCode, CloseFrame, InvalidCloseCode, Message, MessageKind, Utf8Bytes, MAX_CLOSE_REASON,
};
pub use outqueue::OutQueue;
pub use prepared::PreparedMessage;
pub(crate) use prepared::{frame_runs, FrameRun};
pub use utf8::{InvalidUtf8, Utf8Validator};

/// Which end of the connection we are: it decides who masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that opened the connection; masks every frame it sends.
    Client,
    /// The end that accepted it; never masks.
    Server,
}
