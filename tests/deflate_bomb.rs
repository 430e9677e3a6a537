//! A decompression bomb: about 1 MiB of compressed data that would inflate
//! to 1 GiB ends the connection with close 1009 at the message limit, and
//! the process's memory never grows much past that limit. Alone in its own
//! test binary, because it measures the process's peak RSS.

#![cfg(feature = "deflate")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/measure.rs"]
mod measure;
#[path = "support/raw.rs"]
mod raw;

use flate2::{Compress, Compression, FlushCompress};
use futures::StreamExt;
use measure::peak_rss_bytes;
use raw::{listen, within, RawPeer};
use wsstream::proto::{ProtocolError, RSV1};
use wsstream::{DeflateConfig, Error, Options, WebSocketStream};

const LIMIT: usize = 8 << 20;
const SEGMENT: usize = 16 << 20;
const SEGMENTS: usize = 64;

#[tokio::test]
async fn a_bomb_ends_with_1009_at_the_limit_and_memory_stays_bounded() {
    // 16 MiB of zeros compress to ~16 KiB. A DEFLATE stream of that
    // segment repeated is valid (each copy refers only within itself), so
    // 64 copies inflate to 1 GiB.
    // Fed 64 KiB at a time, so building it does not raise the peak RSS
    // the test measures.
    let mut compressor = Compress::new(Compression::best(), false);
    let mut segment = Vec::with_capacity(64 << 10);
    let zeros = [0u8; 64 << 10];
    for i in 0..SEGMENT / zeros.len() {
        let last = i + 1 == SEGMENT / zeros.len();
        let flush = if last {
            FlushCompress::Sync
        } else {
            FlushCompress::None
        };
        compressor
            .compress_vec(&zeros, &mut segment, flush)
            .unwrap();
    }
    assert_eq!(compressor.total_in(), SEGMENT as u64);
    let mut bomb = segment.repeat(SEGMENTS);
    bomb.truncate(bomb.len() - 4); // the sync tail, as RFC 7692 sends it
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());

    let (listener, url) = listen().await;
    let options = Options::default()
        .deflate(DeflateConfig::default())
        .max_message_size(LIMIT);
    let ws = WebSocketStream::connect(&url, options);
    let (tcp, _) = within(listener.accept()).await.unwrap();
    let mut peer = RawPeer::handshake_with(tcp, Some("permessage-deflate"), b"").await;
    let mut opened = within(ws.opened()).await.unwrap();
    let before = peak_rss_bytes();

    // One compressed message in 64 frames: the limit must hold across
    // frames, not only within one.
    let mut frames = raw::binary_fragments(&bomb, SEGMENTS, None);
    frames[0][0] |= RSV1;
    let sender = tokio::spawn(async move {
        for bytes in frames {
            // The client stops reading once it fails; a write that cannot
            // finish is fine.
            if tokio::time::timeout(std::time::Duration::from_secs(2), peer.send(&bytes))
                .await
                .is_err()
            {
                break;
            }
        }
        peer
    });
    match within(opened.next()).await {
        Some(Err(Error::Protocol(ProtocolError::MessageTooLarge { size, limit }))) => {
            assert_eq!(limit, LIMIT);
            assert!(
                size > LIMIT as u64 && size <= LIMIT as u64 + 1,
                "stopped at {size}"
            );
        }
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    let mut peer = within(sender).await.unwrap();
    assert_eq!(peer.read_until_close().await, Some(1009));

    let growth = peak_rss_bytes().saturating_sub(before);
    assert!(
        growth < 4 * LIMIT,
        "peak memory grew by {} MiB for a {} MiB limit",
        growth >> 20,
        LIMIT >> 20
    );
    eprintln!(
        "bomb: {} KiB compressed (1 GiB inflated), stopped at the {} MiB limit; peak RSS grew {} MiB",
        bomb.len() >> 10,
        LIMIT >> 20,
        growth >> 20
    );
}
