//! Reaching servers through proxies and other transports.
//!
//! The proxies are real ones from Debian packages, started on 127.0.0.1 by
//! `support/proxies.rs` (which installs them on first use when run as root):
//! tinyproxy for HTTP `CONNECT`, with stunnel in front of it for an
//! `https://` proxy, and microsocks for SOCKS5. The failure modes a real
//! proxy will not produce on demand (a 403, a hang-up, a proxy that never
//! answers) come from small in-process fakes.
//!
//! Every await is bounded, so a bug fails a test instead of hanging it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "tls")]
#[path = "support/certs.rs"]
mod certs;
#[path = "support/proxies.rs"]
mod proxies;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsstream::proxy::{EnvProxy, HttpProxy, ProxyFailure, Socks5Proxy};
use wsstream::{CancellationToken, Error, Message, Options, ServerOptions, WebSocketStream};

const LIMIT: Duration = Duration::from_secs(20);

async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// An echo server on `listener`, `wss` when given a TLS configuration.
/// Counts the WebSocket connections it accepted.
struct Origin {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

/// What makes an origin `wss`; nothing without the `tls` feature.
#[cfg(feature = "tls")]
type Acceptor = tokio_rustls::TlsAcceptor;
#[cfg(not(feature = "tls"))]
type Acceptor = std::convert::Infallible;

impl Origin {
    async fn plain() -> Self {
        Self::serve(None).await
    }

    /// A plain origin on the first address `localhost` resolves to, where
    /// a proxy that resolves the name (with the same resolver) will go.
    async fn on_localhost() -> Self {
        let first = tokio::net::lookup_host("localhost:0")
            .await
            .unwrap()
            .next()
            .unwrap();
        Self::serve_on(TcpListener::bind(first).await.unwrap(), None)
    }

    #[cfg(feature = "tls")]
    async fn secure(config: rustls::ServerConfig) -> Self {
        Self::serve(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn serve(tls: Option<Acceptor>) -> Self {
        Self::serve_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), tls)
    }

    fn serve_on(listener: TcpListener, tls: Option<Acceptor>) -> Self {
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (count, tls) = (count.clone(), tls.clone());
                tokio::spawn(async move {
                    let ws = match tls {
                        None => WebSocketStream::accept(tcp, ServerOptions::default()).await,
                        #[cfg(feature = "tls")]
                        Some(tls) => match tls.accept(tcp).await {
                            Ok(io) => WebSocketStream::accept(io, ServerOptions::default()).await,
                            Err(_) => return,
                        },
                        #[cfg(not(feature = "tls"))]
                        Some(never) => match never {},
                    };
                    let Ok(ws) = ws else { return };
                    count.fetch_add(1, Ordering::SeqCst);
                    if let Ok(opened) = ws.opened().await {
                        let _ = opened.readable.forward(opened.writable).await;
                    }
                });
            }
        });
        Self { addr, accepted }
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}/through", self.addr)
    }
}

/// Connects, echoes one message of each kind, and closes cleanly.
async fn echo_through(url: &str, options: Options) -> Result<(), Error> {
    let ws = WebSocketStream::connect(url, options);
    let opened = within("opened", ws.opened()).await?;
    let (mut readable, mut writable) = (opened.readable, opened.writable);
    for message in [
        Message::text("through the tunnel"),
        Message::binary(vec![7u8; 70_000]),
    ] {
        within("send", writable.send(message.clone())).await?;
        let echoed = within("echo", readable.next()).await.expect("an echo")?;
        assert_eq!(echoed, message);
    }
    ws.close(1000, "done")?;
    let closed = within("closed", ws.closed()).await?;
    assert_eq!(closed.code, 1000);
    Ok(())
}

/// The failure inside an [`Error::Proxy`], or a panic naming what came.
fn proxy_failure(err: &Error) -> &ProxyFailure {
    match err {
        Error::Proxy(proxy) => proxy.failure(),
        other => panic!("expected a proxy error, got {other:?}"),
    }
}

async fn open_error(url: &str, options: Options) -> Error {
    let ws = WebSocketStream::connect(url, options);
    within("opened", ws.opened())
        .await
        .expect_err("opening should fail")
}

/// A port on 127.0.0.1 where nothing listens.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

// ---------------------------------------------------------------- HTTP CONNECT

#[tokio::test]
async fn ws_through_tinyproxy() {
    let proxy = proxies::tinyproxy(None);
    let origin = Origin::plain().await;
    echo_through(
        &origin.url("ws"),
        Options::default().proxy(&proxy.url("http")),
    )
    .await
    .unwrap();
    assert_eq!(origin.accepted.load(Ordering::SeqCst), 1);
    assert!(
        proxy.log().contains(&origin.addr.port().to_string()),
        "tinyproxy did not log the tunnel:\n{}",
        proxy.log()
    );
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn wss_through_tinyproxy_with_basic_auth() {
    let proxy = proxies::tinyproxy(Some(("alice", "s3cret")));
    let pki = certs::TestPki::generate(&["127.0.0.1"]);
    let origin = Origin::secure(pki.server_config()).await;
    let tls = Arc::new(pki.client_config());
    // Credentials from the URL's userinfo…
    let options = Options::default()
        .proxy(&proxy.url_with_auth("http", "alice", "s3cret"))
        .tls_config(tls.clone());
    echo_through(&origin.url("wss"), options).await.unwrap();
    // …or set on the proxy.
    let explicit = HttpProxy::new(&proxy.url("http"))
        .unwrap()
        .basic_auth("alice", "s3cret");
    let options = Options::default().connector(explicit).tls_config(tls);
    echo_through(&origin.url("wss"), options).await.unwrap();
    assert_eq!(origin.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn wrong_proxy_password_is_refused_and_no_credentials_shown() {
    let proxy = proxies::tinyproxy(Some(("alice", "s3cret")));
    let origin = Origin::plain().await;
    for url in [
        proxy.url_with_auth("http", "alice", "wr0ngpass"),
        proxy.url("http"),
    ] {
        let err = open_error(&origin.url("ws"), Options::default().proxy(&url)).await;
        match proxy_failure(&err) {
            // tinyproxy 1.11 answers a CONNECT without valid credentials
            // with 401, where RFC 9110 says 407; either is a refusal.
            ProxyFailure::Refused { status, .. } => {
                assert!(matches!(status.as_u16(), 401 | 407), "{status}")
            }
            other => panic!("expected 401 or 407, got {other:?}"),
        }
        let shown = format!(
            "{err} {:?} {}",
            err,
            std::error::Error::source(&err).unwrap()
        );
        assert!(
            !shown.contains("wr0ngpass") && !shown.contains("alice"),
            "{shown}"
        );
        assert!(shown.contains("refused with 40"), "{shown}");
    }
    assert_eq!(origin.accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn tinyproxy_refusing_the_target_is_reported() {
    let proxy = proxies::tinyproxy(None);
    let url = format!("ws://127.0.0.1:{}/", dead_port());
    let err = open_error(&url, Options::default().proxy(&proxy.url("http"))).await;
    match proxy_failure(&err) {
        ProxyFailure::Refused { status, .. } => {
            assert!(status.is_server_error(), "unexpected status {status}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains(&proxy.url("http")), "{source}");
    assert!(source.contains(&url[5..url.len() - 1]), "{source}");
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn ws_and_wss_through_an_https_proxy() {
    // TLS to the proxy (stunnel in front of tinyproxy), then for wss a
    // second TLS session to the origin inside the tunnel. Two CAs, so each
    // session is checked against its own configuration.
    let proxy_pki = certs::TestPki::generate(&["127.0.0.1"]);
    let origin_pki = certs::TestPki::generate(&["127.0.0.1"]);
    let tinyproxy = proxies::tinyproxy(None);
    let front = proxies::stunnel_front(&proxy_pki.cert_pem, &proxy_pki.key_pem, tinyproxy.addr);
    let proxy = HttpProxy::new(&front.url("https"))
        .unwrap()
        .tls_config(Arc::new(proxy_pki.client_config()));

    let plain = Origin::plain().await;
    echo_through(
        &plain.url("ws"),
        Options::default().connector(proxy.clone()),
    )
    .await
    .unwrap();

    let secure = Origin::secure(origin_pki.server_config()).await;
    let options = Options::default()
        .connector(proxy.clone())
        .tls_config(Arc::new(origin_pki.client_config()));
    echo_through(&secure.url("wss"), options).await.unwrap();

    // The origin's CA does not vouch for the proxy: the proxy leg fails.
    let wrong = HttpProxy::new(&front.url("https"))
        .unwrap()
        .tls_config(Arc::new(origin_pki.client_config()));
    let err = open_error(&plain.url("ws"), Options::default().connector(wrong)).await;
    assert!(
        matches!(proxy_failure(&err), ProxyFailure::Unreachable(_)),
        "{err:?}"
    );
}

// ---------------------------------------------------------------- SOCKS5

#[tokio::test]
async fn ws_through_microsocks_with_names_resolved_by_the_proxy_or_here() {
    let proxy = proxies::microsocks(None);
    let origin = Origin::plain().await;
    echo_through(
        &origin.url("ws"),
        Options::default().proxy(&proxy.url("socks5h")),
    )
    .await
    .unwrap();
    // A name: socks5h sends it for the proxy to resolve, socks5 resolves it
    // here and sends the address.
    let origin = Origin::on_localhost().await;
    let named = format!("ws://localhost:{}/", origin.addr.port());
    let remote = Socks5Proxy::new(&proxy.url("socks5h")).unwrap();
    echo_through(&named, Options::default().connector(remote))
        .await
        .unwrap();
    echo_through(&named, Options::default().proxy(&proxy.url("socks5")))
        .await
        .unwrap();
    let forced = Socks5Proxy::new(&proxy.url("socks5h"))
        .unwrap()
        .resolve_locally(true);
    echo_through(&named, Options::default().connector(forced))
        .await
        .unwrap();
    assert_eq!(origin.accepted.load(Ordering::SeqCst), 3);
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn wss_through_microsocks_with_credentials() {
    let proxy = proxies::microsocks(Some(("bob", "hunter2")));
    let pki = certs::TestPki::generate(&["127.0.0.1"]);
    let origin = Origin::secure(pki.server_config()).await;
    let options = Options::default()
        .proxy(&proxy.url_with_auth("socks5h", "bob", "hunter2"))
        .tls_config(Arc::new(pki.client_config()));
    echo_through(&origin.url("wss"), options).await.unwrap();
    let explicit = Socks5Proxy::new(&proxy.url("socks5h"))
        .unwrap()
        .credentials("bob", "hunter2");
    let options = Options::default()
        .connector(explicit)
        .tls_config(Arc::new(pki.client_config()));
    echo_through(&origin.url("wss"), options).await.unwrap();
    assert_eq!(origin.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn microsocks_rejects_a_wrong_password_and_missing_credentials() {
    let proxy = proxies::microsocks(Some(("bob", "hunter2")));
    let origin = Origin::plain().await;
    let err = open_error(
        &origin.url("ws"),
        Options::default().proxy(&proxy.url_with_auth("socks5h", "bob", "wrongpw")),
    )
    .await;
    assert!(
        matches!(proxy_failure(&err), ProxyFailure::SocksAuthRejected),
        "{err:?}"
    );
    assert!(!format!("{err:?} {}", std::error::Error::source(&err).unwrap()).contains("wrongpw"));
    let err = open_error(
        &origin.url("ws"),
        Options::default().proxy(&proxy.url("socks5h")),
    )
    .await;
    assert!(
        matches!(proxy_failure(&err), ProxyFailure::SocksNoAcceptableMethod),
        "{err:?}"
    );
    assert_eq!(origin.accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn microsocks_refusing_the_target_is_reported() {
    let proxy = proxies::microsocks(None);
    let url = format!("ws://127.0.0.1:{}/", dead_port());
    let err = open_error(&url, Options::default().proxy(&proxy.url("socks5h"))).await;
    match proxy_failure(&err) {
        ProxyFailure::SocksReply(code) => assert_ne!(*code, 0),
        other => panic!("expected a SOCKS reply code, got {other:?}"),
    }
}

// ---------------------------------------------------------------- environment

#[tokio::test]
async fn environment_proxies_and_no_proxy() {
    let proxy = proxies::tinyproxy(None);
    let origin = Origin::plain().await;
    let dead = format!("http://127.0.0.1:{}", dead_port());

    // HTTP_PROXY carries ws:// (here through tinyproxy).
    let env = EnvProxy::from_vars([("HTTP_PROXY", proxy.url("http").as_str())]);
    echo_through(&origin.url("ws"), Options::default().connector(env))
        .await
        .unwrap();

    // A dead proxy proves the proxy is used…
    let env = EnvProxy::from_vars([("http_proxy", dead.as_str())]);
    let err = open_error(&origin.url("ws"), Options::default().connector(env)).await;
    assert!(
        matches!(proxy_failure(&err), ProxyFailure::Unreachable(_)),
        "{err:?}"
    );
    // …and NO_PROXY (an address, a range, a host with a port) bypasses it.
    let port = origin.addr.port();
    for no_proxy in [
        "127.0.0.1".to_owned(),
        "example.com, 127.0.0.0/8".to_owned(),
        format!("127.0.0.1:{port}"),
        "*".to_owned(),
    ] {
        let env = EnvProxy::from_vars([("http_proxy", dead.as_str()), ("NO_PROXY", &no_proxy)]);
        echo_through(&origin.url("ws"), Options::default().connector(env))
            .await
            .unwrap_or_else(|err| panic!("NO_PROXY={no_proxy}: {err:?}"));
    }
    // A rule for another port does not bypass.
    let other_port = format!("127.0.0.1:{}", port.wrapping_add(1));
    let env = EnvProxy::from_vars([("http_proxy", dead.as_str()), ("no_proxy", &other_port)]);
    assert!(
        open_error(&origin.url("ws"), Options::default().connector(env))
            .await
            .to_string()
            .contains("proxy")
    );
    // HTTPS_PROXY is not used for ws://.
    let env = EnvProxy::from_vars([("HTTPS_PROXY", dead.as_str())]);
    echo_through(&origin.url("ws"), Options::default().connector(env))
        .await
        .unwrap();
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn environment_https_proxy_carries_wss() {
    let proxy = proxies::microsocks(None);
    let pki = certs::TestPki::generate(&["127.0.0.1"]);
    let origin = Origin::secure(pki.server_config()).await;
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let env = EnvProxy::from_vars([("HTTPS_PROXY", proxy.url("socks5h")), ("HTTP_PROXY", dead)]);
    let options = Options::default()
        .connector(env)
        .tls_config(Arc::new(pki.client_config()));
    echo_through(&origin.url("wss"), options).await.unwrap();
}

// ---------------------------------------------------------------- failures, in-process

/// A fake HTTP proxy for one connection: it hands back the request head it
/// read, answers `reply`, and, when that is a 200, tunnels to the
/// requested target.
async fn fake_http_proxy(reply: &'static str) -> (String, tokio::sync::oneshot::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut client, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0];
            if client.read(&mut byte).await.unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let target = head.split(' ').nth(1).unwrap_or("").to_owned();
        let _ = tx.send(head);
        client.write_all(reply.as_bytes()).await.unwrap();
        if reply.starts_with("HTTP/1.1 200") {
            let mut origin = TcpStream::connect(target).await.unwrap();
            let _ = tokio::io::copy_bidirectional(&mut client, &mut origin).await;
        }
    });
    (url, rx)
}

#[tokio::test]
async fn connect_request_names_the_origin_and_carries_headers() {
    let origin = Origin::plain().await;
    let (proxy_url, request) = fake_http_proxy("HTTP/1.1 200 Connection established\r\n\r\n").await;
    let proxy = HttpProxy::new(&proxy_url)
        .unwrap()
        .basic_auth("carol", "pw")
        .header(
            http::header::USER_AGENT,
            http::HeaderValue::from_static("wsstream-proxy-test"),
        );
    echo_through(&origin.url("ws"), Options::default().connector(proxy))
        .await
        .unwrap();
    let head = request.await.unwrap();
    let authority = origin.addr.to_string();
    assert!(
        head.starts_with(&format!(
            "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
        )),
        "{head}"
    );
    assert!(
        head.contains("Proxy-Authorization: Basic Y2Fyb2w6cHc=\r\n"),
        "{head}"
    );
    assert!(
        head.contains("user-agent: wsstream-proxy-test\r\n"),
        "{head}"
    );
}

#[tokio::test]
async fn proxy_refusals_and_hangups_fail_opened_with_the_answer() {
    let (url, _) = fake_http_proxy("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n").await;
    let err = open_error("ws://example.invalid/", Options::default().proxy(&url)).await;
    match proxy_failure(&err) {
        ProxyFailure::Refused { status, reason } => {
            assert_eq!((status.as_u16(), reason.as_str()), (403, "Forbidden"))
        }
        other => panic!("expected 403, got {other:?}"),
    }
    let shown = std::error::Error::source(&err).unwrap().to_string();
    assert!(
        shown.contains("example.invalid:80") && shown.contains("403 Forbidden"),
        "{shown}"
    );

    let (url, _) = fake_http_proxy("").await;
    let err = open_error("ws://example.invalid/", Options::default().proxy(&url)).await;
    // The fake drops the connection after reading the request.
    assert!(
        matches!(
            proxy_failure(&err),
            ProxyFailure::Closed | ProxyFailure::Io(_)
        ),
        "{err:?}"
    );

    let (url, _) = fake_http_proxy("SSH-2.0-OpenSSH_9.2\r\n\r\n").await;
    let err = open_error("ws://example.invalid/", Options::default().proxy(&url)).await;
    assert!(
        matches!(proxy_failure(&err), ProxyFailure::Malformed(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn unreachable_proxy_is_named() {
    let url = format!("socks5h://127.0.0.1:{}", dead_port());
    let err = open_error("ws://example.invalid/", Options::default().proxy(&url)).await;
    assert!(
        matches!(proxy_failure(&err), ProxyFailure::Unreachable(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_silent_proxy_times_out_on_the_proxy_leg() {
    // Accepts, reads, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    for proxy in [format!("http://{addr}"), format!("socks5h://{addr}")] {
        let options = Options::default()
            .proxy(&proxy)
            .open_timeout(Duration::from_millis(300));
        let err = open_error("ws://example.invalid/", options).await;
        assert!(
            matches!(proxy_failure(&err), ProxyFailure::Timeout),
            "{proxy}: {err:?}"
        );
    }
}

#[tokio::test]
async fn the_cancellation_token_covers_the_proxy_leg() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted_tx, accepted_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = accepted_tx.send(());
        tokio::time::sleep(LIMIT * 2).await;
        drop(tcp);
    });
    let cancel = CancellationToken::new();
    let options = Options::default()
        .proxy(&format!("http://{addr}"))
        .signal(cancel.clone());
    let ws = WebSocketStream::connect("ws://example.invalid/", options);
    within("proxy accepted", accepted_rx).await.unwrap();
    cancel.cancel();
    assert!(matches!(
        within("opened", ws.opened()).await,
        Err(Error::Aborted)
    ));
}

#[tokio::test]
async fn an_unusable_proxy_url_fails_before_any_io() {
    for url in ["ftp://127.0.0.1:21", "http://", "socks4://127.0.0.1"] {
        let err = open_error("ws://127.0.0.1:9/", Options::default().proxy(url)).await;
        assert!(matches!(err, Error::InvalidProxy(_)), "{url}: {err:?}");
    }
    let options = Options::default().proxy("http://alice:s3cret@127.0.0.1:3128");
    let shown = format!("{options:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("alice"),
        "{shown}"
    );
}

// ---------------------------------------------------------------- unix sockets

#[cfg(unix)]
#[tokio::test]
async fn unix_socket_transport() {
    use wsstream::transport::UnixConnector;
    let dir = std::env::temp_dir().join(format!("wsstream-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("daemon.sock");
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        let (io, _) = listener.accept().await.unwrap();
        let ws = WebSocketStream::accept(io, ServerOptions::default())
            .await
            .unwrap();
        let host = ws.request().unwrap().headers()["host"]
            .to_str()
            .unwrap()
            .to_owned();
        let opened = ws.opened().await.unwrap();
        let _ = opened.readable.forward(opened.writable).await;
        host
    });
    let options = Options::default().connector(UnixConnector::new(&path));
    echo_through("ws://daemon.local/events", options)
        .await
        .unwrap();
    assert_eq!(within("server", server).await.unwrap(), "daemon.local");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fake SOCKS5 proxy for one connection: it reports the address type
/// and address of the connect request, then refuses it (reply 2).
async fn fake_socks5_capture() -> (String, tokio::sync::oneshot::Receiver<(u8, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("socks5h://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut io, _) = listener.accept().await.unwrap();
        let mut greeting = [0; 3];
        io.read_exact(&mut greeting).await.unwrap();
        assert_eq!(greeting, [5, 1, 0], "greeting without credentials");
        io.write_all(&[5, 0]).await.unwrap();
        let mut head = [0; 4];
        io.read_exact(&mut head).await.unwrap();
        let len = match head[3] {
            1 => 4,
            4 => 16,
            3 => usize::from(io.read_u8().await.unwrap()),
            other => panic!("address type {other}"),
        };
        let mut addr = vec![0; len + 2];
        io.read_exact(&mut addr).await.unwrap();
        addr.truncate(len);
        let _ = tx.send((head[3], addr));
        io.write_all(&[5, 2, 0, 1, 0, 0, 0, 0, 0, 0]).await.unwrap();
    });
    (url, rx)
}

#[tokio::test]
async fn socks5h_sends_the_name_and_socks5_sends_an_address() {
    let (url, request) = fake_socks5_capture().await;
    let err = open_error("ws://localhost:9/", Options::default().proxy(&url)).await;
    assert!(
        matches!(proxy_failure(&err), ProxyFailure::SocksReply(2)),
        "{err:?}"
    );
    assert_eq!(
        within("request", request).await.unwrap(),
        (3, b"localhost".to_vec())
    );

    let (url, request) = fake_socks5_capture().await;
    let local = url.replace("socks5h://", "socks5://");
    let _ = open_error("ws://localhost:9/", Options::default().proxy(&local)).await;
    let (atyp, addr) = within("request", request).await.unwrap();
    let expected = tokio::net::lookup_host("localhost:9")
        .await
        .unwrap()
        .next()
        .unwrap()
        .ip();
    let sent: std::net::IpAddr = match atyp {
        1 => <[u8; 4]>::try_from(addr).unwrap().into(),
        4 => <[u8; 16]>::try_from(addr).unwrap().into(),
        other => panic!("expected an address, got type {other}"),
    };
    assert_eq!(sent, expected);
}

/// `examples/proxy.rs`, the runnable form of the guide's example, run
/// through each kind of real proxy.
#[test]
fn the_proxy_example_runs_through_real_proxies() {
    let tinyproxy = proxies::tinyproxy(Some(("dora", "pw")));
    let microsocks = proxies::microsocks(Some(("eve", "pw")));
    for proxy in [
        tinyproxy.url_with_auth("http", "dora", "pw"),
        microsocks.url_with_auth("socks5h", "eve", "pw"),
    ] {
        let output = std::process::Command::new(env!("CARGO"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["run", "--quiet", "--example", "proxy", "--", &proxy])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success()
                && stdout.contains("echoed \"message 3\"")
                && stdout.contains("through the proxy given"),
            "{proxy}: {}\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(tinyproxy.log().contains("CONNECT"), "{}", tinyproxy.log());
    // Without an argument, and with NO_PROXY covering every host, the
    // example says it connected directly (it once claimed a proxy).
    let output = std::process::Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--quiet", "--example", "proxy"])
        .env("HTTP_PROXY", tinyproxy.url("http"))
        .env("no_proxy", "*")
        .env("NO_PROXY", "*")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("directly"),
        "{}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
