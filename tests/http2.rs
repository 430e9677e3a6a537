//! WebSockets over HTTP/2 (RFC 8441) between wsstream's client and a
//! wsstream server on hyper's HTTP/2: many WebSockets on one connection,
//! ALPN and the fallbacks, refusals, resets, backpressure per stream, and
//! hostile servers.

#![cfg(all(feature = "http2", feature = "hyper"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/certs.rs"]
mod certs;
#[path = "support/proxies.rs"]
mod proxies;
#[path = "support/raw.rs"]
mod raw;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use raw::within;
use tokio::net::TcpListener;
use wsstream::handshake::HandshakeError;
use wsstream::{
    DeflateConfig, Error, HttpVersion, Message, Opened, Options, ServerOptions, Timeout,
    WebSocketStream,
};

/// What the test server saw.
#[derive(Default)]
struct Seen {
    /// TCP connections accepted.
    connections: AtomicUsize,
    /// TCP connections whose HTTP serving ended.
    connections_ended: AtomicUsize,
    /// The HTTP version of each WebSocket request.
    versions: Mutex<Vec<http::Version>>,
}

/// How the test server behaves.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Echo every message.
    Echo,
    /// Refuse every WebSocket with 403 and a body.
    Refuse,
    /// Accept, then drop the stream after the first message (a reset).
    /// Requests to `/reset` get this whatever the server's mode.
    ResetAfterFirst,
    /// Accept and never read. Requests to `/stall` get this.
    NeverRead,
}

/// Which HTTP the server speaks, and how.
#[derive(Clone, Copy, PartialEq)]
enum Serve {
    /// HTTP/2 only (cleartext: prior knowledge; TLS: ALPN `h2`).
    Http2,
    /// HTTP/2 without extended CONNECT.
    Http2NoConnect,
    /// HTTP/1.1 only (TLS: ALPN `http/1.1`).
    Http1,
    /// HTTP/2 with at most this many streams open at once.
    Http2MaxStreams(u32),
}

struct Server {
    url: String,
    port: u16,
    seen: Arc<Seen>,
}

async fn start(
    serve: Serve,
    mode: Mode,
    options: ServerOptions,
    tls: Option<&certs::TestPki>,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let acceptor = tls.map(|pki| {
        let mut config = pki.server_config();
        config.alpn_protocols = match serve {
            Serve::Http1 => vec![b"http/1.1".to_vec()],
            _ => vec![b"h2".to_vec()],
        };
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    let url = match tls {
        Some(_) => format!("wss://localhost:{}/chat", addr.port()),
        None => format!("ws://{addr}/chat"),
    };
    let server_seen = seen.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            server_seen.connections.fetch_add(1, Ordering::SeqCst);
            let seen = server_seen.clone();
            let options = options.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(acceptor) => {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        serve_connection(TokioIo::new(tls), serve, mode, options, seen.clone())
                            .await;
                    }
                    None => {
                        serve_connection(TokioIo::new(tcp), serve, mode, options, seen.clone())
                            .await
                    }
                }
                seen.connections_ended.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    Server {
        url,
        port: addr.port(),
        seen,
    }
}

async fn serve_connection<I>(
    io: I,
    serve: Serve,
    mode: Mode,
    options: ServerOptions,
    seen: Arc<Seen>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |mut request: hyper::Request<Incoming>| {
        let options = options.clone();
        let seen = seen.clone();
        async move {
            seen.versions.lock().unwrap().push(request.version());
            if mode == Mode::Refuse {
                let refusal = hyper::Response::builder()
                    .status(403)
                    .body(Full::new(Bytes::from_static(b"no entry")))
                    .unwrap();
                return Ok::<_, hyper::Error>(refusal);
            }
            let mode = match request.uri().path() {
                "/reset" => Mode::ResetAfterFirst,
                "/stall" => Mode::NeverRead,
                _ => mode,
            };
            let response = match wsstream::hyper::upgrade(&mut request, &options) {
                Ok((response, upgrading)) => {
                    tokio::spawn(run(upgrading, mode));
                    response
                }
                Err(rejection) => rejection.into_response().map(Full::new),
            };
            Ok(response)
        }
    });
    match serve {
        Serve::Http1 => {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades()
                .await;
        }
        Serve::Http2 | Serve::Http2NoConnect | Serve::Http2MaxStreams(_) => {
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            // hyper's default windows are 1 MiB for a stream and for the
            // whole connection: one WebSocket whose handler stops reading
            // would stall every other. docs/http2.md explains these.
            builder
                .initial_stream_window_size(256 * 1024)
                .initial_connection_window_size(16 * 1024 * 1024);
            if serve != Serve::Http2NoConnect {
                builder.enable_connect_protocol();
            }
            if let Serve::Http2MaxStreams(max) = serve {
                builder.max_concurrent_streams(max);
            }
            let _ = builder.serve_connection(io, service).await;
        }
    }
}

async fn run(upgrading: wsstream::hyper::Upgrading, mode: Mode) -> Result<(), Error> {
    let ws = upgrading.await?;
    let opened = ws.opened().await?;
    match mode {
        Mode::Echo | Mode::Refuse => {
            opened.readable.forward(opened.writable).await?;
            ws.closed().await.map(drop)
        }
        Mode::ResetAfterFirst => {
            let mut readable = opened.readable;
            let _ = readable.next().await;
            // Dropping every handle resets the stream mid-conversation.
            drop((readable, opened.writable, ws));
            Ok(())
        }
        Mode::NeverRead => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(opened);
            Ok(())
        }
    }
}

fn h2c() -> Options {
    Options::default()
        .http_version(HttpVersion::RequireHttp2)
        .http2_prior_knowledge(true)
}

/// Sends `count` messages of mixed kinds and sizes and checks each echo.
async fn exchange(opened: &mut Opened, id: usize, count: usize) {
    let (writable, readable) = (&mut opened.writable, &mut opened.readable);
    for i in 0..count {
        let message = if i % 2 == 0 {
            Message::text(format!("stream {id} message {i}"))
        } else {
            Message::binary(vec![(id + i) as u8; (i * 977) % 70_000])
        };
        writable.send(message.clone()).await.unwrap();
        let echo = within(readable.next()).await.unwrap().unwrap();
        assert_eq!(echo, message, "stream {id} message {i}");
    }
}

#[tokio::test]
async fn many_websockets_share_one_cleartext_connection_and_it_closes_after_the_last() {
    let server = start(
        Serve::Http2,
        Mode::Echo,
        ServerOptions::default().protocols(["chat"]),
        None,
    )
    .await;
    let options = h2c().protocols(["chat"]);
    let sockets: Vec<_> = (0..20)
        .map(|_| WebSocketStream::connect(&server.url, options.clone()))
        .collect();
    let mut halves = Vec::new();
    for ws in &sockets {
        let opened = within(ws.opened()).await.unwrap();
        assert_eq!(opened.response.version(), http::Version::HTTP_2);
        assert_eq!(opened.response.status(), 200);
        assert_eq!(opened.protocol.as_deref(), Some("chat"));
        halves.push(opened);
    }
    futures::future::join_all(
        halves
            .iter_mut()
            .enumerate()
            .map(|(id, opened)| exchange(opened, id, 12)),
    )
    .await;
    assert_eq!(server.seen.connections.load(Ordering::SeqCst), 1);
    assert!(server
        .seen
        .versions
        .lock()
        .unwrap()
        .iter()
        .all(|v| *v == http::Version::HTTP_2));

    // Closing some WebSockets leaves the connection (and the others) up.
    for ws in &sockets[..19] {
        ws.close(1000, "done").unwrap();
        // The echo server answers with its own close: 1000.
        let info = within(ws.closed()).await.unwrap();
        assert_eq!(info.code, 1000);
    }
    exchange(&mut halves[19], 19, 4).await;
    assert_eq!(server.seen.connections_ended.load(Ordering::SeqCst), 0);
    // A new WebSocket reuses the connection.
    let again = WebSocketStream::connect(&server.url, options.clone());
    exchange(&mut within(again.opened()).await.unwrap(), 20, 2).await;
    assert_eq!(server.seen.connections.load(Ordering::SeqCst), 1);

    // Once the last one ends, the connection closes.
    for ws in [&sockets[19], &again] {
        ws.close(1000, "").unwrap();
        within(ws.closed()).await.unwrap();
    }
    drop((halves, sockets, again));
    within(async {
        while server.seen.connections_ended.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn wss_uses_h2_by_alpn_with_deflate_and_limits() {
    let pki = certs::TestPki::generate(&["localhost"]);
    let server_options = ServerOptions::default()
        .deflate(DeflateConfig::default())
        .max_message_size(100_000);
    let server = start(Serve::Http2, Mode::Echo, server_options, Some(&pki)).await;
    let options = Options::default()
        .http_version(HttpVersion::PreferHttp2)
        .tls_config(Arc::new(pki.client_config()))
        .deflate(DeflateConfig::default());
    let ws = WebSocketStream::connect(&server.url, options.clone());
    let opened = within(ws.opened()).await.unwrap();
    assert_eq!(opened.response.version(), http::Version::HTTP_2);
    assert!(
        opened.extensions.starts_with("permessage-deflate"),
        "{}",
        opened.extensions
    );
    let mut opened = opened;
    exchange(&mut opened, 0, 10).await;

    // The server's message limit holds on an HTTP/2 stream: 1009.
    let big = WebSocketStream::connect(&server.url, options);
    let mut opened = within(big.opened()).await.unwrap();
    opened
        .writable
        .send(Message::binary(vec![1u8; 200_000]))
        .await
        .unwrap();
    let info = within(big.closed()).await.unwrap();
    assert_eq!(info.code, 1009, "{info:?}");
    assert_eq!(server.seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn preferring_http2_falls_back_to_http1_and_requiring_it_fails_clearly() {
    let pki = certs::TestPki::generate(&["localhost"]);
    let tls = Arc::new(pki.client_config());
    // ALPN chooses http/1.1: the upgrade runs on that same connection.
    let http1 = start(
        Serve::Http1,
        Mode::Echo,
        ServerOptions::default(),
        Some(&pki),
    )
    .await;
    let prefer = Options::default()
        .http_version(HttpVersion::PreferHttp2)
        .tls_config(tls.clone());
    let ws = WebSocketStream::connect(&http1.url, prefer.clone());
    let opened = within(ws.opened()).await.unwrap();
    assert_eq!(opened.response.status(), 101);
    let mut opened = opened;
    exchange(&mut opened, 0, 2).await;
    assert_eq!(http1.seen.connections.load(Ordering::SeqCst), 1);
    let require = prefer.clone().http_version(HttpVersion::RequireHttp2);
    let err = within(WebSocketStream::connect(&http1.url, require.clone()).opened())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Http2Unavailable(_)), "{err:?}");

    // HTTP/2 without extended CONNECT: a fresh HTTP/1.1 connection, which
    // this server (HTTP/2 only) cannot take; requiring it fails clearly.
    let no_connect = start(
        Serve::Http2NoConnect,
        Mode::Echo,
        ServerOptions::default(),
        Some(&pki),
    )
    .await;
    let err = within(WebSocketStream::connect(&no_connect.url, require).opened())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Http2Unavailable(why) if why.contains("SETTINGS_ENABLE_CONNECT_PROTOCOL"))
    );

    // A ws:// URL without prior knowledge.
    let err = within(
        WebSocketStream::connect(
            "ws://127.0.0.1:9/",
            Options::default().http_version(HttpVersion::RequireHttp2),
        )
        .opened(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Http2Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn a_refusal_carries_its_status_and_body() {
    let server = start(Serve::Http2, Mode::Refuse, ServerOptions::default(), None).await;
    let err = within(WebSocketStream::connect(&server.url, h2c()).opened())
        .await
        .unwrap_err();
    match err {
        Error::Handshake(HandshakeError::Status { status, body, .. }) => {
            assert_eq!(status, 403);
            assert_eq!(&body[..], b"no entry");
        }
        other => panic!("{other:?}"),
    }
}

/// The same server at another path.
fn at(url: &str, path: &str) -> String {
    url.replace("/chat", path)
}

#[tokio::test]
async fn a_reset_stream_fails_only_its_websocket() {
    let server = start(Serve::Http2, Mode::Echo, ServerOptions::default(), None).await;
    let options = h2c();
    let fine = WebSocketStream::connect(&server.url, options.clone());
    let mut fine = within(fine.opened()).await.unwrap();
    let doomed = WebSocketStream::connect(at(&server.url, "/reset"), options.clone());
    let mut opened = within(doomed.opened()).await.unwrap();
    opened.writable.send(Message::text("one")).await.unwrap();
    let err = within(doomed.closed()).await.unwrap_err();
    assert!(
        matches!(err, Error::Io(_) | Error::ConnectionLost),
        "{err:?}"
    );
    // The other stream of the same connection carries on.
    exchange(&mut fine, 0, 6).await;
    assert_eq!(server.seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_reader_that_stops_stalls_its_stream_not_its_neighbours() {
    let server = start(Serve::Http2, Mode::Echo, ServerOptions::default(), None).await;
    let options = h2c().write_high_water(64 * 1024);
    let neighbour = WebSocketStream::connect(&server.url, options.clone());
    let neighbour = within(neighbour.opened()).await.unwrap();
    let stalled = WebSocketStream::connect(at(&server.url, "/stall"), options);
    let mut opened = within(stalled.opened()).await.unwrap();
    // The server never reads this stream: its window and then our queue
    // fill, and the sink stops taking messages.
    let chunk = Message::binary(vec![0u8; 64 * 1024]);
    let mut sent = 0usize;
    while tokio::time::timeout(
        Duration::from_millis(500),
        opened.writable.send(chunk.clone()),
    )
    .await
    .is_ok()
    {
        sent += 1;
        assert!(sent < 200, "the sink never pushed back");
    }
    // The neighbour on the same connection still moves megabytes.
    let (mut writable, mut readable) = (neighbour.writable, neighbour.readable);
    for i in 0..32u8 {
        let message = Message::binary(vec![i; 256 * 1024]);
        writable.send(message.clone()).await.unwrap();
        assert_eq!(within(readable.next()).await.unwrap().unwrap(), message);
    }
    assert_eq!(server.seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_server_that_never_sends_settings_is_cut_at_the_open_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            held.push(tcp);
        }
    });
    let options = h2c().open_timeout(Duration::from_millis(300));
    let err = within(WebSocketStream::connect(&url, options).opened())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(Timeout::Open)), "{err:?}");
}

#[tokio::test]
async fn http2_runs_through_http_connect_and_socks5_tunnels() {
    let pki = certs::TestPki::generate(&["localhost"]);
    let server = start(
        Serve::Http2,
        Mode::Echo,
        ServerOptions::default(),
        Some(&pki),
    )
    .await;
    let tinyproxy = proxies::tinyproxy(None);
    let microsocks = proxies::microsocks(None);
    let tls = Arc::new(pki.client_config());
    for (n, proxy) in [tinyproxy.url("http"), microsocks.url("socks5h")]
        .iter()
        .enumerate()
    {
        let options = Options::default()
            .http_version(HttpVersion::RequireHttp2)
            .tls_config(tls.clone())
            .proxy(proxy);
        // Two WebSockets, one tunnel, one HTTP/2 connection.
        let first = WebSocketStream::connect(&server.url, options.clone());
        let second = WebSocketStream::connect(&server.url, options);
        for (id, ws) in [&first, &second].into_iter().enumerate() {
            let mut opened = within(ws.opened()).await.unwrap();
            assert_eq!(opened.response.version(), http::Version::HTTP_2, "{proxy}");
            exchange(&mut opened, id, 4).await;
        }
        assert_eq!(
            server.seen.connections.load(Ordering::SeqCst),
            n + 1,
            "{proxy}"
        );
    }
    assert!(
        tinyproxy.log().contains(&server.port.to_string()),
        "tinyproxy did not log the tunnel:\n{}",
        tinyproxy.log()
    );
}

/// One axum route, `any(handler)`, takes HTTP/1.1 upgrades and HTTP/2
/// extended CONNECT alike when served by hyper-util's auto builder.
#[cfg(feature = "axum")]
#[tokio::test]
async fn one_axum_route_serves_http1_upgrades_and_http2_extended_connect() {
    use axum::routing::any;
    use hyper_util::server::conn::auto;
    use wsstream::axum::WebSocketUpgrade;

    let versions = Arc::new(Mutex::new(Vec::new()));
    let seen = versions.clone();
    let app = axum::Router::new().route(
        "/chat",
        any(move |ws: WebSocketUpgrade| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(ws.request().version());
                ws.protocols(["chat"]).on_upgrade(|ws| async move {
                    if let Ok(opened) = ws.opened().await {
                        let _ = opened.readable.forward(opened.writable).await;
                    }
                })
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/chat", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder.http2().enable_connect_protocol();
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    let http1 = WebSocketStream::connect(&url, Options::default().protocols(["chat"]));
    let http2 = WebSocketStream::connect(&url, h2c().protocols(["chat"]));
    for (id, ws) in [&http1, &http2].into_iter().enumerate() {
        let mut opened = within(ws.opened()).await.unwrap();
        assert_eq!(opened.protocol.as_deref(), Some("chat"));
        exchange(&mut opened, id, 4).await;
    }
    assert_eq!(
        *versions.lock().unwrap(),
        [http::Version::HTTP_11, http::Version::HTTP_2]
    );
}

/// A server's limit on concurrent streams holds: WebSockets past it go to
/// another connection (as Go's HTTP/2 client does) instead of waiting for a
/// stream to end; freed places are used again before a third connection.
#[tokio::test]
async fn websockets_past_the_servers_stream_limit_open_another_connection() {
    let server = start(
        Serve::Http2MaxStreams(4),
        Mode::Echo,
        ServerOptions::default(),
        None,
    )
    .await;
    let options = h2c();
    let sockets: Vec<_> = (0..6)
        .map(|_| WebSocketStream::connect(&server.url, options.clone()))
        .collect();
    let mut opened = Vec::new();
    for (id, ws) in sockets.iter().enumerate() {
        let mut halves = within(ws.opened()).await.unwrap();
        exchange(&mut halves, id, 2).await;
        opened.push(halves);
    }
    assert_eq!(server.seen.connections.load(Ordering::SeqCst), 2);
    // Two places free up on the first connection; two more WebSockets use
    // them (with the second connection's two spare places, no third
    // connection is needed for four).
    for ws in &sockets[..2] {
        ws.close(1000, "").unwrap();
        within(ws.closed()).await.unwrap();
    }
    let more: Vec<_> = (0..4)
        .map(|_| WebSocketStream::connect(&server.url, options.clone()))
        .collect();
    for (id, ws) in more.iter().enumerate() {
        let mut halves = within(ws.opened()).await.unwrap();
        exchange(&mut halves, 10 + id, 2).await;
        opened.push(halves);
    }
    assert_eq!(server.seen.connections.load(Ordering::SeqCst), 2);
}

/// A server's graceful GOAWAY lets the WebSockets it covers carry on and
/// sends new ones to a new connection; a connection that breaks fails
/// every WebSocket on it.
#[tokio::test]
async fn goaway_lets_streams_finish_and_a_broken_connection_fails_them_all() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (conns_tx, mut conns) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let go_away = Arc::new(tokio::sync::Notify::new());
            let notified = go_away.clone();
            let serving = tokio::spawn(async move {
                let service = service_fn(|mut request| async move {
                    let options = ServerOptions::default();
                    let response = match wsstream::hyper::upgrade(&mut request, &options) {
                        Ok((response, upgrading)) => {
                            tokio::spawn(run(upgrading, Mode::Echo));
                            response
                        }
                        Err(rejection) => rejection.into_response().map(Full::new),
                    };
                    Ok::<_, hyper::Error>(response)
                });
                let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .enable_connect_protocol()
                    .serve_connection(TokioIo::new(tcp), service);
                let mut connection = std::pin::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => return,
                    () = notified.notified() => connection.as_mut().graceful_shutdown(),
                }
                let _ = connection.await;
            });
            conns_tx.send((go_away, serving)).unwrap();
        }
    });
    let options = h2c();
    let mut a = within(WebSocketStream::connect(&url, options.clone()).opened())
        .await
        .unwrap();
    let mut b = within(WebSocketStream::connect(&url, options.clone()).opened())
        .await
        .unwrap();
    let (go_away, _first) = within(conns.recv()).await.unwrap();
    go_away.notify_one();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The streams the GOAWAY covers carry on...
    exchange(&mut a, 0, 3).await;
    exchange(&mut b, 1, 3).await;
    // ...and a new WebSocket goes to a new connection.
    let c_ws = WebSocketStream::connect(&url, options.clone());
    let mut c = within(c_ws.opened()).await.unwrap();
    exchange(&mut c, 2, 3).await;
    let (_, second) = within(conns.recv()).await.unwrap();

    // The second connection breaks (the server's side of it is dropped):
    // every WebSocket on it fails, promptly and with an error.
    let d_ws = WebSocketStream::connect(&url, options);
    let _d = within(d_ws.opened()).await.unwrap();
    second.abort();
    for ws in [&c_ws, &d_ws] {
        let err = within(ws.closed()).await.unwrap_err();
        assert!(
            matches!(err, Error::Io(_) | Error::ConnectionLost),
            "{err:?}"
        );
    }
}

/// Clones of one `Options` share connections; a clone given another
/// connector (or TLS configuration) gets connections of its own, and a
/// separate `Options` value never shares.
#[tokio::test]
async fn only_options_with_the_same_route_share_a_connection() {
    let server = start(Serve::Http2, Mode::Echo, ServerOptions::default(), None).await;
    let options = h2c();
    let rerouted = options.clone().connector(wsstream::transport::TcpConnector);
    let separate = h2c();
    let mut open = Vec::new();
    for (id, opts) in [&options, &options.clone(), &rerouted, &separate]
        .into_iter()
        .enumerate()
    {
        let mut opened = within(WebSocketStream::connect(&server.url, opts.clone()).opened())
            .await
            .unwrap();
        exchange(&mut opened, id, 1).await;
        open.push(opened);
    }
    assert_eq!(server.seen.connections.load(Ordering::SeqCst), 3);
}
