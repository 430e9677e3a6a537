//! The client's check of the server's answer, fed as the real client feeds
//! it: bytes arrive in input-chosen chunks and `read_response` runs only
//! once `HeadScan` sees the end of the head or the buffer passes
//! `MAX_HEAD_LEN`.
//!
//! The accept key is derived from a random `Sec-WebSocket-Key`, which no
//! input can know, so the target can splice the right
//! `Sec-WebSocket-Accept` into the head: after the status line (mode bit 0)
//! and in place of every `$A` (mode bit 1). Mode bit 2 pads the head with
//! filler fields, `(mode >> 3) * 2200` bytes, to reach the 64 KiB cap.
//!
//! Input: `[mode] [n] [n chunk sizes] [response bytes...]`.

#![no_main]

use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use wsstream::handshake::{
    accept_key, ClientHandshake, HandshakeError, Target, MAX_HEADERS, MAX_HEAD_LEN,
};
use wsstream_fuzz::{feed_head, Input};

fn key_of(request: &[u8]) -> String {
    let text = std::str::from_utf8(request).expect("request is not UTF-8");
    let line = text
        .lines()
        .find(|l| l.starts_with("Sec-WebSocket-Key: "))
        .expect("request has no key");
    line["Sec-WebSocket-Key: ".len()..].to_owned()
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mode = input.u8();
    let n_sizes = input.below(16);
    let sizes: Vec<usize> = input
        .bytes(n_sizes)
        .iter()
        .map(|&s| {
            if s < 128 {
                usize::from(s)
            } else {
                usize::from(s - 127) * 512
            }
        })
        .collect();
    let body = input.rest();

    let target = Target::parse("ws://example.test/x").expect("fixed target");
    let protocols = ["a".to_owned(), "b".to_owned()];
    let hs = ClientHandshake::new(&target, &protocols, &HeaderMap::new()).expect("randomness");
    let accept = accept_key(key_of(hs.request()).as_bytes());

    let mut wire = body.to_vec();
    if mode & 2 != 0 {
        wire = replace_all(&wire, b"$A", accept.as_bytes());
    }
    let after_status_line = wire.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut insert = Vec::new();
    if mode & 1 != 0 {
        insert.extend_from_slice(format!("Sec-WebSocket-Accept: {accept}\r\n").as_bytes());
    }
    if mode & 4 != 0 {
        let filler = usize::from(mode >> 3) * 2200;
        while insert.len() < filler {
            insert
                .extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
    }
    wire.splice(after_status_line..after_status_line, insert);

    let (buf, fed, verdict) = feed_head(&wire, &sizes, |buf| hs.read_response(buf));

    let fed_bytes = &wire[..fed];
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let parsed = response.parse(fed_bytes);
    match verdict {
        None => {
            // The client must not sit on a complete head waiting for more.
            assert!(buf.len() <= MAX_HEAD_LEN, "over-long head never judged");
            assert!(
                !matches!(parsed, Ok(httparse::Status::Complete(_))),
                "complete head never judged"
            );
        }
        Some(Ok(negotiated)) => {
            let Ok(httparse::Status::Complete(head_len)) = parsed else {
                panic!("accepted a response httparse does not see as complete: {parsed:?}");
            };
            assert!(head_len <= MAX_HEAD_LEN);
            assert_eq!(&buf[..], &fed_bytes[head_len..], "bytes after the head");
            assert_eq!(response.code, Some(101));
            let find = |name: &str| {
                response
                    .headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| h.value)
                    .collect::<Vec<_>>()
            };
            assert!(find("upgrade").iter().any(|v| has_token(v, "websocket")));
            assert!(find("connection").iter().any(|v| has_token(v, "upgrade")));
            let accepts = find("sec-websocket-accept");
            assert_eq!(accepts.len(), 1, "accept header count");
            assert_eq!(accepts[0].trim_ascii(), accept.as_bytes());
            match negotiated.protocol.as_deref() {
                None => assert!(find("sec-websocket-protocol").is_empty()),
                Some(p) => {
                    assert!(
                        protocols.iter().any(|o| o == p),
                        "protocol {p:?} not offered"
                    );
                    assert_eq!(find("sec-websocket-protocol").len(), 1);
                }
            }
            assert!(negotiated.extensions.is_empty());
        }
        Some(Err(err)) => {
            let _ = err.to_string();
            if let HandshakeError::Status { status, .. } = &err {
                assert_ne!(status.as_u16(), 101);
                assert_eq!(response.code, Some(status.as_u16()));
            }
        }
    }
});
