//! WebSockets over HTTP/2 (RFC 8441): the extended CONNECT request a client
//! sends and a server checks, and the `200` that accepts it, as `http`
//! types. HTTP/2 itself (frames, streams, `:protocol` on the wire) is the
//! `h2` crate's; this file only holds the rules.
//!
//! RFC 8441 drops the key and accept of RFC 6455 (HTTP/2 streams cannot be
//! confused with other requests) and the `Upgrade`/`Connection` fields
//! (connection-specific fields are forbidden in HTTP/2); the subprotocol
//! and extension negotiation is the same as over HTTP/1.1.

use http::header::{SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};

use super::client::{ClientOffer, Negotiated};
use super::deflate::DeflateConfig;
use super::error::HandshakeError;
use super::target::Target;

/// The `:protocol` value that asks for a WebSocket (RFC 8441 §4).
pub const WEBSOCKET_PROTOCOL: &str = "websocket";

/// One client handshake over HTTP/2: the extended CONNECT request to send
/// on a new stream, and what its answer must be.
///
/// The request's `:protocol` pseudo-header is not an `http` type; the
/// HTTP/2 layer adds it (for `h2`, as the `h2::ext::Protocol` extension).
#[derive(Debug, Clone)]
pub struct ExtendedConnect {
    request: Request<()>,
    offer: ClientOffer,
}

impl ExtendedConnect {
    /// Builds the request for `target`: `CONNECT` with the URL's scheme
    /// (`https` for `wss`, `http` for `ws`), authority and path,
    /// `sec-websocket-version: 13`, the subprotocols and the
    /// permessage-deflate offer, and `headers` (which may not contain the
    /// fields the handshake sets itself).
    pub fn offering(
        target: &Target,
        protocols: &[String],
        headers: &HeaderMap,
        deflate: Option<DeflateConfig>,
    ) -> Result<Self, HandshakeError> {
        let scheme = if target.tls { "https" } else { "http" };
        let uri = Uri::builder()
            .scheme(scheme)
            .authority(target.host_header.as_str())
            .path_and_query(target.resource.as_str())
            .build()
            .map_err(|_| bad(":authority", "the URL cannot be an HTTP/2 request target"))?;
        let mut request = Request::new(());
        *request.method_mut() = Method::CONNECT;
        *request.uri_mut() = uri;
        *request.version_mut() = Version::HTTP_2;
        let fields = request.headers_mut();
        fields.extend(
            headers
                .iter()
                .map(|(name, value)| (name.clone(), value.clone())),
        );
        fields.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        if !protocols.is_empty() {
            let list = HeaderValue::from_str(&protocols.join(", "))
                .map_err(|_| bad("Sec-WebSocket-Protocol", "not a valid field value"))?;
            fields.insert(SEC_WEBSOCKET_PROTOCOL, list);
        }
        if let Some(deflate) = &deflate {
            if let Ok(offer) = HeaderValue::from_str(&deflate.offer()) {
                fields.insert(SEC_WEBSOCKET_EXTENSIONS, offer);
            }
        }
        Ok(Self {
            request,
            offer: ClientOffer {
                protocols: protocols.to_vec(),
                deflate,
            },
        })
    }

    /// The request to send (without `:protocol`; see the type's docs).
    pub fn request(&self) -> &Request<()> {
        &self.request
    }

    /// Checks the server's answer: `200` opens the WebSocket, with the
    /// subprotocol and extensions checked against the offer as over
    /// HTTP/1.1; any other status fails with [`HandshakeError::Status`]
    /// (its body empty: the caller may read it from the stream).
    pub fn check_response<B>(&self, response: &Response<B>) -> Result<Negotiated, HandshakeError> {
        let status = response.status();
        if status != StatusCode::OK {
            return Err(HandshakeError::Status {
                status,
                headers: Box::new(response.headers().clone()),
                body: bytes::Bytes::new(),
            });
        }
        let mut negotiated = self.offer.negotiate(status, response.headers().clone())?;
        *negotiated.response.version_mut() = Version::HTTP_2;
        Ok(negotiated)
    }
}

/// Checks an HTTP/2 request as an extended CONNECT for a WebSocket (RFC
/// 8441 §4–5), given its `:protocol` (which `http` types cannot carry; see
/// [`connect_protocol`]). Fails with [`HandshakeError::Rejected`]: 405 for
/// a method other than `CONNECT`, 426 for another WebSocket version, 400
/// otherwise.
pub(crate) fn check_extended_connect<B>(
    request: &Request<B>,
    protocol: Option<&str>,
) -> Result<(), HandshakeError> {
    let reject = |status, reason| HandshakeError::Rejected { status, reason };
    if request.method() != Method::CONNECT {
        return Err(reject(
            StatusCode::METHOD_NOT_ALLOWED,
            "WebSockets over HTTP/2 use the extended CONNECT method (RFC 8441)",
        ));
    }
    match protocol {
        Some(protocol) if protocol.eq_ignore_ascii_case(WEBSOCKET_PROTOCOL) => {}
        Some(_) => {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                ":protocol is not websocket",
            ))
        }
        None => {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "CONNECT without :protocol websocket (is extended CONNECT enabled?)",
            ))
        }
    }
    // RFC 8441 §4: an extended CONNECT carries :scheme and :path, and
    // :authority like any request.
    let uri = request.uri();
    if uri.authority().is_none() || uri.scheme().is_none() || uri.path().is_empty() {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            "extended CONNECT without :scheme, :authority or :path",
        ));
    }
    let version_13 = request
        .headers()
        .get_all(SEC_WEBSOCKET_VERSION)
        .iter()
        .any(|value| value.as_bytes().trim_ascii() == b"13");
    if !version_13 {
        return Err(reject(
            StatusCode::UPGRADE_REQUIRED,
            "only Sec-WebSocket-Version 13 is supported",
        ));
    }
    Ok(())
}

/// The `:protocol` pseudo-header of an HTTP/2 request, as hyper or `h2`
/// left it in the request's extensions. `None` without the `http2`
/// feature, which is what reads it.
pub(crate) fn connect_protocol(extensions: &http::Extensions) -> Option<&str> {
    #[cfg(all(feature = "http2", feature = "hyper"))]
    if let Some(protocol) = extensions.get::<::hyper::ext::Protocol>() {
        return Some(protocol.as_str());
    }
    #[cfg(feature = "http2")]
    if let Some(protocol) = extensions.get::<h2::ext::Protocol>() {
        return Some(protocol.as_str());
    }
    let _ = extensions;
    None
}

/// Copies the `:protocol` of an HTTP/2 request into the extensions of a
/// copy of its head, so that the copy passes the same checks.
pub(crate) fn keep_protocol(from: &http::Extensions, to: &mut http::Extensions) {
    #[cfg(all(feature = "http2", feature = "hyper"))]
    if let Some(protocol) = from.get::<::hyper::ext::Protocol>() {
        to.insert(protocol.clone());
    }
    #[cfg(feature = "http2")]
    if let Some(protocol) = from.get::<h2::ext::Protocol>() {
        to.insert(protocol.clone());
    }
    let _ = (from, to);
}

/// The `200` that accepts an extended CONNECT, naming `protocol` and
/// answering `extensions` when given.
pub(crate) fn accept_response(protocol: Option<&str>, extensions: Option<&str>) -> Response<()> {
    let mut response = Response::new(());
    *response.version_mut() = Version::HTTP_2;
    super::server::insert_choices(response.headers_mut(), protocol, extensions);
    response
}

fn bad(name: &'static str, problem: &'static str) -> HandshakeError {
    HandshakeError::BadHeader { name, problem }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(version: &str) -> Request<()> {
        Request::connect("https://example.test/chat?room=1")
            .version(Version::HTTP_2)
            .header("sec-websocket-version", version)
            .header("sec-websocket-protocol", "chat, superchat")
            .body(())
            .unwrap()
    }

    #[test]
    fn the_request_carries_scheme_authority_path_and_offer() {
        let target = Target::parse("wss://example.test:8443/chat?room=1").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("origin", HeaderValue::from_static("https://example.test"));
        let hs = ExtendedConnect::offering(&target, &["chat".into()], &headers, None).unwrap();
        let request = hs.request();
        assert_eq!(request.method(), Method::CONNECT);
        assert_eq!(request.version(), Version::HTTP_2);
        assert_eq!(
            request.uri().to_string(),
            "https://example.test:8443/chat?room=1"
        );
        assert_eq!(request.headers()["sec-websocket-version"], "13");
        assert_eq!(request.headers()["sec-websocket-protocol"], "chat");
        assert_eq!(request.headers()["origin"], "https://example.test");
        assert!(!request.headers().contains_key("sec-websocket-key"));
        let plain = Target::parse("ws://[::1]/").unwrap();
        let hs = ExtendedConnect::offering(&plain, &[], &HeaderMap::new(), None).unwrap();
        assert_eq!(hs.request().uri().to_string(), "http://[::1]/");
    }

    #[test]
    fn only_200_opens_and_choices_are_checked() {
        let target = Target::parse("ws://example.test/").unwrap();
        let hs =
            ExtendedConnect::offering(&target, &["chat".into()], &HeaderMap::new(), None).unwrap();
        let ok = Response::builder()
            .header("sec-websocket-protocol", "chat")
            .body(())
            .unwrap();
        let negotiated = hs.check_response(&ok).unwrap();
        assert_eq!(negotiated.protocol.as_deref(), Some("chat"));
        assert_eq!(negotiated.response.version(), Version::HTTP_2);
        let refused = Response::builder().status(403).body(()).unwrap();
        assert!(matches!(
            hs.check_response(&refused),
            Err(HandshakeError::Status { status, .. }) if status == 403
        ));
        let other = Response::builder()
            .header("sec-websocket-protocol", "other")
            .body(())
            .unwrap();
        assert!(matches!(
            hs.check_response(&other),
            Err(HandshakeError::UnexpectedProtocol(_))
        ));
        let extension = Response::builder()
            .header("sec-websocket-extensions", "permessage-deflate")
            .body(())
            .unwrap();
        assert!(matches!(
            hs.check_response(&extension),
            Err(HandshakeError::UnexpectedExtension(_))
        ));
    }

    #[test]
    fn the_server_checks_method_protocol_and_version() {
        assert!(check_extended_connect(&connect("13"), Some("websocket")).is_ok());
        assert!(check_extended_connect(&connect("13"), Some("WebSocket")).is_ok());
        let status =
            |request: &Request<()>, protocol| match check_extended_connect(request, protocol) {
                Err(HandshakeError::Rejected { status, .. }) => status.as_u16(),
                other => panic!("{other:?}"),
            };
        assert_eq!(status(&connect("13"), None), 400);
        assert_eq!(status(&connect("13"), Some("webtransport")), 400);
        assert_eq!(status(&connect("8"), Some("websocket")), 426);
        let get = Request::get("https://example.test/")
            .version(Version::HTTP_2)
            .body(())
            .unwrap();
        assert_eq!(status(&get, Some("websocket")), 405);
        let no_scheme = Request::connect("example.test:443")
            .version(Version::HTTP_2)
            .header("sec-websocket-version", "13")
            .body(())
            .unwrap();
        assert_eq!(status(&no_scheme, Some("websocket")), 400);
    }
}
