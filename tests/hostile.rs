//! Hostile peers: each test runs a real socket server on 127.0.0.1 that
//! misbehaves on purpose (hand-made frames from `support/raw.rs`), and
//! checks the close code the peer receives, the error the client surfaces,
//! that memory stays bounded, and that nothing hangs: every wait is bounded
//! by `raw::within` or a timeout of its own.
//!
//! The tests that measure memory run alone in a fresh process
//! (`measure::alone`), so that the resident set size they read is theirs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/measure.rs"]
mod measure;
#[path = "support/raw.rs"]
mod raw;

use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;
use measure::{alone, peak_rss_bytes, rss_bytes, CountingIo};
use raw::{accept_raw, close_body, frame, listen, read_request_head, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsstream::handshake::{parse_request, HandshakeError, ServerReply, MAX_HEAD_LEN};
use wsstream::proto::{OpCode, ProtocolError};
use wsstream::{Error, Message, Options, ServerOptions, Timeout, WebSocketStream};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// For the tests that run alone in their own process: a runtime of their own.
fn run<F: Future>(test: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test)
}

/// The header of a final binary frame announcing `len` bytes (64-bit form),
/// as a server sends it.
fn huge_binary_header(len: u64) -> Vec<u8> {
    let mut header = vec![0x82, 127];
    header.extend_from_slice(&len.to_be_bytes());
    header
}

// ---- 1. a handshake that drips one byte a second ----

/// Writes `bytes` one a second until the other end hangs up; returns how
/// long that took, or `None` if it never did.
async fn drip(io: &mut TcpStream, bytes: &[u8]) -> Option<Duration> {
    let started = Instant::now();
    let mut sink = [0u8; 1024];
    for byte in bytes {
        if io.write_all(&[*byte]).await.is_err() {
            return Some(started.elapsed());
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            read = io.read(&mut sink) => {
                if matches!(read, Ok(0) | Err(_)) {
                    return Some(started.elapsed());
                }
            }
        }
    }
    None
}

#[tokio::test]
async fn a_handshake_response_dripping_a_byte_a_second_hits_the_open_timeout() {
    let (listener, url) = listen().await;
    let open_timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let ws = WebSocketStream::connect(&url, Options::default().open_timeout(open_timeout));
    let (mut server, _) = within(listener.accept()).await.unwrap();
    let mut request = read_request_head(&mut server).await;
    let head = parse_request(&mut request).unwrap().unwrap();
    let reply = ServerReply::accept(&head, None);
    let dripper = tokio::spawn(async move { drip(&mut server, &reply).await });
    let result = within(ws.opened()).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(Error::Timeout(Timeout::Open))),
        "{result:?}"
    );
    assert!(
        open_timeout <= elapsed && elapsed < open_timeout + Duration::from_secs(1),
        "gave up after {elapsed:?}"
    );
    assert!(matches!(
        within(ws.closed()).await,
        Err(Error::Timeout(Timeout::Open))
    ));
    // The client dropped the socket: the server sees it go.
    let hung_up = within(dripper).await.unwrap();
    assert!(
        hung_up.is_some_and(|at| at < open_timeout + Duration::from_secs(1)),
        "the client kept the socket open: {hung_up:?}"
    );
}

#[tokio::test]
async fn a_request_dripping_a_byte_a_second_hits_the_server_handshake_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = tokio::spawn(async move {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        drip(&mut tcp, request.as_bytes()).await
    });
    let (tcp, _) = within(listener.accept()).await.unwrap();
    let handshake_timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let accepted = within(WebSocketStream::accept(
        tcp,
        ServerOptions::default().handshake_timeout(handshake_timeout),
    ))
    .await;
    let elapsed = started.elapsed();
    assert!(
        matches!(accepted, Err(Error::Timeout(Timeout::Open))),
        "{accepted:?}"
    );
    assert!(
        handshake_timeout <= elapsed && elapsed < handshake_timeout + Duration::from_secs(1),
        "gave up after {elapsed:?}"
    );
    let hung_up = within(client).await.unwrap();
    assert!(
        hung_up.is_some_and(|at| at < handshake_timeout + Duration::from_secs(1)),
        "the server kept the socket open: {hung_up:?}"
    );
}

// ---- 2. endless response headers ----

/// Answers the client's upgrade with `HTTP/1.1 101` and then `line` over and
/// over, never the blank line that ends the head. Returns what `opened`
/// gave, how long it took, the bytes the client read, and the bytes the
/// server managed to write before the client closed the socket.
async fn endless_head(line: &'static [u8]) -> (Result<(), Error>, Duration, usize, usize) {
    let (listener, url) = listen().await;
    let tcp = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (io, client_read) = CountingIo::new(tcp);
    let ws = WebSocketStream::connect_over(io, &url, Options::default());
    let (mut server, _) = within(listener.accept()).await.unwrap();
    read_request_head(&mut server).await;
    let writer = tokio::spawn(async move {
        let mut written = 0;
        let start = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n";
        if server.write_all(start).await.is_err() {
            return written;
        }
        written += start.len();
        let chunk = line.repeat(4 * KIB / line.len());
        // Until the client hangs up: it must, since the head never ends.
        while server.write_all(&chunk).await.is_ok() {
            written += chunk.len();
        }
        written
    });
    let started = Instant::now();
    let result = within(ws.opened()).await.map(drop);
    let elapsed = started.elapsed();
    let written = within(writer).await.unwrap();
    (
        result,
        elapsed,
        client_read.load(std::sync::atomic::Ordering::SeqCst),
        written,
    )
}

#[tokio::test]
async fn endless_response_header_lines_fail_the_handshake_at_64_kib() {
    let (result, elapsed, read, written) = endless_head(b"X-Endless: 0123456789abcdef\r\n").await;
    println!("many short lines: {result:?} after {elapsed:?}; client read {read} B, server wrote {written} B");
    assert!(
        matches!(
            result,
            Err(Error::Handshake(
                HandshakeError::TooManyHeaders | HandshakeError::HeadTooLarge
            ))
        ),
        "{result:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    // The head limit, plus what the read that crossed it brought: the
    // buffer doubles from 64 to 128 KiB for that read, and no further.
    assert!(
        read > MAX_HEAD_LEN,
        "failed after {read} B, before the limit"
    );
    assert!(read <= 2 * MAX_HEAD_LEN, "the client read {read} B of head");
}

/// A header line that never ends (its name, even: no colon comes).
#[tokio::test]
async fn one_endless_header_line_fails_the_handshake_at_64_kib() {
    let (result, elapsed, read, written) = endless_head(b"aaaaaaaaaaaaaaaa").await;
    println!("one endless line: {result:?} after {elapsed:?}; client read {read} B, server wrote {written} B");
    assert!(
        matches!(result, Err(Error::Handshake(HandshakeError::HeadTooLarge))),
        "{result:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert!(
        read > MAX_HEAD_LEN,
        "failed after {read} B, before the limit"
    );
    assert!(read <= 2 * MAX_HEAD_LEN, "the client read {read} B of head");
}

// ---- 3. a burst of 100,000 pings ----

const PINGS: u32 = 100_000;

/// A ping payload of the maximum 125 bytes, numbered.
fn ping_payload(i: u32) -> [u8; 125] {
    let mut payload = [b'p'; 125];
    payload[..4].copy_from_slice(&i.to_be_bytes());
    payload
}

#[test]
fn a_burst_of_100000_pings_is_answered_in_bounded_memory() {
    if !alone(
        "a_burst_of_100000_pings_is_answered_in_bounded_memory",
        Duration::from_secs(120),
    ) {
        return;
    }
    run(async {
        let (listener, url) = listen().await;
        let ws = WebSocketStream::connect(&url, Options::default());
        let peer = accept_raw(&listener).await;
        let opened = within(ws.opened()).await.unwrap();
        let (mut readable, _writable) = (opened.readable, opened.writable);
        // The application only reads; pongs must go out all the same.
        let reader = tokio::spawn(async move { readable.next().await });
        let (mut peer, mut writer) = peer.split_writer();
        let rss_before = rss_bytes();
        let flood = tokio::spawn(async move {
            // Written as fast as the socket takes them, 1000 pings a write.
            let mut batch = Vec::with_capacity(1000 * 127);
            for i in 0..PINGS {
                batch.extend(frame(OpCode::Ping, true, &ping_payload(i), None));
                if batch.len() >= 1000 * 127 || i == PINGS - 1 {
                    writer.write_all(&batch).await.unwrap();
                    batch.clear();
                }
            }
            writer
        });
        let started = Instant::now();
        let (mut pongs, mut pong_bytes, mut last) = (0u32, 0usize, None::<u32>);
        loop {
            let pong = peer
                .read_frame()
                .await
                .expect("the connection ended before the last ping was answered");
            assert_eq!(pong.header.opcode, OpCode::Pong);
            let i = u32::from_be_bytes(pong.payload[..4].try_into().unwrap());
            assert_eq!(pong.payload[..], ping_payload(i), "a pong echoes a ping");
            assert!(
                last.is_none_or(|last| i > last),
                "pong {i} after pong {last:?}: answers go in order, once each"
            );
            last = Some(i);
            pongs += 1;
            pong_bytes += 2 + pong.payload.len();
            if i == PINGS - 1 {
                break;
            }
        }
        let mut writer = within(flood).await.unwrap();
        let growth = peak_rss_bytes().saturating_sub(rss_before);
        println!(
            "{PINGS} pings answered by {pongs} pongs ({} KiB) in {:?}; peak RSS growth {} KiB",
            pong_bytes / KIB,
            started.elapsed(),
            growth / KIB
        );
        assert!((1..=PINGS).contains(&pongs));
        // 12.7 MB of pings went through; the client holds at most a few
        // pongs and a read buffer.
        assert!(growth < 8 * MIB, "RSS grew by {} KiB", growth / KIB);

        // The connection still works after the burst.
        writer
            .write_all(&frame(OpCode::Text, true, b"after the burst", None))
            .await
            .unwrap();
        let message = within(reader).await.unwrap();
        assert_eq!(message.unwrap().unwrap(), Message::text("after the burst"));
        writer
            .write_all(&frame(OpCode::Close, true, &close_body(1000, ""), None))
            .await
            .unwrap();
        // `closed` drives the connection now that nobody reads.
        let (code, closed) = tokio::join!(peer.read_until_close(), within(ws.closed()));
        assert_eq!(code, Some(1000));
        assert_eq!(closed.unwrap().code, 1000);
    });
}

#[test]
fn a_peer_that_floods_pings_and_reads_nothing_cannot_grow_the_pong_queue() {
    if !alone(
        "a_peer_that_floods_pings_and_reads_nothing_cannot_grow_the_pong_queue",
        Duration::from_secs(120),
    ) {
        return;
    }
    run(async {
        // Small socket buffers both ways, so the pongs back up at once.
        let listening = tokio::net::TcpSocket::new_v4().unwrap();
        listening.set_recv_buffer_size(4096).unwrap();
        listening.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = listening.listen(16).unwrap();
        let addr = listener.local_addr().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(4096).unwrap();
        let tcp = within(socket.connect(addr)).await.unwrap();
        let url = format!("ws://{addr}/");
        let ws = WebSocketStream::connect_over(tcp, &url, Options::default());
        let mut peer = accept_raw(&listener).await;
        let opened = within(ws.opened()).await.unwrap();
        let (mut readable, _writable) = (opened.readable, opened.writable);
        let reader = tokio::spawn(async move { readable.next().await });
        let rss_before = rss_bytes();
        // The whole burst goes out before the peer reads a byte: the
        // client's pongs fill the socket, and it must keep reading anyway.
        let mut batch = Vec::with_capacity(1000 * 127);
        for i in 0..PINGS {
            batch.extend(frame(OpCode::Ping, true, &ping_payload(i), None));
            if batch.len() >= 1000 * 127 || i == PINGS - 1 {
                within(peer.io.write_all(&batch)).await.unwrap();
                batch.clear();
            }
        }
        let growth = peak_rss_bytes().saturating_sub(rss_before);
        // Now the peer reads: the pongs stuck in the socket, then the one
        // for the last ping.
        let mut pongs = 0u32;
        loop {
            let pong = peer
                .read_frame()
                .await
                .expect("the last ping went unanswered");
            assert_eq!(pong.header.opcode, OpCode::Pong);
            pongs += 1;
            if pong.payload[..] == ping_payload(PINGS - 1) {
                break;
            }
        }
        println!(
            "{PINGS} pings to a client whose pongs could not leave: {pongs} pongs, \
             peak RSS growth {} KiB",
            growth / KIB
        );
        assert!(growth < 8 * MIB, "RSS grew by {} KiB", growth / KIB);
        peer.send(&frame(OpCode::Text, true, b"after the burst", None))
            .await;
        let message = within(reader).await.unwrap();
        assert_eq!(message.unwrap().unwrap(), Message::text("after the burst"));
    });
}

// ---- 4. a 1 GiB message ----

#[tokio::test]
async fn a_frame_announcing_1_gib_gets_1009_before_any_payload() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default());
    let mut peer = accept_raw(&listener).await;
    let mut readable = within(ws.opened()).await.unwrap().readable;
    // The header alone: not one byte of payload follows.
    peer.send(&huge_binary_header(1 << 30)).await;
    let started = Instant::now();
    let expected = ProtocolError::FrameTooLarge {
        size: 1 << 30,
        limit: 16 * MIB,
    };
    match within(readable.next()).await {
        Some(Err(Error::Protocol(err))) => assert_eq!(err, expected),
        other => panic!("{other:?}"),
    }
    assert_eq!(peer.read_until_close().await, Some(1009));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(within(readable.next()).await.is_none());
    match within(ws.closed()).await {
        Err(Error::Protocol(err)) => assert_eq!(err, expected),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn with_no_frame_limit_the_message_limit_still_refuses_1_gib_up_front() {
    let (listener, url) = listen().await;
    let options = Options::default().max_frame_size(usize::MAX);
    let ws = WebSocketStream::connect(&url, options);
    let mut peer = accept_raw(&listener).await;
    let mut readable = within(ws.opened()).await.unwrap().readable;
    peer.send(&huge_binary_header(1 << 30)).await;
    match within(readable.next()).await {
        Some(Err(Error::Protocol(err))) => assert_eq!(
            err,
            ProtocolError::MessageTooLarge {
                size: 1 << 30,
                limit: 64 * MIB
            }
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(peer.read_until_close().await, Some(1009));
}

#[test]
fn a_1_gib_message_in_1_mib_fragments_gets_1009_at_the_limit() {
    if !alone(
        "a_1_gib_message_in_1_mib_fragments_gets_1009_at_the_limit",
        Duration::from_secs(120),
    ) {
        return;
    }
    run(async {
        let (listener, url) = listen().await;
        let ws = WebSocketStream::connect(&url, Options::default());
        let peer = accept_raw(&listener).await;
        let opened = within(ws.opened()).await.unwrap();
        let (mut readable, _writable) = (opened.readable, opened.writable);
        let reader = tokio::spawn(async move {
            let first = readable.next().await;
            (first, readable.next().await)
        });
        let (mut peer, mut writer) = peer.split_writer();
        let rss_before = rss_bytes();
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let flood = tokio::spawn({
            let sent = sent.clone();
            async move {
                let fragment = vec![0x5A; MIB];
                let first = frame(OpCode::Binary, false, &fragment, None);
                let next = frame(OpCode::Continuation, false, &fragment, None);
                let mut chunk = &first;
                // Up to 1 GiB, or until the client hangs up.
                for _ in 0..1024 {
                    if writer.write_all(chunk).await.is_err() {
                        break;
                    }
                    sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    chunk = &next;
                }
            }
        });
        assert_eq!(peer.read_until_close().await, Some(1009));
        flood.abort();
        let growth = peak_rss_bytes().saturating_sub(rss_before);
        let sent = sent.load(std::sync::atomic::Ordering::SeqCst);
        println!(
            "1009 after the peer wrote {sent} fragments of 1 MiB; peak RSS growth {} MiB",
            growth / MIB
        );
        let (first, then) = within(reader).await.unwrap();
        match first {
            // The 65th fragment's header: the first that crosses 64 MiB.
            Some(Err(Error::Protocol(err))) => assert_eq!(
                err,
                ProtocolError::MessageTooLarge {
                    size: 65 * MIB as u64,
                    limit: 64 * MIB
                }
            ),
            other => panic!("{other:?}"),
        }
        assert!(then.is_none());
        assert!(matches!(
            within(ws.closed()).await,
            Err(Error::Protocol(ProtocolError::MessageTooLarge { .. }))
        ));
        // The 64 MiB the limit allows are held, not much more.
        assert!(growth < 96 * MIB, "RSS grew by {} MiB", growth / MIB);
    });
}

// ---- 5. floods of zero-length continuation frames ----

/// Four million frames of two bytes each, written 40,000 at a time.
const EMPTY_FRAGMENTS: usize = 4_000_000;
const EMPTY_BATCH: usize = 40_000;

#[test]
fn millions_of_empty_continuation_frames_cost_no_memory() {
    if !alone(
        "millions_of_empty_continuation_frames_cost_no_memory",
        Duration::from_secs(120),
    ) {
        return;
    }
    run(async {
        let (listener, url) = listen().await;
        let ws = WebSocketStream::connect(&url, Options::default());
        let peer = accept_raw(&listener).await;
        let opened = within(ws.opened()).await.unwrap();
        let (mut readable, _writable) = (opened.readable, opened.writable);
        let reader = tokio::spawn(async move { readable.next().await });
        let (_peer, mut writer) = peer.split_writer();
        let rss_before = rss_bytes();
        let started = Instant::now();
        // "é" is split across the flood: the UTF-8 check must carry its
        // first byte over four million empty fragments.
        writer
            .write_all(&frame(OpCode::Text, false, b"h\xC3", None))
            .await
            .unwrap();
        let empty = frame(OpCode::Continuation, false, b"", None);
        assert_eq!(empty, [0x00, 0x00]);
        let batch = empty.repeat(EMPTY_BATCH);
        for _ in 0..EMPTY_FRAGMENTS / EMPTY_BATCH {
            within(writer.write_all(&batch)).await.unwrap();
        }
        writer
            .write_all(&frame(
                OpCode::Continuation,
                true,
                b"\xA9llo \xE2\x9C\x93",
                None,
            ))
            .await
            .unwrap();
        let message = within(reader).await.unwrap();
        let growth = peak_rss_bytes().saturating_sub(rss_before);
        println!(
            "{EMPTY_FRAGMENTS} empty fragments in {:?}; peak RSS growth {} KiB",
            started.elapsed(),
            growth / KIB
        );
        assert_eq!(message.unwrap().unwrap(), Message::text("héllo ✓"));
        assert!(growth < 4 * MIB, "RSS grew by {} KiB", growth / KIB);
    });
}

// ---- 6. invalid UTF-8 in a close reason ----

#[tokio::test]
async fn invalid_utf8_in_a_close_reason_gets_1007() {
    // A byte that never appears in UTF-8, and a sequence cut short.
    for reason in [&b"bye \xFF"[..], &b"bye \xE2\x82"[..]] {
        let (listener, url) = listen().await;
        let ws = WebSocketStream::connect(&url, Options::default());
        let mut peer = accept_raw(&listener).await;
        let mut readable = within(ws.opened()).await.unwrap().readable;
        let mut body = 1000u16.to_be_bytes().to_vec();
        body.extend_from_slice(reason);
        peer.send(&frame(OpCode::Close, true, &body, None)).await;
        assert!(matches!(
            within(readable.next()).await,
            Some(Err(Error::Protocol(ProtocolError::InvalidUtf8)))
        ));
        assert!(within(readable.next()).await.is_none());
        assert_eq!(peer.read_until_close().await, Some(1007));
        assert!(matches!(
            within(ws.closed()).await,
            Err(Error::Protocol(ProtocolError::InvalidUtf8))
        ));
    }
}

// ---- 7. masked frames from a server ----

#[tokio::test]
async fn masked_frames_from_a_server_get_1002() {
    for opcode in [OpCode::Text, OpCode::Binary, OpCode::Ping, OpCode::Close] {
        let (listener, url) = listen().await;
        let ws = WebSocketStream::connect(&url, Options::default());
        let mut peer = accept_raw(&listener).await;
        let mut readable = within(ws.opened()).await.unwrap().readable;
        let payload = if opcode == OpCode::Close {
            close_body(1000, "")
        } else {
            b"masked".to_vec()
        };
        peer.send(&frame(
            opcode,
            true,
            &payload,
            Some([0x12, 0x34, 0x56, 0x78]),
        ))
        .await;
        assert!(
            matches!(
                within(readable.next()).await,
                Some(Err(Error::Protocol(ProtocolError::MaskedFrame)))
            ),
            "{opcode:?}"
        );
        assert!(within(readable.next()).await.is_none());
        assert_eq!(peer.read_until_close().await, Some(1002), "{opcode:?}");
        assert!(matches!(
            within(ws.closed()).await,
            Err(Error::Protocol(ProtocolError::MaskedFrame))
        ));
    }
}

// ---- 8. a TCP reset in the middle of a message ----

/// A reset or, if the kernel reported the end of stream first, a lost
/// connection.
fn is_reset(err: &Error) -> bool {
    match err {
        Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionReset,
        Error::ConnectionLost => true,
        _ => false,
    }
}

#[tokio::test]
async fn a_tcp_reset_mid_message_fails_the_readable_and_closed() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default());
    let mut peer = accept_raw(&listener).await;
    let mut readable = within(ws.opened()).await.unwrap().readable;
    let reader = tokio::spawn(async move {
        let first = readable.next().await;
        (first, readable.next().await)
    });
    // A first fragment, then half of the second.
    peer.send(&frame(OpCode::Binary, false, &[1; 1000], None))
        .await;
    let second = frame(OpCode::Continuation, true, &[2; 1000], None);
    peer.send(&second[..second.len() / 2]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // SO_LINGER 0: closing sends a reset instead of a FIN.
    peer.io.set_zero_linger().unwrap();
    drop(peer);
    let (first, then) = within(reader).await.unwrap();
    println!("after a reset the readable yields {first:?}");
    match &first {
        Some(Err(err)) => assert!(is_reset(err), "{err:?}"),
        other => panic!("{other:?}"),
    }
    assert!(then.is_none(), "the readable ends after its error");
    match (within(ws.closed()).await, first) {
        (Err(err), Some(Err(first))) => {
            assert_eq!(format!("{err:?}"), format!("{first:?}"), "the same error")
        }
        (other, _) => panic!("a reset connection closed cleanly: {other:?}"),
    }
}

// ---- 9. keepalive ----

fn keepalive() -> Options {
    Options::default()
        .ping_interval(Some(Duration::from_millis(200)))
        .ping_timeout(Some(Duration::from_millis(300)))
}

#[tokio::test]
async fn a_server_that_never_answers_pings_fails_the_keepalive() {
    let (listener, url) = listen().await;
    // The keepalive clock starts when the connection opens, after this.
    let started = Instant::now();
    let ws = WebSocketStream::connect(&url, keepalive());
    let mut peer = accept_raw(&listener).await;
    let mut readable = within(ws.opened()).await.unwrap().readable;
    let reader = tokio::spawn(async move {
        let first = readable.next().await;
        (first, readable.next().await, started.elapsed())
    });
    // The peer reads pings and answers none.
    let mut pings = 0;
    let code = loop {
        let frame = peer.read_frame().await.expect("no close frame");
        match frame.header.opcode {
            OpCode::Ping => pings += 1,
            OpCode::Close => break u16::from_be_bytes([frame.payload[0], frame.payload[1]]),
            other => panic!("unexpected {other:?}"),
        }
    };
    let (first, then, elapsed) = within(reader).await.unwrap();
    println!("{pings} unanswered ping(s), keepalive failed after {elapsed:?}");
    assert!(pings >= 1);
    assert_eq!(code, 1011);
    assert!(
        matches!(first, Some(Err(Error::Timeout(Timeout::Keepalive)))),
        "{first:?}"
    );
    assert!(then.is_none());
    // First ping at 200 ms, its pong due by 500 ms.
    assert!(
        Duration::from_millis(500) <= elapsed && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
    assert!(matches!(
        within(ws.closed()).await,
        Err(Error::Timeout(Timeout::Keepalive))
    ));
    assert!(peer.sees_eof().await, "the socket stayed open");
}

#[tokio::test]
async fn a_server_that_answers_pings_keeps_the_connection_alive() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, keepalive());
    let mut peer = accept_raw(&listener).await;
    let mut readable = within(ws.opened()).await.unwrap().readable;
    let reader = tokio::spawn(async move {
        let first = readable.next().await;
        (first, readable)
    });
    // Eight ping intervals, each ping answered with its payload.
    let until = tokio::time::Instant::now() + Duration::from_millis(1600);
    let mut pings = 0;
    while let Ok(frame) = tokio::time::timeout_at(until, peer.read_frame()).await {
        let frame = frame.expect("the client hung up");
        assert_eq!(frame.header.opcode, OpCode::Ping);
        pings += 1;
        peer.send(&frame_pong(&frame.payload)).await;
    }
    assert!(pings >= 5, "only {pings} pings in 1.6 s");
    peer.send(&frame(OpCode::Text, true, b"still here", None))
        .await;
    let (first, _readable) = within(reader).await.unwrap();
    assert_eq!(first.unwrap().unwrap(), Message::text("still here"));
}

fn frame_pong(payload: &[u8]) -> Vec<u8> {
    frame(OpCode::Pong, true, payload, None)
}

// ---- 10. a peer that never answers our close ----

#[tokio::test]
async fn a_server_that_never_answers_our_close_is_dropped_after_the_close_timeout() {
    let (listener, url) = listen().await;
    let close_timeout = Duration::from_millis(500);
    let ws = WebSocketStream::connect(&url, Options::default().close_timeout(close_timeout));
    let mut peer = accept_raw(&listener).await;
    let _opened = within(ws.opened()).await.unwrap();
    let started = Instant::now();
    ws.close(1000, "bye").unwrap();
    // The readable is held but not polled: `closed` drives the connection.
    let (code, closed) = tokio::join!(peer.read_until_close(), within(ws.closed()));
    let elapsed = started.elapsed();
    assert_eq!(code, Some(1000));
    assert!(
        matches!(closed, Err(Error::Timeout(Timeout::Close))),
        "{closed:?}"
    );
    assert!(
        close_timeout <= elapsed && elapsed < close_timeout + Duration::from_secs(1),
        "{elapsed:?}"
    );
    assert!(peer.sees_eof().await, "the socket stayed open");
}

#[tokio::test]
async fn a_server_that_keeps_talking_but_never_closes_cannot_hold_off_the_close_timeout() {
    let (listener, url) = listen().await;
    let close_timeout = Duration::from_millis(500);
    let ws = WebSocketStream::connect(&url, Options::default().close_timeout(close_timeout));
    let peer = accept_raw(&listener).await;
    let mut readable = within(ws.opened()).await.unwrap().readable;
    let (mut peer, mut writer) = peer.split_writer();
    let chatter = tokio::spawn(async move {
        loop {
            let message = frame(OpCode::Text, true, b"more", None);
            if writer.write_all(&message).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let started = Instant::now();
    ws.close(1000, "bye").unwrap();
    // The readable keeps reading what the peer sends, until the timeout.
    let reader = tokio::spawn(async move {
        let mut messages = 0;
        loop {
            match readable.next().await {
                Some(Ok(_)) => messages += 1,
                other => return (messages, other, readable.next().await),
            }
        }
    });
    assert_eq!(peer.read_until_close().await, Some(1000));
    let (messages, end, then) = within(reader).await.unwrap();
    let elapsed = started.elapsed();
    println!("{messages} messages read while waiting for the close reply");
    assert!(
        matches!(end, Some(Err(Error::Timeout(Timeout::Close)))),
        "{end:?}"
    );
    assert!(then.is_none());
    assert!(
        close_timeout <= elapsed && elapsed < close_timeout + Duration::from_secs(1),
        "{elapsed:?}"
    );
    assert!(matches!(
        within(ws.closed()).await,
        Err(Error::Timeout(Timeout::Close))
    ));
    // The socket was dropped: the chattering peer's writes fail.
    within(chatter).await.unwrap();
}

// ---- 11. idle timeout ----

#[tokio::test]
async fn nothing_received_for_the_idle_timeout_fails_the_connection() {
    let (listener, url) = listen().await;
    let idle = Duration::from_millis(300);
    let options = Options::default()
        .ping_interval(None)
        .idle_timeout(Some(idle));
    let ws = WebSocketStream::connect(&url, options);
    let mut peer = accept_raw(&listener).await;
    let mut readable = within(ws.opened()).await.unwrap().readable;
    // Messages every 100 ms keep it alive; then silence.
    let mut last_sent = Instant::now();
    for i in 0..6u8 {
        last_sent = Instant::now();
        peer.send(&frame(OpCode::Binary, true, &[i], None)).await;
        assert_eq!(
            within(readable.next()).await.unwrap().unwrap(),
            Message::binary(vec![i])
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end = within(readable.next()).await;
    // The last bytes arrived after `last_sent`: the idle clock started later.
    let elapsed = last_sent.elapsed();
    assert!(
        matches!(end, Some(Err(Error::Timeout(Timeout::Idle)))),
        "{end:?}"
    );
    assert!(
        idle <= elapsed && elapsed < idle + Duration::from_secs(1),
        "{elapsed:?}"
    );
    assert!(within(readable.next()).await.is_none());
    assert_eq!(peer.read_until_close().await, Some(1001));
    assert!(matches!(
        within(ws.closed()).await,
        Err(Error::Timeout(Timeout::Idle))
    ));
}
