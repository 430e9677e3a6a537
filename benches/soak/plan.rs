//! What one client connection does, drawn at random from the run's seed
//! and the connection's id: whether it offers permessage-deflate (and
//! with which parameters), whether it sends keepalive pings, its messages
//! (kind and size) in batches with pauses between them, how it ends, and
//! how long the loop waits before it connects again.

use std::time::Duration;

use wsstream::DeflateConfig;

use crate::payload::{close_code, header_len};
use crate::rng::Rng;

/// The share of connections that offer permessage-deflate, in %.
const DEFLATE_SHARE: u64 = 20;
/// The share of connections with client keepalive pings, in %.
const KEEPALIVE_SHARE: u64 = 30;

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// `close(code, reason)` by the client.
    ClientClose(u16),
    /// The client asks the server to close with this code.
    ServerClose(u16),
    /// The client drops everything without closing.
    Drop,
}

/// Messages sent back to back, their echoes awaited, then a pause during
/// which the client still reads (so that keepalive runs, and anything
/// unexpected shows).
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    /// `(text, length)` of each message.
    pub(crate) messages: Vec<(bool, usize)>,
    pub(crate) pause: Duration,
}

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) deflate: Option<DeflateConfig>,
    /// The client's ping interval, if it sends keepalive pings.
    pub(crate) keepalive: Option<Duration>,
    pub(crate) batches: Vec<Batch>,
    pub(crate) ending: Ending,
    /// The wait before the loop connects again.
    pub(crate) reconnect_after: Duration,
}

impl Plan {
    pub(crate) fn new(seed: u64, id: u64) -> Self {
        let mut rng = Rng::of(seed, id);
        let deflate = rng.percent(DEFLATE_SHARE).then(|| {
            DeflateConfig::default()
                .client_no_context_takeover(rng.percent(50))
                .server_no_context_takeover(rng.percent(50))
                .client_max_window_bits(rng.between(8, 15) as u8)
                .server_max_window_bits(rng.between(8, 15) as u8)
                .threshold(rng.between(0, 256) as usize)
        });
        let keepalive = rng
            .percent(KEEPALIVE_SHARE)
            .then(|| Duration::from_millis(rng.between(50, 400)));
        let mut batches: Vec<Batch> = (0..rng.between(0, 4))
            .map(|_| Batch {
                messages: (0..rng.between(1, 4))
                    .map(|_| {
                        let text = rng.percent(50);
                        (text, header_len(text) + body_len(&mut rng))
                    })
                    .collect(),
                pause: if rng.percent(40) {
                    Duration::ZERO
                } else {
                    Duration::from_millis(rng.between(50, 1500))
                },
            })
            .collect();
        // An idle spell for two to four pings, ending between two, so
        // that the last pong is not still on its way when the connection
        // ends.
        if let Some(every) = keepalive {
            batches.push(Batch {
                messages: Vec::new(),
                pause: every * rng.between(2, 4) as u32 + every / 2,
            });
        }
        let ending = match rng.below(3) {
            0 => Ending::ClientClose(close_code(&mut rng)),
            1 => Ending::ServerClose(close_code(&mut rng)),
            _ => Ending::Drop,
        };
        Self {
            deflate,
            keepalive,
            batches,
            ending,
            reconnect_after: Duration::from_millis(rng.between(0, 50)),
        }
    }
}

/// A body length: mostly small, some of a few KiB, now and then up to
/// 128 KiB (several reads, and a frame over the 64 KiB read buffer).
fn body_len(rng: &mut Rng) -> usize {
    let most = match rng.below(100) {
        0..60 => 64,
        60..90 => 2 << 10,
        90..99 => 16 << 10,
        _ => 128 << 10,
    };
    rng.between(0, most) as usize
}
