//! Where a connection's frames go: the seam between the driver and the
//! transport. A [`Wire`] reads bytes into the read buffer, writes the
//! queue of encoded frames, ends our direction after the close handshake,
//! and drains the peer's after a failure. Two kinds implement it:
//!
//! - [`ByteStream`](byte_stream): a socket or anything else that is
//!   `AsyncRead + AsyncWrite` (TCP, TLS, unix sockets, tunnels, hyper's
//!   upgraded connections): vectored writes, shutdown to end.
//! - [`Http2Stream`](http2): one stream of an HTTP/2 connection (RFC 8441),
//!   with the feature `http2`: data arrives as flow-controlled chunks whose
//!   window is given back as the protocol consumes them, frames go out as
//!   DATA without a copy, and our direction ends with END_STREAM.
//!
//! An enum rather than a trait object: the byte stream, the common case,
//! keeps a direct call, and the driver never sees which kind it has.

mod byte_stream;
#[cfg(feature = "http2")]
pub(crate) mod http2;

use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use super::read_buffer::ReadBuffer;
use crate::proto::OutQueue;
use crate::transport::BoxedTransport;

/// How long a failed connection keeps reading before it is closed.
const LINGER: Duration = Duration::from_secs(2);
/// How much a failed connection reads at most before it is closed.
const LINGER_BYTES: usize = 1 << 20;

/// The transport under one connection.
pub(crate) enum Wire {
    /// A byte stream: a socket, a TLS session, an upgraded HTTP connection.
    Bytes(BoxedTransport),
    /// One HTTP/2 stream (boxed: `h2`'s handles are larger than a byte
    /// stream's pointer, and every connection would pay for them).
    #[cfg(feature = "http2")]
    Http2(Box<http2::Http2Stream>),
}

impl Wire {
    /// Reads what has arrived into `buf`; returns how much (0 when the peer
    /// ended its direction). `Pending` means nothing is waiting.
    #[inline]
    pub(crate) fn poll_read(
        &mut self,
        buf: &mut ReadBuffer,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match self {
            Self::Bytes(io) => buf.poll_read(io.as_mut(), cx),
            #[cfg(feature = "http2")]
            Self::Http2(stream) => stream.poll_read(buf, cx),
        }
    }

    /// Writes what the transport takes of `queue` now; returns how much.
    #[inline]
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        queue: &mut OutQueue,
    ) -> Poll<io::Result<usize>> {
        match self {
            Self::Bytes(io) => byte_stream::poll_write_some(io.as_mut(), cx, queue),
            #[cfg(feature = "http2")]
            Self::Http2(stream) => stream.poll_write(cx, queue),
        }
    }

    /// Pushes written bytes on towards the peer.
    #[inline]
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Bytes(io) => io.as_mut().poll_flush(cx),
            #[cfg(feature = "http2")]
            Self::Http2(_) => Poll::Ready(Ok(())),
        }
    }

    /// Ends our direction once every frame is written: a shutdown of the
    /// byte stream, END_STREAM on an HTTP/2 stream.
    pub(crate) fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Bytes(io) => io.as_mut().poll_shutdown(cx),
            #[cfg(feature = "http2")]
            Self::Http2(stream) => stream.finish(),
        }
    }

    /// Whether dropping this wire before the peer ends its direction loses
    /// bytes written but not yet sent: `h2` resets a stream dropped early
    /// and discards its queued DATA, where a socket's kernel buffer still
    /// goes out after `close`.
    pub(crate) fn drops_unsent_bytes(&self) -> bool {
        match self {
            Self::Bytes(_) => false,
            #[cfg(feature = "http2")]
            Self::Http2(_) => true,
        }
    }

    /// Reads and discards what the peer still sends after the connection
    /// failed, until it ends its direction: closing a socket with unread
    /// bytes makes the kernel send a reset, which can destroy our close
    /// frame before the peer reads it, and an HTTP/2 stream dropped early
    /// is reset. Gives up after [`LINGER`] or [`LINGER_BYTES`].
    pub(crate) async fn linger(mut self) {
        let drain = async {
            let mut left = LINGER_BYTES;
            let mut buf = ReadBuffer::new(bytes::BytesMut::new());
            while left > 0 {
                match std::future::poll_fn(|cx| self.poll_read(&mut buf, cx)).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
                buf.bytes().clear();
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }
}
