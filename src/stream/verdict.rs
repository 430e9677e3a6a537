//! What a server answers an upgrade request: an [`Acceptance`] (with the
//! headers and subprotocol it adds) or a [`Rejection`] (a status, headers
//! and body of its own).

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use crate::handshake::{rejection, HandshakeError};
use crate::Error;

/// An accept hook's yes: the upgrade goes ahead, with the response
/// fields and the subprotocol given here.
///
/// ```
/// use http::{header::SET_COOKIE, HeaderValue};
/// use wsstream::Acceptance;
///
/// let yes = Acceptance::new()
///     .protocol("chat.v2")
///     .header(SET_COOKIE, HeaderValue::from_static("session=42; HttpOnly"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Acceptance {
    pub(crate) protocol: Option<String>,
    pub(crate) headers: HeaderMap,
}

impl Acceptance {
    /// Accepts with the subprotocol [`ServerOptions`](crate::ServerOptions)
    /// chooses and no extra fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Chooses this subprotocol instead of the one the options would. It
    /// must be one the client offered; one it did not is ignored (no
    /// subprotocol is named), as the WebSocket rules require.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Some(protocol.into());
        self
    }

    /// Adds a field to the `101` response (`Set-Cookie`, say). The fields
    /// the handshake sets itself (`Upgrade`, `Connection`,
    /// `Sec-WebSocket-*`) cannot be added: the handshake then fails with
    /// [`Error::ReservedHeader`] and the client gets a 500.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }
}

/// A refused upgrade: the response to send instead of `101` and why.
///
/// [`Upgrade::new`](crate::Upgrade::new) gives one for a request that is
/// not an acceptable upgrade (400, 405, 426 with a plain-text reason and
/// `Sec-WebSocket-Version: 13`); an accept hook builds its own, with any
/// status, fields and body.
///
/// ```
/// use http::StatusCode;
/// use wsstream::Rejection;
///
/// let no = Rejection::new(StatusCode::UNAUTHORIZED)
///     .header(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"))
///     .body("log in first");
/// assert_eq!(no.status(), StatusCode::UNAUTHORIZED);
/// ```
#[derive(Debug, Clone)]
pub struct Rejection {
    status: StatusCode,
    /// Boxed to keep `Result<_, Rejection>` small.
    headers: Box<HeaderMap>,
    body: Bytes,
    reason: &'static str,
}

impl Rejection {
    /// A rejection with `status`, no fields and an empty body.
    pub fn new(status: StatusCode) -> Self {
        Self {
            status,
            headers: Box::default(),
            body: Bytes::new(),
            reason: "refused by the accept hook",
        }
    }

    /// Adds a field to the response.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the response's body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The status the client is answered with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response to send: status, fields and body.
    pub fn into_response(self) -> Response<Bytes> {
        let mut response = Response::new(self.body);
        *response.status_mut() = self.status;
        *response.headers_mut() = *self.headers;
        response
    }

    /// The answer for a hook that panicked.
    pub(crate) fn hook_panicked() -> Self {
        Self {
            reason: "the accept hook panicked",
            ..Self::new(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }

    /// The answer for a hook that added a field the handshake sets itself.
    pub(crate) fn server_error(reason: &'static str) -> Self {
        Self {
            reason,
            ..Self::new(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// The answer to a request that failed the handshake's own checks: the
/// status and reason of [`HandshakeError::Rejected`], 431 for a head too
/// large or with too many fields, 400 for anything else malformed.
impl From<&HandshakeError> for Rejection {
    fn from(err: &HandshakeError) -> Self {
        let (status, reason) = match err {
            HandshakeError::Rejected { status, reason } => (*status, *reason),
            HandshakeError::HeadTooLarge | HandshakeError::TooManyHeaders => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request head too large",
            ),
            _ => (StatusCode::BAD_REQUEST, "malformed request"),
        };
        let (parts, body) = rejection(status, reason).into_parts();
        Self {
            status,
            headers: Box::new(parts.headers),
            body: body.into(),
            reason,
        }
    }
}

/// What the server side reports for a refused request:
/// [`HandshakeError::Rejected`] with the status sent.
impl From<Rejection> for Error {
    fn from(rejection: Rejection) -> Self {
        Error::Handshake(HandshakeError::Rejected {
            status: rejection.status,
            reason: rejection.reason,
        })
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "upgrade refused with {}: {}", self.status, self.reason)
    }
}

impl std::error::Error for Rejection {}
