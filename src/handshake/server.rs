//! The server side: checking an upgrade request and answering it.

use bytes::{Buf, BytesMut};
use http::{Method, Request, StatusCode};

use super::client::header_map;
use super::deflate::{DeflateConfig, DeflateParams};
use super::error::HandshakeError;
use super::head::head_len;
use super::key::{accept_key, is_valid_key};
use super::tokens::{has_token, split_list};
use super::MAX_HEADERS;

/// A valid WebSocket upgrade request.
#[derive(Debug)]
pub struct RequestHead {
    /// The request line and header fields.
    pub request: Request<()>,
    /// The subprotocols the client offered, in its order of preference.
    pub protocols: Vec<String>,
    key: String,
}

/// Reads and checks the upgrade request at the front of `buf`. Returns
/// `Ok(None)` while it is incomplete; on success the head is consumed and
/// whatever follows it stays in `buf`. A request that is not an acceptable
/// upgrade fails with [`HandshakeError::Rejected`], whose status and reason
/// [`reject_response`] turns into the answer to send.
pub fn parse_request(buf: &mut BytesMut) -> Result<Option<RequestHead>, HandshakeError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut fields);
    let Some(head_len) = head_len(parsed.parse(buf)?, buf.len())? else {
        return Ok(None);
    };
    let reject = |status, reason| HandshakeError::Rejected { status, reason };
    if parsed.method != Some("GET") {
        return Err(reject(
            StatusCode::METHOD_NOT_ALLOWED,
            "WebSocket upgrades use GET",
        ));
    }
    if parsed.version != Some(1) {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            "WebSocket upgrades need HTTP/1.1",
        ));
    }
    let fields = parsed.headers;
    let find = |name: &'static str| {
        fields
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
    };
    if find("host").next().is_none() {
        return Err(reject(StatusCode::BAD_REQUEST, "missing Host"));
    }
    if !find("upgrade").any(|h| has_token(h.value, "websocket")) {
        return Err(reject(
            StatusCode::UPGRADE_REQUIRED,
            "missing Upgrade: websocket",
        ));
    }
    if !find("connection").any(|h| has_token(h.value, "upgrade")) {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            "missing Connection: Upgrade",
        ));
    }
    if !find("sec-websocket-version").any(|h| h.value.trim_ascii() == b"13") {
        return Err(reject(
            StatusCode::UPGRADE_REQUIRED,
            "only Sec-WebSocket-Version 13 is supported",
        ));
    }
    let mut keys = find("sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (Some(h), None) if is_valid_key(h.value.trim_ascii()) => {
            String::from_utf8_lossy(h.value.trim_ascii()).into_owned()
        }
        _ => {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "missing or invalid Sec-WebSocket-Key",
            ))
        }
    };
    let mut protocols = Vec::new();
    for field in find("sec-websocket-protocol") {
        let value = std::str::from_utf8(field.value).map_err(|_| {
            reject(
                StatusCode::BAD_REQUEST,
                "Sec-WebSocket-Protocol is not UTF-8",
            )
        })?;
        protocols.extend(split_list(value).map(str::to_owned));
    }
    let mut request = Request::new(());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = parsed
        .path
        .unwrap_or("/")
        .parse()
        .map_err(|_| reject(StatusCode::BAD_REQUEST, "invalid request target"))?;
    *request.headers_mut() = header_map(fields);
    buf.advance(head_len);
    Ok(Some(RequestHead {
        request,
        protocols,
        key,
    }))
}

impl RequestHead {
    /// The first permessage-deflate offer in the request that `policy`
    /// accepts: the parameters to use and the `Sec-WebSocket-Extensions`
    /// answer to send. `None` when the client offered none that is valid.
    pub fn choose_deflate(&self, policy: &DeflateConfig) -> Option<(DeflateParams, String)> {
        policy.choose(
            self.request
                .headers()
                .get_all(http::header::SEC_WEBSOCKET_EXTENSIONS)
                .iter()
                .filter_map(|value| value.to_str().ok()),
        )
    }
}

/// The 101 answer to an accepted request.
pub struct ServerReply;

impl ServerReply {
    /// The `101 Switching Protocols` response, naming `protocol` if one was
    /// chosen (it should be one the client offered).
    pub fn accept(head: &RequestHead, protocol: Option<&str>) -> Vec<u8> {
        Self::accept_with_extensions(head, protocol, None)
    }

    /// Like [`accept`](Self::accept), and answers `extensions` (the
    /// `Sec-WebSocket-Extensions` value, such as the one
    /// [`RequestHead::choose_deflate`] gives).
    pub fn accept_with_extensions(
        head: &RequestHead,
        protocol: Option<&str>,
        extensions: Option<&str>,
    ) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n",
            accept_key(head.key.as_bytes())
        );
        if let Some(protocol) = protocol {
            out.push_str("Sec-WebSocket-Protocol: ");
            out.push_str(protocol);
            out.push_str("\r\n");
        }
        if let Some(extensions) = extensions {
            out.push_str("Sec-WebSocket-Extensions: ");
            out.push_str(extensions);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

/// The answer to a request that is not an acceptable upgrade: the status,
/// the reason as a plain-text body, and `Sec-WebSocket-Version: 13` so a
/// client with another version knows what to use.
pub fn reject_response(status: StatusCode, reason: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {} {}\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{reason}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        reason.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{ClientHandshake, Target};

    fn request(extra: &str) -> BytesMut {
        BytesMut::from(
            format!(
                "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
            )
            .as_str(),
        )
    }

    #[test]
    fn accepts_the_rfc_example_and_answers_with_its_accept_key() {
        let mut buf =
            request("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n");
        buf.extend_from_slice(b"\x81");
        let head = parse_request(&mut buf).unwrap().unwrap();
        assert_eq!(head.protocols, ["chat", "superchat"]);
        assert_eq!(head.request.uri().path(), "/chat");
        assert_eq!(&buf[..], b"\x81");
        let reply = String::from_utf8(ServerReply::accept(&head, Some("chat"))).unwrap();
        assert!(reply.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(reply.contains("Sec-WebSocket-Protocol: chat\r\n"));
    }

    #[test]
    fn wrong_version_gets_426_and_missing_key_400() {
        let mut buf = request("Sec-WebSocket-Version: 8\r\n");
        assert!(matches!(
            parse_request(&mut buf),
            Err(HandshakeError::Rejected {
                status: StatusCode::UPGRADE_REQUIRED,
                ..
            })
        ));
        let mut buf = BytesMut::from(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
        assert!(matches!(
            parse_request(&mut buf),
            Err(HandshakeError::Rejected {
                status: StatusCode::BAD_REQUEST,
                ..
            })
        ));
        let mut buf = BytesMut::from("POST / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(matches!(
            parse_request(&mut buf),
            Err(HandshakeError::Rejected {
                status: StatusCode::METHOD_NOT_ALLOWED,
                ..
            })
        ));
    }

    #[test]
    fn our_client_request_passes_our_server_checks_and_back() {
        let target = Target::parse("ws://[::1]:4000/a?b").unwrap();
        let hs = ClientHandshake::new(&target, &["x".into()], &http::HeaderMap::new()).unwrap();
        let mut buf = BytesMut::from(hs.request());
        let head = parse_request(&mut buf).unwrap().unwrap();
        assert_eq!(head.request.headers()["host"], "[::1]:4000");
        let mut reply = BytesMut::from(&ServerReply::accept(&head, Some("x"))[..]);
        let negotiated = hs.read_response(&mut reply).unwrap().unwrap();
        assert_eq!(negotiated.protocol.as_deref(), Some("x"));
    }

    #[test]
    fn rejection_is_a_complete_response() {
        let bytes = reject_response(StatusCode::BAD_REQUEST, "nope");
        let mut fields = [httparse::EMPTY_HEADER; 8];
        let mut resp = httparse::Response::new(&mut fields);
        assert!(resp.parse(&bytes).unwrap().is_complete());
        assert_eq!(resp.code, Some(400));
        assert!(bytes.ends_with(b"\r\n\r\nnope"));
    }
}
