//! Client and server in one process, over TCP on 127.0.0.1 and over
//! in-memory pipes: the behaviour users rely on, end to end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/raw.rs"]
mod raw;

use futures::{stream, SinkExt, StreamExt, TryStreamExt};
use raw::{accept_raw, close_body, frame, listen, within, RawPeer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wsstream::handshake::HandshakeError;
use wsstream::proto::{OpCode, ProtocolError};
use wsstream::{
    CloseCode, CloseFrame, CloseInfo, Error, Message, Options, ServerOptions, WebSocketStream,
};

/// Accepts one connection with our server and echoes until the peer closes.
async fn echo_once(listener: TcpListener, options: ServerOptions) -> Result<CloseInfo, Error> {
    let (tcp, _) = listener.accept().await.unwrap();
    let ws = WebSocketStream::accept(tcp, options).await?;
    let opened = ws.opened().await?;
    opened.readable.forward(opened.writable).await?;
    ws.closed().await
}

#[tokio::test]
async fn echo_text_and_binary_then_close_with_code_and_reason() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(echo_once(listener, ServerOptions::default()));
    let ws = WebSocketStream::connect(&url, Options::default());
    let opened = within(ws.opened()).await.unwrap();
    assert_eq!((opened.protocol, opened.extensions.as_str()), (None, ""));
    let (mut rd, mut wr) = (opened.readable, opened.writable);
    let big = bytes::Bytes::from((0..4 << 20).map(|i| i as u8).collect::<Vec<u8>>());
    let sent = vec![
        Message::text("héllo wörld ✓"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::text(""),
        Message::binary(big),
    ];
    within(wr.send_all(&mut stream::iter(sent.clone()).map(Ok)))
        .await
        .unwrap();
    let got: Vec<Message> = within(rd.by_ref().take(4).try_collect()).await.unwrap();
    assert_eq!(got, sent);
    ws.close(4000, "finished").unwrap();
    assert!(
        within(rd.next()).await.is_none(),
        "a clean close ends the readable without error"
    );
    let closed = within(ws.closed()).await.unwrap();
    assert_eq!(closed.code, 4000, "the server echoes our code");
    let server_saw = within(server).await.unwrap().unwrap();
    assert_eq!(
        server_saw,
        CloseInfo {
            code: 4000,
            reason: "finished".into()
        }
    );
    // Sending after the close is an error, not a silent drop.
    assert!(matches!(
        wr.send(Message::text("late")).await,
        Err(Error::Closed)
    ));
}

#[tokio::test]
async fn works_over_an_in_memory_pipe() {
    let (client_io, server_io) = tokio::io::duplex(1024);
    let server = tokio::spawn(async move {
        let ws = WebSocketStream::accept(server_io, ServerOptions::default())
            .await
            .unwrap();
        let opened = ws.opened().await.unwrap();
        opened.readable.forward(opened.writable).await.unwrap();
        ws.closed().await
    });
    let ws = WebSocketStream::connect_over(client_io, "ws://in-memory/", Options::default());
    let opened = within(ws.opened()).await.unwrap();
    let (mut rd, mut wr) = (opened.readable, opened.writable);
    for i in 0..100 {
        wr.feed(Message::text(format!("m{i}"))).await.unwrap();
    }
    wr.flush().await.unwrap();
    for i in 0..100 {
        assert_eq!(
            within(rd.next()).await.unwrap().unwrap(),
            Message::text(format!("m{i}"))
        );
    }
    // The writable's close is WHATWG's writable.close(): a close with no code.
    within(wr.close()).await.unwrap();
    assert!(within(rd.next()).await.is_none());
    assert_eq!(within(ws.closed()).await.unwrap(), CloseInfo::NO_STATUS);
    assert_eq!(within(server).await.unwrap().unwrap(), CloseInfo::NO_STATUS);
}

#[tokio::test]
async fn server_initiated_close_ends_the_client_readable_cleanly() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = WebSocketStream::accept(tcp, ServerOptions::default())
            .await
            .unwrap();
        let mut opened = ws.opened().await.unwrap();
        let first = opened.readable.next().await.unwrap().unwrap();
        opened.writable.send(first).await.unwrap();
        ws.close(3001, "going away now").unwrap();
        // Keep reading so the client's reply completes the handshake.
        while opened.readable.next().await.is_some() {}
        ws.closed().await
    });
    let ws = WebSocketStream::connect(&url, Options::default());
    let mut opened = within(ws.opened()).await.unwrap();
    opened.writable.send(Message::text("one")).await.unwrap();
    assert_eq!(
        within(opened.readable.next()).await.unwrap().unwrap(),
        Message::text("one")
    );
    assert!(within(opened.readable.next()).await.is_none());
    let closed = within(ws.closed()).await.unwrap();
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (3001, "going away now")
    );
    assert_eq!(within(server).await.unwrap().unwrap().code, 3001);
}

/// `close_with` sends the codes WHATWG's `close` refuses, such as the
/// 1001 of a server shutting down; the client sees it as a clean close.
#[tokio::test]
async fn a_server_going_down_closes_with_1001() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = WebSocketStream::accept(tcp, ServerOptions::default())
            .await
            .unwrap();
        let mut opened = ws.opened().await.unwrap();
        assert!(matches!(
            ws.close(1001, ""),
            Err(Error::InvalidCloseCode(1001))
        ));
        ws.close_with(CloseFrame::truncated(CloseCode::GOING_AWAY, "restarting"));
        while opened.readable.next().await.is_some() {}
        ws.closed().await
    });
    let ws = WebSocketStream::connect(&url, Options::default());
    let mut opened = within(ws.opened()).await.unwrap();
    assert!(within(opened.readable.next()).await.is_none());
    let closed = within(ws.closed()).await.unwrap();
    assert_eq!((closed.code, closed.reason.as_str()), (1001, "restarting"));
    // The server's `closed` has the client's reply: the same code.
    assert_eq!(within(server).await.unwrap().unwrap().code, 1001);
}

#[tokio::test]
async fn subprotocol_is_the_first_server_choice_the_client_offered() {
    for (offered, supported, expected) in [
        (vec!["a", "b"], vec!["b", "a"], Some("b")),
        (vec!["a"], vec!["z"], None),
        (vec![], vec!["z"], None),
    ] {
        let (listener, url) = listen().await;
        let server = tokio::spawn(echo_once(
            listener,
            ServerOptions::default().protocols(supported),
        ));
        let ws = WebSocketStream::connect(&url, Options::default().protocols(offered));
        let opened = within(ws.opened()).await.unwrap();
        assert_eq!(opened.protocol.as_deref(), expected);
        drop(opened);
        ws.close(1000, "").unwrap();
        within(ws.closed()).await.unwrap();
        within(server).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn selector_sees_the_request_path_and_offers() {
    let (listener, url) = listen().await;
    let options = ServerOptions::default().select_protocol(|request, offered| {
        (request.uri().path() == "/v2-only/")
            .then(|| offered.iter().find(|p| p.starts_with("v2")).cloned())?
    });
    let server = tokio::spawn(echo_once(listener, options));
    let ws = WebSocketStream::connect(
        format!("{url}v2-only/"),
        Options::default().protocols(["v1", "v2.json"]),
    );
    let opened = within(ws.opened()).await.unwrap();
    assert_eq!(opened.protocol.as_deref(), Some("v2.json"));
    drop(opened);
    ws.close(1000, "").unwrap();
    within(ws.closed()).await.unwrap();
    within(server).await.unwrap().unwrap();
}

#[tokio::test]
async fn invalid_arguments_fail_before_any_io() {
    let cases: Vec<(&str, Options)> = vec![
        ("ftp://127.0.0.1/", Options::default()),
        ("ws://127.0.0.1:1/#fragment", Options::default()),
        ("not a url", Options::default()),
        (
            "ws://127.0.0.1:1/",
            Options::default().protocols(["chat", "chat"]),
        ),
        (
            "ws://127.0.0.1:1/",
            Options::default().protocols(["has space"]),
        ),
        (
            "ws://127.0.0.1:1/",
            Options::default().header(
                http::header::SEC_WEBSOCKET_KEY,
                http::HeaderValue::from_static("x"),
            ),
        ),
    ];
    for (url, options) in cases {
        let ws = WebSocketStream::connect(url, options);
        let err = within(ws.opened()).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidUrl(_) | Error::InvalidProtocol(_) | Error::ReservedHeader(_)
            ),
            "{url}: {err:?}"
        );
        assert!(
            within(ws.closed()).await.is_err(),
            "closed fails when opened does"
        );
    }
}

#[tokio::test]
async fn close_arguments_are_checked_at_once() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(echo_once(listener, ServerOptions::default()));
    let ws = WebSocketStream::connect(&url, Options::default());
    let _opened = within(ws.opened()).await.unwrap();
    assert!(matches!(
        ws.close(1001, ""),
        Err(Error::InvalidCloseCode(1001))
    ));
    assert!(matches!(
        ws.close(1000, &"x".repeat(124)),
        Err(Error::CloseReasonTooLong(124))
    ));
    ws.close(1000, &"é".repeat(61)).unwrap();
    drop(_opened);
    assert_eq!(within(ws.closed()).await.unwrap().code, 1000);
    assert_eq!(
        within(server).await.unwrap().unwrap().reason,
        "é".repeat(61)
    );
}

#[tokio::test]
async fn cancelling_the_signal_before_open_aborts_and_leaves_nothing_running() {
    let (listener, url) = listen().await;
    let token = CancellationToken::new();
    let ws = WebSocketStream::connect(&url, Options::default().signal(token.clone()));
    // The server accepts TCP but never answers the handshake.
    let (mut tcp, _) = within(listener.accept()).await.unwrap();
    token.cancel();
    assert!(matches!(within(ws.opened()).await, Err(Error::Aborted)));
    assert!(matches!(within(ws.closed()).await, Err(Error::Aborted)));
    // The handshake task is gone: its socket is closed (read_to_end ends).
    let mut sink = Vec::new();
    within(tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut sink))
        .await
        .unwrap();
}

#[tokio::test]
async fn close_before_open_aborts() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default());
    ws.close(1000, "never mind").unwrap();
    assert!(matches!(within(ws.opened()).await, Err(Error::Aborted)));
    assert!(matches!(within(ws.closed()).await, Err(Error::Aborted)));
    drop(listener);
}

#[tokio::test]
async fn a_cancelled_signal_after_open_is_ignored() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(echo_once(listener, ServerOptions::default()));
    let token = CancellationToken::new();
    let ws = WebSocketStream::connect(&url, Options::default().signal(token.clone()));
    let mut opened = within(ws.opened()).await.unwrap();
    token.cancel();
    opened
        .writable
        .send(Message::text("still here"))
        .await
        .unwrap();
    assert_eq!(
        within(opened.readable.next()).await.unwrap().unwrap(),
        Message::text("still here")
    );
    ws.close(1000, "").unwrap();
    within(ws.closed()).await.unwrap();
    within(server).await.unwrap().unwrap();
}

#[tokio::test]
async fn non_101_answers_fail_opened_with_status_headers_and_body() {
    let (listener, url) = listen().await;
    // Each refusal is framed differently; the server keeps the connection
    // open after it, so only the framing can end the body.
    let refusals: [(&[u8], &[u8]); 2] = [
        (
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 12\r\n\r\nlog in first",
            b"log in first",
        ),
        (
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nTransfer-Encoding: chunked\r\n\r\n\
              7\r\nlog in \r\n5\r\nfirst\r\n0\r\n\r\n",
            b"log in first",
        ),
    ];
    for (reply, expected) in refusals {
        let ws = WebSocketStream::connect(&url, Options::default());
        let (mut tcp, _) = within(listener.accept()).await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf)
            .await
            .unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut tcp, reply)
            .await
            .unwrap();
        match within(ws.opened()).await {
            Err(Error::Handshake(HandshakeError::Status {
                status,
                headers,
                body,
            })) => {
                assert_eq!(status, 401);
                assert_eq!(headers["www-authenticate"], "Bearer");
                assert_eq!(&body[..], expected);
            }
            other => panic!("{other:?}"),
        }
        drop(tcp);
    }
}

#[tokio::test]
async fn frames_in_the_same_packet_as_the_101_are_not_lost() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default());
    let (tcp, _) = within(listener.accept()).await.unwrap();
    let mut after = frame(OpCode::Text, true, b"first!", None);
    after.extend(frame(OpCode::Close, true, &close_body(4321, "done"), None));
    let mut peer = RawPeer::handshake(tcp, &after).await;
    let mut opened = within(ws.opened()).await.unwrap();
    assert_eq!(
        within(opened.readable.next()).await.unwrap().unwrap(),
        Message::text("first!")
    );
    assert!(within(opened.readable.next()).await.is_none());
    assert_eq!(
        within(ws.closed()).await.unwrap(),
        CloseInfo {
            code: 4321,
            reason: "done".into()
        }
    );
    assert_eq!(peer.read_until_close().await, Some(4321));
}

/// Regression: `closed` awaited before `opened` used to drive the
/// connection as if no one would ever read, and threw away the messages
/// that arrived before the halves were taken.
#[tokio::test]
async fn closed_awaited_before_opened_keeps_the_messages_for_the_readable() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default());
    let (tcp, _) = within(listener.accept()).await.unwrap();
    // A ping and a message right behind the 101, in one write: the client
    // decodes both in one turn and flushes the pong before that turn
    // returns, so the pong tells the peer the message has been handled.
    let mut after = frame(OpCode::Ping, true, b"p", None);
    after.extend(frame(OpCode::Text, true, b"before opened", None));
    let mut peer = RawPeer::handshake(tcp, &after).await;
    let pong_seen = async {
        let frame = peer.read_frame().await.unwrap();
        assert_eq!(frame.header.opcode, OpCode::Pong);
    };
    // `closed` drives the connection until the peer has its pong.
    tokio::select! {
        outcome = ws.closed() => panic!("closed resolved: {outcome:?}"),
        () = within(pong_seen) => {}
    }
    let mut opened = within(ws.opened()).await.unwrap();
    assert_eq!(
        within(opened.readable.next()).await.unwrap().unwrap(),
        Message::text("before opened")
    );
    ws.close(1000, "").unwrap();
    assert_eq!(peer.read_until_close().await, Some(1000));
    peer.send(&frame(OpCode::Close, true, &close_body(1000, ""), None))
        .await;
    assert!(within(opened.readable.next()).await.is_none());
    assert_eq!(within(ws.closed()).await.unwrap().code, 1000);
}

/// Messages wait for the halves while something can still take them;
/// once the handle (and every `opened` future) is gone, no one can, and
/// `closed` reads past them to finish the close handshake.
#[tokio::test]
async fn closed_finishes_once_no_one_can_take_the_halves() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default());
    let (tcp, _) = within(listener.accept()).await.unwrap();
    let mut after = frame(OpCode::Text, true, b"never read", None);
    after.extend(frame(OpCode::Close, true, &close_body(4000, "bye"), None));
    let mut peer = RawPeer::handshake(tcp, &after).await;
    let closed = ws.closed();
    tokio::pin!(closed);
    let opened = ws.opened();
    drop(ws);
    // The `opened` future could still take the halves: the message waits.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(200), &mut closed)
            .await
            .is_err()
    );
    drop(opened);
    assert_eq!(
        within(closed).await.unwrap(),
        CloseInfo {
            code: 4000,
            reason: "bye".into()
        }
    );
    assert_eq!(peer.read_until_close().await, Some(4000));
}

#[tokio::test]
async fn opened_hands_out_the_halves_once() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(echo_once(listener, ServerOptions::default()));
    let ws = WebSocketStream::connect(&url, Options::default());
    let opened = within(ws.opened()).await.unwrap();
    assert!(matches!(
        within(ws.opened()).await,
        Err(Error::AlreadyOpened)
    ));
    drop(opened);
    ws.close(1000, "").unwrap();
    within(ws.closed()).await.unwrap();
    within(server).await.unwrap().unwrap();
}

#[tokio::test]
async fn peer_protocol_violation_gets_1002_and_a_typed_error() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default());
    let mut peer = accept_raw(&listener).await;
    let mut opened = within(ws.opened()).await.unwrap();
    // Servers must not mask.
    peer.send(&frame(OpCode::Text, true, b"masked", Some([1, 2, 3, 4])))
        .await;
    match within(opened.readable.next()).await {
        Some(Err(Error::Protocol(ProtocolError::MaskedFrame))) => {}
        other => panic!("{other:?}"),
    }
    assert!(
        within(opened.readable.next()).await.is_none(),
        "the stream ends after its error"
    );
    assert_eq!(peer.read_until_close().await, Some(1002));
    assert!(matches!(
        within(ws.closed()).await,
        Err(Error::Protocol(ProtocolError::MaskedFrame))
    ));
    assert!(matches!(
        opened.writable.send(Message::text("x")).await,
        Err(Error::Protocol(_))
    ));
}

#[tokio::test]
async fn oversized_message_gets_1009() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default().max_message_size(1000));
    let mut peer = accept_raw(&listener).await;
    let mut opened = within(ws.opened()).await.unwrap();
    peer.send(&frame(OpCode::Binary, false, &[0; 600], None))
        .await;
    peer.send(&frame(OpCode::Continuation, true, &[0; 600], None))
        .await;
    assert!(matches!(
        within(opened.readable.next()).await,
        Some(Err(Error::Protocol(ProtocolError::MessageTooLarge {
            size: 1200,
            limit: 1000
        })))
    ));
    assert_eq!(peer.read_until_close().await, Some(1009));
}

#[tokio::test]
async fn connection_dropped_without_close_is_unclean() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default());
    let mut peer = accept_raw(&listener).await;
    let mut opened = within(ws.opened()).await.unwrap();
    peer.send(&frame(OpCode::Text, false, b"half a mess", None))
        .await;
    drop(peer);
    assert!(matches!(
        within(opened.readable.next()).await,
        Some(Err(Error::ConnectionLost))
    ));
    assert!(within(opened.readable.next()).await.is_none());
    assert!(matches!(
        within(ws.closed()).await,
        Err(Error::ConnectionLost)
    ));
}

#[tokio::test]
async fn client_masks_every_frame_with_a_fresh_key() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default());
    let mut peer = accept_raw(&listener).await;
    let mut opened = within(ws.opened()).await.unwrap();
    for i in 0..50u8 {
        opened
            .writable
            .feed(Message::binary(vec![i; 700]))
            .await
            .unwrap();
    }
    opened.writable.flush().await.unwrap();
    let mut keys = std::collections::HashSet::new();
    for i in 0..50u8 {
        let f = peer.read_frame().await.unwrap();
        keys.insert(f.header.mask.expect("client frames are masked"));
        assert_eq!(f.payload, vec![i; 700]);
    }
    assert!(keys.len() >= 49);
}

#[tokio::test]
async fn halves_work_from_different_tasks_with_combinators() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(echo_once(listener, ServerOptions::default()));
    let ws = WebSocketStream::connect(&url, Options::default());
    let opened = within(ws.opened()).await.unwrap();
    let (rd, mut wr) = (opened.readable, opened.writable);
    let writer = tokio::spawn(async move {
        let mut numbers =
            stream::iter(0..2000u32).map(|i| Ok(Message::binary(i.to_be_bytes().to_vec())));
        wr.send_all(&mut numbers).await.unwrap();
        wr
    });
    let reader = tokio::spawn(async move {
        rd.take(2000)
            .map(|m| async move { u32::from_be_bytes(m.unwrap().as_payload().try_into().unwrap()) })
            .buffered(8)
            .collect::<Vec<u32>>()
            .await
    });
    let got = within(reader).await.unwrap();
    assert_eq!(got, (0..2000).collect::<Vec<u32>>());
    let _wr = within(writer).await.unwrap();
    ws.close(1000, "").unwrap();
    assert_eq!(within(ws.closed()).await.unwrap().code, 1000);
    within(server).await.unwrap().unwrap();
}

#[tokio::test]
async fn with_the_readable_dropped_closed_still_completes() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default());
    let mut peer = accept_raw(&listener).await;
    let opened = within(ws.opened()).await.unwrap();
    drop(opened.readable);
    let mut wr = opened.writable;
    wr.send(Message::text("write-only")).await.unwrap();
    assert_eq!(&peer.read_frame().await.unwrap().payload[..], b"write-only");
    // The server talks and pings; nobody reads; then it closes.
    peer.send(&frame(OpCode::Text, true, b"unread", None)).await;
    peer.send(&frame(OpCode::Ping, true, b"still there?", None))
        .await;
    peer.send(&frame(OpCode::Close, true, &close_body(1001, "bye"), None))
        .await;
    assert_eq!(within(ws.closed()).await.unwrap().code, 1001);
    let pong = peer.read_frame().await.unwrap();
    assert_eq!(
        (pong.header.opcode, &pong.payload[..]),
        (OpCode::Pong, &b"still there?"[..])
    );
    assert_eq!(peer.read_until_close().await, Some(1001));
}

#[tokio::test]
async fn http_urls_map_to_ws() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(echo_once(listener, ServerOptions::default()));
    let ws = WebSocketStream::connect(url.replace("ws://", "http://"), Options::default());
    let mut opened = within(ws.opened()).await.unwrap();
    opened
        .writable
        .send(Message::text("via http"))
        .await
        .unwrap();
    assert_eq!(
        within(opened.readable.next()).await.unwrap().unwrap(),
        Message::text("via http")
    );
    ws.close(1000, "").unwrap();
    within(ws.closed()).await.unwrap();
    within(server).await.unwrap().unwrap();
}

#[tokio::test]
async fn server_rejects_a_plain_http_request_with_a_reason() {
    let (listener, url) = listen().await;
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .to_owned();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        WebSocketStream::accept(tcp, ServerOptions::default()).await
    });
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut tcp, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    within(tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut reply))
        .await
        .unwrap();
    let reply = String::from_utf8(reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 426"), "{reply}");
    assert!(matches!(
        within(server).await.unwrap(),
        Err(Error::Handshake(HandshakeError::Rejected { status, .. })) if status == 426
    ));
}

/// Every row of `accept`'s table of rejections: the status the client
/// reads, and the error the server gets.
#[tokio::test]
async fn every_unacceptable_request_gets_the_documented_answer_and_error() {
    const UPGRADE: &str = "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                           Sec-WebSocket-Version: 13\r\n";
    const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let many_fields: String = (0..200).map(|i| format!("X-{i}: y\r\n")).collect();
    let huge_field = format!("X: {}\r\n", "y".repeat(70 * 1024));
    type Case = (String, u16, fn(&HandshakeError) -> bool);
    let cases: Vec<Case> = vec![
        (format!("POST / HTTP/1.1\r\n{UPGRADE}{KEY}\r\n"), 405, |e| {
            matches!(e, HandshakeError::Rejected { .. })
        }),
        (
            format!("GET / HTTP/1.1\r\nHost: x\r\n{KEY}\r\n"),
            426,
            |e| matches!(e, HandshakeError::Rejected { .. }),
        ),
        (format!("GET / HTTP/1.0\r\n{UPGRADE}{KEY}\r\n"), 400, |e| {
            matches!(e, HandshakeError::Rejected { .. })
        }),
        (
            format!("GET / HTTP/1.1\r\n{UPGRADE}{KEY}{KEY}\r\n"),
            400,
            |e| matches!(e, HandshakeError::Rejected { .. }),
        ),
        ("not http at all\r\n\r\n".to_owned(), 400, |e| {
            matches!(e, HandshakeError::Malformed(_))
        }),
        (
            format!("GET / HTTP/1.1\r\n{UPGRADE}{KEY}{many_fields}\r\n"),
            431,
            |e| matches!(e, HandshakeError::TooManyHeaders),
        ),
        (
            format!("GET / HTTP/1.1\r\n{UPGRADE}{KEY}{huge_field}\r\n"),
            431,
            |e| matches!(e, HandshakeError::HeadTooLarge),
        ),
    ];
    for (request, status, expected) in cases {
        let (mut client, server_io) = tokio::io::duplex(256 * 1024);
        let server = tokio::spawn(WebSocketStream::accept(server_io, ServerOptions::default()));
        tokio::io::AsyncWriteExt::write_all(&mut client, request.as_bytes())
            .await
            .unwrap();
        let mut reply = Vec::new();
        within(tokio::io::AsyncReadExt::read_to_end(
            &mut client,
            &mut reply,
        ))
        .await
        .unwrap();
        let reply = String::from_utf8(reply).unwrap();
        assert!(
            reply.starts_with(&format!("HTTP/1.1 {status} ")),
            "{request:.60}: {reply}"
        );
        assert!(reply.contains("sec-websocket-version: 13\r\n"), "{reply}");
        match within(server).await.unwrap() {
            Err(Error::Handshake(err)) => assert!(expected(&err), "{request:.60}: {err:?}"),
            other => panic!("{request:.60}: {other:?}"),
        }
    }
    // A client that leaves mid-head gets no answer, and the server knows.
    let (mut client, server_io) = tokio::io::duplex(1024);
    let server = tokio::spawn(WebSocketStream::accept(server_io, ServerOptions::default()));
    tokio::io::AsyncWriteExt::write_all(&mut client, b"GET / HTTP/1.1\r\nHost")
        .await
        .unwrap();
    drop(client);
    assert!(matches!(
        within(server).await.unwrap(),
        Err(Error::Handshake(HandshakeError::Incomplete))
    ));
}

#[test]
fn connecting_outside_a_runtime_fails_opened_instead_of_panicking() {
    let ws = WebSocketStream::connect("ws://127.0.0.1:1/", Options::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(matches!(rt.block_on(ws.opened()), Err(Error::NoRuntime)));
}

#[tokio::test]
async fn closed_resolves_while_the_readable_sits_unpolled_and_keeps_its_messages() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default());
    let mut peer = accept_raw(&listener).await;
    let mut opened = within(ws.opened()).await.unwrap();
    ws.close(1000, "done").unwrap();
    assert_eq!(peer.read_until_close().await, Some(1000));
    // Sent before the server saw our close: must still reach the readable.
    peer.send(&frame(OpCode::Text, true, b"late but wanted", None))
        .await;
    peer.send(&frame(OpCode::Close, true, &close_body(1000, ""), None))
        .await;
    // One message is held for the readable; `closed` waits for it to be read.
    let closed = ws.closed();
    tokio::pin!(closed);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(200), &mut closed)
            .await
            .is_err()
    );
    assert_eq!(
        within(opened.readable.next()).await.unwrap().unwrap(),
        Message::text("late but wanted")
    );
    assert_eq!(within(closed).await.unwrap().code, 1000);
    assert!(within(opened.readable.next()).await.is_none());
}

#[tokio::test]
async fn dropping_every_handle_stops_the_handshake() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default());
    let (mut tcp, _) = within(listener.accept()).await.unwrap();
    drop(ws);
    // The handshake task gave up: its socket closes.
    let mut sink = Vec::new();
    within(tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut sink))
        .await
        .unwrap();
}

#[tokio::test]
async fn opened_is_a_duplex_for_split_filter_and_buffer_unordered() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(echo_once(listener, ServerOptions::default()));
    let ws = WebSocketStream::connect(&url, Options::default());
    let (mut sink, stream) = within(ws.opened()).await.unwrap().split();
    let send = async move {
        let mut out = futures::stream::iter(0..100u32).map(|i| Ok(Message::text(i.to_string())));
        sink.send_all(&mut out).await.unwrap();
        sink
    };
    let receive = stream
        .take(100)
        .map(|m| m.unwrap())
        .filter(|m| futures::future::ready(m.as_text().is_some_and(|t| t.ends_with('7'))))
        .map(|m| async move { m.as_text().unwrap().parse::<u32>().unwrap() })
        .buffer_unordered(4)
        .collect::<Vec<u32>>();
    let (_sink, mut got) = within(futures::future::join(send, receive)).await;
    got.sort_unstable();
    assert_eq!(got, (0..100).filter(|i| i % 10 == 7).collect::<Vec<u32>>());
    ws.close(1000, "").unwrap();
    within(ws.closed()).await.unwrap();
    within(server).await.unwrap().unwrap();
}

#[tokio::test]
async fn ipv6_loopback_literals_work() {
    let listener = match TcpListener::bind("[::1]:0").await {
        Ok(listener) => listener,
        Err(err) => panic!("this machine has no IPv6 loopback ({err}); the URL tests need one"),
    };
    let url = format!(
        "ws://[::1]:{}/v6?q=1",
        listener.local_addr().unwrap().port()
    );
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = WebSocketStream::accept(tcp, ServerOptions::default())
            .await
            .unwrap();
        let request = ws.request().unwrap();
        let seen = (
            request.uri().to_string(),
            request.headers()["host"].to_str().unwrap().to_owned(),
        );
        let opened = ws.opened().await.unwrap();
        opened.readable.forward(opened.writable).await.unwrap();
        seen
    });
    let ws = WebSocketStream::connect(&url, Options::default());
    let mut opened = within(ws.opened()).await.unwrap();
    opened.send(Message::text("over v6")).await.unwrap();
    assert_eq!(
        within(opened.next()).await.unwrap().unwrap(),
        Message::text("over v6")
    );
    ws.close(1000, "").unwrap();
    within(ws.closed()).await.unwrap();
    let (uri, host) = within(server).await.unwrap();
    assert_eq!(uri, "/v6?q=1");
    assert!(host.starts_with("[::1]:"), "{host}");
}

#[tokio::test]
async fn closed_awaited_before_open_is_woken_when_the_connection_opens() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default());
    // Awaited from another task before the handshake finishes; the halves
    // are never taken, so `closed` must read in their place once open.
    let closed = tokio::spawn(ws.closed());
    tokio::task::yield_now().await;
    let mut peer = accept_raw(&listener).await;
    peer.send(&frame(OpCode::Close, true, &close_body(4000, "bye"), None))
        .await;
    let info = within(closed).await.unwrap().unwrap();
    assert_eq!((info.code, info.reason.as_str()), (4000, "bye"));
    assert_eq!(peer.read_until_close().await, Some(4000));
}
