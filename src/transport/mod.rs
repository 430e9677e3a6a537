//! How bytes reach the peer: one [`Connector`] trait, implemented by TCP,
//! TLS, unix sockets, HTTP and SOCKS5 proxies, and anything a user writes.
//!
//! A connector turns an [`Endpoint`] (host, port, whether the WebSocket is
//! `wss`) into a byte stream to that endpoint. Connectors compose: a proxy
//! reaches its proxy server through another connector, and
//! [`TlsConnector`] adds TLS over any connector. For `wss`, wsstream adds
//! TLS to the origin itself, over whatever the configured connector
//! returns, so a tunnel carries the origin's TLS end to end.

mod endpoint;
mod tcp;
#[cfg(feature = "tls")]
mod tls;
#[cfg(unix)]
mod unix;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::Error;

pub use endpoint::Endpoint;
pub use tcp::TcpConnector;
#[cfg(feature = "tls")]
pub(crate) use tls::start_tls;
#[cfg(all(feature = "tls", feature = "http2"))]
pub(crate) use tls::start_tls_alpn;
#[cfg(feature = "tls")]
pub use tls::TlsConnector;
#[cfg(unix)]
pub use unix::UnixConnector;

/// Any byte stream a WebSocket can run over.
pub trait Transport: AsyncRead + AsyncWrite + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + 'static> Transport for T {}

/// A transport behind one pointer, so connections of every kind share a type.
pub type BoxedTransport = Pin<Box<dyn Transport>>;

/// The future a [`Connector`] returns.
pub type ConnectFuture<'a> =
    Pin<Box<dyn Future<Output = Result<BoxedTransport, Error>> + Send + 'a>>;

/// Opens byte streams to endpoints: the one trait behind TCP, TLS, unix
/// sockets and proxies, and the way to plug in a transport of your own
/// with [`Options::connector`](crate::Options::connector).
///
/// ```
/// use wsstream::transport::{BoxedTransport, ConnectFuture, Connector, Endpoint};
///
/// /// Connects to a fixed address whatever the URL says (a sidecar, say).
/// struct Sidecar(std::net::SocketAddr);
///
/// impl Connector for Sidecar {
///     fn connect<'a>(&'a self, _to: &'a Endpoint) -> ConnectFuture<'a> {
///         Box::pin(async move {
///             let tcp = tokio::net::TcpStream::connect(self.0).await?;
///             Ok(Box::pin(tcp) as BoxedTransport)
///         })
///     }
/// }
///
/// let options = wsstream::Options::default()
///     .connector(Sidecar("127.0.0.1:9000".parse().unwrap()));
/// ```
pub trait Connector: Send + Sync + 'static {
    /// Opens a byte stream to `to`. It should give up at `to.deadline` if
    /// it can say more than wsstream's generic
    /// [`Timeout::Open`](crate::Timeout::Open) would (as the proxies do).
    fn connect<'a>(&'a self, to: &'a Endpoint) -> ConnectFuture<'a>;
}

impl<C: Connector + ?Sized> Connector for Arc<C> {
    fn connect<'a>(&'a self, to: &'a Endpoint) -> ConnectFuture<'a> {
        (**self).connect(to)
    }
}

impl<C: Connector + ?Sized> Connector for Box<C> {
    fn connect<'a>(&'a self, to: &'a Endpoint) -> ConnectFuture<'a> {
        (**self).connect(to)
    }
}

/// A shared connector and the name of its type, for `Debug` output that
/// never shows a connector's contents (which may hold credentials).
#[derive(Clone)]
pub(crate) struct SharedConnector {
    pub(crate) connector: Arc<dyn Connector>,
    pub(crate) name: &'static str,
}

impl SharedConnector {
    pub(crate) fn new<C: Connector>(connector: C) -> Self {
        Self {
            connector: Arc::new(connector),
            name: std::any::type_name::<C>(),
        }
    }
}

impl std::fmt::Debug for SharedConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}
