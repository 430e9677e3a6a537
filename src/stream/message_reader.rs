//! Reading one message as a stream of chunks: [`Readable::next_streamed`]
//! and the [`MessageReader`] it gives, a `Stream` of chunks and an
//! `AsyncRead` of the payload.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_core::Stream;
use tokio::io::{AsyncRead, ReadBuf};

use super::halves::Readable;
use super::shared::StreamStart;
use crate::proto::MessageKind;
use crate::Error;

impl Readable {
    /// The next message as a stream of its payload chunks, handed out as
    /// they arrive, before the message is complete: its kind first, then
    /// its chunks, then the end. It is never held whole, so it is not
    /// bounded by `max_message_size` but by
    /// [`max_streamed_message_size`](crate::Options::max_streamed_message_size)
    /// (default: none), and memory stays at the read buffer plus a chunk
    /// however long it is.
    ///
    /// Resolves to `None` when the readable has ended, as `next()` does,
    /// and to an error when the connection failed. The reader borrows the
    /// readable: the message after it cannot be read until it is finished
    /// or dropped. Dropping it part-way discards the rest of the message
    /// (still checked as it arrives); the connection stays usable.
    ///
    /// Cancel safety: dropping this future before it resolves loses
    /// nothing. If the message began meanwhile, the next `next_streamed`
    /// gets it, or `next()` gets it whole (under `max_message_size`).
    ///
    /// ```
    /// # async fn run(opened: wsstream::Opened) -> Result<(), Box<dyn std::error::Error>> {
    /// use futures::StreamExt;
    ///
    /// let mut readable = opened.readable;
    /// if let Some(message) = readable.next_streamed().await {
    ///     let mut message = message?;
    ///     let mut file = tokio::fs::File::create("upload.bin").await?;
    ///     // The payload goes to the file as it arrives.
    ///     let bytes = tokio::io::copy(&mut message, &mut file).await?;
    ///     println!("{bytes} bytes");
    /// }
    /// // The next message, whole.
    /// let _next = readable.next().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn next_streamed(&mut self) -> NextStreamed<'_> {
        NextStreamed {
            readable: Some(self),
        }
    }
}

/// The future of [`Readable::next_streamed`].
#[must_use = "futures do nothing unless polled"]
pub struct NextStreamed<'a> {
    /// Until it resolves.
    readable: Option<&'a mut Readable>,
}

impl<'a> Future for NextStreamed<'a> {
    type Output = Option<Result<MessageReader<'a>, Error>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(readable) = self.readable.as_mut() else {
            return Poll::Ready(None);
        };
        if readable.done {
            self.readable = None;
            return Poll::Ready(None);
        }
        let start = ready!(readable.shared.poll_next_streamed(cx));
        let Some(readable) = self.readable.take() else {
            return Poll::Ready(None);
        };
        let (kind, first, whole) = match start {
            None => {
                readable.done = true;
                return Poll::Ready(None);
            }
            Some(Err(err)) => {
                readable.done = true;
                return Poll::Ready(Some(Err(err)));
            }
            Some(Ok(StreamStart::Whole(message))) => (message.kind(), message.into_payload(), true),
            Some(Ok(StreamStart::Streamed(kind, first))) => {
                (kind, first.unwrap_or_default(), false)
            }
        };
        Poll::Ready(Some(Ok(MessageReader {
            readable,
            kind,
            received: first.len() as u64,
            current: first,
            whole,
            done: false,
        })))
    }
}

impl Drop for NextStreamed<'_> {
    fn drop(&mut self) {
        if let Some(readable) = &self.readable {
            readable.shared.next_streamed_dropped();
        }
    }
}

impl fmt::Debug for NextStreamed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NextStreamed").finish_non_exhaustive()
    }
}

/// One message read as it arrives, from [`Readable::next_streamed`]: a
/// `Stream` of its payload chunks and an `AsyncRead` of its payload.
///
/// As a `Stream`, it yields each chunk as it arrives (never an empty one),
/// then `None` at the end of the message. A text message's chunks are each
/// valid UTF-8 on their own: a character split between frames or reads is
/// handed out whole with the next chunk. An error ends it (the item after
/// is `None`):
/// - invalid text fails at the first bad byte, after every valid byte
///   before it was handed out, and the connection closes with 1007;
/// - a message over `max_streamed_message_size`, or any other protocol
///   error, closes it with its code (1009, 1002…);
/// - [`Error::Closed`] if the peer closed the connection cleanly before the
///   end of the message, or the error that ended the connection.
///
/// As an `AsyncRead`, the same errors come as `io::Error`s holding the
/// [`Error`]: of kind `InvalidData` for a protocol error,
/// `UnexpectedEof` for a connection that ended before the message did.
///
/// Dropping it before the end discards the rest of the message as it
/// arrives; the connection stays usable.
pub struct MessageReader<'a> {
    readable: &'a mut Readable,
    kind: MessageKind,
    /// Bytes handed out next: a chunk being read through `AsyncRead`, or
    /// what was read before the reader was made.
    current: Bytes,
    /// The message was whole already: nothing follows `current`.
    whole: bool,
    received: u64,
    done: bool,
}

impl MessageReader<'_> {
    /// Whether the message is text or binary.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// Whether the message is text.
    pub fn is_text(&self) -> bool {
        self.kind == MessageKind::Text
    }

    /// Payload bytes taken from the connection so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Whether the whole message has been read (or the reading failed).
    pub fn is_done(&self) -> bool {
        self.done
    }
}

impl Stream for MessageReader<'_> {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if !this.current.is_empty() {
            return Poll::Ready(Some(Ok(std::mem::take(&mut this.current))));
        }
        if this.done {
            return Poll::Ready(None);
        }
        if this.whole {
            this.done = true;
            return Poll::Ready(None);
        }
        let item = ready!(this.readable.shared.poll_chunk(cx));
        match &item {
            Some(Ok(chunk)) => this.received += chunk.len() as u64,
            Some(Err(_)) | None => this.done = true,
        }
        Poll::Ready(item)
    }
}

impl AsyncRead for MessageReader<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.current.is_empty() {
            if this.done || this.whole {
                this.done = true;
                return Poll::Ready(Ok(()));
            }
            match ready!(this.readable.shared.poll_chunk(cx)) {
                Some(Ok(chunk)) => {
                    this.received += chunk.len() as u64;
                    this.current = chunk;
                }
                Some(Err(err)) => {
                    this.done = true;
                    return Poll::Ready(Err(io_error(err)));
                }
                None => {
                    this.done = true;
                    return Poll::Ready(Ok(()));
                }
            }
        }
        let n = buf.remaining().min(this.current.len());
        buf.put_slice(&this.current[..n]);
        this.current.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// An [`Error`] as `AsyncRead` reports it.
fn io_error(err: Error) -> io::Error {
    let kind = match &err {
        Error::Protocol(_) => io::ErrorKind::InvalidData,
        Error::Closed | Error::ConnectionLost => io::ErrorKind::UnexpectedEof,
        Error::Io(inner) => inner.kind(),
        Error::Timeout(_) => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, err)
}

impl Drop for MessageReader<'_> {
    fn drop(&mut self) {
        if !self.done && !self.whole {
            self.readable.shared.message_reader_dropped();
        }
    }
}

impl fmt::Debug for MessageReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageReader")
            .field("kind", &self.kind)
            .field("received", &self.received)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
