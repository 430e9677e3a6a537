//! A streams-first WebSocket client and server for tokio: the Rust analogue
//! of the WHATWG [`WebSocketStream`](https://websockets.spec.whatwg.org/#the-websocketstream-interface).
//!
//! [`WebSocketStream::connect`] starts connecting at once; [`opened`] resolves
//! to a `futures::Stream` of messages to read and a `futures::Sink` to write,
//! with the negotiated subprotocol and extensions; [`closed`] resolves to the
//! code and reason of a clean close; [`close`] closes by the WHATWG rules.
//! Backpressure is the Stream/Sink pair's: a reader that stops reading stops
//! the peer through TCP, and a slow network makes `poll_ready` wait.
//!
//! ```
//! use futures::{SinkExt, StreamExt};
//! use wsstream::{Message, Options, ServerOptions, WebSocketStream};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), wsstream::Error> {
//! // An echo server on 127.0.0.1 to talk to.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("ws://{}/echo", listener.local_addr()?);
//! tokio::spawn(async move {
//!     let (tcp, _) = listener.accept().await?;
//!     let ws = WebSocketStream::accept(tcp, ServerOptions::default()).await?;
//!     let opened = ws.opened().await?;
//!     opened.readable.forward(opened.writable).await
//! });
//!
//! let ws = WebSocketStream::connect(url, Options::default());
//! let opened = ws.opened().await?;
//! let (mut readable, mut writable) = (opened.readable, opened.writable);
//! writable.send(Message::text("hello")).await?;
//! assert_eq!(readable.next().await.transpose()?, Some(Message::text("hello")));
//!
//! ws.close(1000, "bye")?;
//! while let Some(message) = readable.next().await {
//!     message?; // a clean close ends the readable with `None`
//! }
//! assert_eq!(ws.closed().await?.code, 1000);
//! # Ok(())
//! # }
//! ```
//!
//! # Where things are
//!
//! - Clients: [`WebSocketStream::connect`] with [`Options`] (subprotocols,
//!   headers, timeouts and keepalive, permessage-deflate, TLS, [`proxy`],
//!   [`transport`] connectors of your own).
//! - Servers: [`WebSocketStream::accept`] on any byte stream with
//!   [`ServerOptions`]; [`Upgrade`] for any HTTP server, with ready-made
//!   paths for hyper (`wsstream::hyper`, feature `hyper`) and axum
//!   (`wsstream::axum`, feature `axum`). [`Broadcast`] sends one message to
//!   many connections, encoded once.
//! - Messages larger than memory: [`Readable::next_streamed`] and
//!   [`Writable::start_streamed`].
//! - The sans-io core, for other runtimes and for fuzzing: [`proto`]
//!   (frames, masking, the connection state machine), [`handshake`] (the
//!   HTTP upgrade) and [`codec`] (a tokio-util codec).
//! - The guide (design, backpressure and close, servers, fan-out, HTTP/2,
//!   streaming, proxies, the WHATWG mapping, benchmarks) is in `docs/` of
//!   the repository, and its examples are compiled with the crate's tests.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tls` | yes | `wss://` through rustls and tokio-rustls |
//! | `webpki-roots` | yes | Mozilla's root certificates compiled in |
//! | `deflate` | yes | permessage-deflate (RFC 7692), still off per connection until [`Options::deflate`] / [`ServerOptions::deflate`] |
//! | `hyper` | no | upgrading requests served by hyper 1 |
//! | `axum` | no | an axum 0.8 `WebSocketUpgrade` extractor |
//! | `http2` | no | WebSockets over HTTP/2 (RFC 8441) |
//! | `tracing` | no | logging through `tracing` (below) |
//!
//! # Logging
//!
//! With the `tracing` feature, each connection has a span named
//! `websocket`, at `debug`, with these fields:
//!
//! | field | on | what |
//! |---|---|---|
//! | `role` | both | `client` or `server` |
//! | `url` | client | the URL's scheme, host, port and path: never its user, password, query or fragment |
//! | `remote` | client | the address of the TCP connection (the server's, or the proxy's when there is one); empty for a connector of your own |
//! | `peer` | server | the client's address when [`WebSocketStream::accept`] or [`Upgrade::open`] gets a tokio `TcpStream` (or TLS over one); behind hyper or axum, name it in a span of your own around the connection, which becomes this span's parent |
//! | `path` | server | the request's path, without its query |
//!
//! The events, all at `debug` (as hyper and tokio log what a peer does;
//! nothing is logged per message or per frame):
//!
//! | message | fields | when |
//! |---|---|---|
//! | `opened` | `protocol`, `extensions`, `version` | the opening handshake succeeded |
//! | `opening failed` | `error` | it did not (refused, unreachable, timed out, aborted) |
//! | `proxy tunnel open` / `proxy tunnel failed` | `proxy` (scheme, host and port), `target`, `error` | a proxy leg |
//! | `close frame sent` / `close frame received` | `code`, `reason` | the close handshake, either side first |
//! | `protocol error` | `code` (the close code sent: 1002, 1007, 1009 …), `error` | the peer broke the protocol |
//! | `timed out` | `timeout` (`Open`, `Keepalive`, `Close`, `Idle`) | a deadline passed |
//! | `closed cleanly` / `ended without a clean close` | `code` / `error` | the connection is over |
//!
//! No header, credential, query or message payload is ever logged. Without
//! the feature none of this is compiled in: the connection holds nothing
//! for it and no call is made.
//!
//! [`opened`]: WebSocketStream::opened
//! [`closed`]: WebSocketStream::closed
//! [`close`]: WebSocketStream::close
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
/// The README's examples, compiled and run as doctests (the README shows
/// complete programs, so it is not the crate docs).
#[cfg(all(doctest, feature = "http2"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
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
