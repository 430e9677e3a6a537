//! TLS through tokio-rustls with the ring provider: for `wss`, and for
//! HTTPS proxies.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use super::{BoxedTransport, ConnectFuture, Connector, Endpoint, TcpConnector};
use crate::Error;

/// Adds TLS, verified against `host`, over whatever another connector
/// opens. wsstream uses it for the TLS session to an HTTPS proxy; wrap a
/// connector of your own in it to reach a TLS-speaking endpoint.
///
/// The TLS is always started, whatever [`Endpoint::secure`] says: that
/// flag is about the WebSocket, for which wsstream adds TLS itself.
#[derive(Clone)]
pub struct TlsConnector<C = TcpConnector> {
    inner: C,
    config: Option<Arc<ClientConfig>>,
}

impl<C: Connector> TlsConnector<C> {
    /// TLS over `inner`, with the default configuration (Mozilla's roots
    /// when the `webpki-roots` feature is on).
    pub fn new(inner: C) -> Self {
        Self {
            inner,
            config: None,
        }
    }

    /// The rustls configuration to use (private CAs, client certificates).
    #[must_use]
    pub fn config(mut self, config: Arc<ClientConfig>) -> Self {
        self.config = Some(config);
        self
    }
}

impl<C: Connector> Connector for TlsConnector<C> {
    fn connect<'a>(&'a self, to: &'a Endpoint) -> ConnectFuture<'a> {
        Box::pin(async move {
            let io = self.inner.connect(to).await?;
            start_tls(io, &to.host, self.config.clone()).await
        })
    }
}

impl<C> std::fmt::Debug for TlsConnector<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector")
            .field("inner", &std::any::type_name::<C>())
            .field("custom_config", &self.config.is_some())
            .finish()
    }
}

/// Starts TLS to `host` over `io`, with the caller's configuration or the
/// default one.
pub(crate) async fn start_tls(
    io: BoxedTransport,
    host: &str,
    config: Option<Arc<ClientConfig>>,
) -> Result<BoxedTransport, Error> {
    let config = match config {
        Some(config) => config,
        None => default_config()?,
    };
    let stream = handshake(io, host, config).await?;
    Ok(Box::pin(stream))
}

/// Starts TLS to `host` over `io` offering `alpn` (in order of preference)
/// instead of what the configuration offers; returns the stream and the
/// protocol the server chose, if it chose one.
#[cfg(feature = "http2")]
pub(crate) async fn start_tls_alpn(
    io: BoxedTransport,
    host: &str,
    config: Option<Arc<ClientConfig>>,
    alpn: &[&[u8]],
) -> Result<(BoxedTransport, Option<Vec<u8>>), Error> {
    let mut config = match config {
        Some(config) => config,
        None => default_config()?,
    };
    Arc::make_mut(&mut config).alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let stream = handshake(io, host, config).await?;
    let chosen = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    Ok((Box::pin(stream), chosen))
}

async fn handshake(
    io: BoxedTransport,
    host: &str,
    config: Arc<ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<BoxedTransport>, Error> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|err| Error::io(std::io::Error::new(std::io::ErrorKind::InvalidInput, err)))?;
    Ok(tokio_rustls::TlsConnector::from(config)
        .connect(name, io)
        .await?)
}

/// Mozilla's roots with the ring provider, built once. The provider is
/// passed explicitly: no process-wide default needs to be installed, and a
/// different one installed by another crate does not matter.
#[cfg(feature = "webpki-roots")]
fn default_config() -> Result<Arc<ClientConfig>, Error> {
    use std::sync::OnceLock;
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, rustls::Error>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        })
        .clone()
        .map_err(|err| Error::io(std::io::Error::other(err)))
}

#[cfg(not(feature = "webpki-roots"))]
fn default_config() -> Result<Arc<ClientConfig>, Error> {
    Err(Error::TlsUnavailable(
        "no root certificates: enable the `webpki-roots` feature or pass a rustls configuration",
    ))
}
