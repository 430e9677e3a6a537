//! The body of a response that refused the upgrade, kept so the caller can
//! show why (a 401's or 403's explanation), up to a small cap.

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode};

use super::tokens::has_token;

/// The most of a refusal's body that is kept (4 KiB); the rest is not read.
pub const MAX_REFUSAL_BODY: usize = 4 * 1024;

/// Collects a response body from bytes as they arrive, framed as its head
/// says: `Content-Length`, chunked, or up to the end of the connection.
#[derive(Debug)]
pub struct BodyCollector {
    framing: Framing,
    body: BytesMut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes are still to come.
    Length(usize),
    /// Before a chunk-size line.
    ChunkSize,
    /// Inside a chunk, with this many data bytes to come.
    ChunkData(usize),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// Everything until the peer closes.
    UntilClose,
    /// Nothing more is wanted: complete, capped, or not understood.
    Done,
}

impl BodyCollector {
    /// Reads the framing of a response with `status` and `headers`.
    pub fn new(status: StatusCode, headers: &HeaderMap) -> Self {
        let chunked = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .any(|value| has_token(value.as_bytes(), "chunked"));
        let length = headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<usize>().ok());
        let framing = if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Framing::Done
        } else if chunked {
            Framing::ChunkSize
        } else if let Some(length) = length {
            Framing::Length(length)
        } else {
            Framing::UntilClose
        };
        let mut collector = Self {
            framing,
            body: BytesMut::new(),
        };
        collector.cap();
        collector
    }

    /// Takes what `buf` holds of the body. Returns `true` once nothing more
    /// is wanted.
    pub fn feed(&mut self, buf: &mut BytesMut) -> bool {
        while !buf.is_empty() && self.framing != Framing::Done {
            match self.framing {
                Framing::Length(left) | Framing::ChunkData(left) => {
                    let take = left.min(buf.len());
                    self.body.extend_from_slice(&buf[..take]);
                    buf.advance(take);
                    self.framing = match self.framing {
                        Framing::Length(_) if take == left => Framing::Done,
                        Framing::Length(_) => Framing::Length(left - take),
                        _ if take == left => Framing::ChunkEnd,
                        _ => Framing::ChunkData(left - take),
                    };
                }
                Framing::UntilClose => {
                    self.body.extend_from_slice(buf);
                    buf.clear();
                }
                Framing::ChunkSize | Framing::ChunkEnd => {
                    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
                        // A line longer than any sane chunk-size line.
                        if buf.len() > 1024 {
                            self.framing = Framing::Done;
                        }
                        return self.framing == Framing::Done;
                    };
                    let line = buf.split_to(end + 1);
                    self.framing = match self.framing {
                        Framing::ChunkEnd => Framing::ChunkSize,
                        _ => match chunk_size(&line) {
                            Some(0) | None => Framing::Done,
                            Some(size) => Framing::ChunkData(size),
                        },
                    };
                }
                Framing::Done => {}
            }
            self.cap();
        }
        self.framing == Framing::Done
    }

    /// The body collected so far, at most [`MAX_REFUSAL_BODY`] bytes.
    pub fn finish(self) -> Bytes {
        self.body.freeze()
    }

    fn cap(&mut self) {
        if self.body.len() >= MAX_REFUSAL_BODY {
            self.body.truncate(MAX_REFUSAL_BODY);
            self.framing = Framing::Done;
        }
    }
}

/// The size on a chunk-size line (hex digits, then extensions or CRLF).
fn chunk_size(line: &[u8]) -> Option<usize> {
    let digits =
        line.iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .try_fold(0usize, |size, &b| {
                let digit = (b as char).to_digit(16)? as usize;
                size.checked_mul(16)?.checked_add(digit)
            })?;
    let rest = &line[line.iter().take_while(|b| b.is_ascii_hexdigit()).count()..];
    let well_formed = line.first().is_some_and(u8::is_ascii_hexdigit)
        && matches!(rest.first(), Some(b';' | b'\r' | b'\n' | b' ' | b'\t'));
    well_formed.then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(status: u16, fields: &[(&str, &str)], wire: &[u8], step: usize) -> (Bytes, bool) {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let mut collector = BodyCollector::new(StatusCode::from_u16(status).unwrap(), &headers);
        let mut done = false;
        let mut buf = BytesMut::new();
        for piece in wire.chunks(step) {
            buf.extend_from_slice(piece);
            done = collector.feed(&mut buf);
            if done {
                break;
            }
        }
        (collector.finish(), done)
    }

    #[test]
    fn each_framing_gives_the_body_however_it_arrives() {
        for step in [1, 3, 1000] {
            let (body, done) = collect(401, &[("content-length", "5")], b"nope!extra", step);
            assert_eq!((&body[..], done), (&b"nope!"[..], true), "step {step}");
            let chunked = b"4;ext=1\r\nwho \r\n7\r\nare you\r\n0\r\n\r\n";
            let (body, done) = collect(403, &[("transfer-encoding", "chunked")], chunked, step);
            assert_eq!(
                (&body[..], done),
                (&b"who are you"[..], true),
                "step {step}"
            );
            let (body, done) = collect(404, &[], b"until close", step);
            assert_eq!(
                (&body[..], done),
                (&b"until close"[..], false),
                "step {step}"
            );
        }
        let (body, done) = collect(204, &[], b"ignored", 10);
        assert!(body.is_empty() && done, "no body is read after a 204");
    }

    #[test]
    fn a_long_or_broken_body_is_cut() {
        let big = vec![b'x'; 3 * MAX_REFUSAL_BODY];
        let (body, done) = collect(500, &[("content-length", "12288")], &big, 1000);
        assert_eq!((body.len(), done), (MAX_REFUSAL_BODY, true));
        let (body, done) = collect(500, &[], &big, 777);
        assert_eq!((body.len(), done), (MAX_REFUSAL_BODY, true));
        let (body, done) = collect(500, &[("transfer-encoding", "chunked")], b"zz\r\n", 2);
        assert_eq!((body.len(), done), (0, true));
        let (body, done) = collect(
            500,
            &[("transfer-encoding", "chunked")],
            b"ffffffffffffffffffffff\r\n",
            5,
        );
        assert_eq!((body.len(), done), (0, true), "an overflowing size ends it");
    }
}
