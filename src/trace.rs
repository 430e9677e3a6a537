//! Logging for operators through `tracing` (feature `tracing`): a span per
//! connection and events at `debug` for what a failing connection needs
//! explained. Without the feature every item here is empty and every call
//! compiles to nothing.
//!
//! What is logged, and at which level, is listed in the crate docs
//! ("Logging"). Nothing here ever formats a URL's user, password or query,
//! a proxy's credentials, or a header: spans name a URL as
//! [`RedactedUrl`], and proxies by scheme, host and port.

use crate::proto::Connection;
use crate::{CloseInfo, Error, Timeout};

/// An event at `debug`, or nothing without the feature (its arguments are
/// not even evaluated).
#[cfg(feature = "tracing")]
macro_rules! debug_event {
    ($($arg:tt)+) => { ::tracing::debug!($($arg)+) };
}
#[cfg(not(feature = "tracing"))]
macro_rules! debug_event {
    ($($arg:tt)+) => {
        ()
    };
}
pub(crate) use debug_event;

/// Reports a failed opening, with its error.
pub(crate) fn opening_failed<T>(result: &Result<T, Error>) {
    if let Err(err) = result {
        debug_event!(error = %err, "opening failed");
        #[cfg(not(feature = "tracing"))]
        let _ = err;
    }
}

/// Reports a proxy leg: the tunnel opened, or why not (the error names the
/// proxy by scheme, host and port only).
pub(crate) fn proxy_leg<T>(
    proxy: &dyn std::fmt::Display,
    to: &dyn std::fmt::Display,
    result: &Result<T, Error>,
) {
    #[cfg(feature = "tracing")]
    match result {
        Ok(_) => tracing::debug!(proxy = %proxy, target = %to, "proxy tunnel open"),
        Err(err) => {
            tracing::debug!(proxy = %proxy, target = %to, error = %err, "proxy tunnel failed")
        }
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (proxy, to, result);
}

/// A URL as spans show it: scheme, host, port and path, without the user,
/// the password, the query or the fragment.
#[cfg(feature = "tracing")]
pub(crate) struct RedactedUrl<'a>(pub(crate) &'a url::Url);

#[cfg(feature = "tracing")]
impl std::fmt::Display for RedactedUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.0;
        write!(f, "{}://", url.scheme())?;
        match url.host() {
            Some(url::Host::Ipv6(ip)) => write!(f, "[{ip}]")?,
            Some(host) => write!(f, "{host}")?,
            None => {}
        }
        if let Some(port) = url.port() {
            write!(f, ":{port}")?;
        }
        f.write_str(url.path())
    }
}

/// Runs `future` inside `span` (the connection's, while it opens).
#[cfg(feature = "tracing")]
pub(crate) fn instrument<F>(
    future: F,
    span: &ConnSpan,
) -> impl std::future::Future<Output = F::Output>
where
    F: std::future::Future,
{
    tracing::Instrument::instrument(future, span.clone())
}

/// Runs `future` as it is: there are no spans without the feature.
#[cfg(not(feature = "tracing"))]
pub(crate) fn instrument<F>(future: F, _span: &ConnSpan) -> F {
    future
}

/// Calls `f` inside `span`.
pub(crate) fn in_span<R>(span: &ConnSpan, f: impl FnOnce() -> R) -> R {
    #[cfg(feature = "tracing")]
    {
        span.in_scope(f)
    }
    #[cfg(not(feature = "tracing"))]
    {
        let _ = span;
        f()
    }
}

/// The span of one connection.
#[cfg(feature = "tracing")]
pub(crate) type ConnSpan = tracing::Span;

/// The span of one connection: nothing without the feature.
#[cfg(not(feature = "tracing"))]
#[derive(Clone, Copy)]
pub(crate) struct ConnSpan;

/// A client connection's span: its URL, redacted, and (once connected) the
/// address of the TCP connection it opened, the server's or its proxy's.
pub(crate) fn client_span(url: &url::Url) -> ConnSpan {
    #[cfg(feature = "tracing")]
    {
        tracing::debug_span!(
            "websocket",
            role = "client",
            url = %RedactedUrl(url),
            remote = tracing::field::Empty,
        )
    }
    #[cfg(not(feature = "tracing"))]
    {
        let _ = url;
        ConnSpan
    }
}

/// A server connection's span: the peer's address when the transport is a
/// TCP or TLS-over-TCP stream of tokio's, and (once the request is read)
/// its path.
pub(crate) fn server_span<T: 'static>(io: &T) -> ConnSpan {
    #[cfg(feature = "tracing")]
    {
        let span = tracing::debug_span!(
            "websocket",
            role = "server",
            peer = tracing::field::Empty,
            path = tracing::field::Empty,
        );
        if let Some(peer) = peer_addr(io) {
            span.record("peer", tracing::field::display(peer));
        }
        span
    }
    #[cfg(not(feature = "tracing"))]
    {
        let _ = io;
        ConnSpan
    }
}

/// The peer's address, for the transports that know one.
#[cfg(feature = "tracing")]
fn peer_addr<T: 'static>(io: &T) -> Option<std::net::SocketAddr> {
    let io: &dyn std::any::Any = io;
    if let Some(tcp) = io.downcast_ref::<tokio::net::TcpStream>() {
        return tcp.peer_addr().ok();
    }
    #[cfg(feature = "tls")]
    if let Some(tls) = io.downcast_ref::<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>() {
        return tls.get_ref().0.peer_addr().ok();
    }
    None
}

/// Records a field of the current span (the connection's, inside the
/// futures [`instrument`] runs): `remote` for a client, `path` for a server.
pub(crate) fn record_current(field: &'static str, value: &dyn std::fmt::Display) {
    #[cfg(feature = "tracing")]
    tracing::Span::current().record(field, tracing::field::display(value));
    #[cfg(not(feature = "tracing"))]
    let _ = (field, value);
}

/// What an open connection reports: its span, and which of the close
/// handshake's steps have been reported already.
pub(crate) struct ConnTrace {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
    #[cfg(feature = "tracing")]
    reported: u8,
}

#[cfg(feature = "tracing")]
const CLOSE_SENT: u8 = 1;
#[cfg(feature = "tracing")]
const CLOSE_RECEIVED: u8 = 2;
#[cfg(feature = "tracing")]
const FAILED: u8 = 4;

impl ConnTrace {
    /// Reports into the current span: the connection's, since a connection
    /// is established inside the future its span instruments (or, for
    /// hyper and axum, inside the span `Upgrade` enters).
    pub(crate) fn current() -> Self {
        Self {
            #[cfg(feature = "tracing")]
            span: tracing::Span::current(),
            #[cfg(feature = "tracing")]
            reported: 0,
        }
    }

    /// Reports the close frames sent and received and a protocol error,
    /// each once, as the connection's state shows them.
    #[inline]
    pub(crate) fn observe(&mut self, proto: &Connection) {
        #[cfg(feature = "tracing")]
        if self.reported != CLOSE_SENT | CLOSE_RECEIVED | FAILED {
            self.observe_changes(proto);
        }
        #[cfg(not(feature = "tracing"))]
        let _ = proto;
    }

    #[cfg(feature = "tracing")]
    #[cold]
    fn observe_changes(&mut self, proto: &Connection) {
        if self.reported & FAILED == 0 {
            if let Some(err) = proto.failure() {
                self.reported |= FAILED;
                tracing::debug!(
                    parent: &self.span,
                    code = err.close_code().as_u16(),
                    error = %err,
                    "protocol error"
                );
            }
        }
        if self.reported & CLOSE_SENT == 0 {
            if let Some(frame) = proto.close_frame_sent() {
                self.reported |= CLOSE_SENT;
                let (code, reason) = frame
                    .as_ref()
                    .map_or((1005, ""), |f| (f.code().as_u16(), f.reason()));
                tracing::debug!(parent: &self.span, code, reason, "close frame sent");
            }
        }
        if self.reported & CLOSE_RECEIVED == 0 {
            if let Some(frame) = proto.close_received() {
                self.reported |= CLOSE_RECEIVED;
                let (code, reason) = frame
                    .as_ref()
                    .map_or((1005, ""), |f| (f.code().as_u16(), f.reason()));
                tracing::debug!(parent: &self.span, code, reason, "close frame received");
            }
        }
    }

    /// Reports a deadline that passed.
    pub(crate) fn timeout(&self, timeout: Timeout) {
        debug_event!(parent: &self.span, timeout = ?timeout, "timed out");
        #[cfg(not(feature = "tracing"))]
        let _ = timeout;
    }

    /// Reports how the connection ended: cleanly with the peer's code, or
    /// with the error (a protocol error and a timeout were reported when
    /// they happened).
    pub(crate) fn ended(&self, outcome: &Result<CloseInfo, Error>) {
        #[cfg(feature = "tracing")]
        match outcome {
            Ok(info) => tracing::debug!(parent: &self.span, code = info.code, "closed cleanly"),
            Err(err) => {
                tracing::debug!(parent: &self.span, error = %err, "ended without a clean close")
            }
        }
        #[cfg(not(feature = "tracing"))]
        let _ = outcome;
    }
}

// Without the feature, a connection holds nothing for logging.
#[cfg(not(feature = "tracing"))]
const _: () = assert!(std::mem::size_of::<ConnTrace>() == 0);
