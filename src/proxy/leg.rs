//! What every proxy connector shares: reaching the proxy server, the
//! deadline, and errors that name the proxy and the tunnel.

use std::future::Future;
use std::io;

use super::error::{ProxyError, ProxyFailure};
use super::url::{ProxyScheme, ProxyUrl};
use crate::transport::{BoxedTransport, Endpoint, SharedConnector};
use crate::Error;

/// TLS settings for the session to an HTTPS proxy.
#[cfg(feature = "tls")]
pub(crate) type ProxyTls = Option<std::sync::Arc<rustls::ClientConfig>>;
#[cfg(not(feature = "tls"))]
pub(crate) type ProxyTls = ();

/// Runs a proxy negotiation until `to.deadline`, and labels its failure
/// with the proxy and the target.
pub(crate) async fn run_leg<F>(
    proxy: &ProxyUrl,
    to: &Endpoint,
    work: F,
) -> Result<BoxedTransport, Error>
where
    F: Future<Output = Result<BoxedTransport, ProxyFailure>>,
{
    let result = match to.deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, work)
            .await
            .unwrap_or(Err(ProxyFailure::Timeout)),
        None => work.await,
    };
    let result = result.map_err(|failure| {
        Error::Proxy(Box::new(ProxyError::new(
            proxy.to_string(),
            to.to_string(),
            failure,
        )))
    });
    crate::trace::proxy_leg(proxy, to, &result);
    result
}

/// Opens the connection to the proxy server: through `via`, then TLS for
/// an HTTPS proxy.
pub(crate) async fn reach(
    proxy: &ProxyUrl,
    via: &SharedConnector,
    to: &Endpoint,
    tls: &ProxyTls,
) -> Result<BoxedTransport, ProxyFailure> {
    let https = proxy.scheme == ProxyScheme::Https;
    let mut server = Endpoint::new(proxy.host.clone(), proxy.port, https);
    server.deadline = to.deadline;
    let io = via
        .connector
        .connect(&server)
        .await
        .map_err(ProxyFailure::Unreachable)?;
    if !https {
        return Ok(io);
    }
    #[cfg(feature = "tls")]
    {
        crate::transport::start_tls(io, &proxy.host, tls.clone())
            .await
            .map_err(ProxyFailure::Unreachable)
    }
    #[cfg(not(feature = "tls"))]
    {
        let () = tls;
        Err(ProxyFailure::Unreachable(Error::TlsUnavailable(
            "an https:// proxy needs the `tls` feature",
        )))
    }
}

/// An I/O error while talking to the proxy; a connection closed early is
/// reported as such.
pub(crate) fn io_failure(err: io::Error) -> ProxyFailure {
    match err.kind() {
        io::ErrorKind::UnexpectedEof => ProxyFailure::Closed,
        _ => ProxyFailure::Io(Error::io(err)),
    }
}
