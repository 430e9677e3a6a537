//! A prepared message must put on the wire exactly what an ordinary send
//! would, for every role and deflate setting, while encoding (and
//! compressing) once where the settings allow it.

use bytes::{Buf, Bytes, BytesMut};

use super::{Connection, Limits, Message, PreparedMessage, Role};

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

fn messages() -> Vec<Message> {
    vec![
        Message::text(""),
        Message::text("tick"),
        Message::binary(vec![7u8; 125]),
        Message::binary((0..600u32).map(|i| i as u8).collect::<Vec<u8>>()),
        Message::text("é".repeat(40_000)),
    ]
}

#[test]
fn a_server_sends_the_same_bytes_as_an_ordinary_send() {
    for message in messages() {
        let prepared = PreparedMessage::new(message.clone());
        let mut ordinary = Connection::new(Role::Server, Limits::default());
        ordinary.send(message.clone()).unwrap();
        let want = wire_of(&mut ordinary);
        for _ in 0..3 {
            let mut conn = Connection::new(Role::Server, Limits::default());
            conn.send_prepared(&prepared).unwrap();
            assert_eq!(wire_of(&mut conn), want, "{} bytes", message.len());
        }
    }
}

#[test]
fn every_server_connection_shares_one_encoded_frame() {
    let prepared = PreparedMessage::new(Message::binary(vec![1u8; 4096]));
    let first = prepared.server_frame();
    let second = prepared.server_frame();
    assert_eq!(first.as_ptr(), second.as_ptr(), "encoded twice");
    let mut conn = Connection::new(Role::Server, Limits::default());
    conn.send_prepared(&prepared).unwrap();
    // A large frame goes into the queue as the shared buffer, not a copy.
    assert_eq!(conn.outgoing().chunk().as_ptr(), first.as_ptr());
}

#[test]
fn a_batch_in_runs_puts_on_the_wire_what_its_messages_would_one_by_one() {
    let batch: Vec<PreparedMessage> = (0..300usize)
        .map(|i| PreparedMessage::new(Message::binary(vec![i as u8; (i * 37) % 700])))
        .chain(messages().into_iter().map(PreparedMessage::new))
        .collect();
    let mut one_by_one = Connection::new(Role::Server, Limits::default());
    for message in &batch {
        one_by_one.send_prepared(message).unwrap();
    }
    let want = wire_of(&mut one_by_one);
    let runs = super::frame_runs(&batch, 4096);
    assert_eq!(runs.iter().map(|run| run.count).sum::<usize>(), batch.len());
    // Runs hold at most the limit, but for a large frame alone, which is
    // the message's shared frame itself.
    for run in &runs {
        assert!(
            run.frames.len() <= 4096 || run.count == 1,
            "{}",
            run.frames.len()
        );
    }
    let large = runs.last().unwrap();
    assert_eq!(
        large.frames.as_ptr(),
        batch.last().unwrap().server_frame().as_ptr()
    );
    let mut conn = Connection::new(Role::Server, Limits::default());
    for run in &runs {
        assert!(conn.send_frame_run(&run.frames));
    }
    assert_eq!(wire_of(&mut conn), want);
    // Where sending one by one would not queue the plain frames, a run
    // queues nothing: a client masks, a fragmented message is under way.
    let mut client = Connection::new(Role::Client, Limits::default());
    assert!(!client.send_frame_run(&runs[0].frames));
    let mut busy = Connection::new(Role::Server, Limits::default());
    busy.send_fragment(
        crate::proto::MessageKind::Text,
        Bytes::from_static(b"a"),
        false,
    )
    .unwrap();
    assert!(!busy.send_frame_run(&runs[0].frames));
    let mut closing = Connection::new(Role::Server, Limits::default());
    assert!(closing.close(None));
    assert!(!closing.send_frame_run(&runs[0].frames));
}

#[test]
fn a_client_masks_each_prepared_message_itself() {
    let prepared = PreparedMessage::new(Message::text("same text, two keys"));
    let mut server = Connection::new(Role::Server, Limits::default());
    let mut client = Connection::new(Role::Client, Limits::default());
    client.send_prepared(&prepared).unwrap();
    client.send_prepared(&prepared).unwrap();
    let wire = wire_of(&mut client);
    let half = wire.len() / 2;
    assert_ne!(wire[..half], wire[half..], "same masking key twice");
    let mut buf = BytesMut::from(&wire[..]);
    for _ in 0..2 {
        let got = server.receive(&mut buf).unwrap().unwrap();
        assert_eq!(got.as_text(), Some("same text, two keys"));
    }
}

#[test]
fn nothing_goes_after_a_close_and_nothing_inside_a_fragmented_message() {
    let prepared = PreparedMessage::new(Message::text("late"));
    let mut conn = Connection::new(Role::Server, Limits::default());
    conn.close(None);
    assert!(conn.send_prepared(&prepared).is_err());
    let mut conn = Connection::new(Role::Server, Limits::default());
    conn.send_fragment(crate::MessageKind::Text, Bytes::from_static(b"part"), false)
        .unwrap();
    assert!(conn.send_prepared(&prepared).is_err());
    // As for an ordinary send: the fragmented message is abandoned (1011).
    assert!(conn.close_sent());
}

#[cfg(feature = "deflate")]
mod deflate {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::handshake::{DeflateConfig, DeflateParams};

    fn server(no_takeover: bool, window_bits: u8) -> Connection {
        let params = DeflateParams {
            server_no_context_takeover: no_takeover,
            client_no_context_takeover: false,
            server_max_window_bits: window_bits,
            client_max_window_bits: 15,
        };
        let mut conn = Connection::new(Role::Server, Limits::default());
        conn.enable_deflate(&params, &DeflateConfig::default());
        conn
    }

    fn client(window_bits: u8) -> Connection {
        let params = DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: window_bits,
            client_max_window_bits: 15,
        };
        let mut conn = Connection::new(Role::Client, Limits::default());
        conn.enable_deflate(&params, &DeflateConfig::default());
        conn
    }

    fn read_all(client: &mut Connection, wire: &[u8]) -> Vec<Message> {
        let mut buf = BytesMut::from(wire);
        let mut got = Vec::new();
        while let Some(message) = client.receive(&mut buf).unwrap() {
            got.push(message);
        }
        assert!(buf.is_empty());
        got
    }

    #[test]
    fn without_context_takeover_the_message_is_compressed_once_for_every_connection() {
        for bits in [9, 12, 15] {
            for message in messages() {
                let prepared = PreparedMessage::new(message.clone());
                let mut ordinary = server(true, bits);
                ordinary.send(message.clone()).unwrap();
                let want = wire_of(&mut ordinary);
                for _ in 0..3 {
                    let mut conn = server(true, bits);
                    conn.send_prepared(&prepared).unwrap();
                    let wire = wire_of(&mut conn);
                    assert_eq!(wire, want, "{bits} bits, {} bytes", message.len());
                    assert_eq!(read_all(&mut client(bits), &wire), vec![message.clone()]);
                }
            }
        }
        // Counted: one compression per settings, however many connections.
        let calls = AtomicUsize::new(0);
        let prepared = PreparedMessage::new(Message::text("x".repeat(1000)));
        let settings = |window_bits| crate::proto::prepared::SharedDeflate {
            level: 1,
            window_bits,
        };
        for bits in [15, 15, 12, 15, 12] {
            let frame = prepared.compressed_server_frame(settings(bits), |payload| {
                calls.fetch_add(1, Ordering::Relaxed);
                crate::proto::deflate::compress_alone(settings(bits), payload)
            });
            assert!(frame.is_some());
        }
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_connection_with_deflate_takes_a_batch_message_by_message() {
        let message = PreparedMessage::new(Message::text("x".repeat(100)));
        let frames = message.server_frame().clone();
        assert!(!server(true, 15).send_frame_run(&frames));
    }

    #[test]
    fn with_context_takeover_each_connection_compresses_in_its_own_context() {
        let prepared = PreparedMessage::new(Message::text("the same words again ".repeat(20)));
        let mut conn = server(false, 15);
        let mut peer = client(15);
        conn.send_prepared(&prepared).unwrap();
        let first = wire_of(&mut conn);
        conn.send_prepared(&prepared).unwrap();
        let second = wire_of(&mut conn);
        // The second refers back to the first: shorter, and only readable
        // in the same context.
        assert!(
            second.len() < first.len(),
            "{} vs {}",
            second.len(),
            first.len()
        );
        let got = read_all(&mut peer, &[first, second].concat());
        assert_eq!(got, vec![prepared.message().clone(); 2]);
    }
}
