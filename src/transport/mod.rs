//! How bytes reach the peer: TCP, and TLS over it for `wss`.

#[cfg(feature = "tls")]
mod tls;

use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::handshake::Target;
use crate::{Error, Options};

/// Any byte stream a WebSocket can run over.
pub trait Transport: AsyncRead + AsyncWrite + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + 'static> Transport for T {}

/// A transport behind one pointer, so connections of every kind share a type.
pub(crate) type BoxedTransport = Pin<Box<dyn Transport>>;

/// Opens TCP to the target (with `TCP_NODELAY`: frames are already batched)
/// and, for `wss`, TLS over it.
pub(crate) async fn connect(target: &Target, options: &Options) -> Result<BoxedTransport, Error> {
    // An IP literal is used as is; a name is resolved by tokio.
    let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
    tcp.set_nodelay(true)?;
    if !target.tls {
        return Ok(Box::pin(tcp));
    }
    #[cfg(feature = "tls")]
    {
        let stream = tls::connect(tcp, &target.host, options.tls.clone()).await?;
        Ok(Box::pin(stream))
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = options;
        Err(Error::TlsUnavailable(
            "wsstream was built without the `tls` feature",
        ))
    }
}
