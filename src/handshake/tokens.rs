//! HTTP token lists: `Connection: keep-alive, Upgrade`, subprotocol names.

/// Whether `s` is an HTTP token (RFC 9110 §5.6.2), as a subprotocol must be.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Checks subprotocols the WHATWG way: each a token, no duplicates
/// (compared case-insensitively). Returns the offending value.
pub fn validate_protocols<S: AsRef<str>>(protocols: &[S]) -> Result<(), String> {
    for (i, protocol) in protocols.iter().enumerate() {
        let protocol = protocol.as_ref();
        if !is_token(protocol) {
            return Err(protocol.to_owned());
        }
        if protocols[..i]
            .iter()
            .any(|p| p.as_ref().eq_ignore_ascii_case(protocol))
        {
            return Err(protocol.to_owned());
        }
    }
    Ok(())
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
pub(crate) fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// The items of a comma-separated header value, trimmed, empty ones dropped.
pub(crate) fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lists_match_case_insensitively() {
        assert!(has_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(has_token(b"UPGRADE", "upgrade"));
        assert!(!has_token(b"upgraded", "upgrade"));
    }

    #[test]
    fn protocols_follow_whatwg_rules() {
        assert!(validate_protocols(&["chat", "v2.json"]).is_ok());
        assert_eq!(
            validate_protocols(&["chat", "CHAT"]),
            Err("CHAT".to_owned())
        );
        assert_eq!(validate_protocols(&["a b"]), Err("a b".to_owned()));
        assert_eq!(validate_protocols(&[""]), Err(String::new()));
        assert_eq!(validate_protocols(&["x,y"]), Err("x,y".to_owned()));
    }
}
