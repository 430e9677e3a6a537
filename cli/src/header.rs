//! `-H 'Name: value'`: a header field of the upgrade request, checked
//! while the arguments are parsed so that a bad one is a usage error.

use http::{HeaderName, HeaderValue};

/// Parses `Name: value` into a field name and value; the value's
/// surrounding whitespace is dropped, as HTTP does.
pub(crate) fn parse(arg: &str) -> Result<(HeaderName, HeaderValue), String> {
    let Some((name, value)) = arg.split_once(':') else {
        return Err(format!("expected 'Name: value', but {arg:?} has no colon"));
    };
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a valid header name (a token, no spaces)"))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("the value of {name} has characters a header cannot carry"))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_trimmed_value() {
        let (name, value) = parse("Authorization:  Bearer t0k3n ").unwrap();
        assert_eq!(name, http::header::AUTHORIZATION);
        assert_eq!(value, "Bearer t0k3n");
        let (name, value) = parse("X-Empty:").unwrap();
        assert_eq!(name.as_str(), "x-empty");
        assert_eq!(value, "");
    }

    #[test]
    fn a_value_may_hold_colons() {
        let (_, value) = parse("Origin: http://localhost:8080").unwrap();
        assert_eq!(value, "http://localhost:8080");
    }

    #[test]
    fn bad_input_says_what_is_wrong() {
        assert!(parse("Authorization Bearer")
            .unwrap_err()
            .contains("no colon"));
        assert!(parse("Bad Name: x").unwrap_err().contains("header name"));
        assert!(parse(": x").unwrap_err().contains("header name"));
        assert!(parse("X-A: a\u{1}b").unwrap_err().contains("x-a"));
    }
}
