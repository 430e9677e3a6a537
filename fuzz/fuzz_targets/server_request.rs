//! The server's check of an upgrade request, fed as `WebSocketStream::accept`
//! feeds it: bytes in input-chosen chunks, `parse_request` once `HeadScan`
//! sees the end of the head or the buffer passes `MAX_HEAD_LEN`. An accepted
//! request's 101 answer and a rejected one's error answer must both parse
//! back with httparse.
//!
//! Input: `[mode] [n] [n chunk sizes] [request bytes...]`. mode picks the
//! subprotocol the server answers with (none, or one the client offered);
//! mode bit 7 pads the head with filler fields to reach the 64 KiB cap.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wsstream::handshake::{
    accept_key, parse_request, reject_response, HandshakeError, ServerReply, MAX_HEADERS,
    MAX_HEAD_LEN,
};
use wsstream_fuzz::{feed_head, Input};

fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

fn field<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> Vec<&'a [u8]> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
        .collect()
}

/// An answer the server writes must be a whole HTTP/1.1 response.
fn parse_answer(bytes: &[u8], expect_code: u16) -> (usize, Vec<(String, Vec<u8>)>) {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let status = response
        .parse(bytes)
        .unwrap_or_else(|e| panic!("server answer does not parse ({e}): {bytes:?}"));
    let httparse::Status::Complete(len) = status else {
        panic!("server answer is incomplete: {bytes:?}");
    };
    assert_eq!(response.version, Some(1));
    assert_eq!(response.code, Some(expect_code));
    let headers = response
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    (len, headers)
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
    let mut wire = input.rest().to_vec();
    if mode & 0x80 != 0 {
        let at = wire.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
        let filler: Vec<u8> = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
            .iter()
            .copied()
            .cycle()
            .take(usize::from(mode & 0x7F) * 600)
            .collect();
        wire.splice(at..at, filler);
    }

    let (buf, fed, verdict) = feed_head(&wire, &sizes, parse_request);

    let fed_bytes = &wire[..fed];
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let parsed = request.parse(fed_bytes);
    match verdict {
        None => {
            assert!(buf.len() <= MAX_HEAD_LEN, "over-long head never judged");
            assert!(
                !matches!(parsed, Ok(httparse::Status::Complete(_))),
                "complete head never judged"
            );
        }
        Some(Ok(head)) => {
            let Ok(httparse::Status::Complete(head_len)) = parsed else {
                panic!("accepted a request httparse does not see as complete: {parsed:?}");
            };
            assert!(head_len <= MAX_HEAD_LEN);
            assert_eq!(&buf[..], &fed_bytes[head_len..], "bytes after the head");
            assert_eq!(request.method, Some("GET"));
            assert_eq!(request.version, Some(1));
            assert_eq!(head.request.method(), http::Method::GET);
            let keys = field(request.headers, "sec-websocket-key");
            assert_eq!(keys.len(), 1);
            let key = keys[0].trim_ascii();
            assert_eq!(key.len(), 24);
            assert!(field(request.headers, "sec-websocket-version")
                .iter()
                .any(|v| v.trim_ascii() == b"13"));
            assert!(field(request.headers, "upgrade")
                .iter()
                .any(|v| has_token(v, "websocket")));
            assert!(field(request.headers, "connection")
                .iter()
                .any(|v| has_token(v, "upgrade")));
            for p in &head.offer.protocols {
                assert!(!p.is_empty() && !p.contains(',') && p.trim() == p, "{p:?}");
            }

            let chosen = match usize::from(mode & 0x7F) % (head.offer.protocols.len() + 1) {
                0 => None,
                i => Some(head.offer.protocols[i - 1].as_str()),
            };
            let reply = ServerReply::accept(&head, chosen);
            let (len, headers) = parse_answer(&reply, 101);
            assert_eq!(len, reply.len(), "bytes after the 101 head");
            let get = |name: &str| {
                headers
                    .iter()
                    .filter(|(n, _)| n == name)
                    .map(|(_, v)| v.as_slice())
                    .collect::<Vec<_>>()
            };
            assert_eq!(get("sec-websocket-accept"), [accept_key(key).as_bytes()]);
            assert!(get("upgrade").iter().any(|v| has_token(v, "websocket")));
            assert!(get("connection").iter().any(|v| has_token(v, "upgrade")));
            match chosen {
                None => assert!(get("sec-websocket-protocol").is_empty()),
                Some(p) => assert_eq!(get("sec-websocket-protocol"), [p.as_bytes()]),
            }
        }
        Some(Err(err)) => {
            let _ = err.to_string();
            if let HandshakeError::Rejected { status, reason } = &err {
                assert!(matches!(status.as_u16(), 400 | 405 | 426), "{status}");
                let answer = reject_response(*status, reason);
                let (len, _) = parse_answer(&answer, status.as_u16());
                assert_eq!(&answer[len..], reason.as_bytes());
            }
        }
    }
});
