//! The readable and writable halves: a `Stream` of messages and a `Sink`.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;

use super::shared::Shared;
use crate::proto::{Message, PreparedMessage};
use crate::Error;

/// The messages the peer sends: WHATWG's `readable`.
///
/// Yields `Ok(message)` for each text or binary message. It ends with `None`
/// after a clean close (the close code and reason are in
/// [`closed`](crate::WebSocketStream::closed)), or with one `Err` and then
/// `None` when the connection fails.
///
/// Backpressure: the socket is read only while this stream is polled, so a
/// consumer that stops polling stops the peer through TCP flow control.
///
/// Cancel safety: `poll_next` keeps every byte it read in the connection, so
/// dropping a `next()` future (in `select!`, say) loses no message.
///
/// Dropping the readable means incoming messages are no longer wanted: the
/// writable and `closed` keep answering pings and finish the close
/// handshake, discarding data messages.
pub struct Readable {
    pub(super) shared: Arc<Shared>,
    pub(super) done: bool,
}

impl Readable {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            done: false,
        }
    }
}

impl Stream for Readable {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = std::task::ready!(self.shared.poll_next(cx));
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        Poll::Ready(item)
    }
}

impl Drop for Readable {
    fn drop(&mut self) {
        self.shared.reader_dropped();
    }
}

impl fmt::Debug for Readable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readable")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Where messages to the peer go: WHATWG's `writable`.
///
/// `start_send` queues a message (it is encoded and, for a client, masked at
/// once); `poll_flush` writes everything queued, many frames per system
/// call. `poll_ready` returns `Pending` while more than the high-water mark
/// ([`Options::write_high_water`](crate::Options::write_high_water)) waits
/// to be written, so a slow network slows the producer.
///
/// `poll_close` is WHATWG's `writable.close()`: it sends a close frame with
/// no code and flushes; [`closed`](crate::WebSocketStream::closed) tells
/// when the peer answered. Every message accepted before it is written
/// first. After the connection closes, sending fails with [`Error::Closed`]
/// (or the error that ended it), so no accepted message is dropped silently.
///
/// Cancel safety: all state lives in the connection, so dropping a `send`
/// future after `start_send` leaves the message queued; the next flush or
/// close writes it.
pub struct Writable {
    pub(super) shared: Arc<Shared>,
}

impl Writable {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Sends a [`PreparedMessage`]: waits for room (as `poll_ready` does),
    /// queues it and flushes. A server queues the frame the message
    /// encoded once, shared with every connection that sends it, so a task
    /// per connection that forwards a channel of prepared messages (a
    /// `tokio::sync::broadcast`, say) pays no encoding per connection.
    ///
    /// Cancel safety: as `SinkExt::send`; once queued, the message stays
    /// queued.
    pub async fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), Error> {
        std::future::poll_fn(|cx| self.shared.poll_ready(cx)).await?;
        self.start_send_prepared(message)?;
        std::future::poll_fn(|cx| self.shared.poll_flush(cx)).await
    }

    /// Queues a [`PreparedMessage`] as `Sink::start_send` queues a
    /// message: call it after `poll_ready` returned `Ready(Ok(()))`, and
    /// flush when done.
    pub fn start_send_prepared(&mut self, message: &PreparedMessage) -> Result<(), Error> {
        self.shared.start_send_prepared(message)
    }
}

impl Sink<Message> for Writable {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.shared.start_send(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared.poll_close(cx)
    }
}

impl fmt::Debug for Writable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writable").finish_non_exhaustive()
    }
}
