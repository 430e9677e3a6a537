//! wsstream inside the servers Rust services run on: hyper 1
//! (`wsstream::hyper::upgrade`) and axum 0.8 (`wsstream::axum::WebSocketUpgrade`),
//! against wsstream's client. The request is parsed and routed by the
//! server; wsstream checks it, negotiates, and runs the connection with
//! its own limits, keepalive and deflate.

#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/raw.rs"]
mod raw;

use std::time::Duration;

use axum::routing::get;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use raw::within;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wsstream::handshake::HandshakeError;
use wsstream::{CloseInfo, DeflateConfig, Error, Message, Options, ServerOptions};

/// Serves every connection of `listener` with hyper, upgrades on, and a
/// service that echoes WebSocket messages on any path.
async fn hyper_echo_server(listener: TcpListener, options: ServerOptions) {
    loop {
        let (tcp, _) = listener.accept().await.unwrap();
        let options = options.clone();
        let service = service_fn(move |mut request: hyper::Request<Incoming>| {
            let options = options.clone();
            async move {
                let response = match wsstream::hyper::upgrade(&mut request, &options) {
                    Ok((response, upgrading)) => {
                        tokio::spawn(async move {
                            let ws = upgrading.await?;
                            let opened = ws.opened().await?;
                            opened.readable.forward(opened.writable).await?;
                            ws.closed().await.map(drop)
                        });
                        response
                    }
                    Err(rejection) => rejection.into_response().map(Full::new),
                };
                Ok::<_, hyper::Error>(response)
            }
        });
        tokio::spawn(serve_http1(tcp, service));
    }
}

/// Serves `tcp` with hyper's HTTP/1, upgrades on, and a 500 ms limit on
/// reading a request head, as docs/servers.md advises.
async fn serve_http1<S, B>(tcp: tokio::net::TcpStream, service: S) -> Result<(), hyper::Error>
where
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(500))
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades()
        .await
}

async fn start_hyper(options: ServerOptions) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(hyper_echo_server(listener, options));
    url
}

/// An axum app with one WebSocket route, `/ws`, echoing with `options`.
async fn start_axum(options: ServerOptions) -> String {
    let app = axum::Router::new().route(
        "/ws",
        get(move |ws: wsstream::axum::WebSocketUpgrade| {
            let options = options.clone();
            async move {
                ws.options(options).on_upgrade(|ws| async move {
                    if let Ok(opened) = ws.opened().await {
                        let _ = opened.readable.forward(opened.writable).await;
                    }
                    let _ = ws.closed().await;
                })
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Sends text, binary and a compressible 1 MiB text, expects each back,
/// and closes cleanly.
async fn echo_round_trip(url: String, options: Options) -> wsstream::Opened {
    let ws = wsstream::WebSocketStream::connect(url, options);
    let mut opened = within(ws.opened()).await.unwrap();
    let big = "wsstream ".repeat(1 << 17);
    for message in [
        Message::text("hello"),
        Message::binary(vec![0, 1, 2, 255]),
        Message::text(big),
    ] {
        opened.writable.send(message.clone()).await.unwrap();
        assert_eq!(
            within(opened.readable.next()).await.unwrap().unwrap(),
            message
        );
    }
    ws.close(1000, "done").unwrap();
    while within(opened.readable.next()).await.is_some() {}
    // The servers answer with the code alone.
    assert_eq!(
        within(ws.closed()).await.unwrap(),
        CloseInfo {
            code: 1000,
            reason: String::new()
        }
    );
    opened
}

#[tokio::test]
async fn hyper_upgrades_with_protocol_and_deflate() {
    let server = ServerOptions::default()
        .protocols(["v2", "v1"])
        .deflate(DeflateConfig::default());
    let url = start_hyper(server).await;
    let client = Options::default()
        .protocols(["v1", "v2"])
        .deflate(DeflateConfig::default());
    let opened = echo_round_trip(format!("{url}/any/path"), client).await;
    assert_eq!(opened.protocol.as_deref(), Some("v2"), "the server's order");
    assert!(opened.extensions.starts_with("permessage-deflate"));
    assert_eq!(opened.response.status(), 101);
}

#[tokio::test]
async fn axum_upgrades_with_protocol_and_deflate() {
    let server = ServerOptions::default()
        .protocols(["v1"])
        .deflate(DeflateConfig::default());
    let url = start_axum(server).await;
    let client = Options::default()
        .protocols(["v0", "v1"])
        .deflate(DeflateConfig::default());
    let opened = echo_round_trip(format!("{url}/ws"), client).await;
    assert_eq!(opened.protocol.as_deref(), Some("v1"));
    assert!(opened.extensions.starts_with("permessage-deflate"));
}

/// The options' limits hold on the hyper and axum paths: a message over
/// the server's limit is refused with close 1009.
#[tokio::test]
async fn the_servers_limits_hold_on_both_paths() {
    let server = ServerOptions::default().max_message_size(1024);
    for url in [
        format!("{}/", start_hyper(server.clone()).await),
        format!("{}/ws", start_axum(server.clone()).await),
    ] {
        let ws = wsstream::WebSocketStream::connect(&url, Options::default());
        let mut opened = within(ws.opened()).await.unwrap();
        opened
            .writable
            .send(Message::binary(vec![7; 2048]))
            .await
            .unwrap();
        while let Some(next) = within(opened.readable.next()).await {
            assert!(next.is_ok(), "{url}: {next:?}");
        }
        let closed = within(ws.closed()).await.unwrap();
        assert_eq!(closed.code, 1009, "{url}");
    }
}

/// A request that is not an upgrade gets the right status from both
/// paths, with the reason as its body.
#[tokio::test]
async fn requests_that_are_not_upgrades_get_the_right_status() {
    let hyper_url = start_hyper(ServerOptions::default()).await;
    let axum_url = start_axum(ServerOptions::default()).await;
    // axum itself answers 405 for a POST to a GET route; on hyper it is
    // wsstream's check.
    let post = (
        "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            .to_owned(),
        405,
    );
    for (base, path) in [(hyper_url, "/"), (axum_url, "/ws")] {
        let addr = base.trim_start_matches("ws://").to_owned();
        let only_hyper = (path == "/").then(|| post.clone());
        for (request, status) in [
            (format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"), 426),
            (
                format!(
                    "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Version: 13\r\n\r\n"
                ),
                400,
            ),
            (
                format!(
                    "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                ),
                426,
            ),
        ]
        .into_iter()
        .chain(only_hyper)
        {
            let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
            tcp.write_all(request.as_bytes()).await.unwrap();
            let mut reply = vec![0; 4096];
            let n = within(tcp.read(&mut reply)).await.unwrap();
            let reply = String::from_utf8_lossy(&reply[..n]).to_lowercase();
            assert!(
                reply.starts_with(&format!("http/1.1 {status} ")),
                "{addr}{path}: {reply}"
            );
            assert!(reply.contains("sec-websocket-version: 13"), "{reply}");
        }
    }
}

/// On hyper, reading the request is hyper's: with `header_read_timeout`
/// set as the module docs say, a client that drips its request is cut.
#[tokio::test]
async fn a_dripping_client_is_cut_by_hypers_header_timeout() {
    let url = start_hyper(ServerOptions::default()).await;
    let mut tcp = tokio::net::TcpStream::connect(url.trim_start_matches("ws://"))
        .await
        .unwrap();
    drip_until_cut(&mut tcp).await;
}

/// `axum::serve` gives hyper no timer, so it never cuts a client that
/// drips its request; served through hyper with a timer, as
/// docs/servers.md shows, the same axum app does.
#[tokio::test]
async fn a_dripping_client_is_cut_when_axum_is_served_with_a_header_timeout() {
    let app = axum::Router::new().route(
        "/ws",
        get(|ws: wsstream::axum::WebSocketUpgrade| async move { ws.on_upgrade(|_| async {}) }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            tokio::spawn(serve_http1(tcp, service));
        }
    });
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    drip_until_cut(&mut tcp).await;
}

/// Sends a request head a field at a time, every 100 ms, until the server
/// closes the connection; fails the test if it has not within 10 s.
async fn drip_until_cut(tcp: &mut tokio::net::TcpStream) {
    tcp.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let drip = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if tcp.write_all(b"X: y\r\n").await.is_err() {
                return;
            }
            let mut byte = [0u8; 1];
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_millis(1), tcp.read(&mut byte)).await
            {
                return;
            }
        }
    };
    within(drip).await;
}

/// A rejected request's status, fields and body reach the client's error.
#[tokio::test]
async fn a_refusal_from_axum_middleware_reaches_the_client_whole() {
    use axum::response::IntoResponse;
    let app = axum::Router::new().route(
        "/ws",
        get(|headers: http::HeaderMap| async move {
            if headers.get("authorization").is_none() {
                return (
                    http::StatusCode::UNAUTHORIZED,
                    [("www-authenticate", "Bearer")],
                    "token required",
                )
                    .into_response();
            }
            http::StatusCode::NO_CONTENT.into_response()
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let ws = wsstream::WebSocketStream::connect(url, Options::default());
    match within(ws.opened()).await {
        Err(Error::Handshake(HandshakeError::Status {
            status,
            headers,
            body,
        })) => {
            assert_eq!(status, 401);
            assert_eq!(headers["www-authenticate"], "Bearer");
            assert_eq!(body, Bytes::from_static(b"token required"));
        }
        other => panic!("{other:?}"),
    }
}
