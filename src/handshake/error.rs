//! Why an opening handshake failed.

use std::fmt;

/// A failed opening handshake, on either side.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The server answered with a status other than 101 (over HTTP/1.1) or
    /// 200 (over HTTP/2). WHATWG follows no redirect, so 3xx lands here
    /// too, with its `Location` in `headers`.
    Status {
        /// The status the server sent.
        status: http::StatusCode,
        /// The response's header fields (boxed to keep errors small).
        headers: Box<http::HeaderMap>,
        /// The start of the response's body, at most
        /// [`MAX_REFUSAL_BODY`](super::MAX_REFUSAL_BODY) bytes: often the
        /// server's explanation. Whatever arrived within the open timeout
        /// (and 1 s at most) is kept.
        body: bytes::Bytes,
    },
    /// The head was not valid HTTP/1.1.
    Malformed(httparse::Error),
    /// The head was longer than [`MAX_HEAD_LEN`](super::MAX_HEAD_LEN).
    HeadTooLarge,
    /// The head had more than [`MAX_HEADERS`](super::MAX_HEADERS) fields.
    TooManyHeaders,
    /// The connection ended before the head was complete.
    Incomplete,
    /// A header field the handshake needs was missing or wrong.
    BadHeader {
        /// The field's name.
        name: &'static str,
        /// What was wrong with it.
        problem: &'static str,
    },
    /// The server chose a subprotocol the client did not offer.
    UnexpectedProtocol(String),
    /// The server named an extension the client did not offer.
    UnexpectedExtension(String),
    /// The server's permessage-deflate answer does not fit the offer
    /// (RFC 7692 §7.1): an unknown or repeated parameter, window bits out
    /// of range or above the offer, or something asked for not granted.
    ExtensionMismatch {
        /// The `Sec-WebSocket-Extensions` value the server sent.
        value: String,
        /// What does not fit.
        problem: &'static str,
    },
    /// The client's request was not a WebSocket upgrade we accept, or the
    /// accept hook refused it; the server answered it with `status`.
    Rejected {
        /// The status sent to the client (400, 405, 426, or the hook's).
        status: http::StatusCode,
        /// Why.
        reason: &'static str,
    },
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status { status, .. } => write!(f, "server refused the WebSocket with {status}"),
            Self::Malformed(_) => f.write_str("malformed HTTP head"),
            Self::HeadTooLarge => f.write_str("HTTP head exceeds 64 KiB"),
            Self::TooManyHeaders => f.write_str("HTTP head has too many header fields"),
            Self::Incomplete => f.write_str("connection ended during the handshake"),
            Self::BadHeader { name, problem } => write!(f, "header {name}: {problem}"),
            Self::UnexpectedProtocol(p) => {
                write!(f, "server chose subprotocol {p:?}, which was not offered")
            }
            Self::UnexpectedExtension(e) => {
                write!(f, "server chose extension {e:?}, which was not offered")
            }
            Self::ExtensionMismatch { value, problem } => {
                write!(
                    f,
                    "server answered the permessage-deflate offer with {value:?}: {problem}"
                )
            }
            Self::Rejected { status, reason } => {
                write!(f, "rejected upgrade request with {status}: {reason}")
            }
        }
    }
}

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Malformed(err) => Some(err),
            _ => None,
        }
    }
}

impl From<httparse::Error> for HandshakeError {
    fn from(err: httparse::Error) -> Self {
        match err {
            httparse::Error::TooManyHeaders => Self::TooManyHeaders,
            other => Self::Malformed(other),
        }
    }
}
