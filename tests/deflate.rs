//! permessage-deflate (RFC 7692) end to end: negotiation through real
//! handshakes, compression both ways between our two roles under every
//! parameter, and the framing rules checked against a hand-driven peer
//! (RSV1 on the first frame only, never on control frames, and still a
//! protocol error without the extension).

#![cfg(feature = "deflate")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/raw.rs"]
mod raw;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use futures::{SinkExt, StreamExt};
use raw::{close_body, frame, listen, within, RawPeer};
use tokio::net::TcpListener;
use wsstream::handshake::HandshakeError;
use wsstream::proto::{OpCode, ProtocolError, RSV1};
use wsstream::{DeflateConfig, Error, Message, Options, ServerOptions, WebSocketStream};

const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// A message compressed the RFC 7692 way, with a fresh stream.
fn compress(data: &[u8]) -> Vec<u8> {
    let mut compressor = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 1024);
    compressor
        .compress_vec(data, &mut out, FlushCompress::Sync)
        .unwrap();
    assert!(out.ends_with(&TAIL) && compressor.total_in() == data.len() as u64);
    out.truncate(out.len() - TAIL.len());
    out
}

/// Inflates one compressed message (with a fresh stream).
fn inflate(data: &[u8]) -> Vec<u8> {
    let mut decompressor = Decompress::new(false);
    let mut input = data.to_vec();
    input.extend_from_slice(&TAIL);
    let mut out = Vec::with_capacity(1 << 20);
    decompressor
        .decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

/// A frame with RSV1 set.
fn compressed_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut bytes = frame(opcode, fin, payload, None);
    bytes[0] |= RSV1;
    bytes
}

/// A client with `options`, and a raw server that answers `extensions`.
async fn client_and_raw_peer(
    options: Options,
    extensions: Option<&str>,
) -> (WebSocketStream, RawPeer<tokio::net::TcpStream>) {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, options);
    let (tcp, _) = within(listener.accept()).await.unwrap();
    let peer = RawPeer::handshake_with(tcp, extensions, b"").await;
    (ws, peer)
}

fn deflating() -> Options {
    Options::default().deflate(DeflateConfig::default())
}

/// An echo server with deflate `policy`; hands back the extensions each
/// connection agreed on.
async fn echo_server(
    policy: Option<DeflateConfig>,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let options = match policy {
                Some(policy) => ServerOptions::default().deflate(policy),
                None => ServerOptions::default(),
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let ws = WebSocketStream::accept(tcp, options).await.unwrap();
                let opened = ws.opened().await.unwrap();
                let _ = tx.send(opened.extensions.clone());
                let _ = opened.readable.forward(opened.writable).await;
            });
        }
    });
    (url, rx)
}

fn messages() -> Vec<Message> {
    let pattern: Vec<u8> = (0..1usize << 20).map(|i| (i % 251) as u8).collect();
    let noise: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    vec![
        Message::text(""),
        Message::text("short"),
        Message::binary(Vec::new()),
        Message::text("{\"id\":1,\"kind\":\"quote\",\"bid\":101.25,\"ask\":101.5}".repeat(50)),
        Message::text("héllo wörld — Καλημέρα κόσμε, こんにちは, 🦀".repeat(2000)),
        Message::binary(pattern),
        Message::binary(noise),
        Message::text("{\"id\":1,\"kind\":\"quote\",\"bid\":101.25,\"ask\":101.5}".repeat(50)),
    ]
}

#[tokio::test]
async fn our_roles_agree_and_round_trip_under_every_parameter() {
    let configs = [
        DeflateConfig::default(),
        DeflateConfig::default().threshold(0).level(9),
        DeflateConfig::default().level(0),
        DeflateConfig::default()
            .client_no_context_takeover(true)
            .server_no_context_takeover(true),
        DeflateConfig::default()
            .client_max_window_bits(8)
            .server_max_window_bits(8)
            .threshold(0),
        DeflateConfig::default()
            .client_max_window_bits(9)
            .server_max_window_bits(12)
            .server_no_context_takeover(true),
    ];
    for (i, client) in configs.iter().enumerate() {
        for (j, policy) in configs.iter().enumerate() {
            let (url, mut agreed) = echo_server(Some(*policy)).await;
            let ws = WebSocketStream::connect(&url, Options::default().deflate(*client));
            let mut opened = within(ws.opened()).await.unwrap();
            let server_side = within(agreed.recv()).await.unwrap();
            assert_eq!(opened.extensions, server_side, "client {i}, policy {j}");
            assert!(opened.extensions.starts_with("permessage-deflate"));
            for message in messages() {
                within(opened.send(message.clone())).await.unwrap();
                let echoed = within(opened.next())
                    .await
                    .unwrap()
                    .unwrap_or_else(|err| panic!("client {i}, policy {j}: {err:?}"));
                assert!(
                    echoed == message,
                    "client {i}, policy {j}: {} bytes",
                    message.len()
                );
            }
            ws.close(1000, "done").unwrap();
            assert_eq!(within(ws.closed()).await.unwrap().code, 1000);
        }
    }
}

#[tokio::test]
async fn the_answer_reflects_what_each_side_asked_for() {
    let (url, _agreed) = echo_server(Some(
        DeflateConfig::default().server_no_context_takeover(true),
    ))
    .await;
    let ws = WebSocketStream::connect(&url, deflating());
    let opened = within(ws.opened()).await.unwrap();
    assert_eq!(
        opened.extensions,
        "permessage-deflate; server_no_context_takeover"
    );

    let asking = DeflateConfig::default()
        .server_max_window_bits(10)
        .client_max_window_bits(11)
        .client_no_context_takeover(true);
    let (url, _agreed) = echo_server(Some(DeflateConfig::default())).await;
    let ws = WebSocketStream::connect(&url, Options::default().deflate(asking));
    let opened = within(ws.opened()).await.unwrap();
    assert_eq!(
        opened.extensions,
        "permessage-deflate; client_no_context_takeover; server_max_window_bits=10; \
         client_max_window_bits=11"
    );

    // A server without deflate declines; the connection works uncompressed.
    let (url, _agreed) = echo_server(None).await;
    let ws = WebSocketStream::connect(&url, deflating());
    let mut opened = within(ws.opened()).await.unwrap();
    assert_eq!(opened.extensions, "");
    within(opened.send(Message::text("plain".repeat(100))))
        .await
        .unwrap();
    assert_eq!(
        within(opened.next()).await.unwrap().unwrap(),
        Message::text("plain".repeat(100))
    );
}

#[tokio::test]
async fn rsv1_marks_compressed_messages_only_and_never_control_frames() {
    let (ws, mut peer) = client_and_raw_peer(deflating(), Some("permessage-deflate")).await;
    let mut opened = within(ws.opened()).await.unwrap();
    let big = "a compressible message, ".repeat(100);
    within(opened.send(Message::text("tiny"))).await.unwrap();
    within(opened.send(Message::text(big.clone())))
        .await
        .unwrap();
    within(opened.send(Message::binary(big.clone().into_bytes())))
        .await
        .unwrap();

    let tiny = peer.read_frame().await.unwrap();
    assert_eq!(tiny.header.rsv, 0, "below the threshold: uncompressed");
    assert_eq!(&tiny.payload[..], b"tiny");
    for opcode in [OpCode::Text, OpCode::Binary] {
        let frame = peer.read_frame().await.unwrap();
        assert_eq!(
            (frame.header.opcode, frame.header.rsv, frame.header.fin),
            (opcode, RSV1, true)
        );
        assert!(frame.payload.len() < big.len() / 10);
    }
    // A ping from the peer (answered while the readable is polled): the
    // pong and our close carry no RSV1.
    let reader = tokio::spawn(async move { opened.next().await.is_none() });
    peer.send(&frame(OpCode::Ping, true, b"hi", None)).await;
    let pong = peer.read_frame().await.unwrap();
    assert_eq!((pong.header.opcode, pong.header.rsv), (OpCode::Pong, 0));
    ws.close(1000, "").unwrap();
    let close = peer.read_frame().await.unwrap();
    assert_eq!((close.header.opcode, close.header.rsv), (OpCode::Close, 0));
    peer.send(&frame(OpCode::Close, true, &close_body(1000, ""), None))
        .await;
    assert!(
        within(reader).await.unwrap(),
        "the readable ends after the close"
    );
}

#[tokio::test]
async fn the_first_compressed_frame_inflates_to_the_message() {
    let (ws, mut peer) = client_and_raw_peer(deflating(), Some("permessage-deflate")).await;
    let mut opened = within(ws.opened()).await.unwrap();
    let text = "every client frame is masked and compressed ".repeat(40);
    within(opened.send(Message::text(text.clone())))
        .await
        .unwrap();
    let sent = peer.read_frame().await.unwrap();
    assert_eq!(inflate(&sent.payload), text.as_bytes());
}

#[tokio::test]
async fn peer_fragments_with_a_ping_between_are_inflated_as_one_message() {
    let (ws, mut peer) = client_and_raw_peer(deflating(), Some("permessage-deflate")).await;
    let mut opened = within(ws.opened()).await.unwrap();
    let text = "fragmented, compressed, interleaved ✓ ".repeat(300);
    let wire = compress(text.as_bytes());
    let (a, rest) = wire.split_at(wire.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2);
    let mut bytes = compressed_frame(OpCode::Text, false, a);
    bytes.extend(frame(OpCode::Continuation, false, b, None));
    bytes.extend(frame(OpCode::Ping, true, b"between", None));
    bytes.extend(frame(OpCode::Continuation, true, c, None));
    // An uncompressed message right after, with the extension still on.
    bytes.extend(frame(OpCode::Binary, true, b"raw", None));
    peer.send(&bytes).await;
    assert_eq!(
        within(opened.next()).await.unwrap().unwrap(),
        Message::text(text)
    );
    assert_eq!(
        within(opened.next()).await.unwrap().unwrap(),
        Message::binary(b"raw".to_vec())
    );
    let pong = peer.read_frame().await.unwrap();
    assert_eq!(
        (pong.header.opcode, &pong.payload[..]),
        (OpCode::Pong, &b"between"[..])
    );
}

/// Sends `bytes` from a peer that agreed to deflate (or not), and checks the
/// close code the client answers with and the error the readable gives.
async fn violation(extensions: Option<&str>, bytes: Vec<u8>, code: u16, expected: ProtocolError) {
    let (ws, mut peer) = client_and_raw_peer(deflating(), extensions).await;
    let mut opened = within(ws.opened()).await.unwrap();
    peer.send(&bytes).await;
    match within(opened.next()).await {
        Some(Err(Error::Protocol(err))) => assert_eq!(err, expected),
        other => panic!("expected {expected:?}, got {other:?}"),
    }
    assert_eq!(peer.read_until_close().await, Some(code));
    peer.send(&frame(OpCode::Close, true, &close_body(code, ""), None))
        .await;
}

#[tokio::test]
async fn framing_violations_get_their_close_codes() {
    let pmd = Some("permessage-deflate");
    // RSV1 on a continuation frame.
    let mut bytes = compressed_frame(OpCode::Text, false, &compress(b"abc"));
    bytes.extend(compressed_frame(OpCode::Continuation, true, b""));
    violation(pmd, bytes, 1002, ProtocolError::MisplacedCompressionBit).await;
    // RSV1 on control frames.
    for opcode in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
        let bytes = compressed_frame(opcode, true, b"");
        violation(pmd, bytes, 1002, ProtocolError::MisplacedCompressionBit).await;
    }
    // RSV1 when the server did not agree to the extension.
    let bytes = compressed_frame(OpCode::Text, true, &compress(b"abc"));
    violation(None, bytes, 1002, ProtocolError::ReservedBits(RSV1)).await;
    // Not a DEFLATE stream.
    let bytes = compressed_frame(OpCode::Binary, true, &[0xff; 32]);
    violation(pmd, bytes, 1007, ProtocolError::InvalidCompressedData).await;
    // Compressed text that inflates to invalid UTF-8.
    let bytes = compressed_frame(OpCode::Text, true, &compress(b"ok \xff\xfe no"));
    violation(pmd, bytes, 1007, ProtocolError::InvalidUtf8).await;
}

#[tokio::test]
async fn the_message_limit_applies_to_the_inflated_size() {
    let options = deflating().max_message_size(100_000);
    let (ws, mut peer) = client_and_raw_peer(options, Some("permessage-deflate")).await;
    let mut opened = within(ws.opened()).await.unwrap();
    // Exactly the limit passes, one byte more does not.
    let fits = vec![b'x'; 100_000];
    peer.send(&compressed_frame(OpCode::Binary, true, &compress(&fits)))
        .await;
    assert_eq!(
        within(opened.next()).await.unwrap().unwrap(),
        Message::binary(fits)
    );
    // (Context takeover: the peer's next message uses a fresh stream, which
    // is valid; our window simply holds more than it refers to.)
    let over = vec![b'x'; 100_001];
    let wire = compress(&over);
    assert!(wire.len() < 1000);
    peer.send(&compressed_frame(OpCode::Binary, true, &wire))
        .await;
    match within(opened.next()).await {
        Some(Err(Error::Protocol(ProtocolError::MessageTooLarge { limit, .. }))) => {
            assert_eq!(limit, 100_000)
        }
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    assert_eq!(peer.read_until_close().await, Some(1009));
}

#[tokio::test]
async fn answers_outside_the_offer_fail_the_handshake() {
    for (options, answer) in [
        (deflating(), "permessage-deflate; server_max_window_bits=16"),
        (deflating(), "permessage-deflate; unknown_param"),
        (deflating(), "permessage-deflate, permessage-deflate"),
        (
            Options::default().deflate(DeflateConfig::default().server_no_context_takeover(true)),
            "permessage-deflate",
        ),
    ] {
        let (ws, _peer) = client_and_raw_peer(options, Some(answer)).await;
        match within(ws.opened()).await {
            Err(Error::Handshake(HandshakeError::ExtensionMismatch { value, .. })) => {
                assert_eq!(value, answer)
            }
            other => panic!("{answer}: expected ExtensionMismatch, got {other:?}"),
        }
    }
    // An extension answered to a client that offered none.
    let (ws, _peer) = client_and_raw_peer(Options::default(), Some("permessage-deflate")).await;
    assert!(matches!(
        within(ws.opened()).await,
        Err(Error::Handshake(HandshakeError::UnexpectedExtension(_)))
    ));
}
