//! Protocol rules exercised without a runtime: a `Connection` fed the bytes a
//! peer would send, its output parsed back as the peer would read it.

use bytes::{Buf, Bytes, BytesMut};

use super::*;

/// Encodes a frame as the peer of `us` would send it.
fn peer_frame(us: Role, opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask: (us == Role::Server).then_some([0x37, 0xFA, 0x21, 0x3D]),
        payload_len: 0,
    };
    let mut out = BytesMut::new();
    encode_frame(&header, payload, &mut out);
    out.to_vec()
}

/// Drains what `conn` wants to send and decodes it as its peer would.
pub(super) fn sent_frames(conn: &mut Connection) -> Vec<Frame> {
    let peer = match conn.role() {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    };
    let out = conn.outgoing();
    let mut wire = BytesMut::new();
    while out.has_remaining() {
        let n = out.chunk().len();
        wire.extend_from_slice(out.chunk());
        out.advance(n);
    }
    let mut decoder = FrameDecoder::new(peer, usize::MAX);
    let mut frames = Vec::new();
    while let Some(frame) = decoder
        .decode(&mut wire)
        .expect("our own output must parse")
    {
        frames.push(frame);
    }
    assert!(wire.is_empty(), "trailing bytes in our output");
    frames
}

fn close_body(frame: &Frame) -> Option<u16> {
    assert_eq!(frame.header.opcode, OpCode::Close);
    (frame.payload.len() >= 2).then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]))
}

fn feed(conn: &mut Connection, bytes: &[u8]) -> Result<Vec<Message>, ProtocolError> {
    let mut buf = BytesMut::from(bytes);
    let mut messages = Vec::new();
    while let Some(m) = conn.receive(&mut buf)? {
        messages.push(m);
    }
    Ok(messages)
}

fn both_roles() -> [Connection; 2] {
    [
        Connection::new(Role::Client, Limits::default()),
        Connection::new(Role::Server, Limits::default()),
    ]
}

#[test]
fn fragments_reassemble_with_control_frames_between_them() {
    for mut conn in both_roles() {
        let role = conn.role();
        let mut wire = peer_frame(role, OpCode::Text, false, "Hello, ".as_bytes());
        wire.extend(peer_frame(role, OpCode::Ping, true, b"p1"));
        wire.extend(peer_frame(role, OpCode::Continuation, false, &[]));
        wire.extend(peer_frame(
            role,
            OpCode::Continuation,
            true,
            "wörld".as_bytes(),
        ));
        let messages = feed(&mut conn, &wire).unwrap();
        assert_eq!(messages, vec![Message::text("Hello, wörld")]);
        let sent = sent_frames(&mut conn);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].header.opcode, OpCode::Pong);
        assert_eq!(sent[0].payload, Bytes::from_static(b"p1"));
        assert_eq!(sent[0].header.mask.is_some(), role == Role::Client);
    }
}

#[test]
fn invalid_utf8_fails_mid_fragment_before_the_message_ends() {
    for mut conn in both_roles() {
        // A valid first fragment, then a non-final one with a bad byte.
        let mut wire = peer_frame(conn.role(), OpCode::Text, false, b"fine");
        wire.extend(peer_frame(
            conn.role(),
            OpCode::Continuation,
            false,
            b"ok\xffmore",
        ));
        // Only part of the bad fragment has arrived.
        let cut = wire.len() - 4;
        assert_eq!(
            feed(&mut conn, &wire[..cut]),
            Err(ProtocolError::InvalidUtf8)
        );
        let sent = sent_frames(&mut conn);
        assert_eq!(close_body(&sent[0]), Some(1007));
        assert!(conn.is_closed());
    }
}

#[test]
fn utf8_split_across_fragments_is_accepted_and_truncated_one_rejected() {
    let euro = "€".as_bytes();
    let mut conn = Connection::new(Role::Client, Limits::default());
    let mut wire = peer_frame(Role::Client, OpCode::Text, false, &euro[..1]);
    wire.extend(peer_frame(
        Role::Client,
        OpCode::Continuation,
        true,
        &euro[1..],
    ));
    assert_eq!(feed(&mut conn, &wire).unwrap(), vec![Message::text("€")]);
    let wire = peer_frame(Role::Client, OpCode::Text, true, &euro[..2]);
    assert_eq!(feed(&mut conn, &wire), Err(ProtocolError::InvalidUtf8));
}

#[test]
fn fragment_sequence_errors_are_protocol_errors() {
    let mut conn = Connection::new(Role::Client, Limits::default());
    let wire = peer_frame(Role::Client, OpCode::Continuation, true, b"x");
    assert_eq!(
        feed(&mut conn, &wire),
        Err(ProtocolError::UnexpectedContinuation)
    );
    assert_eq!(close_body(&sent_frames(&mut conn)[0]), Some(1002));

    let mut conn = Connection::new(Role::Client, Limits::default());
    let mut wire = peer_frame(Role::Client, OpCode::Binary, false, b"x");
    wire.extend(peer_frame(Role::Client, OpCode::Text, true, b"y"));
    assert_eq!(
        feed(&mut conn, &wire),
        Err(ProtocolError::ExpectedContinuation)
    );
}

#[test]
fn peer_close_is_echoed_and_ends_input() {
    for mut conn in both_roles() {
        let role = conn.role();
        let mut wire = peer_frame(role, OpCode::Close, true, b"\x03\xe8bye");
        wire.extend(peer_frame(role, OpCode::Text, true, b"ignored after close"));
        assert_eq!(feed(&mut conn, &wire).unwrap(), vec![]);
        let frame = conn.close_received().cloned().flatten().unwrap();
        assert_eq!((frame.code().as_u16(), frame.reason()), (1000, "bye"));
        assert!(conn.is_closed());
        let sent = sent_frames(&mut conn);
        assert_eq!(sent.len(), 1);
        assert_eq!(close_body(&sent[0]), Some(1000));
        let reply = conn.close_frame_sent().cloned().flatten().unwrap();
        assert_eq!((reply.code().as_u16(), reply.reason()), (1000, ""));
        assert!(matches!(
            conn.send(Message::text("late")),
            Err(SendError::Closing)
        ));
    }
}

#[test]
fn empty_close_is_answered_with_empty_close() {
    let mut conn = Connection::new(Role::Server, Limits::default());
    feed(
        &mut conn,
        &peer_frame(Role::Server, OpCode::Close, true, &[]),
    )
    .unwrap();
    assert_eq!(conn.close_received(), Some(&None));
    assert_eq!(close_body(&sent_frames(&mut conn)[0]), None);
    assert_eq!(conn.close_frame_sent(), Some(&None));
}

#[test]
fn bad_close_frames_fail_with_the_right_code() {
    let cases: [(&[u8], ProtocolError, u16); 5] = [
        (b"\x03", ProtocolError::InvalidClosePayload, 1002),
        (b"\x03\xed", ProtocolError::InvalidCloseCode(1005), 1002),
        (b"\x03\xee", ProtocolError::InvalidCloseCode(1006), 1002),
        (b"\x0b\xb7", ProtocolError::InvalidCloseCode(2999), 1002),
        (
            b"\x03\xe8\xce\xba\xed\xa0\x80",
            ProtocolError::InvalidUtf8,
            1007,
        ),
    ];
    for (body, err, code) in cases {
        let mut conn = Connection::new(Role::Client, Limits::default());
        assert_eq!(
            feed(
                &mut conn,
                &peer_frame(Role::Client, OpCode::Close, true, body)
            ),
            Err(err)
        );
        assert_eq!(close_body(&sent_frames(&mut conn)[0]), Some(code));
    }
}

#[test]
fn our_close_then_theirs_completes_without_a_second_close() {
    let mut conn = Connection::new(Role::Client, Limits::default());
    let frame = CloseFrame::new(CloseCode::NORMAL, "done").unwrap();
    assert_eq!(conn.close_frame_sent(), None);
    assert!(conn.close(Some(&frame)));
    assert!(!conn.close(None), "a second close queues nothing");
    assert_eq!(conn.close_frame_sent(), Some(&Some(frame.clone())));
    assert!(!conn.is_closed());
    // Data the peer sent before it saw our close is still delivered.
    let mut wire = peer_frame(Role::Client, OpCode::Binary, true, b"in flight");
    wire.extend(peer_frame(Role::Client, OpCode::Close, true, b"\x03\xe8"));
    assert_eq!(
        feed(&mut conn, &wire).unwrap(),
        vec![Message::binary(&b"in flight"[..])]
    );
    assert!(conn.is_closed());
    let sent = sent_frames(&mut conn);
    assert_eq!(sent.len(), 1);
    assert_eq!(&sent[0].payload[..], b"\x03\xe8done");
}

#[test]
fn message_limit_counts_all_fragments_and_fails_on_the_header() {
    let limits = Limits {
        max_frame_size: 100,
        max_message_size: 150,
        ..Limits::default()
    };
    let mut conn = Connection::new(Role::Client, limits);
    let mut wire = peer_frame(Role::Client, OpCode::Binary, false, &[0; 100]);
    // Only the header of the second fragment: the size is known from it.
    wire.extend(&peer_frame(Role::Client, OpCode::Continuation, true, &[0; 60])[..2]);
    assert_eq!(
        feed(&mut conn, &wire),
        Err(ProtocolError::MessageTooLarge {
            size: 160,
            limit: 150
        })
    );
    assert_eq!(close_body(&sent_frames(&mut conn)[0]), Some(1009));
}

#[test]
fn every_ping_gets_its_pong_in_order() {
    let mut conn = Connection::new(Role::Server, Limits::default());
    let mut wire = Vec::new();
    for i in 0..10u8 {
        wire.extend(peer_frame(Role::Server, OpCode::Ping, true, &[i; 3]));
    }
    feed(&mut conn, &wire).unwrap();
    let pongs: Vec<Bytes> = sent_frames(&mut conn)
        .into_iter()
        .map(|f| f.payload)
        .collect();
    let expected: Vec<Bytes> = (0..10u8).map(|i| Bytes::from(vec![i; 3])).collect();
    assert_eq!(pongs, expected);
}

#[test]
fn a_ping_flood_cannot_grow_the_send_queue() {
    let mut conn = Connection::new(Role::Server, Limits::default());
    let ping = peer_frame(Role::Server, OpCode::Ping, true, &[7; 125]);
    for _ in 0..10_000 {
        feed(&mut conn, &ping).unwrap();
    }
    // The writer never drained the queue: it holds a bounded number of pongs.
    assert!(
        conn.buffered() <= 16 * 127,
        "{} bytes queued",
        conn.buffered()
    );
    let last = peer_frame(Role::Server, OpCode::Ping, true, b"last");
    feed(&mut conn, &last).unwrap();
    // After the queue drains, the latest ping is answered.
    let first = sent_frames(&mut conn);
    assert_eq!(first.len(), 16);
    let later = sent_frames(&mut conn);
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].payload, Bytes::from_static(b"last"));
}

#[test]
fn empty_continuations_do_not_grow_memory() {
    let mut conn = Connection::new(Role::Client, Limits::default());
    feed(
        &mut conn,
        &peer_frame(Role::Client, OpCode::Text, false, b"a"),
    )
    .unwrap();
    let empty = peer_frame(Role::Client, OpCode::Continuation, false, &[]);
    let mut buf = BytesMut::new();
    for _ in 0..100_000 {
        buf.extend_from_slice(&empty);
        assert_eq!(conn.receive(&mut buf), Ok(None));
    }
    assert!(
        buf.capacity() < 4096,
        "read buffer grew to {}",
        buf.capacity()
    );
    let end = peer_frame(Role::Client, OpCode::Continuation, true, b"b");
    assert_eq!(feed(&mut conn, &end).unwrap(), vec![Message::text("ab")]);
}

#[test]
fn client_masks_every_frame_with_a_fresh_key_and_server_never_masks() {
    let mut client = Connection::new(Role::Client, Limits::default());
    let mut server = Connection::new(Role::Server, Limits::default());
    for i in 0..20u32 {
        let body = Bytes::from(vec![i as u8; (i as usize) * 100]);
        client.send(Message::binary(body.clone())).unwrap();
        server.send(Message::binary(body)).unwrap();
    }
    let client_frames = sent_frames(&mut client);
    let keys: std::collections::HashSet<_> = client_frames
        .iter()
        .map(|f| f.header.mask.unwrap())
        .collect();
    assert!(keys.len() >= 19, "masking keys repeat");
    for (i, f) in client_frames.iter().enumerate() {
        assert_eq!(f.payload, vec![i as u8; i * 100]);
    }
    assert!(sent_frames(&mut server)
        .iter()
        .all(|f| f.header.mask.is_none()));
}

#[test]
fn protocol_error_reply_carries_a_reason_and_fails_once() {
    let mut conn = Connection::new(Role::Server, Limits::default());
    // An unmasked frame from a client.
    let wire = peer_frame(Role::Client, OpCode::Text, true, b"x");
    assert_eq!(feed(&mut conn, &wire), Err(ProtocolError::UnmaskedFrame));
    assert_eq!(feed(&mut conn, &wire), Ok(vec![]));
    let sent = sent_frames(&mut conn);
    assert_eq!(sent.len(), 1);
    assert_eq!(close_body(&sent[0]), Some(1002));
    assert!(sent[0].payload.len() > 2 && sent[0].payload.len() <= 125);
    let recorded = conn.close_frame_sent().cloned().flatten().unwrap();
    assert_eq!(recorded.code().as_u16(), 1002);
    assert_eq!(recorded.reason().as_bytes(), &sent[0].payload[2..]);
}

#[test]
fn pongs_are_reported_for_keepalive_and_not_answered() {
    let mut conn = Connection::new(Role::Client, Limits::default());
    let mut wire = peer_frame(Role::Client, OpCode::Pong, true, b"k1");
    wire.extend(peer_frame(Role::Client, OpCode::Pong, true, b"k2"));
    feed(&mut conn, &wire).unwrap();
    assert_eq!(conn.take_pong(), Some(Bytes::from_static(b"k2")));
    assert_eq!(conn.take_pong(), None);
    assert!(sent_frames(&mut conn).is_empty());
}

#[test]
fn a_keepalive_pong_counts_whatever_pongs_share_its_read() {
    let mut conn = Connection::new(Role::Client, Limits::default());
    conn.send_keepalive_ping(Bytes::from_static(b"k1")).unwrap();
    assert!(conn.awaiting_pong());
    // Unsolicited pongs alone do not answer it.
    feed(
        &mut conn,
        &peer_frame(Role::Client, OpCode::Pong, true, b"other"),
    )
    .unwrap();
    assert!(conn.awaiting_pong());
    // The matching pong, then an unsolicited one, in one read: it counts.
    let mut wire = peer_frame(Role::Client, OpCode::Pong, true, b"k1");
    wire.extend(peer_frame(Role::Client, OpCode::Pong, true, b"late"));
    feed(&mut conn, &wire).unwrap();
    assert!(!conn.awaiting_pong());
    assert_eq!(conn.take_pong(), Some(Bytes::from_static(b"late")));
}
