//! The one error type of the public API.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::handshake::{HandshakeError, InvalidUrl};
use crate::proto::ProtocolError;
use crate::proxy::ProxyError;

/// Everything that can go wrong, from a bad URL to a peer that breaks the
/// protocol.
///
/// `Error` is `Clone` so that every task awaiting
/// [`closed`](crate::WebSocketStream::closed) can be told the same failure;
/// I/O errors are shared behind an `Arc` for that. `Display` describes this
/// level only; the cause is in [`source`](std::error::Error::source).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// The URL cannot be used for a WebSocket (scheme, fragment, syntax).
    InvalidUrl(InvalidUrl),
    /// A subprotocol in the options is not a token or is listed twice.
    InvalidProtocol(String),
    /// A header in the options is one the handshake sets itself.
    ReservedHeader(http::HeaderName),
    /// `close` was given a code other than 1000 or 3000–4999.
    InvalidCloseCode(u16),
    /// `close` was given a reason longer than 123 bytes.
    CloseReasonTooLong(usize),
    /// `wss` was asked for, but TLS is not available: the `tls` feature is
    /// off, or no root certificates are configured.
    TlsUnavailable(&'static str),
    /// HTTP/2 was required
    /// ([`HttpVersion::RequireHttp2`](crate::HttpVersion::RequireHttp2))
    /// and cannot be had: says why (no `h2` by ALPN, no extended CONNECT,
    /// a `ws` URL without prior knowledge).
    Http2Unavailable(&'static str),
    /// The connection was started outside a tokio runtime, or in one built
    /// without the time driver (`enable_time`), which keepalive and timeouts
    /// need.
    NoRuntime,
    /// A proxy URL or proxy setting cannot be used (scheme, host,
    /// credentials); says what is wrong, never the credentials.
    InvalidProxy(&'static str),
    /// A proxy could not open the tunnel: the [`ProxyError`] names the
    /// proxy, the target, and what the proxy answered.
    Proxy(Box<ProxyError>),
    /// Reading, writing or connecting failed.
    Io(Arc<io::Error>),
    /// The opening handshake failed.
    Handshake(HandshakeError),
    /// The peer broke the protocol. The matching close frame (1002, 1007,
    /// 1009…) was sent before the connection ended.
    Protocol(ProtocolError),
    /// The connection ended without a close handshake (WHATWG's 1006).
    ConnectionLost,
    /// The connection is closing or closed: nothing more can be sent.
    Closed,
    /// The cancellation token fired, or `close` was called, before the
    /// connection opened.
    Aborted,
    /// [`opened`](crate::WebSocketStream::opened) already handed out the
    /// readable and writable halves.
    AlreadyOpened,
    /// What was written to a text message sent in fragments
    /// ([`MessageWriter`](crate::MessageWriter)) is not UTF-8: refused, not
    /// sent.
    InvalidText,
    /// A deadline passed: the opening handshake, the close handshake, a
    /// keepalive pong, or the idle limit.
    Timeout(Timeout),
}

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timeout {
    /// Connecting, TLS and the opening handshake took longer than
    /// `open_timeout` (client) or `handshake_timeout` (server).
    Open,
    /// The peer did not answer our close frame within `close_timeout`; the
    /// socket was dropped.
    Close,
    /// The peer did not answer a keepalive ping within `ping_timeout`.
    Keepalive,
    /// Nothing arrived from the peer for `idle_timeout`.
    Idle,
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Open => "opening handshake timed out",
            Self::Close => "peer did not answer the close frame in time",
            Self::Keepalive => "peer did not answer a keepalive ping in time",
            Self::Idle => "peer sent nothing for the idle timeout",
        })
    }
}

impl Error {
    pub(crate) fn io(err: io::Error) -> Self {
        Self::Io(Arc::new(err))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl(_) => f.write_str("invalid WebSocket URL"),
            Self::InvalidProtocol(p) => write!(f, "invalid or duplicate subprotocol {p:?}"),
            Self::ReservedHeader(name) => write!(f, "header {name} is set by the handshake itself"),
            Self::InvalidCloseCode(code) => {
                write!(f, "close code {code} is not 1000 or in 3000-4999")
            }
            Self::CloseReasonTooLong(len) => write!(f, "close reason of {len} bytes exceeds 123"),
            Self::TlsUnavailable(why) => write!(f, "TLS unavailable: {why}"),
            Self::Http2Unavailable(why) => write!(f, "HTTP/2 unavailable: {why}"),
            Self::NoRuntime => f.write_str("no tokio runtime with I/O and time enabled"),
            Self::InvalidProxy(why) => write!(f, "invalid proxy: {why}"),
            Self::Proxy(_) => f.write_str("proxy failed"),
            Self::Io(_) => f.write_str("I/O error"),
            Self::Handshake(_) => f.write_str("opening handshake failed"),
            Self::Protocol(_) => f.write_str("peer violated the WebSocket protocol"),
            Self::ConnectionLost => f.write_str("connection ended without a close handshake"),
            Self::Closed => f.write_str("connection is closing or closed"),
            Self::Aborted => f.write_str("connection aborted before it opened"),
            Self::AlreadyOpened => f.write_str("the opened connection was already taken"),
            Self::InvalidText => f.write_str("text written to a message is not UTF-8"),
            Self::Timeout(timeout) => fmt::Display::fmt(timeout, f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidUrl(err) => Some(err),
            Self::Io(err) => Some(&**err),
            Self::Proxy(err) => Some(&**err),
            Self::Handshake(err) => Some(err),
            Self::Protocol(err) => Some(err),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Self::io(err)
    }
}

impl From<HandshakeError> for Error {
    fn from(err: HandshakeError) -> Self {
        Self::Handshake(err)
    }
}

impl From<ProtocolError> for Error {
    fn from(err: ProtocolError) -> Self {
        Self::Protocol(err)
    }
}

impl From<InvalidUrl> for Error {
    fn from(err: InvalidUrl) -> Self {
        Self::InvalidUrl(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn display_names_this_level_and_source_the_cause() {
        let err = Error::from(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "reset by peer",
        ));
        assert_eq!(err.to_string(), "I/O error");
        assert_eq!(err.source().unwrap().to_string(), "reset by peer");
        let err = Error::from(ProtocolError::InvalidUtf8);
        assert!(!err.to_string().contains("UTF-8"));
        assert_eq!(err.source().unwrap().to_string(), "text is not valid UTF-8");
    }

    #[test]
    fn error_stays_small() {
        assert!(
            std::mem::size_of::<Error>() <= 64,
            "{}",
            std::mem::size_of::<Error>()
        );
    }
}
