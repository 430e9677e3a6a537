//! The driver's read buffer and its policy: how much room each read gets,
//! and when the buffer is let go.
//!
//! A connection between messages holds no buffer at all; a read then lands
//! on the stack and only what arrived is kept. While the peer streams (reads
//! fill the room they are given), reads get a large buffer, which is kept
//! across bursts and let go after a quiet turn.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::io::poll_read_buf;

/// Free space for a read while the peer sends little: an idle connection
/// keeps no more than this.
pub(crate) const READ_SMALL: usize = 4 * 1024;
/// Free space for a read once reads fill the buffer: fewer system calls
/// while data streams in. Under glibc's mmap threshold (128 KiB): a buffer
/// at 128 KiB or more, as this was, is mapped and unmapped by the kernel
/// for every allocation, and a server echoing 16 KiB messages on 500
/// connections spent a quarter of its CPU in page faults.
pub(crate) const READ_LARGE: usize = 64 * 1024;

/// Bytes read from the socket and not yet consumed by the protocol.
pub(crate) struct ReadBuffer {
    buf: BytesMut,
    /// Whether the last read filled all the space it was given, so more is
    /// probably waiting: the next read gets a larger buffer.
    streaming: bool,
    /// Bytes read since the socket last had nothing to read.
    burst_bytes: usize,
}

impl ReadBuffer {
    /// A buffer starting with `leftover` (bytes the handshake read past its
    /// head). An empty one holds no memory.
    pub(crate) fn new(leftover: BytesMut) -> Self {
        let buf = if leftover.is_empty() {
            BytesMut::new()
        } else {
            leftover
        };
        Self {
            buf,
            streaming: false,
            burst_bytes: 0,
        }
    }

    /// The bytes waiting, for the protocol to consume.
    pub(crate) fn bytes(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// The memory held, for tests of the policy.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Reads once from `io`; returns the bytes read (0 at end of stream).
    /// `Pending` means the socket ran dry: a quiet turn.
    pub(crate) fn poll_read<R: AsyncRead + ?Sized>(
        &mut self,
        io: Pin<&mut R>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let result = self.poll_read_once(io, cx);
        if result.is_pending() {
            self.on_dry();
        }
        let (n, space) = ready!(result)?;
        self.streaming = n >= space;
        self.burst_bytes = self.burst_bytes.saturating_add(n);
        Poll::Ready(Ok(n))
    }

    /// Appends bytes that arrived as a chunk (an HTTP/2 DATA frame) rather
    /// than by a read into this buffer.
    #[cfg(feature = "http2")]
    pub(crate) fn push(&mut self, data: &[u8]) {
        if self.buf.capacity() == 0 {
            self.buf = BytesMut::from(data);
        } else {
            self.buf.extend_from_slice(data);
        }
        self.burst_bytes = self.burst_bytes.saturating_add(data.len());
    }

    /// The transport had nothing more for now: a quiet turn.
    pub(crate) fn on_dry(&mut self) {
        self.release_if_quiet();
        self.burst_bytes = 0;
    }

    /// One read; returns the bytes read and the space they were given.
    /// With no buffer (between messages) the read lands on the stack and
    /// only what arrived is copied into a buffer of its size: a read that
    /// finds nothing allocates nothing, and a small message holds only its
    /// own bytes, not a 4 KiB buffer. Not while the peer streams: a message
    /// read in chunks hands out the whole buffer after every read, and
    /// reading it 4 KiB at a time through the stack would copy every byte
    /// and cost a system call per 4 KiB.
    fn poll_read_once<R: AsyncRead + ?Sized>(
        &mut self,
        io: Pin<&mut R>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(usize, usize)>> {
        if self.buf.capacity() == 0 && !self.streaming {
            let mut stack = [MaybeUninit::<u8>::uninit(); READ_SMALL];
            let mut read = ReadBuf::uninit(&mut stack);
            ready!(io.poll_read(cx, &mut read))?;
            self.buf = BytesMut::from(read.filled());
            return Poll::Ready(Ok((read.filled().len(), READ_SMALL)));
        }
        let space = self.make_space();
        let n = ready!(poll_read_buf(io, cx, &mut self.buf))?;
        Poll::Ready(Ok((n, space)))
    }

    /// Called when a message leaves or the socket has nothing more for now.
    /// A connection that read little since it last waited, and holds no
    /// half-read frame, lets go of its buffer: connections between messages
    /// hold none, whether or not anyone polls them. One that is streaming
    /// keeps its large buffer for the next burst rather than free and fault
    /// in 64 KiB per wake-up; it lets go after its next quiet turn (at the
    /// latest, the keepalive pong).
    pub(crate) fn release_if_quiet(&mut self) {
        if self.buf.is_empty() && self.burst_bytes <= READ_SMALL {
            self.buf = BytesMut::new();
            self.streaming = false;
        }
    }

    /// Sizes the free space for the next read and returns it: small while
    /// the peer sends little, large while reads fill it.
    fn make_space(&mut self) -> usize {
        let want = if self.streaming {
            READ_LARGE
        } else {
            READ_SMALL
        };
        if self.buf.capacity() - self.buf.len() < want {
            self.buf.reserve(want);
        }
        self.buf.capacity() - self.buf.len()
    }
}
