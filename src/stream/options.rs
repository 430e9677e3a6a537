//! What a connection can be configured with.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use tokio_util::sync::CancellationToken;

use super::timers::TimeoutConfig;
use super::verdict::{Acceptance, Rejection};
use crate::handshake::{validate_protocols, DeflateConfig, RESERVED_HEADERS};
use crate::proto::Limits;
use crate::proxy::{EnvProxy, Proxy};
use crate::transport::{Connector, SharedConnector, TcpConnector};
use crate::Error;

/// The default high-water mark of the writable (128 KiB).
pub const DEFAULT_WRITE_HIGH_WATER: usize = 128 * 1024;

/// The default limit on connecting and the opening handshake (10 s).
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings both roles share.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnConfig {
    pub(crate) limits: Limits,
    pub(crate) write_high_water: usize,
    pub(crate) timeouts: TimeoutConfig,
    /// permessage-deflate: what a client offers, what a server accepts.
    pub(crate) deflate: Option<DeflateConfig>,
}

impl Default for ConnConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            write_high_water: DEFAULT_WRITE_HIGH_WATER,
            timeouts: TimeoutConfig::default(),
            deflate: None,
        }
    }
}

/// The setters for [`ConnConfig`], the same on both options types.
macro_rules! conn_setters {
    () => {
        /// The largest message the peer may send, all fragments together
        /// (default 64 MiB). A larger one fails the connection with close
        /// 1009 as soon as its size is known.
        pub fn max_message_size(mut self, bytes: usize) -> Self {
            self.conn.limits.max_message_size = bytes;
            self
        }

        /// The largest message the peer may send when it is read in chunks
        /// ([`Readable::next_streamed`](crate::Readable::next_streamed)),
        /// which never holds it whole (default: no limit). A larger one
        /// fails the connection with close 1009 as soon as its size is
        /// known. `max_message_size` does not apply to such a message;
        /// `max_frame_size` does, to each of its frames.
        pub fn max_streamed_message_size(mut self, bytes: u64) -> Self {
            self.conn.limits.max_streamed_message_size = bytes;
            self
        }

        /// The largest single frame the peer may send (default 16 MiB).
        pub fn max_frame_size(mut self, bytes: usize) -> Self {
            self.conn.limits.max_frame_size = bytes;
            self
        }

        /// How many bytes may wait to be written before the writable's
        /// `poll_ready` returns `Pending` (default 128 KiB).
        pub fn write_high_water(mut self, bytes: usize) -> Self {
            self.conn.write_high_water = bytes;
            self
        }

        /// How long to wait for the peer's answer to our close frame before
        /// dropping the connection (default 10 s); `closed` then fails with
        /// [`Timeout::Close`](crate::Timeout::Close).
        pub fn close_timeout(mut self, timeout: Duration) -> Self {
            self.conn.timeouts.close = timeout;
            self
        }

        /// How often to send a keepalive ping (default every 20 s; `None`
        /// sends none). Pings go out while the connection is being driven,
        /// that is while its readable (or `closed`) is polled.
        pub fn ping_interval(mut self, interval: Option<Duration>) -> Self {
            self.conn.timeouts.ping_interval = interval;
            self
        }

        /// How long a keepalive ping may wait for its pong (default 20 s;
        /// `None` waits forever). Past it the connection fails with
        /// [`Timeout::Keepalive`](crate::Timeout::Keepalive) and close 1011.
        pub fn ping_timeout(mut self, timeout: Option<Duration>) -> Self {
            self.conn.timeouts.ping_timeout = timeout;
            self
        }

        /// Fails the connection with [`Timeout::Idle`](crate::Timeout::Idle)
        /// (and close 1001) when nothing arrives for this long (default
        /// `None`: never).
        pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
            self.conn.timeouts.idle = timeout;
            self
        }

        /// Turns on permessage-deflate (RFC 7692), off by default: a
        /// client offers it with these parameters, a server accepts the
        /// first valid offer and answers with the parameters it will use
        /// (see [`DeflateConfig`](crate::DeflateConfig)). What was agreed
        /// shows in `Opened::extensions`. The message size limit applies
        /// to inflated messages.
        #[cfg(feature = "deflate")]
        pub fn deflate(mut self, config: crate::DeflateConfig) -> Self {
            self.conn.deflate = Some(config);
            self
        }
    };
}

/// Options for [`WebSocketStream::connect`](crate::WebSocketStream::connect):
/// WHATWG's `WebSocketStreamOptions` (protocols, signal) plus what undici's
/// dispatcher and Rust users need (headers, TLS, limits, buffering,
/// timeouts).
///
/// ```
/// use std::time::Duration;
/// use wsstream::{CancellationToken, Options};
///
/// let cancel = CancellationToken::new();
/// let options = Options::default()
///     .protocols(["chat", "superchat"])
///     .header(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer token"))
///     .max_message_size(1 << 20)
///     .open_timeout(Duration::from_secs(5))
///     .ping_interval(Some(Duration::from_secs(30)))
///     .signal(cancel.clone());
/// ```
#[derive(Clone)]
pub struct Options {
    pub(crate) protocols: Vec<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) conn: ConnConfig,
    pub(crate) open_timeout: Duration,
    pub(crate) signal: Option<CancellationToken>,
    /// How to reach the server, or why the configured proxy is unusable.
    pub(crate) connector: Result<SharedConnector, Error>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    /// The HTTP version to use, and the HTTP/2 connections shared by this
    /// value and its clones.
    #[cfg(feature = "http2")]
    pub(crate) http2: Http2Settings,
}

/// Which HTTP version a client opens its WebSocket over (feature `http2`).
///
/// Over HTTP/2 (RFC 8441) a WebSocket is one stream of a connection that
/// other WebSockets to the same origin share; see
/// [`Options::http_version`].
#[cfg(feature = "http2")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HttpVersion {
    /// The HTTP/1.1 upgrade, one connection per WebSocket (the default).
    #[default]
    Http1,
    /// HTTP/2 when the server offers it, else HTTP/1.1: for `wss`, `h2` is
    /// offered beside `http/1.1` by ALPN, and HTTP/2 is used when the
    /// server picks `h2` and allows extended CONNECT
    /// (`SETTINGS_ENABLE_CONNECT_PROTOCOL`); otherwise the HTTP/1.1
    /// upgrade follows, on the same connection when ALPN chose
    /// `http/1.1`, on a fresh one when the server spoke HTTP/2 without
    /// extended CONNECT. `ws` URLs use HTTP/1.1 unless
    /// [`http2_prior_knowledge`](Options::http2_prior_knowledge) is set.
    PreferHttp2,
    /// HTTP/2 or nothing: `opened` fails with
    /// [`Error::Http2Unavailable`] when the server does not pick `h2` or
    /// does not allow extended CONNECT, or for a `ws` URL without
    /// [`http2_prior_knowledge`](Options::http2_prior_knowledge).
    RequireHttp2,
}

/// The HTTP/2 choices of a client's options.
#[cfg(feature = "http2")]
#[derive(Debug, Clone, Default)]
pub(crate) struct Http2Settings {
    pub(crate) version: HttpVersion,
    pub(crate) prior_knowledge: bool,
    pub(crate) pool: super::open::http2::Http2Pool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            protocols: Vec::new(),
            headers: HeaderMap::new(),
            conn: ConnConfig::default(),
            open_timeout: DEFAULT_OPEN_TIMEOUT,
            signal: None,
            connector: Ok(SharedConnector::new(TcpConnector)),
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "http2")]
            http2: Http2Settings::default(),
        }
    }
}

impl Options {
    /// Subprotocols to offer, in order of preference. Each must be an HTTP
    /// token and appear once (WHATWG rules); otherwise `opened` fails with
    /// [`Error::InvalidProtocol`] before any I/O.
    pub fn protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a header field to the upgrade request (cookies, authorization,
    /// origin…). The fields the handshake sets itself (`Host`, `Upgrade`,
    /// `Connection`, `Sec-WebSocket-*`) cannot be overridden: `opened` fails
    /// with [`Error::ReservedHeader`].
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Adds every field of `headers` to the upgrade request (see
    /// [`header`](Self::header)).
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.headers.extend(headers);
        self
    }

    /// The limit on connecting, TLS and the opening handshake together
    /// (default 10 s); `opened` then fails with
    /// [`Timeout::Open`](crate::Timeout::Open).
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.open_timeout = timeout;
        self
    }

    /// WHATWG's `signal`: cancelling the token before the connection opens
    /// aborts it (`opened` and `closed` fail with [`Error::Aborted`] and
    /// nothing is left running). After it opens, the token is ignored.
    pub fn signal(mut self, token: CancellationToken) -> Self {
        self.signal = Some(token);
        self
    }

    /// The rustls configuration for `wss` (private CAs, client certificates,
    /// pinning). By default wsstream verifies servers against the bundled
    /// Mozilla roots with the ring provider, and never relies on a
    /// process-wide crypto provider.
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Connects through a proxy given by URL: `http://` or `https://`
    /// (HTTP `CONNECT`; TLS to the proxy for `https`), `socks5h://` (SOCKS5,
    /// names resolved by the proxy) or `socks5://` (names resolved here),
    /// with optional `user:password@`. An unusable URL makes `opened` fail
    /// with [`Error::InvalidProxy`] before any I/O. For headers, TLS
    /// settings or a proxy reached another way, build an
    /// [`HttpProxy`](crate::proxy::HttpProxy) or
    /// [`Socks5Proxy`](crate::proxy::Socks5Proxy) and pass it to
    /// [`connector`](Self::connector).
    pub fn proxy(mut self, url: &str) -> Self {
        self.connector = Proxy::parse(url).map(SharedConnector::new);
        self
    }

    /// Connects through the proxy the environment names, the way curl and
    /// Python `websockets` read it: `wss` uses `WSS_PROXY`, else
    /// `HTTPS_PROXY`; `ws` uses `WS_PROXY`, else `HTTP_PROXY`; both fall
    /// back to `ALL_PROXY`. Each name is tried in lower case first, an
    /// empty value counts as unset, and `NO_PROXY` lists the hosts reached
    /// directly (see [`EnvProxy`]). The variables are read by this call.
    pub fn proxy_from_env(self) -> Self {
        self.connector(EnvProxy::from_env())
    }

    /// How to reach the server: anything that implements [`Connector`]
    /// (TCP by default; a proxy, a unix socket, a transport of your own).
    /// For `wss`, wsstream starts TLS to the server over what the
    /// connector returns.
    pub fn connector<C: Connector>(mut self, connector: C) -> Self {
        self.connector = Ok(SharedConnector::new(connector));
        self
    }

    /// Which HTTP version to open the WebSocket over (feature `http2`;
    /// default [`HttpVersion::Http1`]).
    ///
    /// Over HTTP/2, WebSockets opened with this `Options` value or its
    /// clones share one connection per origin (same scheme, host and port;
    /// the same connector and TLS configuration). The connection closes
    /// when the last WebSocket on it ends. Its `h2` state is driven by a
    /// task of its own, the one background task of an HTTP/2 client.
    #[cfg(feature = "http2")]
    pub fn http_version(mut self, version: HttpVersion) -> Self {
        self.http2.version = version;
        self
    }

    /// Speak HTTP/2 without asking first on `ws` URLs (cleartext "h2c"
    /// with prior knowledge, RFC 9113 §3.3), when
    /// [`http_version`](Self::http_version) asks for HTTP/2; and on a
    /// transport given to [`connect_over`](crate::WebSocketStream::connect_over).
    /// For servers known to speak it: one that does not fails the open.
    #[cfg(feature = "http2")]
    pub fn http2_prior_knowledge(mut self, yes: bool) -> Self {
        self.http2.prior_knowledge = yes;
        self
    }

    conn_setters!();

    /// Checks what can be checked before any I/O.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if let Err(err) = &self.connector {
            return Err(err.clone());
        }
        validate_protocols(&self.protocols).map_err(Error::InvalidProtocol)?;
        if let Some(name) = self
            .headers
            .keys()
            .find(|name| RESERVED_HEADERS.contains(&name.as_str()))
        {
            return Err(Error::ReservedHeader(name.clone()));
        }
        Ok(())
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may hold credentials: only their names are shown.
        f.debug_struct("Options")
            .field("protocols", &self.protocols)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("conn", &self.conn)
            .field("open_timeout", &self.open_timeout)
            .field("signal", &self.signal.is_some())
            .field("connector", &self.connector)
            .finish_non_exhaustive()
    }
}

/// Chooses a subprotocol from the request and the client's offers.
type ProtocolSelector = dyn Fn(&http::Request<()>, &[String]) -> Option<String> + Send + Sync;

/// The future an accept hook returns.
pub(crate) type HookFuture = Pin<Box<dyn Future<Output = Result<Acceptance, Rejection>> + Send>>;

/// Decides, from the request, whether to accept an upgrade.
pub(crate) type AcceptHook = dyn Fn(&http::Request<()>) -> HookFuture + Send + Sync;

/// Options for [`WebSocketStream::accept`](crate::WebSocketStream::accept).
#[derive(Clone)]
pub struct ServerOptions {
    pub(crate) protocols: Vec<String>,
    pub(crate) selector: Option<Arc<ProtocolSelector>>,
    pub(crate) hook: Option<Arc<AcceptHook>>,
    pub(crate) conn: ConnConfig,
    pub(crate) handshake_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            protocols: Vec::new(),
            selector: None,
            hook: None,
            conn: ConnConfig::default(),
            handshake_timeout: DEFAULT_OPEN_TIMEOUT,
        }
    }
}

impl ServerOptions {
    /// Subprotocols this server speaks, in its order of preference: the
    /// first of them that the client offered is chosen.
    pub fn protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Chooses the subprotocol with a function of the request (path,
    /// headers) and the client's offers, instead of a fixed list. A choice
    /// the client did not offer is ignored.
    pub fn select_protocol<F>(mut self, select: F) -> Self
    where
        F: Fn(&http::Request<()>, &[String]) -> Option<String> + Send + Sync + 'static,
    {
        self.selector = Some(Arc::new(select));
        self
    }

    /// Decides, asynchronously, whether to accept each upgrade request that
    /// [`WebSocketStream::accept`](crate::WebSocketStream::accept) reads:
    /// check a cookie or token against a database, check the `Origin`,
    /// route by path. The hook sees the request once it has passed the
    /// WebSocket checks, and answers with an [`Acceptance`] (extra response
    /// fields such as `Set-Cookie`, and the subprotocol if it chooses) or a
    /// [`Rejection`] (any status, fields and body), which `accept` sends
    /// and reports as [`HandshakeError::Rejected`](crate::handshake::HandshakeError::Rejected).
    ///
    /// The hook runs within [`handshake_timeout`](Self::handshake_timeout).
    /// One that panics fails only its connection: the client gets a 500
    /// and `accept` a [`HandshakeError::Rejected`](crate::handshake::HandshakeError::Rejected)
    /// with status 500. The hook is called with a borrowed request and
    /// returns a `'static` future: copy out what the future needs.
    ///
    /// Servers on hyper or axum need no hook: they have the request before
    /// they upgrade it ([`Upgrade::new`](crate::Upgrade::new)).
    ///
    /// ```
    /// use http::{header, HeaderValue, StatusCode};
    /// use wsstream::{Acceptance, Rejection, ServerOptions};
    ///
    /// let options = ServerOptions::default().accept_hook(|request| {
    ///     let origin = request.headers().get(header::ORIGIN).cloned();
    ///     async move {
    ///         match origin {
    ///             Some(origin) if origin == "https://app.example" => Ok(Acceptance::new()
    ///                 .header(header::SET_COOKIE, HeaderValue::from_static("seen=1"))),
    ///             _ => Err(Rejection::new(StatusCode::FORBIDDEN).body("unknown origin")),
    ///         }
    ///     }
    /// });
    /// ```
    pub fn accept_hook<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(&http::Request<()>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Acceptance, Rejection>> + Send + 'static,
    {
        self.hook = Some(Arc::new(move |request| Box::pin(hook(request))));
        self
    }

    /// The limit on reading the client's request, running the accept hook
    /// and answering (default 10 s), so a client that drips its request
    /// cannot hold a task forever; `accept` then fails with
    /// [`Timeout::Open`](crate::Timeout::Open). On hyper and axum, it
    /// bounds the wait for the upgraded connection after the `101`; reading
    /// the request is the server's (hyper's `header_read_timeout`).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    conn_setters!();

    pub(crate) fn choose(&self, request: &http::Request<()>, offered: &[String]) -> Option<String> {
        let choice = match &self.selector {
            Some(select) => select(request, offered),
            None => self.protocols.iter().find(|p| offered.contains(p)).cloned(),
        };
        choice.filter(|p| offered.contains(p))
    }
}

impl fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerOptions")
            .field("protocols", &self.protocols)
            .field("selector", &self.selector.is_some())
            .field("hook", &self.hook.is_some())
            .field("conn", &self.conn)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}
