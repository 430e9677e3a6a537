//! Keepalive and timeouts on tokio's paused clock over in-memory pipes: the
//! clock jumps to each deadline, so nothing here waits in real time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/raw.rs"]
mod raw;

use std::time::Duration;

use futures::StreamExt;
use raw::{frame, RawPeer};
use tokio::io::DuplexStream;
use wsstream::proto::OpCode;
use wsstream::{Error, Options, Readable, ServerOptions, Timeout, WebSocketStream};

async fn open(options: Options) -> (WebSocketStream, Readable, RawPeer<DuplexStream>) {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let ws = WebSocketStream::connect_over(client_io, "ws://pipe/", options);
    let peer = RawPeer::handshake(server_io, &[]).await;
    let opened = ws.opened().await.unwrap();
    (ws, opened.readable, peer)
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_keepalive_ping_fails_the_connection_with_1011() {
    let options = Options::default()
        .ping_interval(Some(Duration::from_secs(4)))
        .ping_timeout(Some(Duration::from_secs(3)));
    let (ws, mut readable, mut peer) = open(options).await;
    let started = tokio::time::Instant::now();
    let reader = tokio::spawn(async move { readable.next().await });
    let ping = peer.read_frame().await.unwrap();
    assert_eq!(ping.header.opcode, OpCode::Ping);
    assert_eq!(started.elapsed(), Duration::from_secs(4));
    // The peer never answers.
    assert!(matches!(
        reader.await.unwrap(),
        Some(Err(Error::Timeout(Timeout::Keepalive)))
    ));
    assert_eq!(started.elapsed(), Duration::from_secs(7));
    assert_eq!(peer.read_until_close().await, Some(1011));
    assert!(matches!(
        ws.closed().await,
        Err(Error::Timeout(Timeout::Keepalive))
    ));
}

#[tokio::test(start_paused = true)]
async fn answered_pings_keep_the_connection_open() {
    let options = Options::default()
        .ping_interval(Some(Duration::from_secs(1)))
        .ping_timeout(Some(Duration::from_millis(500)));
    let (ws, mut readable, mut peer) = open(options).await;
    let reader = tokio::spawn(async move { readable.next().await.map(|m| m.unwrap()) });
    for _ in 0..10 {
        let ping = peer.read_frame().await.unwrap();
        assert_eq!(ping.header.opcode, OpCode::Ping);
        peer.send(&frame(OpCode::Pong, true, &ping.payload, None))
            .await;
    }
    peer.send(&frame(OpCode::Text, true, b"still here", None))
        .await;
    assert_eq!(reader.await.unwrap().unwrap().as_text(), Some("still here"));
    drop(ws);
}

/// Regression: the client kept only the last pong of a read, so a matching
/// pong followed in the same write by an unsolicited one (RFC 6455 §5.5.3
/// allows those) was lost and keepalive failed the connection.
#[tokio::test(start_paused = true)]
async fn a_matching_pong_counts_whatever_pong_follows_it() {
    let options = Options::default()
        .ping_interval(Some(Duration::from_millis(300)))
        .ping_timeout(Some(Duration::from_secs(1)));
    let (ws, mut readable, mut peer) = open(options).await;
    let reader = tokio::spawn(async move { readable.next().await.map(|m| m.unwrap()) });
    for _ in 0..10 {
        let ping = peer.read_frame().await.unwrap();
        assert_eq!(ping.header.opcode, OpCode::Ping);
        let mut answer = frame(OpCode::Pong, true, &ping.payload, None);
        answer.extend(frame(OpCode::Pong, true, b"unsolicited", None));
        peer.send(&answer).await;
    }
    peer.send(&frame(OpCode::Text, true, b"still open", None))
        .await;
    assert_eq!(reader.await.unwrap().unwrap().as_text(), Some("still open"));
    drop(ws);
}

#[tokio::test(start_paused = true)]
async fn a_pong_with_the_wrong_payload_does_not_count() {
    let options = Options::default()
        .ping_interval(Some(Duration::from_secs(1)))
        .ping_timeout(Some(Duration::from_secs(1)));
    let (_ws, mut readable, mut peer) = open(options).await;
    let reader = tokio::spawn(async move { readable.next().await });
    let ping = peer.read_frame().await.unwrap();
    let mut wrong = ping.payload.to_vec();
    wrong[0] ^= 0xFF;
    peer.send(&frame(OpCode::Pong, true, &wrong, None)).await;
    assert!(matches!(
        reader.await.unwrap(),
        Some(Err(Error::Timeout(Timeout::Keepalive)))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_never_answers_our_close_is_dropped_after_the_close_timeout() {
    let options = Options::default().close_timeout(Duration::from_secs(3));
    let (ws, readable, mut peer) = open(options).await;
    let started = tokio::time::Instant::now();
    ws.close(1000, "bye").unwrap();
    assert_eq!(peer.read_until_close().await, Some(1000));
    drop(readable);
    assert!(matches!(
        ws.closed().await,
        Err(Error::Timeout(Timeout::Close))
    ));
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    // The socket is gone: the peer reads the end of the stream.
    assert!(peer.read_frame().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_counts_from_the_last_bytes_received() {
    let options = Options::default()
        .ping_interval(None)
        .idle_timeout(Some(Duration::from_secs(5)));
    let (ws, mut readable, mut peer) = open(options).await;
    let started = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    peer.send(&frame(OpCode::Text, true, b"tick", None)).await;
    assert_eq!(
        readable.next().await.unwrap().unwrap().as_text(),
        Some("tick")
    );
    assert!(matches!(
        readable.next().await,
        Some(Err(Error::Timeout(Timeout::Idle)))
    ));
    assert_eq!(started.elapsed(), Duration::from_secs(8));
    assert_eq!(peer.read_until_close().await, Some(1001));
    assert!(ws.closed().await.is_err());
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_the_handshake_hits_the_open_timeout() {
    let (client_io, _server_io) = tokio::io::duplex(1024);
    let ws = WebSocketStream::connect_over(
        client_io,
        "ws://pipe/",
        Options::default().open_timeout(Duration::from_secs(2)),
    );
    assert!(matches!(
        ws.opened().await,
        Err(Error::Timeout(Timeout::Open))
    ));
    assert!(matches!(
        ws.closed().await,
        Err(Error::Timeout(Timeout::Open))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_finishes_its_request_hits_the_server_handshake_timeout() {
    let (mut client_io, server_io) = tokio::io::duplex(1024);
    tokio::io::AsyncWriteExt::write_all(&mut client_io, b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let accepted = WebSocketStream::accept(
        server_io,
        ServerOptions::default().handshake_timeout(Duration::from_secs(1)),
    )
    .await;
    assert!(matches!(accepted, Err(Error::Timeout(Timeout::Open))));
}

#[test]
fn a_runtime_without_timers_is_an_error_not_a_panic() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ws = WebSocketStream::connect("ws://127.0.0.1:1/", Options::default());
        assert!(matches!(ws.opened().await, Err(Error::NoRuntime)));
        let (_client, server) = tokio::io::duplex(64);
        assert!(matches!(
            WebSocketStream::accept(server, ServerOptions::default()).await,
            Err(Error::NoRuntime)
        ));
    });
}
