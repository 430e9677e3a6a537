//! wsstream
#![allow(missing_docs)]
pub mod handshake;
pub mod proto;
