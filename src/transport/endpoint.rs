//! Where a connector should open a byte stream to.

use std::fmt;
use std::net::IpAddr;

use tokio::time::Instant;

/// The destination of a connection, as a [`Connector`](super::Connector)
/// receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Endpoint {
    /// A domain name, or an IP address without brackets.
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// Whether the WebSocket is `wss`: wsstream starts TLS to `host` over
    /// the stream the connector returns. Connectors may use it to choose a
    /// route (the HTTPS proxy rather than the HTTP one, say).
    pub secure: bool,
    /// When the caller will give up (the open timeout).
    pub deadline: Option<Instant>,
}

impl Endpoint {
    /// An endpoint without a deadline.
    pub fn new(host: impl Into<String>, port: u16, secure: bool) -> Self {
        Self {
            host: host.into(),
            port,
            secure,
            deadline: None,
        }
    }

    /// The same endpoint with a deadline.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The host as an IP address, if it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

/// `host:port`, with an IPv6 host in brackets: the form of an HTTP
/// `CONNECT` target.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip() {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_brackets_ipv6_only() {
        assert_eq!(
            Endpoint::new("example.com", 443, true).to_string(),
            "example.com:443"
        );
        assert_eq!(
            Endpoint::new("10.0.0.1", 80, false).to_string(),
            "10.0.0.1:80"
        );
        assert_eq!(Endpoint::new("::1", 8080, false).to_string(), "[::1]:8080");
    }
}
