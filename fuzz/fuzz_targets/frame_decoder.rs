//! `FrameDecoder` in either role over bytes that arrive in input-chosen
//! chunks. Every frame that decodes is checked against the rules of its
//! role and limits, re-encoded with `encode_frame` and decoded again; the
//! same bytes decoded in one piece must give the same frames and the same
//! error; the observer must see the header once and every payload byte once.
//!
//! Input: `[config] [n] [n chunk sizes] [wire bytes...]`.
//! config bit 0: role (0 Client, 1 Server); bits 1-3: max_frame_size;
//! bit 4: allow RSV1; bit 5: allow all reserved bits.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wsstream::proto::{
    encode_frame, Frame, FrameDecoder, FrameHeader, FrameObserver, ProtocolError, Role,
    MAX_CONTROL_PAYLOAD, RSV1, RSV_ALL,
};
use wsstream_fuzz::Input;

const MAX_FRAME_SIZES: [usize; 8] = [0, 1, 125, 126, 1000, 65_535, 65_536, 1 << 30];

/// What the decoder's observer saw, checked against each whole frame.
#[derive(Default)]
struct Seen {
    header: Option<FrameHeader>,
    headers_seen: usize,
    payload: Vec<u8>,
}

impl FrameObserver for Seen {
    fn header(&mut self, header: &FrameHeader) -> Result<(), ProtocolError> {
        assert!(
            self.header.is_none(),
            "header observed twice without a frame in between"
        );
        assert!(self.payload.is_empty());
        self.header = Some(*header);
        self.headers_seen += 1;
        Ok(())
    }

    fn payload(&mut self, header: &FrameHeader, piece: &[u8]) -> Result<(), ProtocolError> {
        assert_eq!(
            Some(*header),
            self.header,
            "payload before or without its header"
        );
        assert!(!piece.is_empty(), "empty payload piece observed");
        self.payload.extend_from_slice(piece);
        assert!(self.payload.len() as u64 <= header.payload_len);
        Ok(())
    }
}

struct Setup {
    role: Role,
    max_frame_size: usize,
    allowed_rsv: u8,
}

impl Setup {
    fn decoder(&self) -> FrameDecoder {
        let mut decoder = FrameDecoder::new(self.role, self.max_frame_size);
        decoder.allow_rsv(self.allowed_rsv);
        decoder
    }
}

/// Decodes `wire` given in one piece: the reference for the chunked run.
fn decode_whole(setup: &Setup, wire: &[u8]) -> (Vec<Frame>, Option<ProtocolError>) {
    let mut decoder = setup.decoder();
    let mut buf = BytesMut::from(wire);
    let mut frames = Vec::new();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, None),
            Err(err) => return (frames, Some(err)),
        }
    }
}

fn check_frame(setup: &Setup, frame: &Frame, raw: &[u8]) {
    let h = &frame.header;
    assert_eq!(h.payload_len, frame.payload.len() as u64, "payload length");
    assert!(
        frame.payload.len() <= setup.max_frame_size,
        "frame over the limit"
    );
    assert_eq!(h.rsv & !setup.allowed_rsv, 0, "reserved bits let through");
    assert_eq!(h.rsv & !RSV_ALL, 0);
    match setup.role {
        Role::Client => assert!(h.mask.is_none(), "masked frame accepted by a client"),
        Role::Server => assert!(h.mask.is_some(), "unmasked frame accepted by a server"),
    }
    if h.opcode.is_control() {
        assert!(h.fin, "fragmented control frame accepted");
        assert!(frame.payload.len() <= MAX_CONTROL_PAYLOAD);
    }

    // Re-encode with the same header and mask.
    let mut again = BytesMut::new();
    encode_frame(h, &frame.payload, &mut again);
    assert_eq!(again.len(), h.encoded_len() + frame.payload.len());
    let encoded = again.clone();
    let mut decoder = setup.decoder();
    let redecoded = decoder
        .decode(&mut again)
        .expect("re-encoded frame does not decode")
        .expect("re-encoded frame is incomplete");
    assert_eq!(&redecoded, frame, "re-encoded frame decodes differently");
    assert!(again.is_empty(), "re-encoded frame left bytes behind");

    // Against the bytes it came from: identical when the sender used the
    // shortest length form, as `encode_frame` does.
    assert!(
        raw.len() >= encoded.len(),
        "frame shorter than its encoding"
    );
    assert_eq!(raw[0], encoded[0], "first header byte");
    let payload_at = raw.len() - frame.payload.len();
    assert_eq!(
        raw[payload_at..],
        encoded[encoded.len() - frame.payload.len()..],
        "masked payload differs from the wire"
    );
    if raw.len() == encoded.len() {
        assert_eq!(
            raw,
            &encoded[..],
            "shortest-form frame re-encodes differently"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let config = input.u8();
    let setup = Setup {
        role: if config & 1 == 0 {
            Role::Client
        } else {
            Role::Server
        },
        max_frame_size: MAX_FRAME_SIZES[usize::from(config >> 1) & 7],
        allowed_rsv: match (config & 0x10 != 0, config & 0x20 != 0) {
            (_, true) => RSV_ALL,
            (true, false) => RSV1,
            _ => 0,
        },
    };
    let n_sizes = input.below(16);
    let sizes: Vec<usize> = input
        .bytes(n_sizes)
        .iter()
        .map(|&s| {
            if s < 200 {
                usize::from(s)
            } else {
                usize::from(s - 199) * 1024
            }
        })
        .collect();
    let wire = input.rest();

    let (whole_frames, whole_error) = decode_whole(&setup, wire);

    let mut decoder = setup.decoder();
    let mut seen = Seen::default();
    let mut buf = BytesMut::new();
    let mut fed = 0usize;
    let mut frame_start = 0usize;
    let mut frames = Vec::new();
    let mut error = None;
    let mut turn = 0usize;
    'feed: while fed < wire.len() {
        let size = if sizes.iter().all(|&s| s == 0) {
            wire.len()
        } else {
            sizes[turn % sizes.len()]
        };
        turn += 1;
        let end = (fed + size).min(wire.len());
        buf.extend_from_slice(&wire[fed..end]);
        fed = end;
        loop {
            match decoder.decode_observed(&mut buf, &mut seen) {
                Ok(Some(frame)) => {
                    let consumed = fed - buf.len();
                    let raw = &wire[frame_start..consumed];
                    frame_start = consumed;
                    assert_eq!(seen.header.take(), Some(frame.header), "observer header");
                    assert_eq!(
                        std::mem::take(&mut seen.payload),
                        frame.payload,
                        "observed pieces differ from the payload"
                    );
                    assert!(decoder.partial_header().is_none());
                    check_frame(&setup, &frame, raw);
                    frames.push(frame);
                }
                Ok(None) => {
                    assert_eq!(decoder.partial_header(), seen.header.as_ref());
                    // A frame announced as huge is not allocated up front.
                    assert!(
                        buf.capacity() <= 4 * (buf.len() + 128 * 1024),
                        "read buffer of {} bytes for {} buffered",
                        buf.capacity(),
                        buf.len()
                    );
                    break;
                }
                Err(err) => {
                    let _ = err.close_code();
                    let _ = err.to_string();
                    error = Some(err);
                    break 'feed;
                }
            }
        }
    }

    assert_eq!(
        frames.len(),
        seen.headers_seen - usize::from(seen.header.is_some())
    );
    assert_eq!(frames, whole_frames, "chunked and whole decoding differ");
    assert_eq!(
        error, whole_error,
        "chunked and whole decoding fail differently"
    );
    if error.is_none() {
        // Whatever is left is the start of a frame the decoder is waiting for.
        if let Some(partial) = decoder.partial_header() {
            assert!(!partial.opcode.is_control() || partial.payload_len <= 125);
            assert!(partial.payload_len <= setup.max_frame_size as u64);
        }
    }
});
