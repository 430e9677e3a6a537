//! permessage-deflate: negotiation and the compressed data path.
//!
//! The first byte picks the client's offer parameters (sent through the
//! real server-side negotiation, `UpgradeOffer::choose_deflate`, under a
//! server policy from the second byte) and the limits. Then operations:
//! the client sends a message that is delivered to the server in
//! input-sized pieces (it must arrive intact, whatever the parameters and
//! the threshold), or raw input bytes are fed to the server as a compressed
//! message from a misbehaving client (which may fail the connection with a
//! protocol error, never panic, and never hold more than the limit).
//!
//! Input: `[offer] [policy] [op]...`.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wsstream::handshake::parse_request;
use wsstream::proto::{Connection, Limits, OpCode, Role, RSV1};
use wsstream::{DeflateConfig, Message};
use wsstream_fuzz::{frame, key, Input};

const LIMIT: usize = 1 << 20;

fn config(bits: u8) -> DeflateConfig {
    DeflateConfig::default()
        .client_no_context_takeover(bits & 1 != 0)
        .server_no_context_takeover(bits & 2 != 0)
        .client_max_window_bits(8 + (bits >> 2 & 7))
        .server_max_window_bits(8 + (bits >> 5 & 7))
        .threshold(usize::from(bits & 0x10) * 4)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let offer = config(input.u8());
    let policy = config(input.u8());
    let request = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: {}\r\n\r\n",
        offer_header(&offer)
    );
    let head = parse_request(&mut BytesMut::from(request.as_bytes()))
        .expect("a valid request")
        .expect("a whole request");
    let (params, _answer) = head
        .offer
        .choose_deflate(&policy)
        .expect("the server accepts every offer wsstream makes");

    let mut limits = Limits::default();
    limits.max_message_size = LIMIT;
    let mut client = Connection::new(Role::Client, limits);
    let mut server = Connection::new(Role::Server, limits);
    client.enable_deflate(&params, &offer);
    server.enable_deflate(&params, &policy);

    let mut wire = BytesMut::new();
    let mut poisoned = false;
    while !input.is_empty() && server.failure().is_none() {
        match input.below(3) {
            0 if !poisoned => {
                let body = input.payload(70_000);
                let message = if input.bool() {
                    Message::text(String::from_utf8_lossy(&body).into_owned())
                } else {
                    Message::binary(body)
                };
                if client.send(message.clone()).is_err() {
                    return;
                }
                let out = client.outgoing();
                while bytes::Buf::has_remaining(out) {
                    let chunk = bytes::Buf::chunk(out);
                    wire.extend_from_slice(chunk);
                    let n = chunk.len();
                    bytes::Buf::advance(out, n);
                }
                let mut inbox = BytesMut::new();
                let mut received = Vec::new();
                while !wire.is_empty() {
                    let take = (input.size(wire.len()) + 1).min(wire.len());
                    inbox.extend_from_slice(&wire.split_to(take));
                    while let Some(got) = server.receive(&mut inbox).expect("our traffic is valid") {
                        received.push(got);
                    }
                }
                assert!(inbox.is_empty(), "{params:?}");
                assert_eq!(received, [message], "{params:?}");
            }
            _ => {
                // A client that compresses garbage (or real data wrongly).
                poisoned = true;
                let payload = input.payload(4096);
                let fin = input.bool();
                let opcode = if input.bool() { OpCode::Text } else { OpCode::Continuation };
                let mut bytes = frame(fin, opcode, key(&mut input, true), &payload);
                if input.bool() {
                    bytes[0] |= RSV1;
                }
                let mut buf = BytesMut::from(&bytes[..]);
                while let Ok(Some(message)) = server.receive(&mut buf) {
                    assert!(message.len() <= LIMIT);
                }
            }
        }
    }
});

/// The offer exactly as `Options::deflate(config)` sends it.
fn offer_header(config: &DeflateConfig) -> String {
    let target = wsstream::handshake::Target::parse("ws://x/").expect("a valid URL");
    let handshake = wsstream::handshake::ClientHandshake::offering(
        &target,
        &[],
        &http::HeaderMap::new(),
        Some(*config),
    )
    .expect("randomness for the key");
    let request = String::from_utf8_lossy(handshake.request()).into_owned();
    request
        .lines()
        .find_map(|line| line.strip_prefix("Sec-WebSocket-Extensions: "))
        .expect("the offer is in the request")
        .to_owned()
}
