//! wsstream
#![allow(missing_docs)]
mod error;
pub mod handshake;
pub mod proto;
mod stream;
pub mod transport;

pub use error::Error;
pub use proto::{CloseCode, CloseFrame, Message, Utf8Bytes};
pub use stream::*;
