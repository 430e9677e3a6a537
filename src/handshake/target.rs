//! Where a `ws://`, `wss://`, `http://` or `https://` URL points.

use std::fmt;

use url::{Host, Url};

/// The parts of a WebSocket URL that the connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL, with `http`/`https` mapped to `ws`/`wss`.
    pub url: Url,
    /// Whether to speak TLS (`wss`).
    pub tls: bool,
    /// The host to connect to and name in SNI: a domain, or an IP address
    /// without brackets.
    pub host: String,
    /// The port, the scheme's default when the URL has none.
    pub port: u16,
    /// The `Host` header: the host, bracketed if IPv6, with the port unless
    /// it is the default.
    pub host_header: String,
    /// The request target: path and query.
    pub resource: String,
}

/// A URL that cannot be used for a WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidUrl {
    /// The string did not parse as a URL.
    Parse(url::ParseError),
    /// The scheme is not ws, wss, http or https.
    Scheme(String),
    /// The URL has a fragment, which WHATWG forbids.
    Fragment,
    /// The URL has no host.
    NoHost,
}

impl fmt::Display for InvalidUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(_) => f.write_str("not a valid URL"),
            Self::Scheme(scheme) => write!(f, "scheme {scheme:?} is not ws, wss, http or https"),
            Self::Fragment => f.write_str("WebSocket URLs may not have a fragment"),
            Self::NoHost => f.write_str("URL has no host"),
        }
    }
}

impl std::error::Error for InvalidUrl {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Parse(err) => Some(err),
            _ => None,
        }
    }
}

impl Target {
    /// Parses and checks a URL the WHATWG way.
    pub fn parse(input: &str) -> Result<Self, InvalidUrl> {
        Self::from_url(Url::parse(input).map_err(InvalidUrl::Parse)?)
    }

    /// Checks an already parsed URL.
    pub fn from_url(mut url: Url) -> Result<Self, InvalidUrl> {
        let (tls, ws_scheme) = match url.scheme() {
            "ws" | "http" => (false, "ws"),
            "wss" | "https" => (true, "wss"),
            other => return Err(InvalidUrl::Scheme(other.to_owned())),
        };
        if url.fragment().is_some() {
            return Err(InvalidUrl::Fragment);
        }
        if url.scheme() != ws_scheme {
            // http and https are special schemes like ws and wss, so the
            // change is always allowed; checked anyway.
            url.set_scheme(ws_scheme)
                .map_err(|()| InvalidUrl::Scheme(ws_scheme.to_owned()))?;
        }
        let default_port = if tls { 443 } else { 80 };
        let port = url.port().unwrap_or(default_port);
        let (host, bracketed) = match url.host() {
            Some(Host::Domain(domain)) => (domain.to_owned(), domain.to_owned()),
            Some(Host::Ipv4(ip)) => (ip.to_string(), ip.to_string()),
            Some(Host::Ipv6(ip)) => (ip.to_string(), format!("[{ip}]")),
            None => return Err(InvalidUrl::NoHost),
        };
        let host_header = if port == default_port {
            bracketed
        } else {
            format!("{bracketed}:{port}")
        };
        let mut resource = url.path().to_owned();
        if let Some(query) = url.query() {
            resource.push('?');
            resource.push_str(query);
        }
        Ok(Self {
            url,
            tls,
            host,
            port,
            host_header,
            resource,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_map_and_default_ports_apply() {
        let t = Target::parse("https://example.test/chat?room=1").unwrap();
        assert!(t.tls);
        assert_eq!(t.url.scheme(), "wss");
        assert_eq!((t.port, t.host_header.as_str()), (443, "example.test"));
        assert_eq!(t.resource, "/chat?room=1");
        let t = Target::parse("http://example.test:8080").unwrap();
        assert!(!t.tls);
        assert_eq!(
            (t.port, t.host_header.as_str(), t.resource.as_str()),
            (8080, "example.test:8080", "/")
        );
    }

    #[test]
    fn ipv6_literals_are_bracketed_only_in_the_host_header() {
        let t = Target::parse("ws://[::1]:9001/x").unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.host_header, "[::1]:9001");
        let t = Target::parse("wss://[::1]/").unwrap();
        assert_eq!(t.host_header, "[::1]");
    }

    #[test]
    fn other_schemes_and_fragments_fail() {
        assert_eq!(
            Target::parse("ftp://x/"),
            Err(InvalidUrl::Scheme("ftp".into()))
        );
        assert_eq!(Target::parse("ws://x/#frag"), Err(InvalidUrl::Fragment));
        assert_eq!(Target::parse("ws://x/#"), Err(InvalidUrl::Fragment));
        assert!(matches!(
            Target::parse("not a url"),
            Err(InvalidUrl::Parse(_))
        ));
    }
}
