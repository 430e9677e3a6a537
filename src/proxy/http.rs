//! HTTP `CONNECT` proxies, over TCP (`http://`) or TLS (`https://`).

use std::fmt;

use base64::Engine as _;
use bytes::BytesMut;
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::connect_head::{connect_request, parse_connect_reply, ConnectReply, MAX_REPLY_HEAD};
use super::error::ProxyFailure;
use super::leg::{io_failure, reach, run_leg, ProxyTls};
use super::url::{ProxyScheme, ProxyUrl};
use crate::transport::{
    BoxedTransport, ConnectFuture, Connector, Endpoint, SharedConnector, TcpConnector,
};
use crate::Error;

/// A connector that tunnels through an HTTP proxy with `CONNECT`, like
/// undici's `ProxyAgent`.
///
/// For an `https://` proxy the connection to the proxy is TLS; for a `wss`
/// target, wsstream then starts a second TLS session, to the origin,
/// inside the tunnel. Credentials come from the URL's userinfo or from
/// [`basic_auth`](Self::basic_auth) and are never shown by `Debug`.
///
/// ```
/// use wsstream::proxy::HttpProxy;
/// use wsstream::Options;
///
/// let proxy = HttpProxy::new("http://proxy.internal:3128")?
///     .basic_auth("alice", "s3cret")
///     .header(http::header::USER_AGENT, http::HeaderValue::from_static("my-app/1.0"));
/// let options = Options::default().connector(proxy);
/// # Ok::<(), wsstream::Error>(())
/// ```
#[derive(Clone)]
pub struct HttpProxy {
    url: ProxyUrl,
    auth: Option<HeaderValue>,
    headers: HeaderMap,
    via: SharedConnector,
    tls: ProxyTls,
}

impl HttpProxy {
    /// A proxy from an `http://` or `https://` URL (no scheme means
    /// `http://`; no port means 80 or 443), with Basic credentials from its
    /// userinfo if it has any.
    pub fn new(url: &str) -> Result<Self, Error> {
        let url = ProxyUrl::parse(url)?;
        if !matches!(url.scheme, ProxyScheme::Http | ProxyScheme::Https) {
            return Err(Error::InvalidProxy(
                "an HTTP proxy URL must be http:// or https://",
            ));
        }
        Ok(Self::from_url(url))
    }

    pub(crate) fn from_url(url: ProxyUrl) -> Self {
        let auth = url
            .credentials
            .as_ref()
            .map(|creds| basic_auth_value(&creds.user, &creds.password));
        Self {
            url,
            auth,
            headers: HeaderMap::new(),
            via: SharedConnector::new(TcpConnector),
            tls: ProxyTls::default(),
        }
    }

    /// Sends `Proxy-Authorization: Basic …` with these credentials,
    /// replacing any from the URL.
    #[must_use]
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some(basic_auth_value(user, password));
        self
    }

    /// Adds a header field to the `CONNECT` request (a `User-Agent`, or a
    /// `Proxy-Authorization` of another scheme). Values are never shown by
    /// `Debug`.
    #[must_use]
    pub fn header(mut self, name: HeaderName, mut value: HeaderValue) -> Self {
        value.set_sensitive(true);
        self.headers.append(name, value);
        self
    }

    /// Reaches the proxy server through another connector (a unix socket,
    /// another proxy) instead of TCP.
    #[must_use]
    pub fn via<C: Connector>(mut self, connector: C) -> Self {
        self.via = SharedConnector::new(connector);
        self
    }

    /// The rustls configuration for the TLS session to an `https://`
    /// proxy (by default, Mozilla's roots). The origin's TLS session is
    /// configured with [`Options::tls_config`](crate::Options::tls_config).
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls_config(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    async fn tunnel(&self, to: &Endpoint) -> Result<BoxedTransport, ProxyFailure> {
        let mut io = reach(&self.url, &self.via, to, &self.tls).await?;
        let request = connect_request(&to.to_string(), self.auth.as_ref(), &self.headers);
        io.write_all(&request).await.map_err(io_failure)?;
        io.flush().await.map_err(io_failure)?;
        let mut buf = BytesMut::with_capacity(1024);
        loop {
            if io.read_buf(&mut buf).await.map_err(io_failure)? == 0 {
                return Err(ProxyFailure::Closed);
            }
            match parse_connect_reply(&buf).map_err(ProxyFailure::Malformed)? {
                None if buf.len() <= MAX_REPLY_HEAD => buf.reserve(1024),
                None => return Err(ProxyFailure::Malformed("response head too large")),
                Some(ConnectReply::Refused { status, reason }) => {
                    return Err(ProxyFailure::Refused { status, reason })
                }
                // The client speaks first through the tunnel (the upgrade
                // request, or a TLS hello), so nothing may follow the head.
                Some(ConnectReply::Tunnel { head_len }) if head_len < buf.len() => {
                    return Err(ProxyFailure::Malformed("data before the tunnel was used"))
                }
                Some(ConnectReply::Tunnel { .. }) => return Ok(io),
            }
        }
    }
}

impl Connector for HttpProxy {
    fn connect<'a>(&'a self, to: &'a Endpoint) -> ConnectFuture<'a> {
        Box::pin(run_leg(&self.url, to, self.tunnel(to)))
    }
}

impl fmt::Debug for HttpProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpProxy")
            .field("url", &self.url.to_string())
            .field("auth", &self.auth.is_some())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("via", &self.via)
            .finish()
    }
}

fn basic_auth_value(user: &str, password: &str) -> HeaderValue {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut value = HeaderValue::try_from(format!("Basic {token}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    value.set_sensitive(true);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_become_basic_auth_and_stay_out_of_debug() {
        let proxy = HttpProxy::new("http://alice:s3cret@127.0.0.1:3128").unwrap();
        assert_eq!(proxy.auth.as_ref().unwrap(), "Basic YWxpY2U6czNjcmV0");
        let proxy = proxy.header(
            http::header::PROXY_AUTHORIZATION,
            HeaderValue::from_static("Bearer t0ken"),
        );
        let shown = format!("{proxy:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("YWxp") && !shown.contains("t0ken"));
        assert!(shown.contains("http://127.0.0.1:3128"), "{shown}");
    }

    #[test]
    fn only_http_schemes() {
        assert!(HttpProxy::new("socks5://127.0.0.1:1080").is_err());
        assert!(HttpProxy::new("https://127.0.0.1").is_ok());
    }
}
