//! [`Upgrade`]: a WebSocket upgrade request checked and answered as `http`
//! types, for servers that parse HTTP themselves (hyper, axum, anything
//! that hands over the connection after the response). The raw-socket
//! `accept` is built on it too.

use std::fmt;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Request, Response, Uri, Version};

use super::open::{self, Established};
use super::options::{ConnConfig, ServerOptions};
use super::request_head::RequestHead;
use super::verdict::{Acceptance, Rejection};
use super::websocket::WebSocketStream;
use super::wire::Wire;
use crate::handshake::{check_upgrade, keep_protocol, Negotiated, UpgradeOffer, RESERVED_HEADERS};
use crate::proto::Role;
use crate::transport::{BoxedTransport, Transport};
use crate::Error;

/// A WebSocket upgrade request, checked and negotiated under
/// [`ServerOptions`]: the response to send (`101`, or `200` for an HTTP/2
/// extended CONNECT) and, once the transport
/// is upgraded, the connection.
///
/// ```
/// use wsstream::{ServerOptions, Upgrade};
///
/// let request = http::Request::get("/chat")
///     .header("host", "example.test")
///     .header("upgrade", "websocket")
///     .header("connection", "Upgrade")
///     .header("sec-websocket-version", "13")
///     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
///     .header("sec-websocket-protocol", "chat, superchat")
///     .body(())?;
/// let upgrade = Upgrade::new(&request, &ServerOptions::default().protocols(["superchat"]))?;
/// assert_eq!(upgrade.response().status(), 101);
/// assert_eq!(upgrade.response().headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// assert_eq!(upgrade.protocol(), Some("superchat"));
///
/// let not_websocket = http::Request::get("/chat").header("host", "example.test").body(())?;
/// let rejection = Upgrade::new(&not_websocket, &ServerOptions::default()).unwrap_err();
/// assert_eq!(rejection.status(), 426);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Upgrade {
    request: Request<()>,
    negotiated: Negotiated,
    conn: ConnConfig,
}

impl Upgrade {
    /// Checks that `request` is a WebSocket upgrade (method, version,
    /// `Host`, `Upgrade`, `Connection`, `Sec-WebSocket-Version`, key),
    /// chooses the subprotocol and negotiates permessage-deflate as
    /// `options` say, and builds the accepting response. A request that is not
    /// an acceptable upgrade gives the [`Rejection`] to answer it with (the
    /// same statuses as [`WebSocketStream::accept`]).
    ///
    /// Any body type will do: the request's head is copied (method, URI,
    /// version, fields; not its extensions) and kept for
    /// [`WebSocketStream::request`]. The options' accept hook is not run:
    /// the caller has the request and decides before calling this.
    pub fn new<B>(request: &Request<B>, options: &ServerOptions) -> Result<Self, Rejection> {
        let offer = check_upgrade(request).map_err(|err| Rejection::from(&err))?;
        let head = copy_head(
            request.method(),
            request.uri(),
            request.version(),
            request.headers(),
            request.extensions(),
        );
        Ok(Self::negotiate(head, &offer, options, Acceptance::new()))
    }

    /// Chooses the subprotocol (the acceptance's, else the options') and
    /// permessage-deflate, and builds the response with the acceptance's
    /// extra fields. Those must not be fields the handshake sets:
    /// [`check_acceptance`] says so first.
    pub(crate) fn negotiate(
        request: Request<()>,
        offer: &UpgradeOffer,
        options: &ServerOptions,
        acceptance: Acceptance,
    ) -> Self {
        let protocol = match acceptance.protocol {
            Some(chosen) => Some(chosen).filter(|p| offer.protocols.contains(p)),
            None => options.choose(&request, &offer.protocols),
        };
        let deflate = options
            .conn
            .deflate
            .and_then(|policy| offer.choose_deflate(&policy));
        let (deflate, extensions) = deflate.unzip();
        let mut response = offer.response(protocol.as_deref(), extensions.as_deref());
        response.headers_mut().extend(acceptance.headers);
        Self {
            request,
            negotiated: Negotiated {
                protocol,
                extensions: extensions.unwrap_or_default(),
                deflate,
                response,
            },
            conn: options.conn,
        }
    }

    /// The response to send, naming the subprotocol and extensions chosen:
    /// over HTTP/1.1, `101 Switching Protocols` with `Upgrade`,
    /// `Connection` and `Sec-WebSocket-Accept`; for an HTTP/2 extended
    /// CONNECT, `200`.
    pub fn response(&self) -> &Response<()> {
        &self.negotiated.response
    }

    /// The subprotocol chosen, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.negotiated.protocol.as_deref()
    }

    /// The extensions agreed, as the `Sec-WebSocket-Extensions` value
    /// (empty when none).
    pub fn extensions(&self) -> &str {
        &self.negotiated.extensions
    }

    /// The request's head.
    pub fn request(&self) -> &Request<()> {
        &self.request
    }

    /// Starts the connection over `io`, the transport after the `101` was
    /// sent on it (hyper's upgraded connection, say, through
    /// `hyper_util::rt::TokioIo`). Its [`opened`](WebSocketStream::opened)
    /// resolves at once. Fails only outside a tokio runtime with the time
    /// driver ([`Error::NoRuntime`]).
    pub fn open<T: Transport>(self, io: T) -> Result<WebSocketStream, Error> {
        if !open::runtime_ready() {
            return Err(Error::NoRuntime);
        }
        let span = crate::trace::server_span(&io);
        Ok(crate::trace::in_span(&span, || {
            self.establish(Box::pin(io), BytesMut::new(), None)
        }))
    }

    /// The connection over `io`, where `leftover` holds what was read past
    /// the request.
    /// The open connection on `io`, after the 101 was sent. `raw_head`,
    /// the request's bytes when it came over a raw socket, is kept for
    /// `WebSocketStream::request` in place of the parsed request.
    pub(crate) fn establish(
        self,
        io: BoxedTransport,
        leftover: BytesMut,
        raw_head: Option<Bytes>,
    ) -> WebSocketStream {
        crate::trace::record_current("path", &self.request.uri().path());
        let established = Established::new(
            Wire::Bytes(io),
            Role::Server,
            self.conn,
            leftover,
            self.negotiated,
        );
        let request = match raw_head {
            Some(bytes) => RequestHead::raw(bytes),
            None => RequestHead::Parsed(Box::new(self.request)),
        };
        WebSocketStream::established(established, request)
    }
}

/// A request's head without its body or extensions (but for an HTTP/2
/// `:protocol`, which the checks read): what [`Upgrade`] keeps for
/// [`WebSocketStream::request`].
pub(crate) fn copy_head(
    method: &Method,
    uri: &Uri,
    version: Version,
    headers: &HeaderMap,
    extensions: &http::Extensions,
) -> Request<()> {
    let mut head = Request::new(());
    *head.method_mut() = method.clone();
    *head.uri_mut() = uri.clone();
    *head.version_mut() = version;
    *head.headers_mut() = headers.clone();
    keep_protocol(extensions, head.extensions_mut());
    head
}

/// Refuses an acceptance that sets a field the handshake sets itself.
pub(crate) fn check_acceptance(acceptance: &Acceptance) -> Result<(), Error> {
    match acceptance
        .headers
        .keys()
        .find(|name| RESERVED_HEADERS.contains(&name.as_str()) || *name == "sec-websocket-accept")
    {
        Some(name) => Err(Error::ReservedHeader(name.clone())),
        None => Ok(()),
    }
}

impl fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgrade")
            .field("uri", self.request.uri())
            .field("protocol", &self.negotiated.protocol)
            .field("extensions", &self.negotiated.extensions)
            .finish_non_exhaustive()
    }
}
