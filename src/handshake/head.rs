//! Finding the end of an HTTP head without re-parsing it on every read, so
//! a peer that drips its head a byte at a time costs linear time.

use super::error::HandshakeError;
use super::MAX_HEAD_LEN;

/// Remembers how far a growing buffer has been searched for the blank line
/// that ends a head.
#[derive(Debug, Default, Clone)]
pub struct HeadScan {
    searched: usize,
}

impl HeadScan {
    /// Whether `buf` now holds a blank line (`\n\n` or `\n\r\n`), searching
    /// only what is new since the last call.
    pub fn is_complete(&mut self, buf: &[u8]) -> bool {
        let start = self.searched.saturating_sub(2);
        self.searched = buf.len();
        let window = &buf[start.min(buf.len())..];
        window.windows(2).any(|w| w == b"\n\n") || window.windows(3).any(|w| w == b"\n\r\n")
    }
}

/// The length of a parsed head, `None` while it is incomplete, or an error
/// once it is (or can only become) longer than [`MAX_HEAD_LEN`].
pub(crate) fn head_len(
    status: httparse::Status<usize>,
    buffered: usize,
) -> Result<Option<usize>, HandshakeError> {
    match status {
        httparse::Status::Complete(len) if len <= MAX_HEAD_LEN => Ok(Some(len)),
        httparse::Status::Partial if buffered <= MAX_HEAD_LEN => Ok(None),
        _ => Err(HandshakeError::HeadTooLarge),
    }
}

/// Appends `name: value` lines for every field of `headers`.
pub(crate) fn write_fields(out: &mut Vec<u8>, headers: &http::HeaderMap) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_however_the_bytes_arrive() {
        let head = b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n\r\nrest";
        for step in 1..=head.len() {
            let mut scan = HeadScan::default();
            let mut found_at = None;
            let mut end = 0;
            while end < head.len() {
                end = (end + step).min(head.len());
                if scan.is_complete(&head[..end]) {
                    found_at = Some(end);
                    break;
                }
            }
            let found_at = found_at.expect("end of head not found");
            assert!(found_at >= 39, "step {step}: found at {found_at}");
        }
    }
}
