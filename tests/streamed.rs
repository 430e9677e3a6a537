//! Messages read in chunks and sent in fragments, end to end: what a user
//! moving large data relies on. Our client against a hand-driven peer (to
//! see the frames and send bad ones) and against our server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/raw.rs"]
mod raw;

use std::time::Duration;

use bytes::Bytes;
use futures::{stream, SinkExt, StreamExt};
use raw::{accept_raw, close_body, close_code, frame, listen, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wsstream::proto::{OpCode, ProtocolError};
use wsstream::{
    CloseInfo, DeflateConfig, Error, Message, MessageKind, Opened, Options, ServerOptions,
    Utf8Bytes, WebSocketStream,
};

/// Our client and our server over an in-memory pipe, both open. A task
/// awaits the server's `closed`, as a server would, so the server answers
/// a close even while no one reads its readable.
async fn pair(
    client: Options,
    server: ServerOptions,
) -> (WebSocketStream, Opened, WebSocketStream, Opened) {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let accepting = tokio::spawn(async move {
        let ws = WebSocketStream::accept(server_io, server).await.unwrap();
        let opened = ws.opened().await.unwrap();
        (ws, opened)
    });
    let ws = WebSocketStream::connect_over(client_io, "ws://in-memory/", client);
    let opened = within(ws.opened()).await.unwrap();
    let (server_ws, server_opened) = within(accepting).await.unwrap();
    tokio::spawn(server_ws.closed());
    (ws, opened, server_ws, server_opened)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
}

#[tokio::test]
async fn chunks_arrive_before_the_message_is_complete() {
    let (listener, url) = listen().await;
    let (go_on, wait) = tokio::sync::oneshot::channel::<()>();
    let peer = tokio::spawn(async move {
        let mut peer = accept_raw(&listener).await;
        peer.send(&frame(OpCode::Binary, false, b"first part, ", None))
            .await;
        // The rest only once the client has read the first part.
        wait.await.unwrap();
        peer.send(&frame(OpCode::Continuation, true, b"then the end", None))
            .await;
        peer.send(&frame(OpCode::Text, true, b"next", None)).await;
        peer.read_until_close().await
    });
    let ws = WebSocketStream::connect(&url, Options::default());
    let opened = within(ws.opened()).await.unwrap();
    let mut rd = opened.readable;
    let mut message = within(rd.next_streamed()).await.unwrap().unwrap();
    assert_eq!(message.kind(), MessageKind::Binary);
    let first = within(message.next()).await.unwrap().unwrap();
    assert_eq!(&first[..], b"first part, ");
    go_on.send(()).unwrap();
    let rest = within(message.next()).await.unwrap().unwrap();
    assert_eq!(&rest[..], b"then the end");
    assert!(
        within(message.next()).await.is_none(),
        "the end of the message"
    );
    assert_eq!(message.received(), 24);
    drop(message);
    assert_eq!(
        within(rd.next()).await.unwrap().unwrap(),
        Message::text("next")
    );
    ws.close(1000, "").unwrap();
    assert_eq!(within(peer).await.unwrap(), Some(1000));
}

#[tokio::test]
async fn invalid_text_deep_in_a_message_fails_there_after_every_valid_byte() {
    let (listener, url) = listen().await;
    // 4 MiB of text in 256 KiB frames, one bad byte 3 MiB + 5 in.
    let mut text = "ok €".repeat(1 << 20).into_bytes();
    let bad = (3 << 20) + 5;
    text[bad] = 0xC0;
    let valid_up_to = std::str::from_utf8(&text).unwrap_err().valid_up_to();
    let wire = text.clone();
    let peer = tokio::spawn(async move {
        let mut peer = accept_raw(&listener).await;
        let frames: Vec<&[u8]> = wire.chunks(256 << 10).collect();
        for (i, piece) in frames.iter().enumerate() {
            let op = if i == 0 {
                OpCode::Text
            } else {
                OpCode::Continuation
            };
            // The client may fail and close before all of it is written.
            if peer
                .io
                .write_all(&frame(op, i + 1 == frames.len(), piece, None))
                .await
                .is_err()
            {
                break;
            }
        }
        peer.read_until_close().await
    });
    let ws = WebSocketStream::connect(&url, Options::default());
    let opened = within(ws.opened()).await.unwrap();
    let mut rd = opened.readable;
    let mut message = within(rd.next_streamed()).await.unwrap().unwrap();
    assert!(message.is_text());
    let mut got = Vec::new();
    let err = loop {
        match within(message.next()).await {
            Some(Ok(chunk)) => {
                assert!(std::str::from_utf8(&chunk).is_ok(), "every chunk is text");
                got.extend_from_slice(&chunk);
            }
            Some(Err(err)) => break err,
            None => panic!("the message ended without its error"),
        }
    };
    assert!(
        matches!(err, Error::Protocol(ProtocolError::InvalidUtf8)),
        "{err:?}"
    );
    assert_eq!(got.len(), valid_up_to);
    assert_eq!(got, &text[..valid_up_to]);
    assert!(within(message.next()).await.is_none());
    assert_eq!(within(peer).await.unwrap(), Some(1007));
}

#[tokio::test]
async fn a_reader_dropped_part_way_discards_the_rest_and_the_connection_goes_on() {
    let (ws, opened, server_ws, server) = pair(Options::default(), ServerOptions::default()).await;
    let (mut rd, _wr) = (opened.readable, opened.writable);
    let mut server_wr = server.writable;
    let sending = tokio::spawn(async move {
        let big = Bytes::from(pattern(3 << 20));
        server_wr
            .send_streamed(
                MessageKind::Binary,
                stream::iter(
                    big.chunks(100_000)
                        .map(Bytes::copy_from_slice)
                        .collect::<Vec<_>>(),
                ),
            )
            .await
            .unwrap();
        server_wr
            .send(Message::text("after the big one"))
            .await
            .unwrap();
        server_wr
    });
    {
        let mut message = within(rd.next_streamed()).await.unwrap().unwrap();
        let first = within(message.next()).await.unwrap().unwrap();
        assert!(!first.is_empty());
        // Dropped with most of it still to come.
    }
    assert_eq!(
        within(rd.next()).await.unwrap().unwrap(),
        Message::text("after the big one")
    );
    let _server_wr = within(sending).await.unwrap();
    ws.close(1000, "").unwrap();
    assert!(within(rd.next()).await.is_none());
    assert_eq!(within(ws.closed()).await.unwrap().code, 1000);
    drop(server.readable);
    within(server_ws.closed()).await.unwrap();
}

#[tokio::test]
async fn a_message_written_from_a_reader_arrives_whole_through_async_read_both_ways() {
    #[allow(unused_mut)]
    let mut deflates: Vec<Option<DeflateConfig>> = vec![None];
    #[cfg(feature = "deflate")]
    deflates.extend([
        Some(DeflateConfig::default()),
        Some(
            DeflateConfig::default()
                .client_no_context_takeover(true)
                .server_no_context_takeover(true),
        ),
    ]);
    for deflate in deflates {
        for client_writes in [true, false] {
            let (client_options, server_options) = match deflate {
                #[cfg(feature = "deflate")]
                Some(config) => (
                    Options::default().deflate(config),
                    ServerOptions::default().deflate(config),
                ),
                _ => (Options::default(), ServerOptions::default()),
            };
            let (ws, opened, _server_ws, server) = pair(client_options, server_options).await;
            assert_eq!(opened.extensions.is_empty(), deflate.is_none());
            let (mut wr, mut rd) = if client_writes {
                (opened.writable, server.readable)
            } else {
                (server.writable, opened.readable)
            };
            // Compressible, so that deflate has work, but not uniform.
            let data: Vec<u8> = (0..(3 << 20) + 123)
                .map(|i: usize| b"wsstream "[i % 9] ^ ((i / 4096) as u8 & 1))
                .collect();
            let source = data.clone();
            let writing = tokio::spawn(async move {
                for _ in 0..2 {
                    let mut message = wr.start_streamed(MessageKind::Binary);
                    let mut reader = &source[..];
                    let copied = tokio::io::copy(&mut reader, &mut message).await.unwrap();
                    assert_eq!(copied as usize, source.len());
                    message.shutdown().await.unwrap();
                }
                wr.send(Message::text("whole")).await.unwrap();
                wr
            });
            for round in 0..2 {
                let mut message = within(rd.next_streamed()).await.unwrap().unwrap();
                let mut got = Vec::new();
                within(message.read_to_end(&mut got)).await.unwrap();
                assert!(
                    got == data,
                    "{deflate:?} round {round}: the payload changed"
                );
            }
            assert_eq!(
                within(rd.next()).await.unwrap().unwrap(),
                Message::text("whole")
            );
            let _wr = within(writing).await.unwrap();
            ws.close(1000, "").unwrap();
            assert_eq!(within(ws.closed()).await.unwrap().code, 1000);
        }
    }
}

#[tokio::test]
async fn fragments_are_the_size_asked_for_and_a_flush_sends_what_is_coalesced() {
    let (listener, url) = listen().await;
    let peer = tokio::spawn(async move {
        let mut peer = accept_raw(&listener).await;
        let mut frames = Vec::new();
        while let Some(frame) = peer.read_frame().await {
            if close_code(&frame).is_some() {
                break;
            }
            frames.push((frame.header.opcode, frame.header.fin, frame.payload.len()));
        }
        peer.send(&frame(OpCode::Close, true, &close_body(1000, ""), None))
            .await;
        frames
    });
    let ws = WebSocketStream::connect(&url, Options::default());
    let opened = within(ws.opened()).await.unwrap();
    let mut wr = opened.writable;
    let mut message = wr.start_streamed(MessageKind::Text).fragment_size(1000);
    // Small chunks coalesce; a flush (send) sends them; a large one splits.
    message
        .feed(Utf8Bytes::from("a".repeat(300)))
        .await
        .unwrap();
    message.send(Bytes::from("b".repeat(300))).await.unwrap();
    message.feed(Bytes::from("c".repeat(2500))).await.unwrap();
    message.finish().await.unwrap();
    wr.send(Message::text("whole")).await.unwrap();
    ws.close(1000, "").unwrap();
    let frames = within(peer).await.unwrap();
    assert_eq!(
        frames,
        [
            (OpCode::Text, false, 600),
            (OpCode::Continuation, false, 1000),
            (OpCode::Continuation, false, 1000),
            (OpCode::Continuation, true, 500),
            (OpCode::Text, true, 5),
        ]
    );
}

/// Autobahn 3.2 with a streamed echo: a message, then a frame with a
/// reserved bit, then a ping, in one write. The echo of the message must
/// reach the peer whole before the connection fails with 1002: the writer
/// reads control frames between fragments, never the next data frame.
#[tokio::test]
async fn a_streamed_echo_is_finished_before_a_bad_frame_after_it_fails_the_connection() {
    let (listener, url) = listen().await;
    let peer = tokio::spawn(async move {
        let mut peer = accept_raw(&listener).await;
        let mut burst = frame(OpCode::Text, true, b"hello", None);
        let mut bad = frame(OpCode::Text, true, b"bad", None);
        bad[0] |= 0x20;
        burst.extend(bad);
        burst.extend(frame(OpCode::Ping, true, b"p", None));
        peer.send(&burst).await;
        let mut seen = Vec::new();
        while let Some(frame) = peer.read_frame().await {
            seen.push((
                frame.header.opcode,
                frame.header.fin,
                frame.payload.to_vec(),
            ));
            if frame.header.opcode == OpCode::Close {
                break;
            }
        }
        seen
    });
    let ws = WebSocketStream::connect(&url, Options::default());
    let opened = within(ws.opened()).await.unwrap();
    let (mut rd, mut wr) = (opened.readable, opened.writable);
    while let Some(Ok(mut message)) = within(rd.next_streamed()).await {
        let mut echo = wr.start_streamed(message.kind());
        if echo.send_all(&mut message).await.is_err() || echo.finish().await.is_err() {
            break;
        }
    }
    let seen = within(peer).await.unwrap();
    let (last, echo) = seen.split_last().unwrap();
    let mut echoed = Vec::new();
    for (opcode, _, payload) in echo {
        assert_ne!(
            *opcode,
            OpCode::Pong,
            "the ping after the bad frame was answered"
        );
        echoed.extend_from_slice(payload);
    }
    assert_eq!(echoed, b"hello");
    assert!(echo.last().unwrap().1, "the echo was finished: {seen:?}");
    assert_eq!(last.0, OpCode::Close);
    assert_eq!(u16::from_be_bytes([last.2[0], last.2[1]]), 1002);
}

#[tokio::test]
async fn a_writer_dropped_part_way_closes_with_1011_and_nothing_follows() {
    let (listener, url) = listen().await;
    let peer = tokio::spawn(async move {
        let mut peer = accept_raw(&listener).await;
        let mut after_fragment = Vec::new();
        while let Some(frame) = peer.read_frame().await {
            after_fragment.push(frame.header.opcode);
            if let Some(code) = close_code(&frame) {
                peer.send(&frame_close(code)).await;
                return (after_fragment, code);
            }
        }
        (after_fragment, 0)
    });
    let ws = WebSocketStream::connect(&url, Options::default());
    let opened = within(ws.opened()).await.unwrap();
    let mut wr = opened.writable;
    let mut message = wr.start_streamed(MessageKind::Binary);
    message
        .send(Bytes::from_static(b"half a message"))
        .await
        .unwrap();
    drop(message);
    // Nothing more can be sent: the close handshake has begun.
    assert!(matches!(
        wr.send(Message::text("other")).await,
        Err(Error::Closed)
    ));
    let (frames, code) = within(peer).await.unwrap();
    assert_eq!(frames, [OpCode::Binary, OpCode::Close]);
    assert_eq!(code, 1011);
    assert_eq!(within(ws.closed()).await.unwrap().code, 1011);

    // A writer that sent nothing sends nothing when dropped.
    let (ws, opened, _server_ws, server) = pair(Options::default(), ServerOptions::default()).await;
    let mut wr = opened.writable;
    drop(wr.start_streamed(MessageKind::Text));
    wr.send(Message::text("fine")).await.unwrap();
    let mut rd = server.readable;
    assert_eq!(
        within(rd.next()).await.unwrap().unwrap(),
        Message::text("fine")
    );
    ws.close(1000, "").unwrap();
}

fn frame_close(code: u16) -> Vec<u8> {
    frame(OpCode::Close, true, &close_body(code, ""), None)
}

#[tokio::test]
async fn text_that_is_not_utf8_is_refused_and_not_sent() {
    let (ws, opened, _server_ws, server) = pair(Options::default(), ServerOptions::default()).await;
    let mut wr = opened.writable;
    let mut message = wr.start_streamed(MessageKind::Text);
    // A character split between chunks is fine.
    message.send(Bytes::from_static(b"caf\xc3")).await.unwrap();
    message.send(Bytes::from_static(b"\xa9 ")).await.unwrap();
    assert!(matches!(
        message.send(Bytes::from_static(b"\xff")).await,
        Err(Error::InvalidText)
    ));
    let err = message.write_all(b"\xfe").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    // A refused chunk does not move the check: here it would have completed
    // the held "\xc3" (found by the stream fuzz target).
    message.send(Bytes::from_static(b"ok \xc3")).await.unwrap();
    assert!(matches!(
        message.send(Bytes::from_static(b"\xa9\xff")).await,
        Err(Error::InvalidText)
    ));
    message.send(Bytes::from_static(b"\xa9!")).await.unwrap();
    // Ending inside a character is refused, every time.
    message
        .send(Bytes::from_static(b" \xe2\x82"))
        .await
        .unwrap();
    for _ in 0..2 {
        assert!(matches!(
            SinkExt::<Bytes>::close(&mut message).await,
            Err(Error::InvalidText)
        ));
    }
    message.send(Bytes::from_static(b"\xac")).await.unwrap();
    message.finish().await.unwrap();
    let mut rd = server.readable;
    assert_eq!(
        within(rd.next()).await.unwrap().unwrap(),
        Message::text("café ok é! €")
    );
    ws.close(1000, "").unwrap();
}

#[tokio::test]
async fn keepalive_and_the_peer_go_on_while_a_long_message_trickles_out() {
    let client = Options::default()
        .ping_interval(Some(Duration::from_millis(50)))
        .ping_timeout(Some(Duration::from_millis(300)));
    let server = ServerOptions::default()
        .ping_interval(Some(Duration::from_millis(50)))
        .ping_timeout(Some(Duration::from_millis(300)));
    let (ws, opened, _server_ws, server) = pair(client, server).await;
    // The client's readable is kept and never polled, and nothing awaits
    // its `closed`: only the writer reads, on its behalf, so the server's
    // pings are answered and the client's own pongs seen.
    let _unread = opened.readable;
    let mut wr = opened.writable;
    let trickle = stream::iter(0..20).then(|i| async move {
        tokio::time::sleep(Duration::from_millis(40)).await;
        Bytes::from(format!("chunk {i};"))
    });
    let sending = tokio::spawn(async move {
        wr.send_streamed(MessageKind::Text, trickle)
            .await
            .map(|()| wr)
    });
    let mut rd = server.readable;
    let mut message = within(rd.next_streamed()).await.unwrap().unwrap();
    let mut chunks = 0;
    let mut text = Vec::new();
    while let Some(chunk) = within(message.next()).await {
        chunks += 1;
        text.extend_from_slice(&chunk.unwrap());
    }
    drop(message);
    let expected: String = (0..20).map(|i| format!("chunk {i};")).collect();
    assert_eq!(text, expected.as_bytes());
    assert!(chunks >= 10, "{chunks} chunks: each was sent as it came");
    assert!(
        within(sending).await.unwrap().is_ok(),
        "no keepalive timeout"
    );
    ws.close(1000, "").unwrap();
    assert_eq!(within(ws.closed()).await.unwrap().code, 1000);
}

#[tokio::test]
async fn the_streamed_limit_is_the_callers_and_the_whole_message_limit_does_not_apply() {
    let server_options = ServerOptions::default()
        .max_message_size(1 << 20)
        .max_streamed_message_size(4 << 20);
    let (ws, opened, _server_ws, server) = pair(Options::default(), server_options).await;
    let mut wr = opened.writable;
    let mut rd = server.readable;
    let data = Bytes::from(pattern(4 << 20));
    let writing = tokio::spawn(async move {
        let chunks: Vec<Bytes> = data.chunks(1 << 18).map(Bytes::copy_from_slice).collect();
        wr.send_streamed(MessageKind::Binary, stream::iter(chunks.clone()))
            .await
            .unwrap();
        // One byte more than the streamed limit.
        let over = chunks.into_iter().chain([Bytes::from_static(b"!")]);
        let result = wr
            .send_streamed(MessageKind::Binary, stream::iter(over))
            .await;
        (wr, result)
    });
    let mut message = within(rd.next_streamed()).await.unwrap().unwrap();
    let mut total = 0;
    while let Some(chunk) = within(message.next()).await {
        total += chunk.unwrap().len();
    }
    assert_eq!(total, 4 << 20, "4 MiB passes a 1 MiB whole-message limit");
    drop(message);
    let mut message = within(rd.next_streamed()).await.unwrap().unwrap();
    let err = loop {
        match within(message.next()).await.unwrap() {
            Ok(_) => {}
            Err(err) => break err,
        }
    };
    assert!(
        matches!(err, Error::Protocol(ProtocolError::MessageTooLarge { .. })),
        "{err:?}"
    );
    drop(message);
    let _ = within(writing).await.unwrap();
    assert_eq!(within(ws.closed()).await.unwrap().code, 1009);
}

#[tokio::test]
async fn a_clean_close_before_the_end_of_a_message_is_an_error_not_an_end() {
    let (listener, url) = listen().await;
    let peer = tokio::spawn(async move {
        let mut peer = accept_raw(&listener).await;
        peer.send(&frame(OpCode::Binary, false, b"part", None))
            .await;
        peer.send(&frame_close(1000)).await;
        peer.read_until_close().await
    });
    let ws = WebSocketStream::connect(&url, Options::default());
    let opened = within(ws.opened()).await.unwrap();
    let mut rd = opened.readable;
    let mut message = within(rd.next_streamed()).await.unwrap().unwrap();
    assert_eq!(&within(message.next()).await.unwrap().unwrap()[..], b"part");
    assert!(matches!(
        within(message.next()).await,
        Some(Err(Error::Closed))
    ));
    drop(message);
    assert!(within(rd.next()).await.is_none());
    assert_eq!(
        within(ws.closed()).await.unwrap(),
        CloseInfo {
            code: 1000,
            reason: String::new()
        }
    );
    assert_eq!(within(peer).await.unwrap(), Some(1000));
    // Through AsyncRead, the same is an UnexpectedEof.
    let (listener, url) = listen().await;
    tokio::spawn(async move {
        let mut peer = accept_raw(&listener).await;
        peer.send(&frame(OpCode::Binary, false, b"part", None))
            .await;
        peer.send(&frame_close(1000)).await;
        peer.read_until_close().await
    });
    let ws = WebSocketStream::connect(&url, Options::default());
    let mut rd = within(ws.opened()).await.unwrap().readable;
    let mut message = within(rd.next_streamed()).await.unwrap().unwrap();
    let mut buf = Vec::new();
    let err = within(message.read_to_end(&mut buf)).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    assert_eq!(buf, b"part");
}

#[tokio::test]
async fn a_next_streamed_dropped_early_loses_nothing() {
    let (ws, opened, _server_ws, server) = pair(Options::default(), ServerOptions::default()).await;
    let mut wr = server.writable;
    let mut rd = opened.readable;
    // Given up before anything arrived: the next message is read whole.
    let waited = tokio::time::timeout(Duration::from_millis(50), rd.next_streamed()).await;
    assert!(waited.is_err());
    drop(waited);
    wr.send(Message::text("whole after all")).await.unwrap();
    assert_eq!(
        within(rd.next()).await.unwrap().unwrap(),
        Message::text("whole after all")
    );

    // Asked for, then its start read by `closed` (polled by another task)
    // before the future that asked is dropped: next() gathers it whole.
    let closed = tokio::spawn(ws.closed());
    {
        let mut asking = std::pin::pin!(rd.next_streamed());
        assert!(futures::poll!(asking.as_mut()).is_pending());
        let mut message = wr.start_streamed(MessageKind::Text);
        message.send(Bytes::from_static(b"begun, ")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // `asking` is dropped here, unpolled since the start arrived.
        message
            .send(Bytes::from_static(b"then ended"))
            .await
            .unwrap();
        message.finish().await.unwrap();
    }
    assert_eq!(
        within(rd.next()).await.unwrap().unwrap(),
        Message::text("begun, then ended")
    );
    wr.send(Message::text("next")).await.unwrap();
    assert_eq!(
        within(rd.next()).await.unwrap().unwrap(),
        Message::text("next")
    );
    ws.close(1000, "").unwrap();
    assert!(within(rd.next()).await.is_none());
    assert_eq!(within(closed).await.unwrap().unwrap().code, 1000);
}
