//! What a connection can be configured with.

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use tokio_util::sync::CancellationToken;

use crate::handshake::{validate_protocols, RESERVED_HEADERS};
use crate::proto::Limits;
use crate::Error;

/// The default high-water mark of the writable (128 KiB).
pub const DEFAULT_WRITE_HIGH_WATER: usize = 128 * 1024;

/// Settings both roles share.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnConfig {
    pub(crate) limits: Limits,
    pub(crate) write_high_water: usize,
}

impl Default for ConnConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            write_high_water: DEFAULT_WRITE_HIGH_WATER,
        }
    }
}

/// Options for [`WebSocketStream::connect`](crate::WebSocketStream::connect):
/// WHATWG's `WebSocketStreamOptions` (protocols, signal) plus what undici's
/// dispatcher and Rust users need (headers, TLS, limits, buffering).
///
/// ```
/// use wsstream::Options;
/// use tokio_util::sync::CancellationToken;
///
/// let cancel = CancellationToken::new();
/// let options = Options::default()
///     .protocols(["chat", "superchat"])
///     .header(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer token"))
///     .max_message_size(1 << 20)
///     .signal(cancel.clone());
/// ```
#[derive(Clone, Default)]
pub struct Options {
    pub(crate) protocols: Vec<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) conn: ConnConfig,
    pub(crate) signal: Option<CancellationToken>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
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

    /// The largest message the peer may send, all fragments together
    /// (default 64 MiB). A larger one fails the connection with close 1009.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.conn.limits.max_message_size = bytes;
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

    /// Checks what can be checked before any I/O.
    pub(crate) fn validate(&self) -> Result<(), Error> {
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
            .field("limits", &self.conn.limits)
            .field("write_high_water", &self.conn.write_high_water)
            .field("signal", &self.signal.is_some())
            .finish_non_exhaustive()
    }
}

/// Chooses a subprotocol from the request and the client's offers.
type ProtocolSelector = dyn Fn(&http::Request<()>, &[String]) -> Option<String> + Send + Sync;

/// Options for [`WebSocketStream::accept`](crate::WebSocketStream::accept).
#[derive(Clone, Default)]
pub struct ServerOptions {
    pub(crate) protocols: Vec<String>,
    pub(crate) selector: Option<Arc<ProtocolSelector>>,
    pub(crate) conn: ConnConfig,
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

    /// The largest message the client may send (default 64 MiB).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.conn.limits.max_message_size = bytes;
        self
    }

    /// The largest single frame the client may send (default 16 MiB).
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
            .field("limits", &self.conn.limits)
            .field("write_high_water", &self.conn.write_high_water)
            .finish()
    }
}
