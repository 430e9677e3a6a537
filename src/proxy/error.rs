//! How a proxy leg failed: which proxy, which tunnel, what it answered.

use std::fmt;

use crate::Error;

/// A proxy could not open the tunnel. It names the proxy (scheme, host
/// and port; never credentials), the tunnel's target, and the failure.
#[derive(Debug, Clone)]
pub struct ProxyError {
    proxy: String,
    target: String,
    failure: ProxyFailure,
}

/// What went wrong on the proxy leg.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProxyFailure {
    /// The proxy server could not be reached (TCP, or TLS to an HTTPS
    /// proxy); the cause is the error.
    Unreachable(Error),
    /// Reading from or writing to the proxy failed mid-negotiation.
    Io(Error),
    /// The proxy closed the connection before it answered.
    Closed,
    /// The proxy did not finish within the open timeout.
    Timeout,
    /// The HTTP proxy answered `CONNECT` with a status other than 2xx
    /// (407: credentials missing or wrong; 403: not allowed; 502/503: the
    /// target could not be reached).
    Refused {
        /// The status the proxy answered.
        status: http::StatusCode,
        /// The reason phrase the proxy sent (cut to 128 bytes).
        reason: String,
    },
    /// The SOCKS5 proxy answered the connect request with an error reply
    /// code (RFC 1928 §6).
    SocksReply(u8),
    /// The SOCKS5 proxy rejected the username and password (RFC 1929).
    SocksAuthRejected,
    /// The SOCKS5 proxy accepts none of the methods we offered (it wants
    /// credentials we do not have, or offers something we do not speak).
    SocksNoAcceptableMethod,
    /// The proxy's answer does not follow its protocol.
    Malformed(&'static str),
}

impl ProxyError {
    pub(crate) fn new(proxy: String, target: String, failure: ProxyFailure) -> Self {
        Self {
            proxy,
            target,
            failure,
        }
    }

    /// The proxy, as `scheme://host:port`.
    pub fn proxy(&self) -> &str {
        &self.proxy
    }

    /// The tunnel's target, as `host:port`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// What went wrong.
    pub fn failure(&self) -> &ProxyFailure {
        &self.failure
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "proxy {} (tunnel to {}): ", self.proxy, self.target)?;
        match &self.failure {
            ProxyFailure::Unreachable(_) => f.write_str("could not connect to the proxy"),
            ProxyFailure::Io(_) => f.write_str("connection to the proxy failed"),
            ProxyFailure::Closed => {
                f.write_str("the proxy closed the connection without answering")
            }
            ProxyFailure::Timeout => f.write_str("the proxy did not answer in time"),
            ProxyFailure::Refused { status, reason } => {
                write!(f, "the proxy refused with {}", status.as_u16())?;
                if !reason.is_empty() {
                    write!(f, " {reason}")?;
                }
                Ok(())
            }
            ProxyFailure::SocksReply(code) => {
                write!(
                    f,
                    "the SOCKS5 proxy answered {code}: {}",
                    socks_reply_meaning(*code)
                )
            }
            ProxyFailure::SocksAuthRejected => {
                f.write_str("the SOCKS5 proxy rejected the username and password")
            }
            ProxyFailure::SocksNoAcceptableMethod => {
                f.write_str("the SOCKS5 proxy accepts none of the offered authentication methods")
            }
            ProxyFailure::Malformed(what) => write!(f, "malformed answer: {what}"),
        }
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.failure {
            ProxyFailure::Unreachable(err) | ProxyFailure::Io(err) => Some(err),
            _ => None,
        }
    }
}

/// RFC 1928 §6's meanings of the reply field.
fn socks_reply_meaning(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_leg_and_the_answer() {
        let err = ProxyError::new(
            "http://127.0.0.1:3128".into(),
            "example.com:443".into(),
            ProxyFailure::Refused {
                status: http::StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                reason: "Proxy Authentication Required".into(),
            },
        );
        assert_eq!(
            err.to_string(),
            "proxy http://127.0.0.1:3128 (tunnel to example.com:443): \
             the proxy refused with 407 Proxy Authentication Required"
        );
        let err = ProxyError::new(
            "socks5h://[::1]:1080".into(),
            "a:1".into(),
            ProxyFailure::SocksReply(5),
        );
        assert!(
            err.to_string().ends_with("answered 5: connection refused"),
            "{err}"
        );
    }
}
