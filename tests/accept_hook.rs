//! The raw-socket server's accept hook and the `http`-typed handshake
//! (`Upgrade`), seen from a real client: what each decision sends, what
//! each side reports, and that nothing but the one connection fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/raw.rs"]
mod raw;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use http::header::{ORIGIN, SET_COOKIE};
use http::{HeaderValue, StatusCode};
use raw::{listen, within};
use tokio::net::TcpListener;
use wsstream::handshake::HandshakeError;
use wsstream::{
    Acceptance, Error, Message, Options, Rejection, ServerOptions, Timeout, Upgrade,
    WebSocketStream,
};

/// Accepts one connection with `options` on a task; its result is the
/// server's `accept` result.
fn serve_one(
    listener: TcpListener,
    options: ServerOptions,
) -> tokio::task::JoinHandle<Result<WebSocketStream, Error>> {
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        WebSocketStream::accept(tcp, options).await
    })
}

/// A hook that admits only the origin `https://app.example`, sets a
/// cookie, and picks the protocol from the path.
fn origin_hook() -> ServerOptions {
    ServerOptions::default()
        .protocols(["a", "b"])
        .accept_hook(|request| {
            let origin = request.headers().get(ORIGIN).cloned();
            let wants_b = request.uri().path() == "/b";
            async move {
                // The decision may wait on something (a database, say).
                tokio::time::sleep(Duration::from_millis(20)).await;
                match origin {
                    Some(origin) if origin == "https://app.example" => {
                        let acceptance = Acceptance::new()
                            .header(SET_COOKIE, HeaderValue::from_static("session=42; HttpOnly"));
                        Ok(if wants_b {
                            acceptance.protocol("b")
                        } else {
                            acceptance
                        })
                    }
                    _ => Err(Rejection::new(StatusCode::FORBIDDEN)
                        .header(
                            http::header::CONTENT_TYPE,
                            HeaderValue::from_static("text/plain"),
                        )
                        .body("unknown origin")),
                }
            }
        })
}

fn client(origin: &'static str) -> Options {
    Options::default()
        .protocols(["a", "b"])
        .header(ORIGIN, HeaderValue::from_static(origin))
}

#[tokio::test]
async fn an_accepting_hook_adds_its_fields_and_protocol_to_the_101() {
    let (listener, url) = listen().await;
    let server = serve_one(listener, origin_hook());
    let ws = WebSocketStream::connect(format!("{url}b"), client("https://app.example"));
    let opened = within(ws.opened()).await.unwrap();
    assert_eq!(opened.protocol.as_deref(), Some("b"), "the hook's choice");
    assert_eq!(opened.response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        opened.response.headers()[SET_COOKIE],
        "session=42; HttpOnly"
    );
    let server_ws = within(server).await.unwrap().unwrap();
    assert_eq!(server_ws.request().unwrap().uri().path(), "/b");
    let server_opened = within(server_ws.opened()).await.unwrap();
    assert_eq!(
        server_opened.response.headers()[SET_COOKIE],
        "session=42; HttpOnly",
        "the server's Opened shows what it sent"
    );
    // And the connection works both ways.
    let (mut sr, mut sw) = (server_opened.readable, server_opened.writable);
    let (mut cr, mut cw) = (opened.readable, opened.writable);
    cw.send(Message::text("hi")).await.unwrap();
    sw.send(within(sr.next()).await.unwrap().unwrap())
        .await
        .unwrap();
    assert_eq!(
        within(cr.next()).await.unwrap().unwrap(),
        Message::text("hi")
    );
}

#[tokio::test]
async fn without_a_choice_the_hook_leaves_the_protocol_to_the_options() {
    let (listener, url) = listen().await;
    let server = serve_one(listener, origin_hook());
    let ws = WebSocketStream::connect(format!("{url}a"), client("https://app.example"));
    let opened = within(ws.opened()).await.unwrap();
    assert_eq!(opened.protocol.as_deref(), Some("a"));
    within(server).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_rejecting_hook_sends_its_status_fields_and_body() {
    let (listener, url) = listen().await;
    let server = serve_one(listener, origin_hook());
    let ws = WebSocketStream::connect(&url, client("https://evil.example"));
    match within(ws.opened()).await {
        Err(Error::Handshake(HandshakeError::Status {
            status,
            headers,
            body,
        })) => {
            assert_eq!(status, StatusCode::FORBIDDEN);
            assert_eq!(headers["content-type"], "text/plain");
            assert_eq!(&body[..], b"unknown origin");
        }
        other => panic!("{other:?}"),
    }
    match within(server).await.unwrap() {
        Err(Error::Handshake(HandshakeError::Rejected { status, .. })) => {
            assert_eq!(status, StatusCode::FORBIDDEN)
        }
        other => panic!("{other:?}"),
    }
}

/// A hook that panics answers 500 and fails that connection only: the
/// listener's next connection is served.
#[tokio::test]
async fn a_panicking_hook_fails_only_its_connection() {
    let (listener, url) = listen().await;
    let options = ServerOptions::default().accept_hook(|request| {
        let panics = request.uri().path() == "/panic";
        async move {
            assert!(!panics, "the hook panicked on purpose");
            Ok(Acceptance::new())
        }
    });
    let server = tokio::spawn(async move {
        let mut results = Vec::new();
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            results.push(WebSocketStream::accept(tcp, options.clone()).await);
        }
        results
    });
    let first = WebSocketStream::connect(format!("{url}panic"), Options::default());
    match within(first.opened()).await {
        Err(Error::Handshake(HandshakeError::Status { status, .. })) => {
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR)
        }
        other => panic!("{other:?}"),
    }
    let second = WebSocketStream::connect(format!("{url}fine"), Options::default());
    within(second.opened()).await.unwrap();
    let results = within(server).await.unwrap();
    assert!(matches!(
        &results[0],
        Err(Error::Handshake(HandshakeError::Rejected { status, .. })) if *status == 500
    ));
    assert!(results[1].is_ok());
}

#[tokio::test]
async fn a_hook_that_sets_a_handshake_field_is_a_500_and_a_typed_error() {
    let (listener, url) = listen().await;
    let options = ServerOptions::default().accept_hook(|_| async {
        Ok(Acceptance::new().header(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("sneaky"),
        ))
    });
    let server = serve_one(listener, options);
    let ws = WebSocketStream::connect(&url, Options::default());
    assert!(matches!(
        within(ws.opened()).await,
        Err(Error::Handshake(HandshakeError::Status { status, .. })) if status == 500
    ));
    assert!(matches!(
        within(server).await.unwrap(),
        Err(Error::ReservedHeader(name)) if name == "sec-websocket-protocol"
    ));
}

/// The hook runs inside the handshake timeout: one that never answers
/// cannot hold the connection.
#[tokio::test]
async fn a_hook_that_never_answers_meets_the_handshake_timeout() {
    let (listener, url) = listen().await;
    let options = ServerOptions::default()
        .handshake_timeout(Duration::from_millis(300))
        .accept_hook(|_| std::future::pending());
    let server = serve_one(listener, options);
    let _ws = WebSocketStream::connect(&url, Options::default());
    assert!(matches!(
        within(server).await.unwrap(),
        Err(Error::Timeout(Timeout::Open))
    ));
}

/// The hook sees only requests that passed the WebSocket checks.
#[tokio::test]
async fn requests_that_are_not_upgrades_never_reach_the_hook() {
    let (mut client, server_io) = tokio::io::duplex(4096);
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let options = ServerOptions::default().accept_hook(move |_| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { Ok(Acceptance::new()) }
    });
    let server = tokio::spawn(WebSocketStream::accept(server_io, options));
    tokio::io::AsyncWriteExt::write_all(&mut client, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    within(tokio::io::AsyncReadExt::read_to_end(
        &mut client,
        &mut reply,
    ))
    .await
    .unwrap();
    assert!(reply.starts_with(b"HTTP/1.1 426 "));
    assert!(within(server).await.unwrap().is_err());
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// `Upgrade` alone, over a transport whose HTTP part someone else did: the
/// response it builds is what the client accepts, and the connection runs
/// over what follows.
#[tokio::test]
async fn an_upgrade_answered_by_hand_opens_over_the_rest_of_the_transport() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut buf = bytes::BytesMut::new();
        let request = loop {
            tokio::io::AsyncReadExt::read_buf(&mut tcp, &mut buf)
                .await
                .unwrap();
            if let Some(request) = wsstream::handshake::parse_request_head(&mut buf).unwrap() {
                break request;
            }
        };
        let options = ServerOptions::default().protocols(["chat"]);
        let upgrade = Upgrade::new(&request, &options).unwrap();
        assert_eq!(upgrade.protocol(), Some("chat"));
        let head = wsstream::handshake::write_response(upgrade.response(), b"");
        tokio::io::AsyncWriteExt::write_all(&mut tcp, &head)
            .await
            .unwrap();
        let ws = upgrade.open(tcp).unwrap();
        let opened = ws.opened().await.unwrap();
        let (mut readable, mut writable) = (opened.readable, opened.writable);
        while let Some(message) = readable.next().await {
            writable.send(message.unwrap()).await.unwrap();
        }
        ws.closed().await
    });
    let ws = WebSocketStream::connect(&url, Options::default().protocols(["chat"]));
    let opened = within(ws.opened()).await.unwrap();
    assert_eq!(opened.protocol.as_deref(), Some("chat"));
    let (mut readable, mut writable) = (opened.readable, opened.writable);
    writable.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(
        within(readable.next()).await.unwrap().unwrap(),
        Message::binary(vec![1, 2, 3])
    );
    ws.close(1000, "done").unwrap();
    while within(readable.next()).await.is_some() {}
    assert_eq!(within(server).await.unwrap().unwrap().code, 1000);
}
