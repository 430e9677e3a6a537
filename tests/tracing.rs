//! The `tracing` feature as an operator reads it: a span per connection
//! naming its role, peer and URL (never credentials or a query), and debug
//! events for the handshake, the close frames, protocol errors, timeouts
//! and proxy legs. A subscriber captures what is emitted
//! (`support/trace_capture.rs`); a real proxy (tinyproxy, installed on
//! first use as the proxy tests do) carries the credentials test.

#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/proxies.rs"]
mod proxies;
#[path = "support/raw.rs"]
mod raw;
#[path = "support/trace_capture.rs"]
mod trace_capture;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use trace_capture::{Capture, EventSeen};
use tracing::Level;
use wsstream::{Error, Message, Options, ServerOptions, Timeout, WebSocketStream};

use raw::{accept_raw, listen, within};

/// A wsstream echo server on 127.0.0.1 for one connection, offering `chat`.
async fn echo_server() -> (String, tokio::task::JoinHandle<Result<(), Error>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let ws = WebSocketStream::accept(tcp, ServerOptions::default().protocols(["chat"])).await?;
        let opened = ws.opened().await?;
        opened.readable.forward(opened.writable).await?;
        ws.closed().await.map(drop)
    });
    (addr.to_string(), server)
}

/// Sends one message through `url`, reads the echo and closes with 1000.
async fn echo_once(url: &str, options: Options) -> Result<(), Error> {
    let ws = WebSocketStream::connect(url, options);
    let opened = within(ws.opened()).await?;
    let (mut readable, mut writable) = (opened.readable, opened.writable);
    writable.send(Message::text("hello")).await?;
    assert_eq!(
        within(readable.next()).await.transpose()?,
        Some(Message::text("hello"))
    );
    ws.close(1000, "done")?;
    while within(readable.next()).await.transpose()?.is_some() {}
    within(ws.closed()).await.map(drop)
}

fn in_role<'a>(events: &'a [EventSeen], role: &str) -> Vec<&'a EventSeen> {
    events
        .iter()
        .filter(|event| event.field("role") == Some(role))
        .collect()
}

fn one<'a>(events: &[&'a EventSeen], message: &str) -> &'a EventSeen {
    let named: Vec<_> = events.iter().filter(|e| e.message == message).collect();
    assert_eq!(named.len(), 1, "one `{message}` event, got {events:#?}");
    named[0]
}

#[tokio::test]
async fn the_handshake_and_the_close_are_reported_in_each_connections_span() {
    let capture = Capture::default();
    let _guard = capture.install();
    let (addr, server) = echo_server().await;
    let url = format!("ws://{addr}/room/7?ticket=abc");
    echo_once(&url, Options::default().protocols(["chat"]))
        .await
        .unwrap();
    within(server).await.unwrap().unwrap();

    let events = capture.events();
    let client = in_role(&events, "client");
    let opened = one(&client, "opened");
    assert_eq!(opened.field("protocol"), Some("chat"));
    assert_eq!(
        opened.field("url"),
        Some(format!("ws://{addr}/room/7").as_str())
    );
    assert_eq!(opened.field("remote"), Some(addr.as_str()));
    let sent = one(&client, "close frame sent");
    assert_eq!(
        (sent.field("code"), sent.field("reason")),
        (Some("1000"), Some("done"))
    );
    assert_eq!(
        one(&client, "close frame received").field("code"),
        Some("1000")
    );
    assert_eq!(one(&client, "closed cleanly").field("code"), Some("1000"));

    let server = in_role(&events, "server");
    let opened = one(&server, "opened");
    assert_eq!(opened.field("protocol"), Some("chat"));
    assert_eq!(opened.field("path"), Some("/room/7"));
    let peer = opened
        .field("peer")
        .expect("the server span names its peer");
    assert!(peer.starts_with("127.0.0.1:"), "{peer}");
    assert_eq!(
        one(&server, "close frame received").field("code"),
        Some("1000")
    );
    assert_eq!(one(&server, "close frame sent").field("code"), Some("1000"));

    // The normal path stays at debug and below, as hyper and tokio log.
    assert!(
        events.iter().all(|e| e.level >= Level::DEBUG),
        "{events:#?}"
    );
    assert!(
        !capture.all_text().contains("ticket"),
        "{}",
        capture.all_text()
    );
}

#[tokio::test]
async fn a_protocol_error_is_one_event_with_its_close_code() {
    let capture = Capture::default();
    let _guard = capture.install();
    let (listener, url) = listen().await;
    let peer = tokio::spawn(async move {
        let mut peer = accept_raw(&listener).await;
        // FIN with the reserved opcode 0x3.
        peer.send(&[0x83, 0x00]).await;
        peer.read_until_close().await
    });
    let ws = WebSocketStream::connect(&url, Options::default());
    let mut opened = within(ws.opened()).await.unwrap();
    let err = within(opened.readable.next()).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    assert_eq!(within(peer).await.unwrap(), Some(1002));

    let events = capture.events();
    let errors = capture.events_named("protocol error");
    assert_eq!(errors.len(), 1, "{events:#?}");
    assert_eq!(errors[0].field("code"), Some("1002"));
    assert_eq!(errors[0].field("role"), Some("client"));
    assert!(errors[0].field("error").is_some_and(|e| !e.is_empty()));
    assert_eq!(
        one(&in_role(&events, "client"), "close frame sent").field("code"),
        Some("1002")
    );
}

#[tokio::test]
async fn timeouts_are_reported() {
    let capture = Capture::default();
    let _guard = capture.install();

    // Keepalive: the peer never answers the ping.
    let (listener, url) = listen().await;
    let peer = tokio::spawn(async move {
        let mut peer = accept_raw(&listener).await;
        while peer.read_frame().await.is_some() {}
    });
    let options = Options::default()
        .ping_interval(Some(Duration::from_millis(50)))
        .ping_timeout(Some(Duration::from_millis(100)));
    let ws = WebSocketStream::connect(&url, options);
    let mut opened = within(ws.opened()).await.unwrap();
    let err = within(opened.readable.next()).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Timeout(Timeout::Keepalive)), "{err:?}");
    drop((opened, ws));
    let _ = within(peer).await;

    // Opening: the server accepts the TCP connection and says nothing.
    let (listener, url) = listen().await;
    let options = Options::default().open_timeout(Duration::from_millis(100));
    let ws = WebSocketStream::connect(&url, options);
    let err = within(ws.opened()).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(Timeout::Open)), "{err:?}");
    drop(listener);

    let timeouts = capture.events_named("timed out");
    let kinds: Vec<_> = timeouts.iter().map(|e| e.field("timeout")).collect();
    assert_eq!(kinds, [Some("Keepalive"), Some("Open")], "{timeouts:#?}");
    assert!(timeouts.iter().all(|e| e.field("role") == Some("client")));
    assert_eq!(capture.events_named("opening failed").len(), 1);
}

/// Credentials in the URL, in a header and in the proxy URL, and a secret
/// in the query: none may reach a span or an event, on the way in or when
/// the proxy refuses.
#[tokio::test]
async fn no_credential_reaches_any_span_or_event() {
    let proxy = proxies::tinyproxy(Some(("proxyuser", "pr0xypass")));
    let capture = Capture::default();
    let _guard = capture.install();
    let (addr, server) = echo_server().await;
    let url = format!("ws://urluser:urlpa55@{addr}/feed?token=t0k3n");
    let options = Options::default()
        .proxy(&proxy.url_with_auth("http", "proxyuser", "pr0xypass"))
        .header(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer b3arer"),
        );
    echo_once(&url, options).await.unwrap();
    within(server).await.unwrap().unwrap();
    // Refused: a wrong password.
    let options = Options::default().proxy(&proxy.url_with_auth("http", "proxyuser", "wr0ng"));
    let ws = WebSocketStream::connect(&url, options);
    assert!(matches!(within(ws.opened()).await, Err(Error::Proxy(_))));

    let tunnel = capture.events_named("proxy tunnel open");
    assert_eq!(tunnel.len(), 1, "{:#?}", capture.events());
    assert_eq!(tunnel[0].field("proxy"), Some(proxy.url("http").as_str()));
    assert_eq!(tunnel[0].field("target"), Some(addr.as_str()));
    assert_eq!(capture.events_named("proxy tunnel failed").len(), 1);
    assert_eq!(capture.events_named("opened").len(), 2, "client and server");
    let text = capture.all_text();
    for secret in [
        "urluser",
        "urlpa55",
        "t0k3n",
        "proxyuser",
        "pr0xypass",
        "wr0ng",
        "b3arer",
        "dXJsdXNlcjp1cmxwYTU1",       // base64("urluser:urlpa55")
        "cHJveHl1c2VyOnByMHh5cGFzcw", // base64("proxyuser:pr0xypass")
    ] {
        assert!(!text.contains(secret), "`{secret}` was logged:\n{text}");
    }
}

/// Behind axum (and so hyper), the server's connection has its span too,
/// named by role and path; the peer's address is the application's to add
/// in a span of its own.
#[cfg(feature = "axum")]
#[tokio::test]
async fn a_connection_upgraded_by_axum_has_a_server_span() {
    let capture = Capture::default();
    let _guard = capture.install();
    let app = axum::Router::new().route(
        "/live",
        axum::routing::get(|ws: wsstream::axum::WebSocketUpgrade| async move {
            ws.on_upgrade(|ws| async move {
                if let Ok(opened) = ws.opened().await {
                    let _ = opened.readable.forward(opened.writable).await;
                }
                let _ = ws.closed().await;
            })
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    echo_once(&format!("ws://{addr}/live?session=42"), Options::default())
        .await
        .unwrap();

    let events = capture.events();
    let server = in_role(&events, "server");
    assert_eq!(one(&server, "opened").field("path"), Some("/live"));
    // One runtime thread: the server reported the close before its reply
    // could reach the client.
    assert_eq!(
        one(&server, "close frame received").field("code"),
        Some("1000")
    );
    assert!(
        !capture.all_text().contains("session"),
        "{}",
        capture.all_text()
    );
}
