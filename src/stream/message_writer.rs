//! Sending one message in fragments as its data becomes available:
//! [`Writable::start_streamed`] and the [`MessageWriter`] it gives, a
//! `Sink` of chunks and an `AsyncWrite` of the payload.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::{pin, Pin};
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::AsyncWrite;

use super::halves::Writable;
use crate::proto::{MessageKind, Utf8Bytes, Utf8Validator};
use crate::Error;

/// The default largest fragment a [`MessageWriter`] sends (64 KiB).
pub const DEFAULT_FRAGMENT_SIZE: usize = 64 * 1024;

impl Writable {
    /// Starts one message of `kind`, sent in fragments as it is written:
    /// see [`MessageWriter`]. Nothing is sent until the first fragment.
    ///
    /// The writer borrows the writable: another message cannot be sent
    /// until this one is finished (or dropped, which closes the
    /// connection: see [`MessageWriter`]).
    ///
    /// ```
    /// # async fn run(opened: wsstream::Opened) -> Result<(), Box<dyn std::error::Error>> {
    /// use wsstream::MessageKind;
    ///
    /// let mut writable = opened.writable;
    /// let mut file = tokio::fs::File::open("Cargo.toml").await?;
    /// let mut message = writable.start_streamed(MessageKind::Binary);
    /// // The file goes out in fragments as it is read.
    /// tokio::io::copy(&mut file, &mut message).await?;
    /// message.finish().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn start_streamed(&mut self, kind: MessageKind) -> MessageWriter<'_> {
        MessageWriter {
            writable: self,
            kind,
            fragment_size: DEFAULT_FRAGMENT_SIZE,
            buf: BytesMut::new(),
            utf8: Utf8Validator::default(),
            started: false,
            since_read_ahead: 0,
            finished: false,
        }
    }

    /// Sends `chunks` as one message of `kind`, in fragments, and finishes
    /// it. Chunks are sent as they come; when `chunks` has none ready, what
    /// was coalesced is flushed. For a source that can fail, use a
    /// [`MessageWriter`] (a `Sink`) and drop it on failure.
    pub async fn send_streamed<S>(&mut self, kind: MessageKind, chunks: S) -> Result<(), Error>
    where
        S: Stream<Item = Bytes>,
    {
        let mut chunks = pin!(chunks);
        let mut writer = self.start_streamed(kind);
        poll_fn(|cx| loop {
            ready!(writer.poll_room(cx))?;
            match chunks.as_mut().poll_next(cx) {
                Poll::Ready(Some(chunk)) => writer.append(chunk)?,
                Poll::Ready(None) => return Poll::Ready(Ok::<_, Error>(())),
                Poll::Pending => {
                    ready!(writer.poll_send_buffered(cx))?;
                    return Poll::Pending;
                }
            }
        })
        .await?;
        writer.finish().await
    }
}

/// One message sent in fragments as it is written, from
/// [`Writable::start_streamed`]: a `Sink` of chunks (`Bytes`, or
/// [`Utf8Bytes`]) and an `AsyncWrite` of the payload.
///
/// - **Fragments.** Chunks smaller than the fragment size
///   ([`fragment_size`](Self::fragment_size), default 64 KiB) are
///   coalesced; larger ones are split, without copying. A flush sends what
///   is coalesced as a fragment, so `SinkExt::send` of a chunk puts it on
///   the wire at once. Finishing ([`finish`](Self::finish),
///   `SinkExt::close`, `AsyncWriteExt::shutdown`) sends the final fragment.
/// - **Backpressure** is the writable's: `poll_ready` and `poll_write` wait
///   while more than the high-water mark is queued. Pings, pongs and the
///   close handshake go on between fragments: once per fragment, at each
///   flush and while it waits, the writer reads the control frames that
///   arrived (stopping at the first data frame, which is the reader's), so
///   a task that only writes a long upload still answers the peer's
///   keepalive pings.
/// - **Text** written as bytes is checked as UTF-8 across chunks (a
///   character may be split between them); what is not UTF-8 is refused
///   with [`Error::InvalidText`] (through `AsyncWrite`, an `InvalidData`
///   error) and not sent.
/// - **Compression**: with permessage-deflate on, the message is compressed
///   as one (RSV1 on its first frame), each fragment flushed so that the
///   peer can read what was sent so far.
/// - **Dropped part-way**, after a fragment was sent and before the end,
///   the message cannot be finished truthfully and nothing else may
///   follow part of it: the close handshake starts with 1011 (RFC 6455
///   §7.4.1, "an unexpected condition") and the peer drops the unfinished
///   message. A writer dropped before it sent anything sends nothing.
pub struct MessageWriter<'a> {
    writable: &'a mut Writable,
    kind: MessageKind,
    fragment_size: usize,
    /// Chunks coalesced into the next fragment.
    buf: BytesMut,
    /// Checks text written as bytes.
    utf8: Utf8Validator,
    /// A fragment was queued: the message is on the wire.
    started: bool,
    /// Bytes taken since the connection was last read on the readable's
    /// behalf.
    since_read_ahead: usize,
    /// The final fragment was queued.
    finished: bool,
}

impl MessageWriter<'_> {
    /// Sets the largest fragment payload (at least 1 byte; default
    /// [`DEFAULT_FRAGMENT_SIZE`]): smaller chunks are coalesced up to it,
    /// larger ones split. A peer's frame size limit is the bound to keep
    /// under.
    pub fn fragment_size(mut self, bytes: usize) -> Self {
        self.fragment_size = bytes.max(1);
        self
    }

    /// Whether the message is text or binary.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// Sends what is coalesced as the final fragment and flushes: the
    /// message is complete. The same as `SinkExt::close` or
    /// `AsyncWriteExt::shutdown`.
    pub async fn finish(mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_finish(cx)).await
    }

    /// Waits for room in the writable's queue. Once per fragment's worth
    /// of data, and whenever it must wait, it also reads the control frames
    /// that arrived, so that a task that only writes a long message still
    /// answers pings and sees the peer's close.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.finished {
            return Poll::Ready(Err(Error::Closed));
        }
        if self.since_read_ahead >= self.fragment_size {
            self.since_read_ahead = 0;
            self.writable.shared.read_control_for_writer(cx);
        }
        let ready = self.writable.shared.poll_ready(cx);
        if ready.is_pending() {
            self.writable.shared.read_control_for_writer(cx);
        }
        ready
    }

    /// Appends a chunk: coalesced while small, split while large.
    fn append(&mut self, mut chunk: Bytes) -> Result<(), Error> {
        if self.finished {
            return Err(Error::Closed);
        }
        if self.kind == MessageKind::Text {
            self.check_text(&chunk)?;
        }
        self.since_read_ahead = self.since_read_ahead.saturating_add(chunk.len());
        let size = self.fragment_size;
        if !self.buf.is_empty() || chunk.len() < size {
            let take = (size - self.buf.len()).min(chunk.len());
            self.buf.extend_from_slice(&chunk.split_to(take));
            if self.buf.len() < size {
                return Ok(());
            }
            let fragment = self.buf.split().freeze();
            self.emit(fragment, false)?;
        }
        while chunk.len() >= size {
            let fragment = chunk.split_to(size);
            self.emit(fragment, false)?;
        }
        self.buf.extend_from_slice(&chunk);
        Ok(())
    }

    /// Checks the next bytes of a text message. Refused bytes are not
    /// sent, so they must not move the validator either: it checks a copy
    /// and keeps it only when the bytes are accepted.
    fn check_text(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let mut next = self.utf8.clone();
        next.feed(bytes).map_err(|_| Error::InvalidText)?;
        self.utf8 = next;
        Ok(())
    }

    fn emit(&mut self, fragment: Bytes, last: bool) -> Result<(), Error> {
        self.writable
            .shared
            .send_fragment(self.kind, fragment, last)?;
        self.started = true;
        self.finished = last;
        Ok(())
    }

    /// Sends what is coalesced as a fragment, and flushes (reading the
    /// control frames that arrived first, as `poll_room` does).
    fn poll_send_buffered(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.buf.is_empty() && !self.finished {
            let fragment = self.buf.split().freeze();
            self.emit(fragment, false)?;
        }
        self.since_read_ahead = 0;
        self.writable.shared.read_control_for_writer(cx);
        self.writable.shared.poll_flush(cx)
    }

    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.finished {
            // Checked on a copy: a refused finish leaves the message open,
            // and a second one must be refused too.
            if self.kind == MessageKind::Text && self.utf8.clone().finish().is_err() {
                return Poll::Ready(Err(Error::InvalidText));
            }
            let fragment = self.buf.split().freeze();
            self.emit(fragment, true)?;
        }
        self.writable.shared.poll_flush(cx)
    }
}

impl Sink<Bytes> for MessageWriter<'_> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_room(cx)
    }

    fn start_send(self: Pin<&mut Self>, chunk: Bytes) -> Result<(), Error> {
        self.get_mut().append(chunk)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_send_buffered(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_finish(cx)
    }
}

impl Sink<Utf8Bytes> for MessageWriter<'_> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_room(cx)
    }

    fn start_send(self: Pin<&mut Self>, chunk: Utf8Bytes) -> Result<(), Error> {
        self.get_mut().append(chunk.into_bytes())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_send_buffered(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_finish(cx)
    }
}

impl AsyncWrite for MessageWriter<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_room(cx)).map_err(io_error)?;
        let n = data.len().min(this.fragment_size - this.buf.len());
        let data = &data[..n];
        if this.kind == MessageKind::Text {
            this.check_text(data).map_err(io_error)?;
        }
        this.buf.extend_from_slice(data);
        this.since_read_ahead += n;
        if this.buf.len() >= this.fragment_size {
            let fragment = this.buf.split().freeze();
            this.emit(fragment, false).map_err(io_error)?;
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_send_buffered(cx).map_err(io_error)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_finish(cx).map_err(io_error)
    }
}

/// An [`Error`] as `AsyncWrite` reports it.
fn io_error(err: Error) -> io::Error {
    let kind = match &err {
        Error::InvalidText => io::ErrorKind::InvalidData,
        Error::Closed => io::ErrorKind::BrokenPipe,
        Error::Io(inner) => inner.kind(),
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, err)
}

impl Drop for MessageWriter<'_> {
    fn drop(&mut self) {
        if self.started && !self.finished {
            self.writable.shared.abandon_fragments();
        }
    }
}

impl fmt::Debug for MessageWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageWriter")
            .field("kind", &self.kind)
            .field("fragment_size", &self.fragment_size)
            .field("coalesced", &self.buf.len())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
