//! Moves bytes between the transport (a [`Wire`]) and the sans-io
//! [`Connection`], and decides when the connection is over.
//!
//! Every poll path here is cancel-safe: bytes read are kept in `read_buf`
//! and bytes to write in the connection's queue, never in a future's local
//! state, so dropping a future between polls loses nothing.

use std::io;
use std::task::{ready, Poll};

use bytes::{Bytes, BytesMut};

use super::options::ConnConfig;
use super::read_buffer::ReadBuffer;
use super::timers::Timers;
use super::waker_set::{SocketWakers, WakerSet};
use super::wire::Wire;
use crate::proto::{CloseCode, CloseFrame, Connection, PreparedMessage, Received};
use crate::trace::ConnTrace;
use crate::{CloseInfo, Error, Timeout};

/// A burst fed to a broadcast is written to a member once this much of it
/// waits: few system calls for a burst of small messages, and a bounded
/// amount held for a flush.
pub(crate) const FEED_BATCH: usize = 16 * 1024;

/// An open connection: the transport, the protocol state and the read
/// buffer.
pub(crate) struct Driver {
    wire: Wire,
    pub(crate) proto: Connection,
    read_buf: ReadBuffer,
    high_water: usize,
    timers: Timers,
    eof: bool,
    shut_down: bool,
    /// Frames a broadcast queued and could not write at once: whoever
    /// polls the connection next writes them, reader included, since no
    /// writer task may be there to flush them.
    backlog: bool,
    /// The connection's span and what was reported in it (nothing without
    /// the `tracing` feature).
    trace: ConnTrace,
}

/// What moving the connection forward produced.
pub(crate) enum Progress {
    /// A message, or part of one read in chunks, for the reader.
    Received(Received),
    /// The connection is over: cleanly, with the peer's close, or not.
    Ended(Result<CloseInfo, Error>),
}

impl Driver {
    pub(crate) fn new(
        wire: Wire,
        proto: Connection,
        leftover: BytesMut,
        config: ConnConfig,
    ) -> Self {
        Self {
            wire,
            proto,
            read_buf: ReadBuffer::new(leftover),
            high_water: config.write_high_water,
            timers: Timers::new(config.timeouts),
            eof: false,
            shut_down: false,
            backlog: false,
            trace: ConnTrace::current(),
        }
    }

    /// Whether the writable should accept another message.
    pub(crate) fn has_room(&self) -> bool {
        self.proto.buffered() < self.high_water
    }

    /// Whether a reader that must wait should also wait for the socket to
    /// become writable: something is queued (a reply, a broadcast's
    /// backlog, a writer's unflushed frames), or the close handshake is
    /// under way (its frame and the shutdown go out on write readiness).
    pub(crate) fn wants_write(&self) -> bool {
        self.proto.buffered() > 0 || self.proto.has_urgent() || self.proto.close_sent()
    }

    /// Writes queued frames, many per system call, until the queue is empty
    /// and the transport flushed. `Pending` registers `write` for the socket.
    pub(crate) fn poll_write_queued(&mut self, write: &WakerSet) -> Poll<io::Result<()>> {
        let mut cx = write.context();
        loop {
            // Asking for the queue each turn lets a pong held back by the
            // pong bound join it once the earlier ones are written.
            let queue = self.proto.outgoing();
            if queue.is_empty() {
                self.backlog = false;
                break;
            }
            let n = ready!(self.wire.poll_write(&mut cx, queue))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
        }
        self.wire.poll_flush(&mut cx)
    }

    /// Queues a broadcast's message. With `write_now`, or once a fed burst
    /// has [`FEED_BATCH`] bytes waiting, writes what the socket takes; see
    /// [`write_broadcast`](Self::write_broadcast).
    pub(crate) fn send_broadcast(
        &mut self,
        message: &PreparedMessage,
        write_now: bool,
        write: &WakerSet,
    ) -> Result<bool, Error> {
        self.proto
            .send_prepared(message)
            .map_err(|_| Error::Closed)?;
        self.write_fed(write_now, write)
    }

    /// Queues a run of a batch's messages as one chunk, if the connection
    /// sends them as their plain frames (see `Connection::send_frame_run`),
    /// and writes like [`send_broadcast`](Self::send_broadcast) without
    /// `write_now`. `Ok(None)` when the run must go message by message.
    pub(crate) fn send_broadcast_run(
        &mut self,
        frames: &Bytes,
        write: &WakerSet,
    ) -> Result<Option<bool>, Error> {
        if !self.proto.send_frame_run(frames) {
            return Ok(None);
        }
        self.write_fed(false, write).map(Some)
    }

    /// After a broadcast queued something: writes with `write_now`, or once
    /// [`FEED_BATCH`] bytes wait.
    fn write_fed(&mut self, write_now: bool, write: &WakerSet) -> Result<bool, Error> {
        if !write_now && self.proto.buffered() < FEED_BATCH {
            return Ok(false);
        }
        self.write_broadcast(write)
    }

    /// Writes what the socket takes of the queue for a broadcast. What it
    /// does not take is written by whoever polls the connection next (the
    /// reader too), or by a later broadcast that finds the queue full.
    /// `Ok(true)` when this left a backlog where there was none: a reader
    /// parked with nothing to write waits for read readiness only, and
    /// must be woken to wait for write readiness too.
    pub(crate) fn write_broadcast(&mut self, write: &WakerSet) -> Result<bool, Error> {
        // A backlog is being written as the socket takes it, by whoever
        // polls on write readiness: trying again now would only find the
        // socket full (a system call for nothing).
        if self.backlog || self.proto.buffered() == 0 {
            return Ok(false);
        }
        match self.poll_write_queued(write) {
            Poll::Ready(Err(err)) => Err(Error::io(err)),
            Poll::Ready(Ok(())) => Ok(false),
            Poll::Pending => Ok(!std::mem::replace(&mut self.backlog, true)),
        }
    }

    /// Runs the connection until it yields a message, ends, or must wait.
    /// Replies (pongs, close) are flushed as soon as they are queued, but a
    /// full socket never stops reading: the two directions do not wait on
    /// each other. User messages are left to the writer's batching.
    #[inline]
    pub(crate) fn poll_progress(&mut self, wakers: &SocketWakers) -> Poll<Progress> {
        let progress = self.poll_turns(wakers, false);
        self.trace_end(&progress);
        progress
    }

    /// Reads for a writer while no one reads: handles the control frames
    /// that arrive (pings answered, the peer's close) and stops, `Pending`,
    /// at the first data frame, which is left for the reader. Never yields
    /// a message; ends like `poll_progress` when the connection does.
    pub(crate) fn poll_control(&mut self, wakers: &SocketWakers) -> Poll<Progress> {
        let progress = self.poll_turns(wakers, true);
        self.trace_end(&progress);
        progress
    }

    /// Reports the close frames and failure the turns saw, and the end.
    #[inline]
    fn trace_end(&mut self, progress: &Poll<Progress>) {
        self.trace.observe(&self.proto);
        if let Poll::Ready(Progress::Ended(outcome)) = progress {
            self.trace.ended(outcome);
        }
    }

    #[inline]
    fn poll_turns(&mut self, wakers: &SocketWakers, control_only: bool) -> Poll<Progress> {
        let (read, write) = (wakers.read(), wakers.write());
        loop {
            // A protocol error (or the peer's close) shows in `is_closed`.
            let (received, stopped) = if control_only {
                (Ok(None), self.proto.receive_control(self.read_buf.bytes()))
            } else {
                (self.proto.receive_event(self.read_buf.bytes()), false)
            };
            let closed = self.proto.is_closed();
            let mut flushed = true;
            if closed || self.proto.has_urgent() || self.backlog {
                match self.poll_write_queued(write) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(err)) => {
                        return Poll::Ready(Progress::Ended(Err(Error::io(err))))
                    }
                    Poll::Pending => flushed = false,
                }
            }
            if closed {
                if flushed {
                    if let Poll::Ready(outcome) = self.poll_finish(write) {
                        return Poll::Ready(Progress::Ended(outcome));
                    }
                }
                // Waiting for the socket to take our close frame: bounded by
                // the close timeout like waiting for the peer's reply.
                return self.poll_deadlines(read, write).map(Progress::Ended);
            }
            if let Ok(Some(received)) = received {
                self.read_buf.release_if_quiet();
                return Poll::Ready(Progress::Received(received));
            }
            if stopped {
                // Data for the reader: read no further until it takes it.
                return Poll::Pending;
            }
            if self.eof {
                return Poll::Ready(Progress::Ended(Err(Error::ConnectionLost)));
            }
            // Checked on every turn, so a peer that keeps sending cannot
            // hold off the close timeout.
            if let Poll::Ready(outcome) = self.poll_deadlines(read, write) {
                return Poll::Ready(Progress::Ended(outcome));
            }
            match ready!(self.wire.poll_read(&mut self.read_buf, &mut read.context())) {
                Ok(0) => self.eof = true,
                Ok(_) => self.timers.on_bytes_received(),
                Err(err) => return Poll::Ready(Progress::Ended(Err(Error::io(err)))),
            }
        }
    }

    /// Sends a keepalive ping when one is due, and ends the connection with
    /// a timeout error when a deadline has passed. `Pending` means the
    /// timer will wake the tasks registered with `read` at the next one.
    fn poll_deadlines(
        &mut self,
        read: &WakerSet,
        write: &WakerSet,
    ) -> Poll<Result<CloseInfo, Error>> {
        let timeout = match self.timers.poll(&mut read.context(), &mut self.proto) {
            Poll::Ready(timeout) => timeout,
            Poll::Pending => {
                if self.proto.has_urgent() {
                    // A keepalive ping was queued: send it now.
                    if let Poll::Ready(Err(err)) = self.poll_write_queued(write) {
                        return Poll::Ready(Err(Error::io(err)));
                    }
                }
                return Poll::Pending;
            }
        };
        self.trace.timeout(timeout);
        // Tell the peer why, if the socket takes it; we do not wait.
        let reason = match timeout {
            Timeout::Keepalive => Some((CloseCode::INTERNAL_ERROR, "keepalive ping timeout")),
            Timeout::Idle => Some((CloseCode::GOING_AWAY, "idle timeout")),
            _ => None,
        };
        if let Some((code, reason)) = reason {
            if self.proto.close(Some(&CloseFrame::truncated(code, reason))) {
                let _ = self.poll_write_queued(write);
            }
        }
        Poll::Ready(Err(Error::Timeout(timeout)))
    }

    /// After the close handshake (or a protocol failure) with our close
    /// frame written: shuts down the write side and reports the outcome.
    fn poll_finish(&mut self, write: &WakerSet) -> Poll<Result<CloseInfo, Error>> {
        if !self.shut_down {
            // A failed shutdown changes nothing: the close frames are out.
            let _ = ready!(self.wire.poll_finish(&mut write.context()));
            self.shut_down = true;
        }
        if let Some(err) = self.proto.failure() {
            return Poll::Ready(Err(Error::Protocol(err.clone())));
        }
        let info = match self.proto.close_received() {
            Some(Some(frame)) => CloseInfo {
                code: frame.code().as_u16(),
                reason: frame.reason().to_owned(),
            },
            _ => CloseInfo::NO_STATUS,
        };
        Poll::Ready(Ok(info))
    }

    /// Drains the peer's direction after a failure, for a bounded time:
    /// see [`Wire::linger`].
    pub(crate) async fn linger(self) {
        self.wire.linger().await;
    }

    /// Whether the transport should be drained before it is let go: after
    /// a protocol failure (a socket closed with unread bytes sends a reset),
    /// and on a wire that discards unsent bytes when dropped early (an
    /// HTTP/2 stream), unless the peer has already ended its direction.
    pub(crate) fn should_linger(&self) -> bool {
        !self.eof && (self.proto.failure().is_some() || self.wire.drops_unsent_bytes())
    }
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
