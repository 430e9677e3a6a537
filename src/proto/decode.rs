//! Frame decoding over a `BytesMut`: headers checked for the role and the
//! limits, payloads unmasked in place as they arrive and handed out as
//! zero-copy `Bytes`.

use bytes::{Buf, Bytes, BytesMut};

use super::error::ProtocolError;
use super::frame::FrameHeader;
use super::mask::apply_mask;
use super::Role;

/// A whole frame, unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header as it arrived (the masking key, if any, is already applied).
    pub header: FrameHeader,
    /// The unmasked payload.
    pub payload: Bytes,
}

/// Sees each frame as it is decoded: the header as soon as it is parsed, and
/// every piece of payload as soon as it arrives and is unmasked. An error
/// stops decoding, so a bad message fails before it is complete.
pub trait FrameObserver {
    /// Called once per frame, before any of its payload.
    fn header(&mut self, _header: &FrameHeader) -> Result<(), ProtocolError> {
        Ok(())
    }

    /// Called with each newly arrived, unmasked piece of the payload.
    fn payload(&mut self, _header: &FrameHeader, _piece: &[u8]) -> Result<(), ProtocolError> {
        Ok(())
    }
}

/// Observes nothing.
impl FrameObserver for () {}

/// Below this, the decoder asks for room for the whole rest of a frame; above
/// it, room grows with what has actually arrived, so a peer that announces a
/// huge frame and sends nothing does not make us allocate it.
const RESERVE_STEP: usize = 64 * 1024;

/// Decodes frames sent by the peer of `role`.
#[derive(Debug)]
pub struct FrameDecoder {
    role: Role,
    max_frame_size: usize,
    allowed_rsv: u8,
    current: Option<Partial>,
}

#[derive(Debug)]
struct Partial {
    header: FrameHeader,
    /// Payload bytes still to come off the buffer (all of them, unless
    /// pieces were handed out already).
    len: usize,
    /// Payload bytes at the front of the buffer already unmasked and observed.
    seen: usize,
    /// Payload bytes already handed out as pieces: where the buffer's front
    /// is in the frame, for the masking key.
    taken: usize,
}

/// Part of a data frame's payload, handed out as it arrives
/// ([`FrameDecoder::decode_piece`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The frame's header.
    pub header: FrameHeader,
    /// Unmasked payload bytes; empty when only the header has arrived or the
    /// frame is empty.
    pub payload: Bytes,
    /// Whether this is the frame's first piece.
    pub first: bool,
    /// Whether this piece ends the frame.
    pub last: bool,
}

impl FrameDecoder {
    /// A decoder for the frames that arrive at an endpoint of `role`.
    pub fn new(role: Role, max_frame_size: usize) -> Self {
        Self {
            role,
            max_frame_size,
            allowed_rsv: 0,
            current: None,
        }
    }

    /// Allows reserved bits that a negotiated extension defines.
    pub fn allow_rsv(&mut self, bits: u8) {
        self.allowed_rsv = bits;
    }

    /// The header of a frame whose payload is still arriving.
    pub fn partial_header(&self) -> Option<&FrameHeader> {
        self.current.as_ref().map(|p| &p.header)
    }

    /// Decodes the next frame from the front of `buf`, consuming it.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        self.decode_observed(buf, &mut ())
    }

    /// Decodes the next frame, showing its header and payload pieces to
    /// `observer` as they arrive. Returns `Ok(None)` when `buf` holds no
    /// whole frame yet; the bytes seen so far stay in `buf` (the header is
    /// consumed) and are not shown again.
    #[inline]
    pub fn decode_observed(
        &mut self,
        buf: &mut BytesMut,
        observer: &mut impl FrameObserver,
    ) -> Result<Option<Frame>, ProtocolError> {
        if self.current.is_none() && !self.start_frame(buf, observer)? {
            return Ok(None);
        }
        let Some(partial) = self.current.as_mut() else {
            return Ok(None);
        };
        let available = buf.len().min(partial.len);
        if available > partial.seen {
            let piece = &mut buf[partial.seen..available];
            if let Some(key) = partial.header.mask {
                apply_mask(piece, key, partial.taken + partial.seen);
            }
            observer.payload(&partial.header, piece)?;
            partial.seen = available;
        }
        if available < partial.len {
            let missing = partial.len - available;
            buf.reserve(missing.min(RESERVE_STEP.max(available)));
            return Ok(None);
        }
        let header = partial.header;
        let payload = if partial.len == buf.len() && partial.len == buf.capacity() {
            // The frame is all the buffer holds and can hold (a read sized
            // to what arrived): hand over the buffer itself. Splitting would
            // first allocate a shared header for its two halves.
            std::mem::take(buf).freeze()
        } else {
            buf.split_to(partial.len).freeze()
        };
        self.current = None;
        Ok(Some(Frame { header, payload }))
    }

    /// Like [`decode_observed`](Self::decode_observed), but a data frame's
    /// payload is handed out in pieces as it arrives instead of whole, so
    /// the buffer never has to hold a whole frame: a piece when the header
    /// has arrived (with the payload there is so far), then one per call
    /// with what arrived since. Control frames still come whole, as one
    /// piece with `first` and `last` set. `Ok(None)` when nothing new is
    /// in `buf`.
    pub fn decode_piece(
        &mut self,
        buf: &mut BytesMut,
        observer: &mut impl FrameObserver,
    ) -> Result<Option<Piece>, ProtocolError> {
        let first = self.current.is_none();
        let control = match &self.current {
            Some(partial) => partial.header.opcode.is_control(),
            None => match FrameHeader::parse(buf)? {
                Some((header, _)) => header.opcode.is_control(),
                None => return Ok(None),
            },
        };
        if control {
            return Ok(self
                .decode_observed(buf, observer)?
                .map(|Frame { header, payload }| Piece {
                    header,
                    payload,
                    first: true,
                    last: true,
                }));
        }
        if first && !self.start_frame(buf, observer)? {
            return Ok(None);
        }
        let Some(partial) = self.current.as_mut() else {
            return Ok(None);
        };
        let available = buf.len().min(partial.len);
        if available > partial.seen {
            let piece = &mut buf[partial.seen..available];
            if let Some(key) = partial.header.mask {
                apply_mask(piece, key, partial.taken + partial.seen);
            }
            observer.payload(&partial.header, piece)?;
        }
        if available == 0 && !first && partial.len > 0 {
            return Ok(None);
        }
        let header = partial.header;
        let payload = if available == 0 {
            Bytes::new()
        } else {
            buf.split_to(available).freeze()
        };
        partial.len -= available;
        partial.taken += available;
        partial.seen = 0;
        let last = partial.len == 0;
        if last {
            self.current = None;
        }
        Ok(Some(Piece {
            header,
            payload,
            first,
            last,
        }))
    }

    /// Parses and judges the header at the front of `buf`, shows it to
    /// `observer`, consumes it and makes it the frame in progress. `false`
    /// when the header is not all there yet (nothing consumed).
    #[inline]
    fn start_frame(
        &mut self,
        buf: &mut BytesMut,
        observer: &mut impl FrameObserver,
    ) -> Result<bool, ProtocolError> {
        let Some((header, header_len)) = FrameHeader::parse(buf)? else {
            return Ok(false);
        };
        self.check(&header)?;
        observer.header(&header)?;
        buf.advance(header_len);
        // `check` bounded the length by `max_frame_size`, a usize.
        let len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
        self.current = Some(Partial {
            header,
            len,
            seen: 0,
            taken: 0,
        });
        Ok(true)
    }

    fn check(&self, header: &FrameHeader) -> Result<(), ProtocolError> {
        let stray_rsv = header.rsv & !self.allowed_rsv;
        if stray_rsv != 0 {
            return Err(ProtocolError::ReservedBits(stray_rsv));
        }
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if header.payload_len > self.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooLarge {
                size: header.payload_len,
                limit: self.max_frame_size,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::{encode_frame, OpCode};

    fn encoded(opcode: OpCode, fin: bool, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
        let header = FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask,
            payload_len: 0,
        };
        let mut out = BytesMut::new();
        encode_frame(&header, payload, &mut out);
        out.to_vec()
    }

    #[test]
    fn decodes_a_masked_frame_fed_one_byte_at_a_time() {
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let wire = encoded(OpCode::Binary, true, Some([1, 2, 3, 4]), &payload);
        let mut decoder = FrameDecoder::new(Role::Server, 1 << 20);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for byte in wire {
            buf.extend_from_slice(&[byte]);
            if let Some(frame) = decoder.decode(&mut buf).unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].payload, payload);
        assert!(buf.is_empty());
    }

    #[test]
    fn a_frame_that_fills_its_buffer_takes_it_and_one_that_does_not_splits() {
        let wire = encoded(OpCode::Binary, true, Some([9, 8, 7, 6]), b"whole buffer");
        let mut decoder = FrameDecoder::new(Role::Server, 1 << 20);
        // Exactly the frame: the buffer itself becomes the payload.
        let mut exact = BytesMut::from(&wire[..]);
        let frame = decoder.decode(&mut exact).unwrap().unwrap();
        assert_eq!(&frame.payload[..], b"whole buffer");
        assert_eq!(exact.capacity(), 0);
        // The frame and the start of the next: split, the rest stays.
        let mut more = BytesMut::from(&wire[..]);
        more.extend_from_slice(&wire[..3]);
        let frame = decoder.decode(&mut more).unwrap().unwrap();
        assert_eq!(&frame.payload[..], b"whole buffer");
        assert_eq!(&more[..], &wire[..3]);
        // Room to spare but nothing else: split, the room stays for reads.
        let mut roomy = BytesMut::with_capacity(wire.len() + 100);
        roomy.extend_from_slice(&wire);
        let frame = decoder.decode(&mut roomy).unwrap().unwrap();
        assert_eq!(&frame.payload[..], b"whole buffer");
        assert!(roomy.is_empty() && roomy.capacity() >= 100);
    }

    #[test]
    fn masking_must_match_the_role() {
        let masked = encoded(OpCode::Text, true, Some([1, 1, 1, 1]), b"hi");
        let plain = encoded(OpCode::Text, true, None, b"hi");
        let mut client = FrameDecoder::new(Role::Client, 100);
        assert_eq!(
            client.decode(&mut BytesMut::from(&masked[..])),
            Err(ProtocolError::MaskedFrame)
        );
        let mut server = FrameDecoder::new(Role::Server, 100);
        assert_eq!(
            server.decode(&mut BytesMut::from(&plain[..])),
            Err(ProtocolError::UnmaskedFrame)
        );
    }

    #[test]
    fn oversized_frame_fails_on_its_header() {
        let mut decoder = FrameDecoder::new(Role::Client, 1000);
        // Header of a 1 GiB frame, no payload.
        let mut buf = BytesMut::from(&[0x82u8, 127, 0, 0, 0, 0, 0x40, 0, 0, 0][..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Err(ProtocolError::FrameTooLarge {
                size: 1 << 30,
                limit: 1000
            })
        );
    }

    #[test]
    fn reserved_bits_need_an_extension() {
        let mut decoder = FrameDecoder::new(Role::Client, 1000);
        let mut buf = BytesMut::from(&[0xC2u8, 0][..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Err(ProtocolError::ReservedBits(0x40))
        );
        let mut decoder = FrameDecoder::new(Role::Client, 1000);
        decoder.allow_rsv(0x40);
        let mut buf = BytesMut::from(&[0xC2u8, 0][..]);
        assert!(decoder.decode(&mut buf).unwrap().is_some());
    }

    #[test]
    fn observer_sees_each_payload_byte_once() {
        struct Count(usize, usize);
        impl FrameObserver for Count {
            fn header(&mut self, _: &FrameHeader) -> Result<(), ProtocolError> {
                self.0 += 1;
                Ok(())
            }
            fn payload(&mut self, _: &FrameHeader, piece: &[u8]) -> Result<(), ProtocolError> {
                self.1 += piece.len();
                Ok(())
            }
        }
        let wire = encoded(OpCode::Text, true, None, &[b'a'; 1000]);
        let mut decoder = FrameDecoder::new(Role::Client, 1 << 20);
        let mut buf = BytesMut::new();
        let mut count = Count(0, 0);
        for chunk in wire.chunks(7) {
            buf.extend_from_slice(chunk);
            decoder.decode_observed(&mut buf, &mut count).unwrap();
        }
        assert_eq!((count.0, count.1), (1, 1000));
    }

    #[test]
    fn announcing_a_huge_frame_does_not_reserve_it() {
        let mut decoder = FrameDecoder::new(Role::Client, 1 << 30);
        let mut buf = BytesMut::from(&[0x82u8, 127, 0, 0, 0, 0, 0x10, 0, 0, 0][..]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(
            buf.capacity() <= 2 * RESERVE_STEP,
            "capacity {}",
            buf.capacity()
        );
    }
}
