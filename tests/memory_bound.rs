//! Memory stays bounded when the peer floods a client that does not read.
//! Alone in its own test binary, because it measures the process's RSS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/measure.rs"]
mod measure;
#[path = "support/raw.rs"]
mod raw;

use std::time::Duration;

use futures::StreamExt;
use measure::rss_bytes;
use raw::{accept_raw, frame, listen, within};
use tokio::io::AsyncWriteExt;
use wsstream::proto::OpCode;
use wsstream::{Options, WebSocketStream};

#[tokio::test]
async fn a_client_that_does_not_read_stops_a_flooding_peer() {
    let (listener, url) = listen().await;
    let ws = WebSocketStream::connect(&url, Options::default());
    let peer = accept_raw(&listener).await;
    let opened = within(ws.opened()).await.unwrap();
    let rss_before = rss_bytes();
    // The peer tries to send 1 GiB in 1 MiB messages; a write that makes no
    // progress for 500 ms means it has been stopped.
    let flood = tokio::spawn(async move {
        let mut peer = peer;
        let chunk = frame(OpCode::Binary, true, &vec![0xAB; 1 << 20], None);
        let mut written = 0usize;
        while written < 1 << 30 {
            let at = written % chunk.len();
            match tokio::time::timeout(Duration::from_millis(500), peer.io.write(&chunk[at..]))
                .await
            {
                Ok(result) => written += result.unwrap(),
                Err(_) => break,
            }
        }
        (peer, written)
    });
    let (peer, written) = within(flood).await.unwrap();
    assert!(
        written < 64 << 20,
        "the peer wrote {} MiB to a client that reads nothing",
        written >> 20
    );
    let growth = rss_bytes().saturating_sub(rss_before);
    assert!(growth < 64 << 20, "memory grew by {} MiB", growth >> 20);

    // Reading resumes the flow, and nothing was lost or corrupted.
    let mut readable = opened.readable;
    let chunk_len = frame(OpCode::Binary, true, &[0xAB; 1 << 20], None).len();
    let expect = written.div_ceil(chunk_len);
    let drain = tokio::spawn(async move {
        let mut peer = peer;
        let chunk = frame(OpCode::Binary, true, &vec![0xAB; 1 << 20], None);
        // Finish the frame the stalled write left half-sent.
        peer.io
            .write_all(&chunk[written % chunk.len()..])
            .await
            .unwrap();
        for _ in 0..8 {
            peer.io.write_all(&chunk).await.unwrap();
        }
        peer
    });
    for _ in 0..expect + 8 {
        let message = within(readable.next()).await.unwrap().unwrap();
        assert_eq!(message.len(), 1 << 20);
        assert!(message.as_payload().iter().all(|&b| b == 0xAB));
    }
    within(drain).await.unwrap();
}
