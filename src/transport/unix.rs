//! Unix domain sockets, for local daemons.

use std::path::PathBuf;

use tokio::net::UnixStream;

use super::{BoxedTransport, ConnectFuture, Connector, Endpoint};

/// Connects to a unix socket, whatever host the URL names: the URL still
/// gives the `Host` header and the request path.
///
/// ```no_run
/// # async fn demo() -> Result<(), wsstream::Error> {
/// use wsstream::transport::UnixConnector;
/// use wsstream::{Options, WebSocketStream};
///
/// let options = Options::default().connector(UnixConnector::new("/run/daemon.sock"));
/// let ws = WebSocketStream::connect("ws://localhost/events", options);
/// let opened = ws.opened().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct UnixConnector {
    path: PathBuf,
}

impl UnixConnector {
    /// A connector to the socket at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl Connector for UnixConnector {
    fn connect<'a>(&'a self, _to: &'a Endpoint) -> ConnectFuture<'a> {
        Box::pin(async move {
            let stream = UnixStream::connect(&self.path).await?;
            Ok(Box::pin(stream) as BoxedTransport)
        })
    }
}
