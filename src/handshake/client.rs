//! The client side: the upgrade request and the checks on the response.

use std::fmt::Write as _;

use bytes::{Buf, BytesMut};
use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_PROTOCOL, UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::deflate::{DeflateConfig, DeflateParams};
use super::error::HandshakeError;
use super::head::{head_len, write_fields};
use super::key::{accept_key, generate_key};
use super::target::Target;
use super::tokens::has_token;
use super::MAX_HEADERS;

/// What the two sides agreed to in the opening handshake.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Negotiated {
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
    /// The extensions in force, as the `Sec-WebSocket-Extensions` value
    /// (empty when none).
    pub extensions: String,
    /// The permessage-deflate parameters, when it was negotiated.
    pub deflate: Option<DeflateParams>,
    /// The accepting response: as the server sent it on a client, as this
    /// side sent it on a server. `101 Switching Protocols` over HTTP/1.1;
    /// `200` over HTTP/2 (RFC 8441), with the version `HTTP/2.0`.
    pub response: http::Response<()>,
}

/// One client handshake: the request to send and what its answer must be.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    request: Vec<u8>,
    accept: String,
    offer: ClientOffer,
}

impl ClientHandshake {
    /// Builds the request. `protocols` must already be valid (see
    /// [`validate_protocols`](super::validate_protocols)); `headers` may not
    /// contain the fields the handshake sets itself.
    pub fn new(
        target: &Target,
        protocols: &[String],
        headers: &HeaderMap,
    ) -> std::io::Result<Self> {
        Self::offering(target, protocols, headers, None)
    }

    /// Like [`new`](Self::new), and offers permessage-deflate as `deflate`
    /// says (if given); the answer is then checked against the offer.
    pub fn offering(
        target: &Target,
        protocols: &[String],
        headers: &HeaderMap,
        deflate: Option<DeflateConfig>,
    ) -> std::io::Result<Self> {
        let key = generate_key()?;
        let mut head = String::with_capacity(256);
        // Writing to a String cannot fail.
        let _ = write!(
            head,
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
            target.resource, target.host_header
        );
        if !protocols.is_empty() {
            let _ = write!(head, "Sec-WebSocket-Protocol: {}\r\n", protocols.join(", "));
        }
        if let Some(deflate) = &deflate {
            let _ = write!(head, "Sec-WebSocket-Extensions: {}\r\n", deflate.offer());
        }
        let mut request = head.into_bytes();
        write_fields(&mut request, headers);
        request.extend_from_slice(b"\r\n");
        Ok(Self {
            request,
            accept: accept_key(key.as_bytes()),
            offer: ClientOffer {
                protocols: protocols.to_vec(),
                deflate,
            },
        })
    }

    /// The request bytes to write.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// Checks the response at the front of `buf`. Returns `Ok(None)` while
    /// the head is incomplete. Once it is complete the head is consumed and
    /// whatever follows it (the first frames, or the body of a refusal)
    /// stays in `buf`. A status other than 101 fails with
    /// [`HandshakeError::Status`], its body still empty: a
    /// [`BodyCollector`](super::BodyCollector) reads it from what follows.
    pub fn read_response(&self, buf: &mut BytesMut) -> Result<Option<Negotiated>, HandshakeError> {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut fields);
        let Some(head_len) = head_len(response.parse(buf)?, buf.len())? else {
            return Ok(None);
        };
        let status = StatusCode::from_u16(response.code.unwrap_or(0))
            .map_err(|_| HandshakeError::Malformed(httparse::Error::Status))?;
        let headers = header_map(response.headers);
        buf.advance(head_len);
        if status != StatusCode::SWITCHING_PROTOCOLS {
            return Err(HandshakeError::Status {
                status,
                headers: Box::new(headers),
                body: bytes::Bytes::new(),
            });
        }
        self.check_upgrade_fields(&headers)?;
        self.offer.negotiate(status, headers).map(Some)
    }

    /// The fields that make a 101 an answer to this request (RFC 6455
    /// §4.1): `Upgrade`, `Connection`, and the accept key.
    fn check_upgrade_fields(&self, headers: &HeaderMap) -> Result<(), HandshakeError> {
        let any = |name: HeaderName, token: &str| {
            headers
                .get_all(name)
                .iter()
                .any(|value| has_token(value.as_bytes(), token))
        };
        if !any(UPGRADE, "websocket") {
            return Err(bad("Upgrade", "missing or not \"websocket\""));
        }
        if !any(CONNECTION, "upgrade") {
            return Err(bad("Connection", "missing or without \"Upgrade\""));
        }
        let mut accepts = headers.get_all(SEC_WEBSOCKET_ACCEPT).iter();
        match (accepts.next(), accepts.next()) {
            (Some(value), None) if value.as_bytes().trim_ascii() == self.accept.as_bytes() => {
                Ok(())
            }
            (None, _) => Err(bad("Sec-WebSocket-Accept", "missing")),
            _ => Err(bad("Sec-WebSocket-Accept", "does not match the key")),
        }
    }
}

/// What a client offered besides the handshake's own fields: the
/// subprotocols and permessage-deflate. An answer's choice of both is
/// checked against it the same way over HTTP/1.1 and HTTP/2.
#[derive(Debug, Clone)]
pub(crate) struct ClientOffer {
    pub(crate) protocols: Vec<String>,
    pub(crate) deflate: Option<DeflateConfig>,
}

impl ClientOffer {
    /// Checks the subprotocol and extensions of an accepting answer
    /// (`status`, `headers`) against the offer.
    pub(crate) fn negotiate(
        &self,
        status: StatusCode,
        headers: HeaderMap,
    ) -> Result<Negotiated, HandshakeError> {
        let mut protocols = headers.get_all(SEC_WEBSOCKET_PROTOCOL).iter();
        let protocol = match (protocols.next(), protocols.next()) {
            (None, _) => None,
            (Some(value), None) => {
                let chosen = std::str::from_utf8(value.as_bytes())
                    .map_err(|_| bad("Sec-WebSocket-Protocol", "not UTF-8"))?
                    .trim();
                if !self.protocols.iter().any(|p| p == chosen) {
                    return Err(HandshakeError::UnexpectedProtocol(chosen.to_owned()));
                }
                Some(chosen.to_owned())
            }
            (Some(_), Some(_)) => return Err(bad("Sec-WebSocket-Protocol", "sent more than once")),
        };
        let mut extensions = Vec::new();
        for value in headers.get_all(SEC_WEBSOCKET_EXTENSIONS) {
            let value = std::str::from_utf8(value.as_bytes())
                .map_err(|_| bad("Sec-WebSocket-Extensions", "not UTF-8"))?
                .trim();
            if !value.is_empty() {
                extensions.push(value);
            }
        }
        let extensions = extensions.join(", ");
        let deflate = match (&self.deflate, extensions.is_empty()) {
            (_, true) => None,
            (None, false) => return Err(HandshakeError::UnexpectedExtension(extensions)),
            (Some(offer), false) => {
                Some(offer.accept_response(&extensions).map_err(|problem| {
                    HandshakeError::ExtensionMismatch {
                        value: extensions.clone(),
                        problem,
                    }
                })?)
            }
        };
        let mut response = http::Response::new(());
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(Negotiated {
            protocol,
            extensions,
            deflate,
            response,
        })
    }
}

pub(super) fn bad(name: &'static str, problem: &'static str) -> HandshakeError {
    HandshakeError::BadHeader { name, problem }
}

/// Copies parsed fields into a `HeaderMap`, skipping any that `http` rejects.
fn header_map(fields: &[httparse::Header<'_>]) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(fields.len());
    for field in fields {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(field.name.as_bytes()),
            HeaderValue::from_bytes(field.value),
        ) {
            map.append(name, value);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::MAX_HEAD_LEN;

    fn handshake(protocols: &[&str]) -> ClientHandshake {
        let target = Target::parse("ws://example.test:9000/chat?x=1").unwrap();
        let protocols: Vec<String> = protocols.iter().map(|s| s.to_string()).collect();
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer t"));
        ClientHandshake::new(&target, &protocols, &headers).unwrap()
    }

    fn key_of(request: &[u8]) -> String {
        let text = std::str::from_utf8(request).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("Sec-WebSocket-Key: "))
            .unwrap();
        line["Sec-WebSocket-Key: ".len()..].to_owned()
    }

    fn response(hs: &ClientHandshake, extra: &str) -> BytesMut {
        let accept = accept_key(key_of(hs.request()).as_bytes());
        BytesMut::from(
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n\
                 sec-websocket-accept: {accept}\r\n{extra}\r\n"
            )
            .as_str(),
        )
    }

    #[test]
    fn request_has_every_required_field() {
        let hs = handshake(&["chat", "superchat"]);
        let text = std::str::from_utf8(hs.request()).unwrap();
        assert!(text.starts_with("GET /chat?x=1 HTTP/1.1\r\nHost: example.test:9000\r\n"));
        for field in [
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Protocol: chat, superchat",
            "authorization: Bearer t",
        ] {
            assert!(text.contains(&format!("{field}\r\n")), "missing {field}");
        }
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn valid_response_keeps_the_bytes_after_the_head() {
        let hs = handshake(&["chat"]);
        let mut buf = response(&hs, "Sec-WebSocket-Protocol: chat\r\n");
        buf.extend_from_slice(b"\x81\x02hi");
        let negotiated = hs.read_response(&mut buf).unwrap().unwrap();
        assert_eq!(negotiated.protocol.as_deref(), Some("chat"));
        assert_eq!(
            negotiated.response.status(),
            StatusCode::SWITCHING_PROTOCOLS
        );
        assert_eq!(
            negotiated.response.headers()["sec-websocket-protocol"],
            "chat"
        );
        assert_eq!(&buf[..], b"\x81\x02hi");
    }

    #[test]
    fn partial_head_waits() {
        let hs = handshake(&[]);
        let full = response(&hs, "");
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert!(hs.read_response(&mut buf).unwrap().is_none(), "cut {cut}");
        }
    }

    #[test]
    fn wrong_accept_protocol_or_extension_fails() {
        let hs = handshake(&["chat"]);
        let mut buf = BytesMut::from(
            "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n",
        );
        assert!(matches!(
            hs.read_response(&mut buf),
            Err(HandshakeError::BadHeader {
                name: "Sec-WebSocket-Accept",
                ..
            })
        ));
        let mut buf = response(&hs, "Sec-WebSocket-Protocol: other\r\n");
        assert!(
            matches!(hs.read_response(&mut buf), Err(HandshakeError::UnexpectedProtocol(p)) if p == "other")
        );
        let hs_none = handshake(&[]);
        let mut buf = response(&hs_none, "Sec-WebSocket-Protocol: chat\r\n");
        assert!(matches!(
            hs_none.read_response(&mut buf),
            Err(HandshakeError::UnexpectedProtocol(_))
        ));
        let mut buf = response(&hs, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
        assert!(matches!(
            hs.read_response(&mut buf),
            Err(HandshakeError::UnexpectedExtension(_))
        ));
    }

    #[test]
    fn non_101_status_carries_status_and_headers() {
        let hs = handshake(&[]);
        let mut buf = BytesMut::from(
            "HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
        );
        match hs.read_response(&mut buf) {
            Err(HandshakeError::Status {
                status, headers, ..
            }) => {
                assert_eq!(status, StatusCode::FOUND);
                assert_eq!(headers["location"], "/elsewhere");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn endless_head_is_capped() {
        let hs = handshake(&[]);
        let mut buf = BytesMut::from("HTTP/1.1 101 OK\r\n");
        while buf.len() <= MAX_HEAD_LEN {
            buf.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert!(matches!(
            hs.read_response(&mut buf),
            Err(HandshakeError::HeadTooLarge | HandshakeError::TooManyHeaders)
        ));
    }
}
