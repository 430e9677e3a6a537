//! Proxy URLs: `http://`, `https://`, `socks5://` and `socks5h://`, with
//! credentials kept out of every `Debug` and `Display`.

use std::fmt;
use std::net::IpAddr;

use percent_encoding::percent_decode_str;
use url::{Host, Url};

use crate::Error;

/// The protocol spoken to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyScheme {
    /// HTTP `CONNECT` over plain TCP.
    Http,
    /// HTTP `CONNECT` over TLS to the proxy.
    Https,
    /// SOCKS5; `remote_dns` sends host names for the proxy to resolve.
    Socks5 { remote_dns: bool },
}

/// A username and password, shown as `***` by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A parsed proxy URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProxyUrl {
    pub(crate) scheme: ProxyScheme,
    /// A domain, or an IP address without brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) credentials: Option<Credentials>,
}

impl ProxyUrl {
    /// Parses a proxy URL. Without a scheme, `http://` is assumed (as curl
    /// does); without a port, the scheme's default (80, 443, 1080).
    pub(crate) fn parse(input: &str) -> Result<Self, Error> {
        let input = input.trim();
        let url = if input.contains("://") {
            Url::parse(input)
        } else {
            Url::parse(&format!("http://{input}"))
        }
        .map_err(|_| invalid("not a valid URL"))?;
        let scheme = match url.scheme() {
            "http" => ProxyScheme::Http,
            "https" => ProxyScheme::Https,
            "socks5" => ProxyScheme::Socks5 { remote_dns: false },
            "socks5h" => ProxyScheme::Socks5 { remote_dns: true },
            _ => return Err(invalid("the scheme is not http, https, socks5 or socks5h")),
        };
        let host = match url.host() {
            Some(Host::Domain(domain)) if !domain.is_empty() => domain.to_owned(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(invalid("the URL has no host")),
        };
        let port = url.port_or_known_default().unwrap_or(1080);
        let credentials = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            Some(Credentials {
                user: decode(url.username())?,
                password: decode(url.password().unwrap_or(""))?,
            })
        };
        Ok(Self {
            scheme,
            host,
            port,
            credentials,
        })
    }
}

/// `scheme://host:port`, never with credentials.
impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            ProxyScheme::Http => "http",
            ProxyScheme::Https => "https",
            ProxyScheme::Socks5 { remote_dns: false } => "socks5",
            ProxyScheme::Socks5 { remote_dns: true } => "socks5h",
        };
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => write!(f, "{scheme}://[{ip}]:{}", self.port),
            _ => write!(f, "{scheme}://{}:{}", self.host, self.port),
        }
    }
}

fn decode(part: &str) -> Result<String, Error> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| invalid("the credentials are not UTF-8"))
}

fn invalid(why: &'static str) -> Error {
    Error::InvalidProxy(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schemes_ports_and_credentials() {
        let url = ProxyUrl::parse("http://us%40er:p%3Ass@proxy.local:3128").unwrap();
        assert_eq!(url.scheme, ProxyScheme::Http);
        assert_eq!((url.host.as_str(), url.port), ("proxy.local", 3128));
        let creds = url.credentials.clone().unwrap();
        assert_eq!(
            (creds.user.as_str(), creds.password.as_str()),
            ("us@er", "p:ss")
        );
        assert_eq!(url.to_string(), "http://proxy.local:3128");
        assert!(!format!("{url:?}").contains("p:ss"));

        assert_eq!(ProxyUrl::parse("https://p").unwrap().port, 443);
        assert_eq!(ProxyUrl::parse("http://p").unwrap().port, 80);
        let socks = ProxyUrl::parse("socks5h://[::1]").unwrap();
        assert_eq!(socks.scheme, ProxyScheme::Socks5 { remote_dns: true });
        assert_eq!((socks.host.as_str(), socks.port), ("::1", 1080));
        assert_eq!(socks.to_string(), "socks5h://[::1]:1080");
        let bare = ProxyUrl::parse("10.1.2.3:8080").unwrap();
        assert_eq!((bare.scheme, bare.port), (ProxyScheme::Http, 8080));
    }

    #[test]
    fn rejects_what_is_not_a_proxy() {
        for bad in ["ftp://p:21", "socks4://p", "http://", "::::", "http://a b"] {
            assert!(
                matches!(ProxyUrl::parse(bad), Err(Error::InvalidProxy(_))),
                "{bad}"
            );
        }
    }
}
