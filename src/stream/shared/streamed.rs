//! The shared state's part in messages read in chunks and sent in
//! fragments: who may read the chunks, what happens to a message whose
//! reader went away, and the fragments the writer queues.
//!
//! A message read in chunks goes through [`InStream`]: `next_streamed`
//! asks for it (`Requested`), its start arrives (`Open`, or `Started` when
//! `closed` read it for a `next_streamed` that was dropped), and it ends or
//! its reader is dropped (`Idle`, the rest discarded). While it is open,
//! only its reader reads the socket: `closed` waits, as it does for a held
//! message, so a reader that stops slows the peer.

use std::task::{ready, Context, Poll, Waker};

use bytes::{Bytes, BytesMut};

use super::{remember, Phase, Reader, Shared, State};
use crate::proto::{Message, MessageKind, ProtocolError, Received, SendError, Utf8Bytes};
use crate::stream::driver::Progress;
use crate::stream::waker_set::Interest;
use crate::Error;

/// A message read in chunks, as far as the readable is concerned.
#[derive(Default)]
pub(super) enum InStream {
    /// None is.
    #[default]
    Idle,
    /// `next_streamed` asked for the next message in chunks.
    Requested,
    /// It began, and no reader took it yet.
    Started(MessageKind),
    /// A `MessageReader` reads it.
    Open,
    /// `next()` gathers it whole: a `next_streamed` asked for it and was
    /// dropped before it began.
    Collecting(MessageKind, BytesMut),
}

impl InStream {
    /// Whether `closed` may read ahead and hold what it reads.
    pub(super) fn has_room(&self) -> bool {
        matches!(self, Self::Idle | Self::Requested)
    }

    pub(super) fn is_idle(&self) -> bool {
        matches!(self, Self::Idle)
    }
}

/// How `next_streamed` begins.
pub(crate) enum StreamStart {
    /// A message already whole: it was read before it was asked for.
    Whole(Message),
    /// A message read in chunks: its chunks follow, after the first one
    /// given here, if any.
    Streamed(MessageKind, Option<Bytes>),
}

/// What a refused fragment or message becomes.
pub(super) fn send_error(err: SendError) -> Error {
    match err {
        SendError::Closing | SendError::ControlTooLong => Error::Closed,
        SendError::Random(err) => Error::io(err),
    }
}

impl Shared {
    pub(crate) fn poll_next_streamed(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<StreamStart, Error>>> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Reader::Reading {
            waker,
            held,
            stream,
        } = &mut st.reader
        else {
            return Poll::Ready(None);
        };
        remember(waker, cx.waker());
        if let Some(message) = held.take() {
            st.closed_wakers.drain(..).for_each(Waker::wake);
            return Poll::Ready(Some(Ok(StreamStart::Whole(message))));
        }
        match std::mem::replace(stream, InStream::Requested) {
            InStream::Started(kind) => {
                *stream = InStream::Open;
                return Poll::Ready(Some(Ok(StreamStart::Streamed(kind, None))));
            }
            InStream::Collecting(kind, gathered) => {
                // A `next()` began gathering it and was dropped: the rest
                // comes in chunks after what it gathered.
                *stream = InStream::Open;
                let first = (!gathered.is_empty()).then(|| gathered.freeze());
                return Poll::Ready(Some(Ok(StreamStart::Streamed(kind, first))));
            }
            InStream::Idle => {
                if let Phase::Open(driver) = &mut st.phase {
                    driver.proto.stream_next_message();
                }
            }
            InStream::Requested | InStream::Open => {}
        }
        loop {
            let received = ready!(self.progress(st, cx.waker()));
            let Reader::Reading { stream, .. } = &mut st.reader else {
                return Poll::Ready(None);
            };
            match received {
                None => return Poll::Ready(st.end_of_reading().map(|r| r.map(StreamStart::Whole))),
                Some(Received::MessageStart(kind)) => {
                    *stream = InStream::Open;
                    return Poll::Ready(Some(Ok(StreamStart::Streamed(kind, None))));
                }
                Some(Received::Message(message)) => {
                    *stream = InStream::Idle;
                    return Poll::Ready(Some(Ok(StreamStart::Whole(message))));
                }
                // Not before a start.
                Some(Received::Chunk(_) | Received::MessageEnd) => {}
            }
        }
    }

    /// The next chunk for the `MessageReader`: `None` at the end of the
    /// message; an error if the connection ended before it (`Closed` for a
    /// clean close).
    pub(crate) fn poll_chunk(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        let mut guard = self.lock();
        let st = &mut *guard;
        match &mut st.reader {
            Reader::Reading {
                waker,
                stream: InStream::Open,
                ..
            } => remember(waker, cx.waker()),
            _ => return Poll::Ready(Some(Err(st.ended_error()))),
        }
        loop {
            match ready!(self.progress(st, cx.waker())) {
                Some(Received::Chunk(chunk)) => return Poll::Ready(Some(Ok(chunk))),
                Some(Received::MessageEnd) => {
                    st.stop_streaming();
                    return Poll::Ready(None);
                }
                None => {
                    let err = st.ended_error();
                    st.reader = Reader::Gone;
                    return Poll::Ready(Some(Err(err)));
                }
                // Not inside a message.
                Some(Received::MessageStart(_) | Received::Message(_)) => {}
            }
        }
    }

    /// A `MessageReader` went away before the end of its message: the rest
    /// is discarded as it arrives.
    pub(crate) fn message_reader_dropped(&self) {
        let mut st = self.lock();
        if let Reader::Reading {
            stream: InStream::Open,
            ..
        } = st.reader
        {
            if let Phase::Open(driver) = &mut st.phase {
                driver.proto.discard_streamed_message();
            }
            st.stop_streaming();
        }
    }

    /// A `next_streamed` went away before its message began: it is read
    /// whole after all, unless it has begun in chunks.
    pub(crate) fn next_streamed_dropped(&self) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if let Reader::Reading {
            stream: stream @ InStream::Requested,
            ..
        } = &mut st.reader
        {
            if let Phase::Open(driver) = &mut st.phase {
                if driver.proto.cancel_stream_request() {
                    *stream = InStream::Idle;
                }
            }
        }
    }

    /// Gathers a message that began in chunks for `next()`, under the
    /// whole-message limit (1009 past it), or reads on when none has.
    pub(super) fn poll_collect(
        &self,
        st: &mut State,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, Error>>> {
        loop {
            if let Reader::Reading { stream, .. } = &mut st.reader {
                match stream {
                    InStream::Requested => {
                        if let Phase::Open(driver) = &mut st.phase {
                            if driver.proto.cancel_stream_request() {
                                *stream = InStream::Idle;
                            }
                        }
                    }
                    InStream::Started(kind) => {
                        *stream = InStream::Collecting(*kind, BytesMut::new());
                    }
                    _ => {}
                }
            }
            let received = ready!(self.progress(st, cx.waker()));
            let limit = match &st.phase {
                Phase::Open(driver) => driver.proto.limits().max_message_size,
                _ => 0,
            };
            let Reader::Reading { stream, .. } = &mut st.reader else {
                return Poll::Ready(None);
            };
            match received {
                None => return Poll::Ready(st.end_of_reading()),
                Some(Received::Message(message)) => return Poll::Ready(Some(Ok(message))),
                Some(Received::MessageStart(kind)) => {
                    *stream = InStream::Collecting(kind, BytesMut::new());
                }
                Some(Received::Chunk(chunk)) => {
                    let InStream::Collecting(_, gathered) = stream else {
                        continue;
                    };
                    let size = (gathered.len() + chunk.len()) as u64;
                    if size > limit as u64 {
                        if let Phase::Open(driver) = &mut st.phase {
                            driver
                                .proto
                                .fail(ProtocolError::MessageTooLarge { size, limit });
                        }
                        continue;
                    }
                    gathered.extend_from_slice(&chunk);
                }
                Some(Received::MessageEnd) => {
                    let InStream::Collecting(kind, gathered) = std::mem::take(stream) else {
                        continue;
                    };
                    st.closed_wakers.drain(..).for_each(Waker::wake);
                    let payload = gathered.freeze();
                    let message = match kind {
                        // Every chunk was valid text on its own.
                        MessageKind::Text => Message::Text(Utf8Bytes::from_validated(payload)),
                        MessageKind::Binary => Message::Binary(payload),
                    };
                    return Poll::Ready(Some(Ok(message)));
                }
            }
        }
    }

    // ---- the writer of a message in fragments ----

    pub(crate) fn send_fragment(
        &self,
        kind: MessageKind,
        payload: Bytes,
        last: bool,
    ) -> Result<(), Error> {
        let mut st = self.lock();
        let Phase::Open(driver) = &mut st.phase else {
            return Err(st.ended_error());
        };
        driver
            .proto
            .send_fragment(kind, payload, last)
            .map_err(send_error)
    }

    /// Reads on behalf of a `MessageWriter` whose task may be the only one
    /// polling: a long message written while no one reads must still
    /// answer the peer's keepalive pings and see its close. Only control
    /// frames are taken; at the first data frame it stops, leaving it (and
    /// any protocol error in it) for the reader, in order. With no reader
    /// at all, the writable already reads and discards (`poll_ready`).
    pub(crate) fn read_control_for_writer(&self, cx: &mut Context<'_>) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if !matches!(st.reader, Reader::Untaken { .. } | Reader::Reading { .. }) {
            return;
        }
        let Phase::Open(driver) = &mut st.phase else {
            return;
        };
        let progress = self.wakers.poll(cx.waker(), Interest::ReadWrite, |wakers| {
            driver.poll_control(wakers)
        });
        if let Poll::Ready(Progress::Ended(outcome)) = progress {
            self.finish(&mut *st, outcome);
        }
    }

    /// A `MessageWriter` went away part-way: the close handshake starts
    /// with 1011 (see `Connection::abandon_message`).
    pub(crate) fn abandon_fragments(&self) {
        let mut st = self.lock();
        if let Phase::Open(driver) = &mut st.phase {
            if driver.proto.abandon_message() {
                let _ = driver.poll_write_queued(self.wakers.write());
                st.wake_all();
            }
        }
    }
}

impl State {
    /// The message read in chunks is over for the readable: `closed` may
    /// read ahead again.
    fn stop_streaming(&mut self) {
        if let Reader::Reading { stream, .. } = &mut self.reader {
            *stream = InStream::Idle;
        }
        self.closed_wakers.drain(..).for_each(Waker::wake);
    }
}
