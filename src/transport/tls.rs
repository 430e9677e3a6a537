//! TLS for `wss`, through tokio-rustls with the ring provider.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::Error;

/// Starts TLS to `host` over `tcp`, with the caller's configuration or the
/// default one.
pub(super) async fn connect(
    tcp: TcpStream,
    host: &str,
    config: Option<Arc<ClientConfig>>,
) -> Result<TlsStream<TcpStream>, Error> {
    let config = match config {
        Some(config) => config,
        None => default_config()?,
    };
    let name = ServerName::try_from(host.to_owned())
        .map_err(|err| Error::io(std::io::Error::new(std::io::ErrorKind::InvalidInput, err)))?;
    Ok(TlsConnector::from(config).connect(name, tcp).await?)
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
        "no root certificates: enable the `webpki-roots` feature or pass Options::tls_config",
    ))
}
