//! Plain TCP: the default connector.

use tokio::net::TcpStream;

use super::{BoxedTransport, ConnectFuture, Connector, Endpoint};
use crate::Error;

/// Connects over TCP with `TCP_NODELAY` (frames are already batched, so
/// Nagle's delay would only add latency). A name is resolved by tokio and
/// each address is tried in turn.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

impl TcpConnector {
    /// Opens the TCP connection, unboxed.
    pub async fn connect_tcp(&self, to: &Endpoint) -> Result<TcpStream, Error> {
        let tcp = TcpStream::connect((to.host.as_str(), to.port)).await?;
        tcp.set_nodelay(true)?;
        // A system call, made only for the span's `remote` field.
        #[cfg(feature = "tracing")]
        if let Ok(addr) = tcp.peer_addr() {
            crate::trace::record_current("remote", &addr);
        }
        Ok(tcp)
    }
}

impl Connector for TcpConnector {
    fn connect<'a>(&'a self, to: &'a Endpoint) -> ConnectFuture<'a> {
        Box::pin(async move { Ok(Box::pin(self.connect_tcp(to).await?) as BoxedTransport) })
    }
}
