//! Backpressure end to end: a reader that does not read stops the peer, a
//! writer waits for a slow network, small messages leave in batches, and
//! replies are flushed without losing a wakeup.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/measure.rs"]
mod measure;
#[path = "support/raw.rs"]
mod raw;

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use futures::{stream, Sink, SinkExt, Stream, StreamExt};
use measure::CountingIo;
use raw::{accept_raw, frame, listen, within, RawPeer};
use tokio::io::AsyncReadExt;
use wsstream::proto::OpCode;
use wsstream::{Message, Options, WebSocketStream};

#[tokio::test]
async fn the_writer_waits_for_a_slow_network_and_delivers_what_it_accepted() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default().write_high_water(64 * 1024));
    let mut peer = accept_raw(&listener).await;
    let mut writable = within(ws.opened()).await.unwrap().writable;
    // The peer reads nothing for now. Count what the writable accepts
    // before `feed` (poll_ready + start_send) stops making progress.
    let mut accepted = 0u32;
    loop {
        let message = Message::binary(accepted.to_be_bytes().repeat(16 * 1024));
        match tokio::time::timeout(Duration::from_millis(500), writable.feed(message)).await {
            Ok(result) => result.unwrap(),
            Err(_) => break,
        }
        accepted += 1;
        assert!(accepted < 4096, "256 MiB accepted without backpressure");
    }
    // Now the peer reads: every accepted message arrives, in order.
    let flush = tokio::spawn(async move {
        writable.flush().await.unwrap();
        writable
    });
    for i in 0..accepted {
        let f = within(peer.read_frame()).await.expect("message lost");
        assert_eq!(f.payload.len(), 64 * 1024);
        assert_eq!(&f.payload[..4], &i.to_be_bytes());
    }
    within(flush).await.unwrap();
}

#[tokio::test]
async fn pipelined_small_messages_leave_in_batches() {
    let (listener, url) = listen().await;
    let tcp = tokio::net::TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches('/'))
        .await
        .unwrap();
    let (io, _read) = CountingIo::new(tcp);
    let writes = io.writes.clone();
    let ws = WebSocketStream::connect_over(io, &url, Options::default());
    let mut peer = accept_raw(&listener).await;
    let mut writable = within(ws.opened()).await.unwrap().writable;
    let before = writes.load(Ordering::SeqCst);
    let mut messages = stream::iter(0..1000u32).map(|i| Ok(Message::binary(format!("{i:016}"))));
    within(writable.send_all(&mut messages)).await.unwrap();
    let calls = writes.load(Ordering::SeqCst) - before;
    assert!(calls <= 10, "1000 messages took {calls} write calls");
    for i in 0..1000u32 {
        assert_eq!(
            peer.read_frame().await.unwrap().payload,
            format!("{i:016}").into_bytes()
        );
    }
}

#[tokio::test]
async fn pongs_are_flushed_while_the_user_only_reads() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default());
    let mut peer = accept_raw(&listener).await;
    let mut readable = within(ws.opened()).await.unwrap().readable;
    let reader = tokio::spawn(async move { readable.next().await.map(|m| m.unwrap()) });
    peer.send(&frame(OpCode::Ping, true, b"are you there", None))
        .await;
    let pong = peer.read_frame().await.unwrap();
    assert_eq!(
        (pong.header.opcode, &pong.payload[..]),
        (OpCode::Pong, &b"are you there"[..])
    );
    peer.send(&frame(OpCode::Text, true, b"ok", None)).await;
    assert_eq!(within(reader).await.unwrap(), Some(Message::text("ok")));
}

#[tokio::test]
async fn the_last_ping_of_a_burst_is_answered() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default());
    let mut peer = accept_raw(&listener).await;
    let mut readable = within(ws.opened()).await.unwrap().readable;
    let _reader = tokio::spawn(async move { readable.next().await.map(|m| m.unwrap()) });
    // More pings than the pongs the connection keeps queued, in one write.
    let burst: Vec<u8> = (0..40u8)
        .flat_map(|i| frame(OpCode::Ping, true, &[i], None))
        .collect();
    peer.send(&burst).await;
    loop {
        let pong = peer
            .read_frame()
            .await
            .expect("connection ended before the last pong");
        assert_eq!(pong.header.opcode, OpCode::Pong);
        if pong.payload[..] == [39] {
            break;
        }
    }
}

struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn reader_and_writer_waiting_on_one_full_socket_are_both_woken() {
    let (client_io, server_io) = tokio::io::duplex(256);
    let ws = WebSocketStream::connect_over(client_io, "ws://pipe/", Options::default());
    let mut peer = RawPeer::handshake(server_io, &[]).await;
    let opened = within(ws.opened()).await.unwrap();
    let (mut readable, mut writable) = (opened.readable, opened.writable);

    let writer_wakes = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let reader_wakes = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let writer_waker = Waker::from(writer_wakes.clone());
    let reader_waker = Waker::from(reader_wakes.clone());

    // The writer fills the pipe and waits for it to drain.
    let mut cx = Context::from_waker(&writer_waker);
    assert!(Pin::new(&mut writable).poll_ready(&mut cx).is_ready());
    Pin::new(&mut writable)
        .start_send(Message::binary(vec![1u8; 64 * 1024]))
        .unwrap();
    assert!(Pin::new(&mut writable).poll_flush(&mut cx).is_pending());

    // A ping arrives; the reader queues the pong, cannot flush it, and waits.
    peer.send(&frame(OpCode::Ping, true, b"p", None)).await;
    let mut cx = Context::from_waker(&reader_waker);
    assert!(Pin::new(&mut readable).poll_next(&mut cx).is_pending());

    // The peer drains the pipe: both tasks must hear of it.
    let mut sink = vec![0u8; 4096];
    let _ = within(peer.io.read(&mut sink)).await.unwrap();
    assert!(
        writer_wakes.0.load(Ordering::SeqCst) >= 1,
        "the writer's wakeup was lost"
    );
    assert!(
        reader_wakes.0.load(Ordering::SeqCst) >= 1,
        "the reader's wakeup was lost"
    );
}
