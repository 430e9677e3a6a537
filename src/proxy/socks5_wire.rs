//! SOCKS5 messages as bytes (RFC 1928, and RFC 1929 for username and
//! password).

use std::net::IpAddr;

use super::error::ProxyFailure;

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0x00;
const USER_PASSWORD: u8 = 0x02;
const NO_ACCEPTABLE: u8 = 0xFF;
const CONNECT: u8 = 1;
const ATYP_IPV4: u8 = 1;
const ATYP_DOMAIN: u8 = 3;
const ATYP_IPV6: u8 = 4;

/// The authentication the proxy chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    NoAuth,
    UserPassword,
}

/// Where the proxy should connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SocksAddr {
    Ip(IpAddr),
    /// A name for the proxy to resolve: at most 255 bytes.
    Domain(String),
}

/// The greeting: the methods we offer (no authentication, and username
/// and password when we have them).
pub(crate) fn greeting(with_credentials: bool) -> &'static [u8] {
    if with_credentials {
        &[VERSION, 2, NO_AUTH, USER_PASSWORD]
    } else {
        &[VERSION, 1, NO_AUTH]
    }
}

/// The proxy's choice of method.
pub(crate) fn parse_method(reply: [u8; 2], with_credentials: bool) -> Result<Method, ProxyFailure> {
    match reply {
        [VERSION, NO_AUTH] => Ok(Method::NoAuth),
        [VERSION, USER_PASSWORD] if with_credentials => Ok(Method::UserPassword),
        [VERSION, NO_ACCEPTABLE] => Err(ProxyFailure::SocksNoAcceptableMethod),
        [VERSION, _] => Err(ProxyFailure::Malformed("a method we did not offer")),
        _ => Err(ProxyFailure::Malformed("not a SOCKS5 reply")),
    }
}

/// The RFC 1929 request; `None` if a field is longer than 255 bytes.
pub(crate) fn auth_request(user: &str, password: &str) -> Option<Vec<u8>> {
    let user_len = u8::try_from(user.len()).ok()?;
    let password_len = u8::try_from(password.len()).ok()?;
    let mut out = Vec::with_capacity(3 + user.len() + password.len());
    out.extend_from_slice(&[1, user_len]);
    out.extend_from_slice(user.as_bytes());
    out.push(password_len);
    out.extend_from_slice(password.as_bytes());
    Some(out)
}

/// The RFC 1929 reply: status 0 is success.
pub(crate) fn parse_auth_reply(reply: [u8; 2]) -> Result<(), ProxyFailure> {
    match reply {
        [_, 0] => Ok(()),
        _ => Err(ProxyFailure::SocksAuthRejected),
    }
}

/// The CONNECT request.
pub(crate) fn connect_request(addr: &SocksAddr, port: u16) -> Result<Vec<u8>, ProxyFailure> {
    let mut out = vec![VERSION, CONNECT, 0];
    match addr {
        SocksAddr::Ip(IpAddr::V4(ip)) => {
            out.push(ATYP_IPV4);
            out.extend_from_slice(&ip.octets());
        }
        SocksAddr::Ip(IpAddr::V6(ip)) => {
            out.push(ATYP_IPV6);
            out.extend_from_slice(&ip.octets());
        }
        SocksAddr::Domain(name) => {
            let len = u8::try_from(name.len())
                .map_err(|_| ProxyFailure::Malformed("host name longer than 255 bytes"))?;
            out.extend_from_slice(&[ATYP_DOMAIN, len]);
            out.extend_from_slice(name.as_bytes());
        }
    }
    out.extend_from_slice(&port.to_be_bytes());
    Ok(out)
}

/// The first two bytes of the proxy's reply: version and reply code.
pub(crate) fn check_reply(head: [u8; 2]) -> Result<(), ProxyFailure> {
    match head {
        [VERSION, 0] => Ok(()),
        [VERSION, code] => Err(ProxyFailure::SocksReply(code)),
        _ => Err(ProxyFailure::Malformed("not a SOCKS5 reply")),
    }
}

/// From the next three bytes (reserved, address type, first address
/// byte), how many bytes of the reply are left to read.
pub(crate) fn reply_rest_len(next: [u8; 3]) -> Result<usize, ProxyFailure> {
    // Counted after the first address byte: address, then 2 port bytes.
    match next[1] {
        ATYP_IPV4 => Ok(3 + 2),
        ATYP_IPV6 => Ok(15 + 2),
        ATYP_DOMAIN => Ok(usize::from(next[2]) + 2),
        _ => Err(ProxyFailure::Malformed("unknown address type in the reply")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_follow_rfc_1928_and_1929() {
        assert_eq!(greeting(false), [5, 1, 0]);
        assert_eq!(greeting(true), [5, 2, 0, 2]);
        assert_eq!(
            auth_request("u", "pw").unwrap(),
            [1, 1, b'u', 2, b'p', b'w']
        );
        assert!(auth_request(&"u".repeat(256), "").is_none());
        assert_eq!(
            connect_request(&SocksAddr::Domain("ex.com".into()), 443).unwrap(),
            [5, 1, 0, 3, 6, b'e', b'x', b'.', b'c', b'o', b'm', 1, 187]
        );
        assert_eq!(
            connect_request(&SocksAddr::Ip("127.0.0.1".parse().unwrap()), 80).unwrap(),
            [5, 1, 0, 1, 127, 0, 0, 1, 0, 80]
        );
        let v6 = connect_request(&SocksAddr::Ip("::1".parse().unwrap()), 80).unwrap();
        assert_eq!((v6.len(), v6[3], v6[19]), (22, 4, 1));
        assert!(connect_request(&SocksAddr::Domain("a".repeat(256)), 1).is_err());
    }

    #[test]
    fn replies_are_checked() {
        assert!(matches!(parse_method([5, 0], false), Ok(Method::NoAuth)));
        assert!(matches!(
            parse_method([5, 2], true),
            Ok(Method::UserPassword)
        ));
        assert!(matches!(
            parse_method([5, 2], false),
            Err(ProxyFailure::Malformed(_))
        ));
        assert!(matches!(
            parse_method([5, 0xFF], true),
            Err(ProxyFailure::SocksNoAcceptableMethod)
        ));
        assert!(matches!(
            parse_method([4, 0], true),
            Err(ProxyFailure::Malformed(_))
        ));
        assert!(parse_auth_reply([1, 0]).is_ok());
        assert!(matches!(
            parse_auth_reply([1, 1]),
            Err(ProxyFailure::SocksAuthRejected)
        ));
        assert!(check_reply([5, 0]).is_ok());
        assert!(matches!(
            check_reply([5, 5]),
            Err(ProxyFailure::SocksReply(5))
        ));
        assert!(matches!(
            check_reply([0, 90]),
            Err(ProxyFailure::Malformed(_))
        ));
        assert_eq!(reply_rest_len([0, 1, 127]).unwrap(), 5);
        assert_eq!(reply_rest_len([0, 4, 0]).unwrap(), 17);
        assert_eq!(reply_rest_len([0, 3, 9]).unwrap(), 11);
        assert!(reply_rest_len([0, 7, 0]).is_err());
    }
}
