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
    let n = if io.is_write_vectored() {
        let mut slices = [IoSlice::new(&[]); MAX_WRITE_SLICES];
        match queue.chunks_vectored(&mut slices) {
            0 => 0,
            1 => ready!(io.as_mut().poll_write(cx, &slices[0]))?,
            count => ready!(io.as_mut().poll_write_vectored(cx, &slices[..count]))?,
        }
    } else {
        ready!(io.as_mut().poll_write(cx, queue.chunk()))?
    };
    queue.advance(n.min(queue.remaining()));
    Poll::Ready(Ok(n))
}
