//! Incremental UTF-8 validation, so a text message fails as soon as its bad
//! bytes arrive: mid-frame and across fragment boundaries.

use bytes::{Buf, Bytes};

/// The bytes were not valid UTF-8 (or ended inside a character).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

/// Validates a byte stream chunk by chunk, carrying an incomplete character
/// (at most three bytes) from one chunk to the next.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: usize,
}

impl Utf8Validator {
    /// Checks the next chunk. Fails as soon as the bytes seen so far cannot be
    /// the start of valid UTF-8, even if the chunk ends mid-character.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            let need = sequence_len(self.partial[0]) - self.partial_len;
            let take = need.min(input.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&input[..take]);
            let len = self.partial_len + take;
            match std::str::from_utf8(&self.partial[..len]) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_none() => {
                    self.partial_len = len;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
            input = &input[take..];
        }
        match std::str::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &input[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len();
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Ends the stream: fails if it stopped inside a character. Resets the
    /// validator for the next message either way.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.partial_len == 0;
        self.partial_len = 0;
        if complete {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

/// Cuts streamed text into chunks that are each valid UTF-8 on their own:
/// a character split between two pieces of input is held back (at most
/// three bytes) and handed out whole with the next one.
#[derive(Debug, Default, Clone)]
pub(crate) struct TextChunker {
    held: [u8; 4],
    held_len: usize,
}

impl TextChunker {
    /// Takes the next chunk off the front of `data`: valid UTF-8 that ends
    /// on a character boundary, without copying (except for a character
    /// completed from held bytes, which comes as a chunk of its own).
    /// `Ok(None)` when what was taken is held back; call again while `data`
    /// is not empty. On invalid input, `Err` carries the valid bytes before
    /// the first bad one, for the caller to hand out before failing.
    pub(crate) fn next_chunk(&mut self, data: &mut Bytes) -> Result<Option<Bytes>, Bytes> {
        if self.held_len > 0 {
            let need = sequence_len(self.held[0]) - self.held_len;
            let take = need.min(data.len());
            let len = self.held_len + take;
            self.held[self.held_len..len].copy_from_slice(&data[..take]);
            data.advance(take);
            return match std::str::from_utf8(&self.held[..len]) {
                Ok(_) => {
                    self.held_len = 0;
                    Ok(Some(Bytes::copy_from_slice(&self.held[..len])))
                }
                Err(e) if e.error_len().is_none() => {
                    self.held_len = len;
                    Ok(None)
                }
                Err(_) => Err(Bytes::new()),
            };
        }
        let err = match std::str::from_utf8(data) {
            Ok(_) => return Ok(Some(std::mem::take(data))),
            Err(err) => err,
        };
        let valid = data.split_to(err.valid_up_to());
        if err.error_len().is_some() {
            return Err(valid);
        }
        // The rest is the start of a character: hold it.
        self.held_len = data.len();
        self.held[..data.len()].copy_from_slice(data);
        *data = Bytes::new();
        Ok((!valid.is_empty()).then_some(valid))
    }

    /// The text ended: fails if it stopped inside a character. Resets the
    /// chunker either way.
    pub(crate) fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.held_len == 0;
        self.held_len = 0;
        if complete {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

/// The length of the sequence a valid lead byte starts.
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_split(bytes: &[u8], cuts: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::default();
        let mut start = 0;
        for &cut in cuts {
            v.feed(&bytes[start..cut])?;
            start = cut;
        }
        v.feed(&bytes[start..])?;
        v.finish()
    }

    #[test]
    fn agrees_with_std_on_every_two_way_split() {
        let samples: &[&[u8]] = &[
            "κόσμε".as_bytes(),
            "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
            "𝄞 music \u{10FFFF}".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"\xed\xbf\xbf",
            b"abc\xf0\x9f\x98",
            b"\xff",
        ];
        for sample in samples {
            let expected = std::str::from_utf8(sample).is_ok();
            for a in 0..=sample.len() {
                for b in a..=sample.len() {
                    assert_eq!(
                        feed_split(sample, &[a, b]).is_ok(),
                        expected,
                        "{sample:?} cut {a},{b}"
                    );
                }
            }
        }
    }

    #[test]
    fn fails_before_the_character_is_complete() {
        let mut v = Utf8Validator::default();
        // 0xED 0xA0 starts a UTF-16 surrogate: invalid whatever follows.
        assert_eq!(v.feed(b"ok\xed"), Ok(()));
        assert_eq!(v.feed(b"\xa0"), Err(InvalidUtf8));
        let mut v = Utf8Validator::default();
        // 0xF4 0x90 would encode a code point above U+10FFFF.
        assert_eq!(v.feed(b"\xf4\x90"), Err(InvalidUtf8));
    }

    #[test]
    fn truncated_character_fails_at_finish_and_resets() {
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(b"\xe2\x82"), Ok(()));
        assert_eq!(v.finish(), Err(InvalidUtf8));
        assert_eq!(v.feed(b"fine"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }

    /// Every chunk of every cut of the input into three pieces: each chunk
    /// is valid on its own, together they are the input, and invalid input
    /// fails with exactly the valid bytes before the bad one handed out.
    #[test]
    fn chunks_are_valid_on_their_own_and_lose_nothing() {
        let samples: &[&[u8]] = &[
            "κόσμε 𝄞 €".as_bytes(),
            b"ab\xe2\x82\xacc\xf0\x9f\x98\x80",
            b"ok\xe2\x82\xac bad \xed\xa0\x80 after",
            b"\xf0\x9f\x98",
            b"x\xff",
        ];
        for sample in samples {
            let valid_up_to = match std::str::from_utf8(sample) {
                Ok(_) => None,
                Err(e) => Some(e.valid_up_to()),
            };
            for a in 0..=sample.len() {
                for b in a..=sample.len() {
                    let mut chunker = TextChunker::default();
                    let mut out = Vec::new();
                    let mut failed = false;
                    'pieces: for piece in [&sample[..a], &sample[a..b], &sample[b..]] {
                        let mut data = Bytes::copy_from_slice(piece);
                        while !data.is_empty() {
                            match chunker.next_chunk(&mut data) {
                                Ok(Some(chunk)) => {
                                    assert!(std::str::from_utf8(&chunk).is_ok(), "{chunk:?}");
                                    assert!(!chunk.is_empty());
                                    out.extend_from_slice(&chunk);
                                }
                                Ok(None) => {}
                                Err(valid) => {
                                    out.extend_from_slice(&valid);
                                    failed = true;
                                    break 'pieces;
                                }
                            }
                        }
                    }
                    if !failed && chunker.finish().is_err() {
                        failed = true;
                    }
                    match valid_up_to {
                        None => assert_eq!((&out[..], failed), (&sample[..], false)),
                        Some(n) => {
                            assert!(failed, "{sample:?} cut {a},{b}");
                            assert_eq!(&out[..], &sample[..n], "{sample:?} cut {a},{b}");
                        }
                    }
                }
            }
        }
    }
}
