//! One WebSocket as one HTTP/2 stream (RFC 8441), through `h2`.
//!
//! Flow control is the backpressure: received data's window is given back
//! only once the data is in the read buffer, which is filled only as the
//! reader asks for messages, so a reader that stops stops its stream's
//! window, not the connection's other streams (within the connection
//! window; see `docs/http2.md`). Writes wait for send capacity, and go out
//! as the queue's own `Bytes`, one DATA payload per queue chunk.

use std::fmt;
use std::io;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use h2::{Reason, RecvStream, SendStream};

use crate::proto::OutQueue;
use crate::stream::read_buffer::ReadBuffer;

/// The two halves of an HTTP/2 stream carrying a WebSocket, and a hold on
/// whatever keeps its connection alive.
pub(crate) struct Http2Stream {
    send: SendStream<Bytes>,
    recv: RecvStream,
    finished: bool,
    /// Keeps the connection open (and its stream counted) while this
    /// stream lives.
    _connection: Option<Box<dyn Send + Sync>>,
}

impl Http2Stream {
    /// A stream over `send` and `recv`; `connection` is held until the
    /// stream is dropped.
    pub(crate) fn new(
        send: SendStream<Bytes>,
        recv: RecvStream,
        connection: Option<Box<dyn Send + Sync>>,
    ) -> Self {
        Self {
            send,
            recv,
            finished: false,
            _connection: connection,
        }
    }

    /// Moves the next DATA chunk into `buf` and gives its window back.
    pub(super) fn poll_read(
        &mut self,
        buf: &mut ReadBuffer,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        loop {
            let data = match self.recv.poll_data(cx) {
                Poll::Pending => {
                    buf.on_dry();
                    return Poll::Pending;
                }
                Poll::Ready(None) => return Poll::Ready(Ok(0)),
                // The peer's way of saying "stop sending" once it is done.
                Poll::Ready(Some(Err(err))) if err.reason() == Some(Reason::NO_ERROR) => {
                    return Poll::Ready(Ok(0))
                }
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Err(stream_error(err))),
                Poll::Ready(Some(Ok(data))) => data,
            };
            if data.is_empty() {
                continue;
            }
            buf.push(&data);
            // Fails only when the stream is gone, which the next read says.
            let _ = self.recv.flow_control().release_capacity(data.len());
            return Poll::Ready(Ok(data.len()));
        }
    }

    /// Sends as much of the front chunk of `queue` as the stream's send
    /// capacity allows, without copying it.
    pub(super) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        queue: &mut OutQueue,
    ) -> Poll<io::Result<usize>> {
        if !queue.has_remaining() {
            return Poll::Ready(Ok(0));
        }
        // The total wanted, including what is assigned already.
        self.send.reserve_capacity(queue.remaining());
        while self.send.capacity() == 0 {
            match ready!(self.send.poll_capacity(cx)) {
                Some(Ok(_)) => {}
                Some(Err(err)) => return Poll::Ready(Err(stream_error(err))),
                None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        }
        let n = self.send.capacity().min(queue.chunk().len());
        let data = queue.copy_to_bytes(n);
        self.send.send_data(data, false).map_err(stream_error)?;
        Poll::Ready(Ok(n))
    }

    /// Ends our direction with END_STREAM (once).
    pub(super) fn finish(&mut self) -> Poll<io::Result<()>> {
        if !self.finished {
            self.finished = true;
            self.send.reserve_capacity(0);
            self.send
                .send_data(Bytes::new(), true)
                .map_err(stream_error)?;
        }
        Poll::Ready(Ok(()))
    }
}

/// An `h2` error as an I/O error that says which HTTP/2 event it was.
pub(crate) fn stream_error(err: h2::Error) -> io::Error {
    if err.is_io() {
        if let Some(io) = err.into_io() {
            return io;
        }
        return io::ErrorKind::Other.into();
    }
    let (kind, what) = if err.is_go_away() {
        (
            io::ErrorKind::ConnectionAborted,
            "the HTTP/2 connection is going away (GOAWAY)",
        )
    } else if err.is_reset() {
        (
            io::ErrorKind::ConnectionReset,
            "the HTTP/2 stream was reset",
        )
    } else {
        (io::ErrorKind::Other, "HTTP/2 failed")
    };
    io::Error::new(kind, Http2Failure { what, source: err })
}

/// An HTTP/2 event that ended a stream, with `h2`'s error as its source.
#[derive(Debug)]
struct Http2Failure {
    what: &'static str,
    source: h2::Error,
}

impl fmt::Display for Http2Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }
}

impl std::error::Error for Http2Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
