//! Writing the frame queue to a byte stream.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Buf;
use tokio::io::AsyncWrite;

/// The most slices one `writev` is given. Small frames share one slice, so
/// this only bounds how many large payloads go out per call.
const MAX_WRITE_SLICES: usize = 128;

/// Writes what it can of `queue`, many frames per system call: a vectored
/// write of up to [`MAX_WRITE_SLICES`] slices, or a plain write when the
/// queue is one slice (a `send` costs less than a `writev`) or the
/// transport does not write vectors well. Returns the bytes written.
pub(super) fn poll_write_some<T: AsyncWrite + ?Sized>(
    mut io: Pin<&mut T>,
    cx: &mut Context<'_>,
    queue: &mut impl Buf,
) -> Poll<io::Result<usize>> {
    let chunk = queue.chunk();
    let n = if chunk.is_empty() {
        0
    } else if chunk.len() == queue.remaining() || !io.is_write_vectored() {
        // One slice (the common case: small frames share one buffer), or
        // a transport that does not write vectors well. Checked first, so
        // the slice array below is not filled for it: zeroing 128 slices
        // cost more than the rest of a small round trip's write path.
        ready!(io.as_mut().poll_write(cx, chunk))?
    } else {
        let mut slices = [IoSlice::new(&[]); MAX_WRITE_SLICES];
        match queue.chunks_vectored(&mut slices) {
            0 => 0,
            1 => ready!(io.as_mut().poll_write(cx, &slices[0]))?,
            count => ready!(io.as_mut().poll_write_vectored(cx, &slices[..count]))?,
        }
    };
    queue.advance(n.min(queue.remaining()));
    Poll::Ready(Ok(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{FrameHeader, OpCode, OutQueue};
    use bytes::Bytes;

    /// Takes at most `limit` bytes per call and records each call: the
    /// number of slices of a vectored write, 0 for a plain one.
    struct Recorder {
        vectored: bool,
        limit: usize,
        calls: Vec<usize>,
        written: Vec<u8>,
    }

    impl Recorder {
        fn take(&mut self, slices: &[IoSlice<'_>]) -> usize {
            let before = self.written.len();
            for slice in slices {
                let room = self.limit - (self.written.len() - before);
                self.written
                    .extend_from_slice(&slice[..slice.len().min(room)]);
            }
            self.written.len() - before
        }
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.calls.push(0);
            Poll::Ready(Ok(self.take(&[IoSlice::new(buf)])))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            slices: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.calls.push(slices.len());
            Poll::Ready(Ok(self.take(slices)))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Small frames share one chunk; a payload above the inline limit is
    /// a chunk of its own, between its header's chunk and the next frame's.
    /// Returns the queue and the bytes it holds.
    fn queue(payloads: &[usize]) -> (OutQueue, Vec<u8>) {
        let fill = || {
            let mut queue = OutQueue::default();
            for (i, &len) in payloads.iter().enumerate() {
                let header = FrameHeader {
                    fin: true,
                    rsv: 0,
                    opcode: OpCode::Binary,
                    mask: None,
                    payload_len: len as u64,
                };
                queue.push_frame(&header, Bytes::from(vec![i as u8; len]));
            }
            queue
        };
        let mut reference = fill();
        let expected = reference.copy_to_bytes(reference.remaining()).to_vec();
        (fill(), expected)
    }

    fn write_all(io: &mut Recorder, queue: &mut OutQueue) {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        while queue.has_remaining() {
            let before = queue.remaining();
            let Poll::Ready(Ok(n)) = poll_write_some(Pin::new(&mut *io), &mut cx, queue) else {
                panic!("the recorder is always ready");
            };
            assert_eq!(before - queue.remaining(), n);
        }
    }

    #[test]
    fn one_chunk_goes_out_as_a_plain_write_and_several_as_one_vectored() {
        for vectored in [true, false] {
            let mut io = Recorder {
                vectored,
                limit: usize::MAX,
                calls: Vec::new(),
                written: Vec::new(),
            };
            let (mut small, expected) = queue(&[20, 30, 40]);
            write_all(&mut io, &mut small);
            assert_eq!(io.calls, [0], "vectored transport: {vectored}");
            assert_eq!(io.written, expected);
            io.calls.clear();
            io.written.clear();
            let (mut mixed, expected) = queue(&[20, 5000, 40]);
            write_all(&mut io, &mut mixed);
            let calls: &[usize] = if vectored { &[3] } else { &[0, 0, 0] };
            assert_eq!(io.calls, calls, "vectored transport: {vectored}");
            assert_eq!(io.written, expected);
        }
    }

    #[test]
    fn short_writes_resume_where_they_stopped_and_an_empty_queue_writes_nothing() {
        let mut io = Recorder {
            vectored: true,
            limit: 7,
            calls: Vec::new(),
            written: Vec::new(),
        };
        let (mut mixed, expected) = queue(&[20, 5000, 40]);
        write_all(&mut io, &mut mixed);
        assert_eq!(io.written, expected);
        let calls = io.calls.len();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut empty = OutQueue::default();
        let written = poll_write_some(Pin::new(&mut io), &mut cx, &mut empty);
        assert!(matches!(written, Poll::Ready(Ok(0))));
        assert_eq!(io.calls.len(), calls, "no call for an empty queue");
    }
}
