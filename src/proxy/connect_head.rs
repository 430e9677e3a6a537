//! The HTTP `CONNECT` exchange as bytes in and bytes out (RFC 9110 §9.3.6).

use http::{HeaderMap, HeaderValue, StatusCode};

use crate::handshake::write_fields;

/// The longest proxy response head we read.
pub(crate) const MAX_REPLY_HEAD: usize = 16 * 1024;

/// How many header fields a proxy response may have.
const MAX_REPLY_HEADERS: usize = 64;

/// The `CONNECT` request for `authority` (`host:port`, IPv6 bracketed).
pub(crate) fn connect_request(
    authority: &str,
    auth: Option<&HeaderValue>,
    headers: &HeaderMap,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"CONNECT ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(auth) = auth {
        out.extend_from_slice(b"Proxy-Authorization: ");
        out.extend_from_slice(auth.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    write_fields(&mut out, headers);
    out.extend_from_slice(b"\r\n");
    out
}

/// What the proxy answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnectReply {
    /// 2xx: the connection is now a tunnel. `head_len` bytes were the
    /// response head.
    Tunnel { head_len: usize },
    /// Any other status, with its reason phrase (cut to 128 bytes).
    Refused { status: StatusCode, reason: String },
}

/// Parses the proxy's response head from the start of `buf`: `Ok(None)`
/// until it is complete.
pub(crate) fn parse_connect_reply(buf: &[u8]) -> Result<Option<ConnectReply>, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_REPLY_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_REPLY_HEAD => {
            return Err("response head too large")
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err("too many header fields"),
        Err(_) => return Err("not an HTTP/1.x response"),
    };
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or("invalid status code")?;
    if status.is_success() {
        return Ok(Some(ConnectReply::Tunnel { head_len }));
    }
    let reason: String = response
        .reason
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect();
    Ok(Some(ConnectReply::Refused { status, reason }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_names_the_target_and_carries_credentials_and_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("user-agent", HeaderValue::from_static("wsstream-test"));
        let auth = HeaderValue::from_static("Basic dTpw");
        let request = connect_request("[::1]:443", Some(&auth), &headers);
        assert_eq!(
            String::from_utf8(request).unwrap(),
            "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\
             Proxy-Authorization: Basic dTpw\r\nuser-agent: wsstream-test\r\n\r\n"
        );
    }

    #[test]
    fn replies_are_read_whole_and_bounded() {
        let ok = b"HTTP/1.1 200 Connection established\r\nProxy-agent: x\r\n\r\n";
        assert_eq!(
            parse_connect_reply(ok),
            Ok(Some(ConnectReply::Tunnel { head_len: ok.len() }))
        );
        assert_eq!(parse_connect_reply(&ok[..ok.len() - 1]), Ok(None));
        assert_eq!(
            parse_connect_reply(b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n"),
            Ok(Some(ConnectReply::Refused {
                status: StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                reason: "Proxy Authentication Required".into()
            }))
        );
        assert!(parse_connect_reply(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
        endless.extend(std::iter::repeat_n(b'a', MAX_REPLY_HEAD + 1));
        assert_eq!(
            parse_connect_reply(&endless),
            Err("response head too large")
        );
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..=MAX_REPLY_HEADERS {
            many.extend_from_slice(b"a: b\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_connect_reply(&many), Err("too many header fields"));
    }
}
