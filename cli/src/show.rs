//! How a received message is shown on stdout: one entry per message,
//! after the `< ` marker.

use std::fmt::Write as _;

use wsstream::Message;

/// How many bytes of a binary message are shown in hex.
pub(crate) const PREVIEW_BYTES: usize = 32;

/// A message as printed (without the final newline): `< {text}` for text,
/// its lines as they are; `< [binary N bytes] 68 65 …` for binary, the
/// first [`PREVIEW_BYTES`] in hex, then `…` if there are more.
pub(crate) fn format(message: &Message) -> String {
    if let Some(text) = message.as_text() {
        return format!("< {text}");
    }
    let data = message.as_payload();
    let mut line = format!("< [binary {} bytes]", data.len());
    for byte in data.iter().take(PREVIEW_BYTES) {
        // Writing to a String cannot fail.
        let _ = write!(line, " {byte:02x}");
    }
    if data.len() > PREVIEW_BYTES {
        line.push_str(" …");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_follows_the_marker_as_is() {
        assert_eq!(format(&Message::text("hello")), "< hello");
        assert_eq!(format(&Message::text("a\nb")), "< a\nb");
        assert_eq!(format(&Message::text("")), "< ");
    }

    #[test]
    fn binary_shows_its_length_and_a_hex_preview() {
        assert_eq!(
            format(&Message::binary(&b"hi"[..])),
            "< [binary 2 bytes] 68 69"
        );
        assert_eq!(format(&Message::binary(Vec::new())), "< [binary 0 bytes]");
        let exact: Vec<u8> = (0..32).collect();
        let shown = format(&Message::binary(exact));
        assert!(shown.ends_with(" 1e 1f"), "{shown}");
        let long: Vec<u8> = (0..40).collect();
        let shown = format(&Message::binary(long));
        assert!(shown.starts_with("< [binary 40 bytes] 00 01 02"), "{shown}");
        assert!(shown.ends_with(" 1e 1f …"), "{shown}");
    }
}
