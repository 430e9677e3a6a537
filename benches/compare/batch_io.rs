//! Byte-stream wrappers: `Batch` gathers writes into few syscalls, and
//! `MaskCheck` refuses unmasked client frames.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Writes gather up to this many bytes before they must go out (the echo
/// server's and the fastwebsockets client's write buffers).
const BATCH: usize = 64 * 1024;

/// A writer that gathers writes in a buffer (grown as needed, at most
/// [`BATCH`] bytes) and sends them on flush, when the buffer is full, and,
/// as a reader, whenever reading would block: what the reads so far
/// produced goes out before the task sleeps.
pub(super) struct Batch<T> {
    io: T,
    out: Vec<u8>,
    sent: usize,
}

impl<T: AsyncWrite + Unpin> Batch<T> {
    pub(super) fn new(io: T) -> Self {
        Self {
            io,
            out: Vec::new(),
            sent: 0,
        }
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.out.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Batch<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(data)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if this.out.len() + len > BATCH {
            ready!(this.poll_drain(cx))?;
        }
        if len >= BATCH {
            // Too big to gather: straight to the socket.
            return Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        }
        for buf in bufs {
            this.out.extend_from_slice(buf);
        }
        Poll::Ready(Ok(len))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Batch<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if read.is_pending() {
            // Nothing more to read for now: send the echoes gathered so far.
            // A drain that cannot finish registers for writability and goes
            // on at the next poll.
            if let Poll::Ready(Err(err)) = this.poll_drain(cx) {
                return Poll::Ready(Err(err));
            }
        }
        read
    }
}

/// A client-to-server byte stream checked frame by frame: a frame without
/// the mask bit fails the read with `InvalidData` (RFC 6455 §5.1).
pub(super) struct MaskCheck<T> {
    io: T,
    /// Payload bytes of the current frame still to skip.
    skip: u64,
    head: [u8; 14],
    have: usize,
}

impl<T> MaskCheck<T> {
    pub(super) fn new(io: T) -> Self {
        Self {
            io,
            skip: 0,
            head: [0; 14],
            have: 0,
        }
    }

    fn feed(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.skip > 0 {
                let n = data.len().min(self.skip.try_into().unwrap_or(usize::MAX));
                self.skip -= n as u64;
                data = &data[n..];
                continue;
            }
            self.head[self.have] = data[0];
            self.have += 1;
            data = &data[1..];
            if self.have >= 2 {
                self.header_byte()?;
            }
        }
        Ok(())
    }

    /// Called with two or more header bytes: fails an unmasked frame, and
    /// once the header is complete, starts skipping its payload.
    fn header_byte(&mut self) -> io::Result<()> {
        if self.head[1] & 0x80 == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unmasked client frame",
            ));
        }
        let extra = match self.head[1] & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        if self.have < 2 + extra + 4 {
            return Ok(());
        }
        self.skip = match extra {
            0 => u64::from(self.head[1] & 0x7F),
            2 => u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
            _ => u64::from_be_bytes(self.head[2..10].try_into().unwrap_or_default()),
        };
        self.have = 0;
        Ok(())
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for MaskCheck<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        Poll::Ready(this.feed(&buf.filled()[before..]))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for MaskCheck<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
