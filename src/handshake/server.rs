//! The server side: checking an upgrade request and answering it.

use bytes::{Buf, Bytes, BytesMut};
use http::header::{
    CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS,
    SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};

use super::deflate::{DeflateConfig, DeflateParams};
use super::error::HandshakeError;
use super::extended_connect::{accept_response, check_extended_connect, connect_protocol};
use super::head::{head_len, write_fields};
use super::key::{accept_key, is_valid_key};
use super::tokens::{has_token, split_list};
use super::MAX_HEADERS;

/// A valid WebSocket upgrade request, read from bytes.
#[derive(Debug)]
pub struct RequestHead {
    /// The request line and header fields.
    pub request: Request<()>,
    /// What the request asks for.
    pub offer: UpgradeOffer,
}

/// What a valid upgrade request asks for, as [`check_upgrade`] reads it,
/// and the means to answer it.
#[derive(Debug, Clone)]
pub struct UpgradeOffer {
    /// The subprotocols the client offered, in its order of preference.
    pub protocols: Vec<String>,
    /// The `Sec-WebSocket-Extensions` values the client sent.
    extensions: Vec<String>,
    /// The `Sec-WebSocket-Key` of an HTTP/1.1 upgrade; `None` for an
    /// HTTP/2 extended CONNECT, which has none.
    key: Option<String>,
}

/// Reads and checks the upgrade request at the front of `buf`. Returns
/// `Ok(None)` while it is incomplete; on success the head is consumed and
/// whatever follows it stays in `buf`. A request that is not an acceptable
/// upgrade fails with [`HandshakeError::Rejected`], whose status and reason
/// [`rejection`] turns into the answer to send.
///
/// This is [`parse_request_head`] and then [`check_upgrade`].
pub fn parse_request(buf: &mut BytesMut) -> Result<Option<RequestHead>, HandshakeError> {
    let Some(request) = parse_request_head(buf)? else {
        return Ok(None);
    };
    let offer = check_upgrade(&request)?;
    Ok(Some(RequestHead { request, offer }))
}

/// Reads the HTTP/1.x request head at the front of `buf`, as bytes only:
/// no WebSocket rule is checked. Returns `Ok(None)` while it is
/// incomplete; on success the head is consumed and whatever follows it
/// stays in `buf`. A head over [`MAX_HEAD_LEN`](super::MAX_HEAD_LEN) or
/// with more than [`MAX_HEADERS`] fields fails, as does one whose request
/// target or a field cannot be represented in `http` types (400).
pub fn parse_request_head(buf: &mut BytesMut) -> Result<Option<Request<()>>, HandshakeError> {
    let Some((request, head_len)) = request_head_at_front(buf)? else {
        return Ok(None);
    };
    buf.advance(head_len);
    Ok(Some(request))
}

/// [`parse_request_head`], also handing out a copy of the head's bytes
/// (what [`WebSocketStream::request`](crate::WebSocketStream::request)
/// keeps: a few hundred bytes where the parsed head takes a kilobyte).
pub(crate) fn parse_request_head_raw(
    buf: &mut BytesMut,
) -> Result<Option<(Request<()>, Bytes)>, HandshakeError> {
    let Some((request, head_len)) = request_head_at_front(buf)? else {
        return Ok(None);
    };
    let raw = Bytes::copy_from_slice(&buf[..head_len]);
    buf.advance(head_len);
    Ok(Some((request, raw)))
}

/// The request head at the front of `buf` and its length, leaving `buf`
/// as it is.
fn request_head_at_front(buf: &BytesMut) -> Result<Option<(Request<()>, usize)>, HandshakeError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut fields);
    let Some(head_len) = head_len(parsed.parse(buf)?, buf.len())? else {
        return Ok(None);
    };
    let bad = |reason| HandshakeError::Rejected {
        status: StatusCode::BAD_REQUEST,
        reason,
    };
    let mut request = Request::new(());
    *request.method_mut() = Method::from_bytes(parsed.method.unwrap_or("").as_bytes())
        .map_err(|_| bad("invalid method"))?;
    *request.version_mut() = match parsed.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    *request.uri_mut() = parsed
        .path
        .unwrap_or("/")
        .parse()
        .map_err(|_| bad("invalid request target"))?;
    let headers = request.headers_mut();
    headers.reserve(parsed.headers.len());
    for field in parsed.headers.iter() {
        // Every field is kept or the request refused: a check must never
        // miss a field (a second key, say) that could not be converted.
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| bad("invalid header field"))?;
        let value =
            HeaderValue::from_bytes(field.value).map_err(|_| bad("invalid header field"))?;
        headers.append(name, value);
    }
    Ok(Some((request, head_len)))
}

/// Checks that a request is a WebSocket upgrade this crate accepts, and
/// reads the subprotocols and extensions offered.
///
/// Over HTTP/1.1 (RFC 6455 §4.2.1): `GET`, `Host`, `Upgrade: websocket`,
/// `Connection: Upgrade`, `Sec-WebSocket-Version: 13` and one valid
/// `Sec-WebSocket-Key`. Over HTTP/2 (RFC 8441, with the `http2` feature):
/// an extended `CONNECT` with `:protocol: websocket`, `:scheme`, `:path`
/// and `:authority`, and `Sec-WebSocket-Version: 13`; the `:protocol` is
/// read from the request's extensions, where hyper and `h2` put it.
///
/// Works on any `http::Request`, whatever its body and however it was
/// parsed (by [`parse_request_head`], hyper, axum). A request that does
/// not pass fails with [`HandshakeError::Rejected`]: 405 for another
/// method, 426 for another version or no `Upgrade`, 400 otherwise.
pub fn check_upgrade<B>(request: &Request<B>) -> Result<UpgradeOffer, HandshakeError> {
    let reject = |status, reason| HandshakeError::Rejected { status, reason };
    if request.version() == Version::HTTP_2 {
        let protocol = connect_protocol(request.extensions());
        check_extended_connect(request, protocol)?;
        return read_offer(request.headers(), None);
    }
    if request.method() != Method::GET {
        return Err(reject(
            StatusCode::METHOD_NOT_ALLOWED,
            "WebSocket upgrades use GET",
        ));
    }
    if request.version() != Version::HTTP_11 {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            "WebSocket upgrades need HTTP/1.1",
        ));
    }
    let headers = request.headers();
    let any = |name: HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .any(|value| has_token(value.as_bytes(), token))
    };
    if !headers.contains_key(HOST) {
        return Err(reject(StatusCode::BAD_REQUEST, "missing Host"));
    }
    if !any(UPGRADE, "websocket") {
        return Err(reject(
            StatusCode::UPGRADE_REQUIRED,
            "missing Upgrade: websocket",
        ));
    }
    if !any(CONNECTION, "upgrade") {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            "missing Connection: Upgrade",
        ));
    }
    if !headers
        .get_all(SEC_WEBSOCKET_VERSION)
        .iter()
        .any(|value| value.as_bytes().trim_ascii() == b"13")
    {
        return Err(reject(
            StatusCode::UPGRADE_REQUIRED,
            "only Sec-WebSocket-Version 13 is supported",
        ));
    }
    let key = single_key(headers).ok_or(reject(
        StatusCode::BAD_REQUEST,
        "missing or invalid Sec-WebSocket-Key",
    ))?;
    read_offer(headers, Some(key))
}

/// The subprotocols and extensions a checked request offers.
fn read_offer(headers: &HeaderMap, key: Option<String>) -> Result<UpgradeOffer, HandshakeError> {
    let mut protocols = Vec::new();
    for value in headers.get_all(SEC_WEBSOCKET_PROTOCOL) {
        let list = std::str::from_utf8(value.as_bytes()).map_err(|_| HandshakeError::Rejected {
            status: StatusCode::BAD_REQUEST,
            reason: "Sec-WebSocket-Protocol is not UTF-8",
        })?;
        protocols.extend(split_list(list).map(str::to_owned));
    }
    // An offer that is not text cannot be accepted; it is ignored, as an
    // unknown extension is.
    let extensions = headers
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(str::to_owned)
        .collect();
    Ok(UpgradeOffer {
        protocols,
        extensions,
        key,
    })
}

/// The one `Sec-WebSocket-Key`, if there is exactly one and it is valid.
fn single_key(headers: &HeaderMap) -> Option<String> {
    let mut keys = headers.get_all(SEC_WEBSOCKET_KEY).iter();
    match (keys.next(), keys.next()) {
        (Some(value), None) if is_valid_key(value.as_bytes().trim_ascii()) => {
            Some(String::from_utf8_lossy(value.as_bytes().trim_ascii()).into_owned())
        }
        _ => None,
    }
}

impl UpgradeOffer {
    /// The first permessage-deflate offer in the request that `policy`
    /// accepts: the parameters to use and the `Sec-WebSocket-Extensions`
    /// answer to send. `None` when the client offered none that is valid.
    pub fn choose_deflate(&self, policy: &DeflateConfig) -> Option<(DeflateParams, String)> {
        policy.choose(self.extensions.iter().map(String::as_str))
    }

    /// The response that accepts this offer, naming `protocol` (it should
    /// be one the client offered) and answering `extensions` (the
    /// `Sec-WebSocket-Extensions` value, such as the one
    /// [`choose_deflate`](Self::choose_deflate) gives) when given.
    ///
    /// For an HTTP/1.1 upgrade, `101 Switching Protocols` with `Upgrade`,
    /// `Connection` and `Sec-WebSocket-Accept`; for an HTTP/2 extended
    /// CONNECT, `200` and nothing else of its own (RFC 8441 §5).
    pub fn response(&self, protocol: Option<&str>, extensions: Option<&str>) -> Response<()> {
        let Some(key) = &self.key else {
            return accept_response(protocol, extensions);
        };
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        // Sized for its fields: the response stays with every open
        // connection (`Opened::response`), and a map grown one insert at a
        // time holds room for six.
        let fields = 3 + usize::from(protocol.is_some()) + usize::from(extensions.is_some());
        *response.headers_mut() = HeaderMap::with_capacity(fields);
        let headers = response.headers_mut();
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        // Base64 is always a valid field value.
        if let Ok(accept) = HeaderValue::from_str(&accept_key(key.as_bytes())) {
            headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
        }
        insert_choices(headers, protocol, extensions);
        response
    }

    /// Whether the request came as an HTTP/2 extended CONNECT.
    pub fn is_extended_connect(&self) -> bool {
        self.key.is_none()
    }
}

/// Names the chosen subprotocol and extensions in an accepting response.
pub(super) fn insert_choices(
    headers: &mut HeaderMap,
    protocol: Option<&str>,
    extensions: Option<&str>,
) {
    // Both came from the request's own field values (or are checked
    // tokens), so they are valid field values; one that were not would be
    // left out, and the client would see the protocol refused.
    for (name, value) in [
        (SEC_WEBSOCKET_PROTOCOL, protocol),
        (SEC_WEBSOCKET_EXTENSIONS, extensions),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, value);
        }
    }
}

/// The 101 answer to an accepted request, as bytes.
pub struct ServerReply;

impl ServerReply {
    /// The `101 Switching Protocols` response, naming `protocol` if one was
    /// chosen (it should be one the client offered).
    pub fn accept(head: &RequestHead, protocol: Option<&str>) -> Vec<u8> {
        Self::accept_with_extensions(head, protocol, None)
    }

    /// Like [`accept`](Self::accept), and answers `extensions` (see
    /// [`UpgradeOffer::response`]).
    pub fn accept_with_extensions(
        head: &RequestHead,
        protocol: Option<&str>,
        extensions: Option<&str>,
    ) -> Vec<u8> {
        write_response(&head.offer.response(protocol, extensions), b"")
    }
}

/// The answer to a request that is not an acceptable upgrade: the status,
/// the reason as a plain-text body, and `Sec-WebSocket-Version: 13` so a
/// client with another version knows what to use.
pub fn rejection(status: StatusCode, reason: &str) -> Response<String> {
    let mut response = Response::new(reason.to_owned());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// [`rejection`] as bytes to write on a connection that closes after it.
pub fn reject_response(status: StatusCode, reason: &str) -> Vec<u8> {
    let mut response = rejection(status, reason);
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    write_response(&response, response.body().as_bytes())
}

/// A response as HTTP/1.1 bytes: the status line and fields of
/// `response`, a `Content-Length` unless the status forbids a body or the
/// fields already give one, and `body` (the response's own body is not
/// looked at, so that `Response<()>` will do).
pub fn write_response<B>(response: &Response<B>, body: &[u8]) -> Vec<u8> {
    let status = response.status();
    let mut out = Vec::with_capacity(160 + body.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    write_fields(&mut out, response.headers());
    let bodiless = status.is_informational() || status == StatusCode::NO_CONTENT;
    if !bodiless && !response.headers().contains_key(CONTENT_LENGTH) {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if !bodiless {
        out.extend_from_slice(body);
    }
    out
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
        assert_eq!(head.offer.protocols, ["chat", "superchat"]);
        assert_eq!(head.request.uri().path(), "/chat");
        assert_eq!(&buf[..], b"\x81");
        let reply = String::from_utf8(ServerReply::accept(&head, Some("chat"))).unwrap();
        assert!(reply.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(reply.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(reply.contains("sec-websocket-protocol: chat\r\n"));
        assert!(reply.ends_with("\r\n\r\n"));
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
    fn the_checks_work_on_requests_that_never_were_bytes() {
        let mut request = Request::get("/chat?room=1")
            .header("host", "example.test")
            .header("upgrade", "WebSocket")
            .header("connection", "keep-alive, Upgrade")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-protocol", "a, b")
            .header("sec-websocket-protocol", "c")
            .header("sec-websocket-extensions", "permessage-deflate")
            .body("any body type")
            .unwrap();
        let offer = check_upgrade(&request).unwrap();
        assert_eq!(offer.protocols, ["a", "b", "c"]);
        assert!(offer.choose_deflate(&DeflateConfig::default()).is_some());
        let response = offer.response(Some("b"), None);
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            response.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(response.headers()["sec-websocket-protocol"], "b");
        assert!(!response.headers().contains_key("sec-websocket-extensions"));
        request.headers_mut().append(
            "sec-websocket-key",
            "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap(),
        );
        let rejected = |request: &Request<&str>| match check_upgrade(request) {
            Err(HandshakeError::Rejected { status, .. }) => status,
            other => panic!("{other:?}"),
        };
        assert_eq!(rejected(&request), StatusCode::BAD_REQUEST, "two keys");
        request.headers_mut().remove("sec-websocket-key");
        request.headers_mut().insert(
            "sec-websocket-key",
            "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap(),
        );
        *request.version_mut() = Version::HTTP_10;
        assert_eq!(rejected(&request), StatusCode::BAD_REQUEST, "not HTTP/1.1");
        // A GET over HTTP/2 is not how RFC 8441 asks for a WebSocket.
        *request.version_mut() = Version::HTTP_2;
        assert_eq!(
            rejected(&request),
            StatusCode::METHOD_NOT_ALLOWED,
            "GET over HTTP/2"
        );
        *request.version_mut() = Version::HTTP_11;
        *request.method_mut() = Method::POST;
        assert_eq!(rejected(&request), StatusCode::METHOD_NOT_ALLOWED);
        *request.method_mut() = Method::GET;
        request.headers_mut().remove("upgrade");
        assert_eq!(rejected(&request), StatusCode::UPGRADE_REQUIRED);
    }

    #[test]
    fn the_head_alone_is_parsed_without_websocket_rules() {
        let mut buf = BytesMut::from("POST /x HTTP/1.0\r\nA: 1\r\nA: 2\r\n\r\nbody");
        let request = parse_request_head(&mut buf).unwrap().unwrap();
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.version(), Version::HTTP_10);
        assert_eq!(request.headers().get_all("a").iter().count(), 2);
        assert_eq!(&buf[..], b"body");
        let mut partial = BytesMut::from("GET / HTTP/1.1\r\nHost: x\r\n");
        assert!(parse_request_head(&mut partial).unwrap().is_none());
        assert_eq!(partial.len(), 25, "nothing consumed while incomplete");
    }

    #[test]
    fn rejection_is_a_complete_response() {
        let bytes = reject_response(StatusCode::BAD_REQUEST, "nope");
        let mut fields = [httparse::EMPTY_HEADER; 8];
        let mut resp = httparse::Response::new(&mut fields);
        assert!(resp.parse(&bytes).unwrap().is_complete());
        assert_eq!(resp.code, Some(400));
        assert!(bytes.ends_with(b"\r\n\r\nnope"));
        assert!(resp
            .headers
            .iter()
            .any(|h| h.name == "content-length" && h.value == b"4"));
        let switching = write_response(&Response::builder().status(101).body(()).unwrap(), b"");
        assert_eq!(switching, b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
    }
}
