//! The upgrade request a server-side [`WebSocketStream`] keeps for
//! [`request`](crate::WebSocketStream::request).
//!
//! A parsed head is a `HeaderMap` of a kilobyte or more, kept for the life
//! of every connection whose handle is alive, and most servers never look
//! at it after the handshake. A raw-socket server keeps the head's bytes as
//! the client sent them instead (a few hundred bytes) and parses them again
//! the first time `request` is called.
//!
//! [`WebSocketStream`]: crate::WebSocketStream

use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};

use crate::handshake::parse_request_head;

pub(crate) enum RequestHead {
    /// A client: there is none.
    None,
    /// Handed over parsed (hyper, axum, HTTP/2). Boxed here and below:
    /// the handle that holds this usually lives in the connection's task,
    /// and an inline request would make every task 200 bytes larger.
    Parsed(Box<http::Request<()>>),
    /// An HTTP/1.1 head's bytes, parsed on first use.
    Raw {
        bytes: Bytes,
        parsed: OnceLock<Option<Box<http::Request<()>>>>,
    },
}

impl RequestHead {
    pub(crate) fn raw(bytes: Bytes) -> Self {
        Self::Raw {
            bytes,
            parsed: OnceLock::new(),
        }
    }

    pub(crate) fn get(&self) -> Option<&http::Request<()>> {
        match self {
            Self::None => None,
            Self::Parsed(request) => Some(request),
            // The bytes parsed once already, during the handshake: the same
            // parser gives the same request.
            Self::Raw { bytes, parsed } => parsed
                .get_or_init(|| {
                    parse_request_head(&mut BytesMut::from(&bytes[..]))
                        .ok()?
                        .map(Box::new)
                })
                .as_deref(),
        }
    }
}
