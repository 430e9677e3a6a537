#![doc = include_str!("../README.md")]
#![warn(rust_2018_idioms, unreachable_pub)]

#[cfg(feature = "axum")]
pub mod axum;
pub mod codec;
mod error;
pub mod handshake;
#[cfg(feature = "hyper")]
pub mod hyper;
pub mod proto;
pub mod proxy;
mod stream;
mod trace;
pub mod transport;

pub use error::{Error, Timeout};
pub use handshake::{DeflateConfig, DeflateParams};
pub use proto::{CloseCode, CloseFrame, Message, MessageKind, PreparedMessage, Utf8Bytes};
#[cfg(feature = "http2")]
pub use stream::HttpVersion;
pub use stream::{
    Acceptance, Backpressure, Broadcast, CloseInfo, ClosedFuture, Delivery, MemberId,
    MessageReader, MessageWriter, NextStreamed, Opened, OpenedFuture, Options, Readable, Rejection,
    ServerOptions, Upgrade, WebSocketStream, Writable, DEFAULT_FRAGMENT_SIZE, DEFAULT_OPEN_TIMEOUT,
    DEFAULT_WRITE_HIGH_WATER,
};
/// The guide's proxy chapter, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/proxies.md")]
pub struct ProxyGuide;
/// The guide's server chapter, compiled and run as doctests.
#[cfg(all(doctest, feature = "axum"))]
#[doc = include_str!("../docs/servers.md")]
pub struct ServerGuide;
/// The guide's chapter on messages larger than memory, compiled and run as
/// doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/streaming.md")]
pub struct StreamingGuide;
/// The guide's fan-out chapter, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/fanout.md")]
pub struct FanoutGuide;
/// The guide's HTTP/2 chapter, compiled and run as doctests.
#[cfg(all(doctest, feature = "http2"))]
#[doc = include_str!("../docs/http2.md")]
pub struct Http2Guide;

/// Re-exported for [`Options::signal`]: WHATWG's `AbortSignal`.
pub use tokio_util::sync::CancellationToken;
