//! The opening handshake without I/O: the HTTP/1.1 upgrade (RFC 6455 §4),
//! built and checked as bytes, and the HTTP/2 extended CONNECT (RFC 8441),
//! built and checked as `http` types.

mod body;
mod client;
mod deflate;
mod error;
mod extended_connect;
mod head;
mod key;
mod server;
mod target;
mod tokens;

pub use body::{BodyCollector, MAX_REFUSAL_BODY};
pub use client::{ClientHandshake, Negotiated};
pub use deflate::{DeflateConfig, DeflateParams};
pub use error::HandshakeError;
pub(crate) use extended_connect::keep_protocol;
pub use extended_connect::{ExtendedConnect, WEBSOCKET_PROTOCOL};
pub(crate) use head::write_fields;
pub use head::HeadScan;
pub use key::{accept_key, generate_key};
pub(crate) use server::parse_request_head_raw;
pub use server::{
    check_upgrade, parse_request, parse_request_head, reject_response, rejection, write_response,
    RequestHead, ServerReply, UpgradeOffer,
};
pub use target::{InvalidUrl, Target};
pub use tokens::{is_token, validate_protocols};

/// The largest request or response head accepted (64 KiB). A longer one
/// fails the handshake instead of growing a buffer without bound.
pub const MAX_HEAD_LEN: usize = 64 * 1024;

/// The most header fields accepted in one head.
pub const MAX_HEADERS: usize = 128;

/// Header fields the handshake sets itself; user headers may not replace them.
pub(crate) const RESERVED_HEADERS: [&str; 8] = [
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "content-length",
];
