//! Messages read in chunks and sent in fragments, without a runtime: what
//! `receive_event` reports as bytes arrive in reads of any size, what the
//! limits and UTF-8 rules do to it, and the frames `send_fragment` makes.

use bytes::{Bytes, BytesMut};

use super::tests::sent_frames;
use super::*;

/// Encodes a frame as the peer of `us` would send it.
fn peer_frame(us: Role, opcode: OpCode, fin: bool, rsv: u8, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv,
        opcode,
        mask: (us == Role::Server).then_some([0x37, 0xFA, 0x21, 0x3D]),
        payload_len: 0,
    };
    let mut out = BytesMut::new();
    encode_frame(&header, payload, &mut out);
    out.to_vec()
}

/// A message as the peer sends it, in fragments of `fragment` bytes.
fn fragmented(us: Role, opcode: OpCode, payload: &[u8], fragment: usize) -> Vec<u8> {
    let pieces: Vec<&[u8]> = payload.chunks(fragment).collect();
    let mut wire = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let op = if i == 0 { opcode } else { OpCode::Continuation };
        wire.extend(peer_frame(us, op, i + 1 == pieces.len(), 0, piece));
    }
    wire
}

/// What a streamed read of `wire`, arriving `read` bytes at a time, reports:
/// the events (chunks as they come) and the error, if any.
fn stream_read(
    conn: &mut Connection,
    wire: &[u8],
    read: usize,
) -> (Vec<Received>, Option<ProtocolError>) {
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    conn.stream_next_message();
    for piece in wire.chunks(read.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match conn.receive_event(&mut buf) {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(err) => return (events, Some(err)),
            }
        }
        // At most the read, or part of a header.
        assert!(
            buf.len() <= read.max(MAX_HEADER_LEN),
            "the buffer held {} bytes",
            buf.len()
        );
    }
    (events, None)
}

fn joined(events: &[Received]) -> Vec<u8> {
    let mut out = Vec::new();
    for event in events {
        if let Received::Chunk(chunk) = event {
            out.extend_from_slice(chunk);
        }
    }
    out
}

fn close_code_sent(conn: &mut Connection) -> Option<u16> {
    let frames = sent_frames(conn);
    let close = frames.iter().find(|f| f.header.opcode == OpCode::Close)?;
    Some(u16::from_be_bytes([close.payload[0], close.payload[1]]))
}

#[test]
fn chunks_come_as_the_bytes_arrive_and_the_buffer_never_holds_a_frame() {
    for role in [Role::Client, Role::Server] {
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        // One frame far larger than a read, then fragments around a ping.
        let mut wire = peer_frame(role, OpCode::Binary, false, 0, &payload[..200_000]);
        wire.extend(peer_frame(role, OpCode::Ping, true, 0, b"p"));
        wire.extend(fragmented(
            role,
            OpCode::Continuation,
            &payload[200_000..],
            30_000,
        ));
        let mut conn = Connection::new(role, Limits::default());
        let (events, err) = stream_read(&mut conn, &wire, 4096);
        assert_eq!(err, None);
        assert_eq!(events[0], Received::MessageStart(MessageKind::Binary));
        assert_eq!(events.last(), Some(&Received::MessageEnd));
        assert!(
            events.len() > 70,
            "{} events: chunks per read",
            events.len()
        );
        assert_eq!(joined(&events), payload);
        let sent = sent_frames(&mut conn);
        assert_eq!(sent[0].header.opcode, OpCode::Pong, "the ping was answered");
        // The next message is whole again.
        let mut buf = BytesMut::from(&peer_frame(role, OpCode::Text, true, 0, b"next")[..]);
        assert_eq!(conn.receive(&mut buf), Ok(Some(Message::text("next"))));
    }
}

#[test]
fn text_chunks_are_valid_on_their_own_whatever_the_cuts() {
    let text = "€uro, 𝄞 clef, κόσμε; ".repeat(500);
    for fragment in [1, 2, 3, 7, 1000] {
        for read in [1, 5, 4096] {
            let wire = fragmented(Role::Client, OpCode::Text, text.as_bytes(), fragment);
            let mut conn = Connection::new(Role::Client, Limits::default());
            let (events, err) = stream_read(&mut conn, &wire, read);
            assert_eq!(err, None);
            assert_eq!(events[0], Received::MessageStart(MessageKind::Text));
            for event in &events {
                if let Received::Chunk(chunk) = event {
                    assert!(!chunk.is_empty());
                    assert!(std::str::from_utf8(chunk).is_ok(), "{chunk:?}");
                }
            }
            assert_eq!(joined(&events), text.as_bytes());
        }
    }
}

#[test]
fn invalid_text_fails_at_its_first_bad_byte_after_every_valid_one() {
    // 3 MiB of text with a bad byte 2.5 MiB in, in 1 MiB frames.
    let mut text = "ab€".repeat(3 << 18).into_bytes();
    let bad = (5 << 19) + 1;
    text[bad] = 0xff;
    let wire = fragmented(Role::Client, OpCode::Text, &text, 1 << 20);
    let mut conn = Connection::new(Role::Client, Limits::default());
    let (events, err) = stream_read(&mut conn, &wire, 65_536);
    assert_eq!(err, Some(ProtocolError::InvalidUtf8));
    let valid_up_to = std::str::from_utf8(&text).unwrap_err().valid_up_to();
    assert_eq!(joined(&events), &text[..valid_up_to]);
    assert_eq!(close_code_sent(&mut conn), Some(1007));
}

#[test]
fn a_streamed_message_passes_the_whole_message_limit_but_not_its_own() {
    let limits = Limits {
        max_frame_size: 1 << 16,
        max_message_size: 1 << 16,
        max_streamed_message_size: 1 << 20,
    };
    let payload = vec![7u8; 1 << 20];
    let wire = fragmented(Role::Client, OpCode::Binary, &payload, 1 << 16);
    let mut conn = Connection::new(Role::Client, limits);
    let (events, err) = stream_read(&mut conn, &wire, 8192);
    assert_eq!(err, None);
    assert_eq!(joined(&events).len(), 1 << 20);

    let one_more = fragmented(Role::Client, OpCode::Binary, &[1; (1 << 20) + 1], 1 << 16);
    let mut conn = Connection::new(Role::Client, limits);
    let (events, err) = stream_read(&mut conn, &one_more, 8192);
    assert!(
        matches!(err, Some(ProtocolError::MessageTooLarge { .. })),
        "{err:?}"
    );
    // It fails on the last frame's header, with the rest handed out.
    assert_eq!(joined(&events).len(), 1 << 20);
    assert_eq!(close_code_sent(&mut conn), Some(1009));
    // Frames stay bounded by their own limit.
    let mut conn = Connection::new(Role::Client, limits);
    let big_frame = peer_frame(Role::Client, OpCode::Binary, true, 0, &[0; (1 << 16) + 1]);
    let (_, err) = stream_read(&mut conn, &big_frame, 8192);
    assert!(
        matches!(err, Some(ProtocolError::FrameTooLarge { .. })),
        "{err:?}"
    );
}

#[test]
fn a_discarded_message_is_still_checked_and_the_next_one_arrives_whole() {
    let text = "discard me ".repeat(10_000);
    let mut wire = fragmented(Role::Server, OpCode::Text, text.as_bytes(), 5000);
    wire.extend(peer_frame(Role::Server, OpCode::Binary, true, 0, b"after"));
    let mut conn = Connection::new(Role::Server, Limits::default());
    conn.stream_next_message();
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(
        conn.receive_event(&mut buf),
        Ok(Some(Received::MessageStart(MessageKind::Text)))
    );
    assert!(matches!(
        conn.receive_event(&mut buf),
        Ok(Some(Received::Chunk(_)))
    ));
    conn.discard_streamed_message();
    assert_eq!(
        conn.receive_event(&mut buf),
        Ok(Some(Received::Message(Message::binary(&b"after"[..]))))
    );

    // Invalid text in the discarded part still fails the connection.
    let mut wire = peer_frame(Role::Server, OpCode::Text, false, 0, b"fine");
    wire.extend(peer_frame(
        Role::Server,
        OpCode::Continuation,
        true,
        0,
        b"\xff",
    ));
    let mut conn = Connection::new(Role::Server, Limits::default());
    conn.stream_next_message();
    let mut buf = BytesMut::from(&wire[..]);
    assert!(conn.receive_event(&mut buf).unwrap().is_some());
    conn.discard_streamed_message();
    assert_eq!(
        conn.receive_event(&mut buf),
        Err(ProtocolError::InvalidUtf8)
    );
}

#[test]
fn a_message_begun_whole_goes_on_in_chunks_from_where_it_is() {
    let mut wire = peer_frame(Role::Client, OpCode::Binary, false, 0, b"first ");
    wire.extend(peer_frame(
        Role::Client,
        OpCode::Continuation,
        true,
        0,
        b"second",
    ));
    let cut = wire.len() - 3;
    let mut conn = Connection::new(Role::Client, Limits::default());
    let mut buf = BytesMut::from(&wire[..cut]);
    assert_eq!(conn.receive(&mut buf), Ok(None));
    conn.stream_next_message();
    let mut events = Vec::new();
    while let Some(event) = conn.receive_event(&mut buf).unwrap() {
        events.push(event);
    }
    buf.extend_from_slice(&wire[cut..]);
    while let Some(event) = conn.receive_event(&mut buf).unwrap() {
        events.push(event);
    }
    assert_eq!(events[0], Received::MessageStart(MessageKind::Binary));
    assert_eq!(events[1], Received::Chunk(Bytes::from_static(b"first ")));
    assert_eq!(joined(&events), b"first second");
    assert_eq!(events.last(), Some(&Received::MessageEnd));
}

/// Regression (stream fuzz target): asked for in chunks while the
/// decoder was inside the message's first frame, read whole so far (its
/// header and part of its payload), the message lost that part and its
/// start.
#[test]
fn a_message_whose_first_frame_began_whole_goes_on_in_chunks() {
    for fin in [true, false] {
        let text = "première trame, commencée entière".as_bytes();
        let mut wire = peer_frame(Role::Server, OpCode::Text, fin, 0, text);
        if !fin {
            wire.extend(peer_frame(
                Role::Server,
                OpCode::Continuation,
                true,
                0,
                b" + fin",
            ));
        }
        for cut in 3..text.len() {
            let mut conn = Connection::new(Role::Server, Limits::default());
            let mut buf = BytesMut::from(&wire[..cut]);
            assert_eq!(conn.receive(&mut buf), Ok(None));
            conn.stream_next_message();
            let mut events = Vec::new();
            buf.extend_from_slice(&wire[cut..]);
            while let Some(event) = conn.receive_event(&mut buf).unwrap() {
                events.push(event);
            }
            assert_eq!(
                events[0],
                Received::MessageStart(MessageKind::Text),
                "cut {cut}"
            );
            let mut expected = text.to_vec();
            if !fin {
                expected.extend_from_slice(b" + fin");
            }
            assert_eq!(joined(&events), expected, "cut {cut}");
            assert_eq!(events.last(), Some(&Received::MessageEnd));
        }
    }
}

/// Regression (connection fuzz target): asked for after a failure that
/// left a data frame half-read in the decoder, a message began anyway.
#[test]
fn nothing_begins_after_a_failure() {
    let mut wire = peer_frame(Role::Client, OpCode::Text, true, 0, b"half of this");
    wire.truncate(6);
    let mut conn = Connection::new(Role::Client, Limits::default());
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(conn.receive(&mut buf), Ok(None));
    conn.fail(ProtocolError::InvalidUtf8);
    conn.stream_next_message();
    assert_eq!(conn.receive_event(&mut buf), Ok(None));
    assert!(!conn.is_streaming_in());
}

#[test]
fn a_request_withdrawn_before_the_message_began_leaves_it_whole() {
    let mut conn = Connection::new(Role::Client, Limits::default());
    conn.stream_next_message();
    assert!(conn.cancel_stream_request());
    let mut buf = BytesMut::from(&peer_frame(Role::Client, OpCode::Text, true, 0, b"hi")[..]);
    assert_eq!(
        conn.receive_event(&mut buf),
        Ok(Some(Received::Message(Message::text("hi"))))
    );
    // Once it began, it stays in chunks.
    let mut conn = Connection::new(Role::Client, Limits::default());
    conn.stream_next_message();
    let mut buf = BytesMut::from(&peer_frame(Role::Client, OpCode::Text, false, 0, b"hi")[..]);
    assert!(conn.receive_event(&mut buf).unwrap().is_some());
    assert!(!conn.cancel_stream_request());
}

#[test]
fn fragments_make_one_message_with_control_frames_between_them() {
    for role in [Role::Client, Role::Server] {
        let mut conn = Connection::new(role, Limits::default());
        let kind = MessageKind::Text;
        conn.send_fragment(kind, Bytes::from_static(b"one "), false)
            .unwrap();
        conn.send_ping(Bytes::from_static(b"p")).unwrap();
        conn.send_fragment(kind, Bytes::new(), false).unwrap();
        conn.send_fragment(kind, Bytes::from_static(b"two"), true)
            .unwrap();
        let frames = sent_frames(&mut conn);
        let shape: Vec<(OpCode, bool)> = frames
            .iter()
            .map(|f| (f.header.opcode, f.header.fin))
            .collect();
        assert_eq!(
            shape,
            [
                (OpCode::Text, false),
                (OpCode::Ping, true),
                (OpCode::Continuation, false),
                (OpCode::Continuation, true)
            ]
        );
        assert!(frames
            .iter()
            .all(|f| f.header.mask.is_some() == (role == Role::Client)));
        assert!(!conn.is_sending_fragments());
        // The next message starts afresh.
        conn.send(Message::binary(&b"next"[..])).unwrap();
        assert_eq!(sent_frames(&mut conn)[0].header.opcode, OpCode::Binary);
    }
}

#[test]
fn a_message_cannot_follow_part_of_another_the_connection_closes_with_1011() {
    let mut conn = Connection::new(Role::Client, Limits::default());
    conn.send_fragment(MessageKind::Binary, Bytes::from_static(b"half"), false)
        .unwrap();
    assert!(matches!(
        conn.send(Message::text("other")),
        Err(SendError::Closing)
    ));
    let frames = sent_frames(&mut conn);
    assert_eq!(frames.len(), 2, "the fragment, then the close: {frames:?}");
    assert_eq!(frames[1].header.opcode, OpCode::Close);
    assert_eq!(
        u16::from_be_bytes([frames[1].payload[0], frames[1].payload[1]]),
        1011
    );

    let mut conn = Connection::new(Role::Server, Limits::default());
    conn.send_fragment(MessageKind::Binary, Bytes::from_static(b"half"), false)
        .unwrap();
    assert!(conn.abandon_message());
    assert!(!conn.abandon_message(), "only once");
    assert_eq!(close_code_sent(&mut conn), Some(1011));
    assert!(conn
        .send_fragment(MessageKind::Binary, Bytes::new(), true)
        .is_err());
}

#[cfg(feature = "deflate")]
mod deflate {
    use bytes::Buf;

    use super::*;
    use crate::handshake::{DeflateConfig, DeflateParams};

    fn pair(no_takeover: bool) -> (Connection, Connection) {
        let params = DeflateParams {
            server_no_context_takeover: no_takeover,
            client_no_context_takeover: no_takeover,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let mut client = Connection::new(Role::Client, Limits::default());
        let mut server = Connection::new(Role::Server, Limits::default());
        client.enable_deflate(&params, &DeflateConfig::default());
        server.enable_deflate(&params, &DeflateConfig::default());
        (client, server)
    }

    fn wire_of(conn: &mut Connection) -> Vec<u8> {
        let out = conn.outgoing();
        let mut wire = Vec::new();
        while out.has_remaining() {
            let n = out.chunk().len();
            wire.extend_from_slice(out.chunk());
            out.advance(n);
        }
        wire
    }

    #[test]
    fn a_message_sent_in_fragments_is_compressed_as_one_and_read_in_chunks() {
        for no_takeover in [false, true] {
            for (from_role, (mut from, mut to)) in [
                (Role::Client, pair(no_takeover)),
                (Role::Server, {
                    let (c, s) = pair(no_takeover);
                    (s, c)
                }),
            ] {
                let text = "{\"tick\":12345,\"price\":\"101.25\",\"note\":\"€\"} ".repeat(20_000);
                for _ in 0..2 {
                    for piece in text.as_bytes().chunks(100_000) {
                        from.send_fragment(MessageKind::Text, Bytes::copy_from_slice(piece), false)
                            .unwrap();
                    }
                    from.send_fragment(MessageKind::Text, Bytes::new(), true)
                        .unwrap();
                    let wire = wire_of(&mut from);
                    assert!(wire.len() < text.len() / 10, "{} bytes", wire.len());
                    let (events, err) = stream_read(&mut to, &wire, 16_384);
                    assert_eq!(err, None, "{from_role:?}");
                    for event in &events {
                        if let Received::Chunk(chunk) = event {
                            assert!(chunk.len() <= 64 * 1024);
                        }
                    }
                    assert_eq!(joined(&events), text.as_bytes());
                    // And a whole message after it, each way.
                    from.send(Message::text("after")).unwrap();
                    let mut buf = BytesMut::from(&wire_of(&mut from)[..]);
                    assert_eq!(to.receive(&mut buf), Ok(Some(Message::text("after"))));
                }
            }
        }
    }

    #[test]
    fn a_compression_bomb_read_in_chunks_is_bounded_per_chunk_and_by_the_limit() {
        let (mut client, _) = pair(false);
        client.send(Message::binary(vec![0u8; 32 << 20])).unwrap();
        let wire = wire_of(&mut client);
        let limits = Limits {
            max_streamed_message_size: 16 << 20,
            ..Limits::default()
        };
        let mut server = Connection::new(Role::Server, limits);
        server.enable_deflate(
            &DeflateParams {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: 15,
                client_max_window_bits: 15,
            },
            &DeflateConfig::default(),
        );
        let (events, err) = stream_read(&mut server, &wire, 65_536);
        assert!(
            matches!(err, Some(ProtocolError::MessageTooLarge { .. })),
            "{err:?}"
        );
        assert!(events.iter().all(|e| match e {
            Received::Chunk(chunk) => chunk.len() <= 64 * 1024,
            _ => true,
        }));
        assert_eq!(close_code_sent(&mut server), Some(1009));
    }
}

#[test]
fn receive_control_answers_pings_and_leaves_data_and_bad_frames_for_the_reader() {
    let role = Role::Client;
    let mut wire = peer_frame(role, OpCode::Ping, true, 0, b"p1");
    wire.extend(peer_frame(role, OpCode::Text, true, 0, b"data"));
    wire.extend(peer_frame(role, OpCode::Ping, true, 0, b"p2"));
    let mut conn = Connection::new(role, Limits::default());
    let mut buf = BytesMut::from(&wire[..]);
    assert!(conn.receive_control(&mut buf), "stopped at the data frame");
    let sent = sent_frames(&mut conn);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].header.opcode, &sent[0].payload[..]),
        (OpCode::Pong, &b"p1"[..])
    );
    // The data frame is still there, in order, for the reader.
    assert_eq!(conn.receive(&mut buf), Ok(Some(Message::text("data"))));
    assert_eq!(conn.receive(&mut buf), Ok(None));
    assert_eq!(sent_frames(&mut conn)[0].payload, Bytes::from_static(b"p2"));

    // A bad frame (reserved bits) is not judged here: the reader fails on
    // it when it gets there, after the message before it.
    let mut wire = peer_frame(role, OpCode::Text, true, 0, b"first");
    wire.extend(peer_frame(role, OpCode::Text, true, 0x20, b"bad"));
    let mut conn = Connection::new(role, Limits::default());
    let mut buf = BytesMut::from(&wire[..]);
    assert!(conn.receive_control(&mut buf));
    assert!(conn.failure().is_none());
    assert_eq!(conn.receive(&mut buf), Ok(Some(Message::text("first"))));
    assert!(conn.receive(&mut buf).is_err());

    // A ping that fails its own checks (masked, to a client) is left too.
    let mut buf = BytesMut::from(&peer_frame(Role::Server, OpCode::Ping, true, 0, b"x")[..]);
    let mut conn = Connection::new(Role::Client, Limits::default());
    assert!(conn.receive_control(&mut buf));
    assert!(conn.failure().is_none() && !buf.is_empty());

    // The peer's close is taken and answered.
    let mut close = peer_frame(role, OpCode::Close, true, 0, &[0x03, 0xe8]);
    close.extend(peer_frame(role, OpCode::Text, true, 0, b"late"));
    let mut conn = Connection::new(role, Limits::default());
    let mut buf = BytesMut::from(&close[..]);
    assert!(!conn.receive_control(&mut buf));
    assert!(conn.close_received().is_some());
    assert_eq!(close_code_sent(&mut conn), Some(1000));
}
