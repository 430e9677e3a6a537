//! SOCKS5 proxies (RFC 1928), with username and password (RFC 1929).

use std::fmt;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::ProxyFailure;
use super::leg::{io_failure, reach, run_leg};
use super::socks5_wire::{
    auth_request, check_reply, connect_request, greeting, parse_auth_reply, parse_method,
    reply_rest_len, Method, SocksAddr,
};
use super::url::{Credentials, ProxyScheme, ProxyUrl};
use crate::transport::{
    BoxedTransport, ConnectFuture, Connector, Endpoint, SharedConnector, TcpConnector,
};
use crate::Error;

/// A connector that tunnels through a SOCKS5 proxy, like undici's
/// `Socks5ProxyAgent`.
///
/// By default the proxy resolves host names (what curl calls `socks5h`):
/// the name, not an address, goes to the proxy, so names that only the
/// proxy's network knows work and no DNS query leaves this host. A
/// `socks5://` URL, or [`resolve_locally`](Self::resolve_locally), resolves
/// here instead (curl's convention). Credentials are never shown by
/// `Debug`.
///
/// ```
/// use wsstream::proxy::Socks5Proxy;
/// use wsstream::Options;
///
/// let proxy = Socks5Proxy::new("socks5h://127.0.0.1:1080")?.credentials("alice", "s3cret");
/// let options = Options::default().connector(proxy);
/// # Ok::<(), wsstream::Error>(())
/// ```
#[derive(Clone)]
pub struct Socks5Proxy {
    url: ProxyUrl,
    remote_dns: bool,
    via: SharedConnector,
}

impl Socks5Proxy {
    /// A proxy from a `socks5h://` URL (names resolved by the proxy) or a
    /// `socks5://` URL (names resolved here); no port means 1080.
    /// Credentials in the URL's userinfo are used for RFC 1929.
    pub fn new(url: &str) -> Result<Self, Error> {
        let url = ProxyUrl::parse(url)?;
        if !matches!(url.scheme, ProxyScheme::Socks5 { .. }) {
            return Err(Error::InvalidProxy(
                "a SOCKS5 proxy URL must be socks5:// or socks5h://",
            ));
        }
        Ok(Self::from_url(url))
    }

    pub(crate) fn from_url(url: ProxyUrl) -> Self {
        let remote_dns = !matches!(url.scheme, ProxyScheme::Socks5 { remote_dns: false });
        Self {
            url,
            remote_dns,
            via: SharedConnector::new(TcpConnector),
        }
    }

    /// Authenticates with this username and password (RFC 1929, at most
    /// 255 bytes each), replacing any from the URL.
    #[must_use]
    pub fn credentials(mut self, user: &str, password: &str) -> Self {
        self.url.credentials = Some(Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        });
        self
    }

    /// Resolves host names here and sends the proxy an address (`true`),
    /// or sends the name for the proxy to resolve (`false`, the default
    /// for `socks5h://`).
    #[must_use]
    pub fn resolve_locally(mut self, local: bool) -> Self {
        self.remote_dns = !local;
        self
    }

    /// Reaches the proxy server through another connector instead of TCP.
    #[must_use]
    pub fn via<C: Connector>(mut self, connector: C) -> Self {
        self.via = SharedConnector::new(connector);
        self
    }

    async fn tunnel(
        &self,
        to: &Endpoint,
        auth: Option<Vec<u8>>,
    ) -> Result<BoxedTransport, ProxyFailure> {
        let addr = match (to.ip(), self.remote_dns) {
            (Some(ip), _) => SocksAddr::Ip(ip),
            (None, true) => SocksAddr::Domain(to.host.clone()),
            (None, false) => SocksAddr::Ip(resolve(to).await?),
        };
        let request = connect_request(&addr, to.port)?;
        let mut io = reach(&self.url, &self.via, to, &Default::default()).await?;
        io.write_all(greeting(auth.is_some()))
            .await
            .map_err(io_failure)?;
        let mut two = [0; 2];
        io.read_exact(&mut two).await.map_err(io_failure)?;
        if parse_method(two, auth.is_some())? == Method::UserPassword {
            let auth = auth.ok_or(ProxyFailure::SocksNoAcceptableMethod)?;
            io.write_all(&auth).await.map_err(io_failure)?;
            io.read_exact(&mut two).await.map_err(io_failure)?;
            parse_auth_reply(two)?;
        }
        io.write_all(&request).await.map_err(io_failure)?;
        io.read_exact(&mut two).await.map_err(io_failure)?;
        check_reply(two)?;
        let mut three = [0; 3];
        io.read_exact(&mut three).await.map_err(io_failure)?;
        // The address the proxy bound, which we have no use for.
        let mut bound = [0; 255 + 2];
        let rest = reply_rest_len(three)?;
        io.read_exact(&mut bound[..rest])
            .await
            .map_err(io_failure)?;
        Ok(io)
    }
}

impl Connector for Socks5Proxy {
    fn connect<'a>(&'a self, to: &'a Endpoint) -> ConnectFuture<'a> {
        Box::pin(async move {
            let auth = match &self.url.credentials {
                None => None,
                Some(creds) => Some(auth_request(&creds.user, &creds.password).ok_or(
                    Error::InvalidProxy("SOCKS5 usernames and passwords are at most 255 bytes"),
                )?),
            };
            run_leg(&self.url, to, self.tunnel(to, auth)).await
        })
    }
}

impl fmt::Debug for Socks5Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socks5Proxy")
            .field("url", &self.url.to_string())
            .field("credentials", &self.url.credentials.is_some())
            .field("remote_dns", &self.remote_dns)
            .field("via", &self.via)
            .finish()
    }
}

/// Resolves the target here, for a proxy that should get an address.
async fn resolve(to: &Endpoint) -> Result<std::net::IpAddr, ProxyFailure> {
    let mut addrs = tokio::net::lookup_host((to.host.as_str(), to.port))
        .await
        .map_err(|err| ProxyFailure::Io(Error::io(err)))?;
    addrs.next().map(|addr| addr.ip()).ok_or_else(|| {
        let err = std::io::Error::new(std::io::ErrorKind::NotFound, "the target has no address");
        ProxyFailure::Io(Error::io(err))
    })
}
