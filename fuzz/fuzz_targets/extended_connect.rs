//! RFC 8441 on both sides, as `http` types: the server's check of an
//! HTTP/2 extended CONNECT (`check_upgrade` with the `:protocol` in the
//! request's extensions, where `h2` puts it) and the `200` it answers with,
//! and the client's check of the answer to its own CONNECT.
//!
//! Input: `[side] [method] [protocol?] [n] n × (name, value) [status]`.
//! Side bit 0 picks the server or the client check; the method is one of a
//! few (CONNECT most often); names and values are input bytes, kept when
//! `http` accepts them.

#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use libfuzzer_sys::fuzz_target;
use wsstream::handshake::{check_upgrade, ExtendedConnect, HandshakeError, Target};
use wsstream::DeflateConfig;
use wsstream_fuzz::Input;

const METHODS: [&str; 4] = ["CONNECT", "GET", "POST", "CONNECT"];
const PROTOCOLS: [&str; 3] = ["chat", "superchat", "v2.json"];

fn fields(input: &mut Input<'_>) -> HeaderMap {
    let mut map = HeaderMap::new();
    let n = input.below(12);
    for _ in 0..n {
        let name = match input.below(6) {
            0 => "sec-websocket-version".to_owned(),
            1 => "sec-websocket-protocol".to_owned(),
            2 => "sec-websocket-extensions".to_owned(),
            3 => "sec-websocket-key".to_owned(),
            _ => input.text(16),
        };
        let value = input.payload(48);
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) {
            map.append(name, value);
        }
    }
    map
}

fn server(input: &mut Input<'_>) {
    let method = Method::from_bytes(METHODS[input.below(4)].as_bytes()).unwrap();
    let protocol = input.bool().then(|| input.text(12));
    let path = input.text(20);
    let uri = format!("https://example.test/{}", path.trim_start_matches('/'));
    let mut request = Request::new(());
    *request.method_mut() = method.clone();
    *request.version_mut() = Version::HTTP_2;
    if let Ok(uri) = uri.parse() {
        *request.uri_mut() = uri;
    }
    *request.headers_mut() = fields(input);
    if let Some(protocol) = &protocol {
        request
            .extensions_mut()
            .insert(h2::ext::Protocol::from(protocol.as_str()));
    }
    match check_upgrade(&request) {
        Ok(offer) => {
            assert_eq!(method, Method::CONNECT);
            assert!(protocol.is_some_and(|p| p.eq_ignore_ascii_case("websocket")));
            assert!(request
                .headers()
                .get_all("sec-websocket-version")
                .iter()
                .any(|v| v.as_bytes().trim_ascii() == b"13"));
            assert!(offer.is_extended_connect());
            let chosen = offer.protocols.first().map(String::as_str);
            let deflate = offer.choose_deflate(&DeflateConfig::default());
            let response =
                offer.response(chosen, deflate.as_ref().map(|(_, answer)| answer.as_str()));
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.version(), Version::HTTP_2);
            for forbidden in ["sec-websocket-accept", "upgrade", "connection"] {
                assert!(!response.headers().contains_key(forbidden));
            }
        }
        Err(HandshakeError::Rejected { status, .. }) => {
            assert!([400, 405, 426].contains(&status.as_u16()), "{status}");
        }
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

fn client(input: &mut Input<'_>) {
    let offered: Vec<String> = PROTOCOLS
        .iter()
        .filter(|_| input.bool())
        .map(|p| (*p).to_owned())
        .collect();
    let deflate = input.bool().then(DeflateConfig::default);
    let target = Target::parse("wss://example.test/chat").unwrap();
    let handshake =
        ExtendedConnect::offering(&target, &offered, &HeaderMap::new(), deflate).unwrap();
    assert_eq!(handshake.request().method(), Method::CONNECT);
    let headers = fields(input);
    let status = match input.below(4) {
        0 => input.u16() % 600,
        _ => 200,
    };
    let Ok(status) = StatusCode::from_u16(status) else {
        return;
    };
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    match handshake.check_response(&response) {
        Ok(negotiated) => {
            assert_eq!(status, StatusCode::OK);
            if let Some(chosen) = &negotiated.protocol {
                assert!(offered.contains(chosen));
            }
            assert!(negotiated.extensions.is_empty() || deflate.is_some());
            assert_eq!(
                negotiated.deflate.is_some(),
                !negotiated.extensions.is_empty()
            );
        }
        Err(HandshakeError::Status { status: got, .. }) => {
            assert_ne!(status, StatusCode::OK);
            assert_eq!(got, status);
        }
        Err(_) => assert_eq!(status, StatusCode::OK),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    if input.u8() & 1 == 0 {
        server(&mut input);
    } else {
        client(&mut input);
    }
});
