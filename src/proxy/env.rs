//! Proxies from the environment, as curl and Python `websockets` read it.

use std::fmt;

use super::no_proxy::NoProxy;
use super::Proxy;
use crate::transport::{ConnectFuture, Connector, Endpoint, TcpConnector};
use crate::Error;

/// The variables a `wss` connection consults, first set (and non-empty)
/// first: a WebSocket-specific one, the HTTPS one, then the catch-all.
const WSS_VARS: [&str; 6] = [
    "wss_proxy",
    "WSS_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
];
/// The variables a `ws` connection consults.
const WS_VARS: [&str; 6] = [
    "ws_proxy",
    "WS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
];
const NO_PROXY_VARS: [&str; 2] = ["no_proxy", "NO_PROXY"];

/// A connector that picks a proxy per connection from environment
/// variables, read once when it is made.
///
/// `wss` uses `wss_proxy`, else `https_proxy`, else `all_proxy`; `ws` uses
/// `ws_proxy`, else `http_proxy`, else `all_proxy`. Each name is looked up
/// in lower case, then upper case, and an empty value counts as unset.
/// Hosts that `no_proxy` (or `NO_PROXY`) lists are reached directly: host
/// names match themselves and their subdomains, and IP addresses, CIDR
/// ranges, `host:port` and `*` work too. A proxy URL may be `http://`,
/// `https://`, `socks5://` or `socks5h://`, and has `http://` when it has
/// no scheme. An unusable proxy URL fails the connections that would use
/// it, with [`Error::InvalidProxy`].
#[derive(Clone)]
pub struct EnvProxy {
    wss: Option<Result<Proxy, Error>>,
    ws: Option<Result<Proxy, Error>>,
    no_proxy: NoProxy,
}

impl EnvProxy {
    /// Reads the process environment now.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        }))
    }

    /// Reads the variables from `vars` instead of the process environment
    /// (for tests and for configuration kept elsewhere).
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().trim().to_owned()))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let lookup = |names: &[&str]| {
            names.iter().find_map(|name| {
                vars.iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            })
        };
        Self {
            wss: lookup(&WSS_VARS).map(Proxy::parse),
            ws: lookup(&WS_VARS).map(Proxy::parse),
            no_proxy: NoProxy::parse(lookup(&NO_PROXY_VARS).unwrap_or("")),
        }
    }

    /// The proxy a connection to `to` would use: `Ok(None)` to connect
    /// directly.
    pub fn proxy_for(&self, to: &Endpoint) -> Result<Option<&Proxy>, Error> {
        let chosen = if to.secure { &self.wss } else { &self.ws };
        match chosen {
            None => Ok(None),
            Some(_) if self.no_proxy.matches(to) => Ok(None),
            Some(Ok(proxy)) => Ok(Some(proxy)),
            Some(Err(err)) => Err(err.clone()),
        }
    }
}

impl Connector for EnvProxy {
    fn connect<'a>(&'a self, to: &'a Endpoint) -> ConnectFuture<'a> {
        match self.proxy_for(to) {
            Ok(Some(proxy)) => proxy.connect(to),
            Ok(None) => TcpConnector.connect(to),
            Err(err) => Box::pin(std::future::ready(Err(err))),
        }
    }
}

impl fmt::Debug for EnvProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvProxy")
            .field("wss", &self.wss)
            .field("ws", &self.ws)
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(vars: &[(&str, &str)], url_host: &str, secure: bool) -> Option<String> {
        let env = EnvProxy::from_vars(vars.iter().copied());
        let to = Endpoint::new(url_host, 443, secure);
        env.proxy_for(&to).unwrap().map(|p| format!("{p:?}"))
    }

    #[test]
    fn secure_uses_https_and_plain_uses_http() {
        let vars = [("HTTPS_PROXY", "http://s:1"), ("http_proxy", "http://p:2")];
        assert!(chosen(&vars, "a.test", true).unwrap().contains("s:1"));
        assert!(chosen(&vars, "a.test", false).unwrap().contains("p:2"));
    }

    #[test]
    fn lower_case_wins_and_empty_is_unset() {
        let vars = [
            ("https_proxy", "http://lower:1"),
            ("HTTPS_PROXY", "http://upper:2"),
        ];
        assert!(chosen(&vars, "a.test", true).unwrap().contains("lower"));
        let vars = [("https_proxy", " "), ("HTTPS_PROXY", "http://upper:2")];
        assert!(chosen(&vars, "a.test", true).unwrap().contains("upper"));
    }

    #[test]
    fn specific_then_all_proxy() {
        let vars = [
            ("ALL_PROXY", "socks5h://all:1080"),
            ("wss_proxy", "http://ws:3"),
        ];
        assert!(chosen(&vars, "a.test", true)
            .unwrap()
            .contains("http://ws:3"));
        assert!(chosen(&vars, "a.test", false)
            .unwrap()
            .contains("socks5h://all:1080"));
        assert_eq!(chosen(&[], "a.test", false), None);
    }

    #[test]
    fn no_proxy_bypasses() {
        let vars = [
            ("ALL_PROXY", "http://p:1"),
            ("NO_PROXY", "internal.test,10.0.0.0/8"),
        ];
        assert_eq!(chosen(&vars, "api.internal.test", true), None);
        assert_eq!(chosen(&vars, "10.1.1.1", false), None);
        assert!(chosen(&vars, "example.test", false).is_some());
    }

    #[test]
    fn a_bad_proxy_url_fails_only_the_connections_that_use_it() {
        let env = EnvProxy::from_vars([("https_proxy", "ftp://nope"), ("no_proxy", "ok.test")]);
        assert!(matches!(
            env.proxy_for(&Endpoint::new("x.test", 1, true)),
            Err(Error::InvalidProxy(_))
        ));
        assert!(env
            .proxy_for(&Endpoint::new("ok.test", 1, true))
            .unwrap()
            .is_none());
        assert!(env
            .proxy_for(&Endpoint::new("x.test", 1, false))
            .unwrap()
            .is_none());
    }
}
