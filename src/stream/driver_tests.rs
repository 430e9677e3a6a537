//! The driver's buffer policy and write path, against an in-memory socket.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use std::io::IoSlice;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

use super::*;
use crate::proto::{encode_frame, FrameDecoder, FrameHeader, Message, OpCode, Received, Role};
use crate::stream::read_buffer::READ_SMALL;
use crate::stream::waker_set::tests::{owner, Owner};
use crate::stream::wire::Wire;
use crate::transport::BoxedTransport;

/// An in-memory socket that writes vectors and records how many slices
/// each write call was given.
struct Recorder {
    inner: DuplexStream,
    writes: Arc<Mutex<Vec<usize>>>,
}

impl AsyncRead for Recorder {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let joined: Vec<u8> = slices.iter().flat_map(|s| s.iter().copied()).collect();
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &joined))?;
        self.writes.lock().unwrap().push(slices.len());
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

struct Harness {
    driver: Driver,
    peer: DuplexStream,
    writes: Arc<Mutex<Vec<usize>>>,
    wakers: Arc<Owner>,
}

/// A server-side driver over an in-memory socket with room for 1 MiB.
fn harness() -> Harness {
    let (ours, peer) = tokio::io::duplex(1 << 20);
    let writes = Arc::new(Mutex::new(Vec::new()));
    let io: BoxedTransport = Box::pin(Recorder {
        inner: ours,
        writes: writes.clone(),
    });
    let proto = Connection::new(Role::Server, Default::default());
    Harness {
        driver: Driver::new(
            Wire::Bytes(io),
            proto,
            BytesMut::new(),
            ConnConfig::default(),
        ),
        peer,
        writes,
        wakers: owner(),
    }
}

impl Harness {
    /// The driver wakes through its own socket wakers, so the test task
    /// needs no waker of its own.
    fn poll(&mut self) -> Poll<Progress> {
        self.driver.poll_progress(&self.wakers.0)
    }

    fn message(&mut self) -> Bytes {
        match self.poll() {
            Poll::Ready(Progress::Received(Received::Message(Message::Binary(data)))) => data,
            Poll::Ready(Progress::Received(other)) => panic!("unexpected message {other:?}"),
            Poll::Ready(Progress::Ended(result)) => panic!("ended: {result:?}"),
            Poll::Pending => panic!("pending"),
        }
    }
}

/// A masked binary frame, as a client sends it.
fn client_frame(payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Binary,
        mask: Some([1, 2, 3, 4]),
        payload_len: 0,
    };
    let mut out = BytesMut::new();
    encode_frame(&header, payload, &mut out);
    out.to_vec()
}

#[tokio::test]
async fn a_connection_between_small_messages_holds_no_read_buffer() {
    let mut h = harness();
    assert_eq!(
        h.driver.read_buf.capacity(),
        0,
        "opened with nothing to read"
    );
    h.peer.write_all(&client_frame(b"hello")).await.unwrap();
    assert_eq!(&h.message()[..], b"hello");
    // Nobody polls again: the message left, and so did the buffer.
    assert_eq!(h.driver.read_buf.capacity(), 0);
    assert!(h.poll().is_pending());
    assert_eq!(h.driver.read_buf.capacity(), 0);
}

#[tokio::test]
async fn a_half_read_frame_keeps_its_buffer() {
    let mut h = harness();
    let frame = client_frame(b"split across reads");
    h.peer.write_all(&frame[..7]).await.unwrap();
    assert!(h.poll().is_pending());
    assert!(
        !h.driver.read_buf.bytes().is_empty(),
        "the payload byte waits for the rest"
    );
    h.peer.write_all(&frame[7..]).await.unwrap();
    assert_eq!(&h.message()[..], b"split across reads");
}

#[tokio::test]
async fn a_burst_grows_the_read_buffer_and_a_quiet_turn_lets_it_go() {
    let mut h = harness();
    let burst: Vec<u8> = (0..400).flat_map(|_| client_frame(&[7u8; 1000])).collect();
    h.peer.write_all(&burst).await.unwrap();
    for _ in 0..400 {
        assert_eq!(h.message().len(), 1000);
    }
    assert!(h.poll().is_pending());
    // What is left of the large buffer after the burst's frames were split
    // off it: more than a small read would get.
    assert!(
        h.driver.read_buf.capacity() > READ_SMALL,
        "a streaming connection keeps its large buffer for the next burst ({} B)",
        h.driver.read_buf.capacity()
    );
    h.peer.write_all(&client_frame(b"quiet")).await.unwrap();
    assert_eq!(&h.message()[..], b"quiet");
    assert!(h.poll().is_pending());
    assert_eq!(
        h.driver.read_buf.capacity(),
        0,
        "released after a quiet turn"
    );
}

#[tokio::test]
async fn frames_queued_together_leave_in_few_writes_and_in_order() {
    let mut h = harness();
    let mut expected = Vec::new();
    for i in 0..300u32 {
        // Small payloads share the queue's buffer; every tenth is large
        // enough to be its own slice.
        let len = if i % 10 == 0 { 3000 } else { 20 };
        let payload = Bytes::from(vec![i as u8; len]);
        h.driver
            .proto
            .send(Message::Binary(payload.clone()))
            .unwrap();
        expected.push(payload);
    }
    let queued = h.driver.proto.buffered();
    assert!(h.driver.poll_write_queued(h.wakers.0.write()).is_ready());
    assert_eq!(h.driver.proto.buffered(), 0);
    // 30 large payloads, each its own slice between runs of small frames:
    // about 61 slices, so one vectored write takes them all.
    let writes = h.writes.lock().unwrap().clone();
    assert_eq!(writes.len(), 1, "write calls and their slices: {writes:?}");
    assert!(writes[0] > 50, "{writes:?}");
    let mut wire = vec![0u8; queued];
    h.peer.read_exact(&mut wire).await.unwrap();
    let mut decoder = FrameDecoder::new(Role::Client, usize::MAX);
    let mut buf = BytesMut::from(&wire[..]);
    for payload in expected {
        let frame = decoder.decode(&mut buf).unwrap().expect("a whole frame");
        assert_eq!(frame.payload, payload);
    }
    assert!(buf.is_empty());
}

/// Regression: a message read in chunks hands out the whole buffer after
/// every read, which left it empty and sent every read through the 4 KiB
/// stack path meant for idle connections: a copy and a system call per
/// 4 KiB (found by the streamed benchmark).
#[tokio::test]
async fn a_message_read_in_chunks_is_read_in_large_reads() {
    let mut h = harness();
    h.driver.proto.stream_next_message();
    let payload = vec![9u8; 512 * 1024];
    h.peer.write_all(&client_frame(&payload)).await.unwrap();
    let mut chunks = Vec::new();
    loop {
        match h.poll() {
            Poll::Ready(Progress::Received(Received::Chunk(chunk))) => chunks.push(chunk.len()),
            Poll::Ready(Progress::Received(Received::MessageStart(_))) => {}
            Poll::Ready(Progress::Received(Received::MessageEnd)) => break,
            Poll::Ready(Progress::Received(other)) => panic!("unexpected {other:?}"),
            Poll::Ready(Progress::Ended(result)) => panic!("ended: {result:?}"),
            // Tokio's cooperative budget, spent by many small reads.
            Poll::Pending => tokio::task::yield_now().await,
        }
    }
    assert_eq!(chunks.iter().sum::<usize>(), payload.len());
    assert!(
        chunks.len() <= 12,
        "{} chunks for 512 KiB: reads stayed small ({chunks:?})",
        chunks.len()
    );
}
