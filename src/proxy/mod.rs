//! Proxies: HTTP `CONNECT` (over TCP or TLS) and SOCKS5, set explicitly or
//! from the environment. Each is a [`Connector`], so a proxy is just
//! another way to reach the server.
//!
//! ```
//! use wsstream::Options;
//!
//! // One line: the scheme picks the kind (http, https, socks5, socks5h).
//! let options = Options::default().proxy("http://user:pass@127.0.0.1:3128");
//! // Or what HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY say.
//! let options = Options::default().proxy_from_env();
//! ```

mod connect_head;
mod env;
mod error;
mod http;
mod leg;
mod no_proxy;
mod socks5;
mod socks5_wire;
mod url;

pub use self::env::EnvProxy;
pub use self::error::{ProxyError, ProxyFailure};
pub use self::http::HttpProxy;
pub use self::socks5::Socks5Proxy;

use self::url::{ProxyScheme, ProxyUrl};
use crate::transport::{ConnectFuture, Connector, Endpoint};
use crate::Error;

/// A proxy of any kind, chosen by its URL's scheme.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Proxy {
    /// `http://` or `https://`: HTTP `CONNECT`.
    Http(HttpProxy),
    /// `socks5://` or `socks5h://`.
    Socks5(Socks5Proxy),
}

impl Proxy {
    /// Parses a proxy URL: `http://`, `https://`, `socks5://` (names
    /// resolved here) or `socks5h://` (names resolved by the proxy), with
    /// optional `user:password@`. Without a scheme, `http://` is assumed.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let url = ProxyUrl::parse(url)?;
        Ok(match url.scheme {
            ProxyScheme::Http | ProxyScheme::Https => Self::Http(HttpProxy::from_url(url)),
            ProxyScheme::Socks5 { .. } => Self::Socks5(Socks5Proxy::from_url(url)),
        })
    }
}

impl Connector for Proxy {
    fn connect<'a>(&'a self, to: &'a Endpoint) -> ConnectFuture<'a> {
        match self {
            Self::Http(proxy) => proxy.connect(to),
            Self::Socks5(proxy) => proxy.connect(to),
        }
    }
}
