//! The state the `WebSocketStream` handle, the readable, the writable and
//! every `closed` future share, and the polling that moves it forward.
//!
//! There is no background task: whoever polls drives the connection, under
//! one lock that is never held across an `.await`. Two things make up the
//! state: the [`Phase`] of the connection (connecting, open with its
//! driver, or ended with its outcome) and the [`Reader`], who takes the
//! messages it reads. What each operation does, by reader:
//!
//! | operation  | `Opening` | `Untaken`                   | `Reading`                          | `Gone`                      |
//! |------------|-----------|-----------------------------|------------------------------------|-----------------------------|
//! | `opened`   | waits     | hands out the halves: `Reading` | fails: `AlreadyOpened`         | fails: `AlreadyOpened`      |
//! | `closed`   | waits     | reads; holds one message, then stops | reads; holds one message for the readable, wakes it, then stops | reads, discards data messages |
//! | readable   | —         | —                           | takes the held message, else reads | (has ended)                 |
//! | writable   | —         | —                           | writes                             | reads (discarding), writes  |
//!
//! A held message stops reading until the readable takes it, so a reader
//! that is slow, or not yet there, slows the peer through TCP instead of
//! filling memory; nothing the peer sent is dropped before the application
//! could take the readable. `Untaken` lasts while an [`Opener`] (the handle,
//! or an `opened` future) lives to take the halves; after the last one is
//! dropped the reader is `Gone`. Reading also flushes queued replies (pongs,
//! close), so pings are answered and the close handshake completes whoever
//! polls.
//!
//! Who is woken, and by what:
//!
//! | event | wakes |
//! |---|---|
//! | the socket becomes readable or writable, a deadline passes | the tasks that polled the socket and waited (see `waker_set`) |
//! | `closed` holds a message | the readable |
//! | the readable takes the held message | every `closed` |
//! | the write queue drops below the high-water mark | the writable |
//! | open, a failed open, `close`, the end, the readable dropped, the last `Opener` gone | everyone: the readable, the writable, `opened`, `closed` |

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio_util::sync::CancellationToken;

use super::driver::{Driver, Progress};
use super::open::Established;
use super::waker_set::{Interest, SocketWakers, SocketWakersOwner};
use streamed::InStream;
pub(crate) use streamed::StreamStart;

mod prepared;
mod streamed;
use crate::handshake::Negotiated;
use crate::proto::{CloseFrame, Message, Received};
use crate::{CloseInfo, Error};
pub(crate) use prepared::Offer;

pub(crate) struct Shared {
    state: Mutex<State>,
    wakers: SocketWakers,
    /// Fires to abort the opening handshake: a client's, while it
    /// connects. A server's connection is open from the start and needs
    /// none (a token is an allocation of its own, kept for the life of
    /// every connection).
    pub(crate) abort: Option<CancellationToken>,
}

// The driver lives inline: `State` is already behind the connection's one
// `Arc`, and a box would be one more pointer to chase on every poll.
#[allow(clippy::large_enum_variant)]
enum Phase {
    /// The opening handshake runs.
    Connecting,
    /// Open: the socket and the protocol state.
    Open(Driver),
    /// Over, and how: the peer's close, or the error that ended it (for a
    /// failed opening, what `opened` fails with too).
    Ended(Result<CloseInfo, Error>),
}

/// Who takes the messages the connection reads.
#[allow(clippy::large_enum_variant)]
enum Reader {
    /// Not open yet, or the opening failed: no halves to hand out.
    Opening,
    /// Open, and `opened` has not handed out the halves yet: what was
    /// negotiated, and a message held for the readable to come.
    Untaken {
        /// Boxed: it is handed out once, and inline it would make every
        /// connection's state larger for as long as it lives.
        negotiated: Box<Negotiated>,
        held: Option<Message>,
    },
    /// The readable is out: its task's waker, a message `closed` read and
    /// held for it, and a message read in chunks.
    Reading {
        waker: Option<Waker>,
        held: Option<Message>,
        stream: InStream,
    },
    /// No one will read (the readable was dropped, or has ended): data
    /// messages are discarded as they are read.
    Gone,
}

impl Reader {
    /// Whether a message read now would be kept: `Some(true)` with room to
    /// hold it, `Some(false)` when one is held already (stop reading),
    /// `None` when no one will read it.
    fn room(&self) -> Option<bool> {
        match self {
            Self::Untaken { held, .. } => Some(held.is_none()),
            Self::Reading { held, stream, .. } => Some(held.is_none() && stream.has_room()),
            Self::Opening | Self::Gone => None,
        }
    }

    /// Holds what was read for the readable, waking it if it waits: a
    /// message, or the start of one read in chunks.
    fn hold(&mut self, received: Received) {
        match (self, received) {
            (Self::Untaken { held, .. }, Received::Message(message)) => *held = Some(message),
            (
                Self::Reading {
                    held,
                    waker,
                    stream,
                },
                received,
            ) => {
                match received {
                    Received::Message(message) => *held = Some(message),
                    Received::MessageStart(kind) => *stream = InStream::Started(kind),
                    // Nothing reads chunks while a message is held.
                    Received::Chunk(_) | Received::MessageEnd => {}
                }
                // The bytes are no longer in the socket to wake it.
                if let Some(waker) = waker {
                    waker.wake_by_ref();
                }
            }
            _ => {}
        }
    }
}

struct State {
    phase: Phase,
    reader: Reader,
    /// The [`Opener`]s alive: handles that may still take the halves.
    openers: usize,
    opened_wakers: Vec<Waker>,
    closed_wakers: Vec<Waker>,
    writer: Option<Waker>,
}

fn remember(slot: &mut Option<Waker>, waker: &Waker) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
        *slot = Some(waker.clone());
    }
}

fn remember_in(list: &mut Vec<Waker>, waker: &Waker) {
    if !list.iter().any(|w| w.will_wake(waker)) {
        list.push(waker.clone());
    }
}

impl Shared {
    pub(crate) fn new(abort: Option<CancellationToken>) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            state: Mutex::new(State {
                phase: Phase::Connecting,
                reader: Reader::Opening,
                openers: 0,
                opened_wakers: Vec::new(),
                closed_wakers: Vec::new(),
                writer: None,
            }),
            wakers: SocketWakers::new(me),
            abort,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the end of the opening handshake. Ignored if the connection
    /// was aborted already.
    pub(crate) fn finish_opening(&self, result: Result<Established, Error>) {
        let mut st = self.lock();
        if !matches!(st.phase, Phase::Connecting) {
            return;
        }
        match result {
            Ok(Established { driver, negotiated }) => {
                st.phase = Phase::Open(driver);
                st.reader = if st.openers == 0 {
                    Reader::Gone
                } else {
                    Reader::Untaken {
                        negotiated: Box::new(negotiated),
                        held: None,
                    }
                };
            }
            Err(err) => st.phase = Phase::Ended(Err(err)),
        }
        // A `closed` polled before open has had nothing to drive; now it
        // may (found by the `stream` fuzz target).
        st.closed_wakers.drain(..).for_each(Waker::wake);
        st.opened_wakers.drain(..).for_each(Waker::wake);
    }

    pub(crate) fn poll_opened(&self, cx: &mut Context<'_>) -> Poll<Result<Negotiated, Error>> {
        let mut st = self.lock();
        match std::mem::replace(&mut st.reader, Reader::Gone) {
            Reader::Opening => {
                st.reader = Reader::Opening;
                if let Phase::Ended(_) = st.phase {
                    return Poll::Ready(Err(st.ended_error()));
                }
                remember_in(&mut st.opened_wakers, cx.waker());
                Poll::Pending
            }
            Reader::Untaken { negotiated, held } => {
                st.reader = Reader::Reading {
                    waker: None,
                    held,
                    stream: InStream::Idle,
                };
                Poll::Ready(Ok(*negotiated))
            }
            taken => {
                st.reader = taken;
                Poll::Ready(Err(Error::AlreadyOpened))
            }
        }
    }

    pub(crate) fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<Result<CloseInfo, Error>> {
        let mut st = self.lock();
        self.read_ahead(&mut st, cx.waker());
        match &st.phase {
            Phase::Ended(outcome) => Poll::Ready(outcome.clone()),
            _ => {
                remember_in(&mut st.closed_wakers, cx.waker());
                Poll::Pending
            }
        }
    }

    /// Starts the close handshake, or aborts the opening one.
    pub(crate) fn close(&self, frame: Option<CloseFrame>) {
        let mut st = self.lock();
        match &mut st.phase {
            Phase::Connecting => {
                // Decided under the lock, so an open that lands after this
                // is ignored and never overtakes the abort.
                st.phase = Phase::Ended(Err(Error::Aborted));
                st.wake_all();
                drop(st);
                // Cancelling wakes the connect task: not under the lock.
                if let Some(abort) = &self.abort {
                    abort.cancel();
                }
            }
            Phase::Open(driver) => {
                if driver.proto.close(frame.as_ref()) {
                    // Best effort now; whoever polls next finishes the write.
                    let _ = driver.poll_write_queued(self.wakers.write());
                    st.wake_all();
                }
            }
            Phase::Ended(_) => {}
        }
    }

    // ---- the readable ----

    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
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
            // `closed` stopped reading to hold this message; it may go on.
            st.closed_wakers.drain(..).for_each(Waker::wake);
            return Poll::Ready(Some(Ok(message)));
        }
        if !stream.is_idle() {
            // A `next_streamed` that asked for this message was dropped.
            return self.poll_collect(st, cx);
        }
        match self.progress(st, cx.waker()) {
            Poll::Ready(Some(Received::Message(message))) => return Poll::Ready(Some(Ok(message))),
            Poll::Ready(Some(_)) => return self.poll_collect(st, cx),
            Poll::Ready(None) => {}
            Poll::Pending => return Poll::Pending,
        }
        Poll::Ready(st.end_of_reading())
    }

    pub(crate) fn reader_dropped(&self) {
        let mut st = self.lock();
        st.reader = Reader::Gone;
        // Whoever waits in `closed` or the writable now reads instead.
        st.wake_all();
    }

    // ---- the writable ----

    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut st = self.lock();
        if let Reader::Gone = st.reader {
            self.drive_discarding(&mut st, cx.waker());
        }
        let Phase::Open(driver) = &mut st.phase else {
            return Poll::Ready(Err(st.ended_error()));
        };
        if driver.proto.close_sent() {
            return Poll::Ready(Err(Error::Closed));
        }
        if driver.has_room() {
            return Poll::Ready(Ok(()));
        }
        let ready = self.wakers.poll(cx.waker(), Interest::Write, |wakers| {
            match driver.poll_write_queued(wakers.write()) {
                Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
                _ if driver.has_room() => Poll::Ready(Ok(())),
                _ => Poll::Pending,
            }
        });
        match ready {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(err)) => {
                self.finish(&mut st, Err(Error::io(err)));
                Poll::Ready(Err(st.ended_error()))
            }
            Poll::Pending => {
                remember(&mut st.writer, cx.waker());
                Poll::Pending
            }
        }
    }

    pub(crate) fn start_send(&self, message: Message) -> Result<(), Error> {
        let mut st = self.lock();
        let Phase::Open(driver) = &mut st.phase else {
            return Err(st.ended_error());
        };
        driver.proto.send(message).map_err(streamed::send_error)
    }

    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut st = self.lock();
        if let Reader::Gone = st.reader {
            self.drive_discarding(&mut st, cx.waker());
        }
        let Phase::Open(driver) = &mut st.phase else {
            return Poll::Ready(match &st.phase {
                Phase::Ended(Ok(_)) => Ok(()),
                _ => Err(st.ended_error()),
            });
        };
        let flushed = self.wakers.poll(cx.waker(), Interest::Write, |wakers| {
            driver.poll_write_queued(wakers.write())
        });
        match flushed {
            Poll::Ready(Ok(())) => {
                st.wake_writer_if_room();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => {
                self.finish(&mut st, Err(Error::io(err)));
                Poll::Ready(Err(st.ended_error()))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// WHATWG's `writable.close()`: a close frame with no code, then flush.
    pub(crate) fn poll_close(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        {
            let mut st = self.lock();
            if let Phase::Open(driver) = &mut st.phase {
                if driver.proto.close(None) {
                    st.wake_all();
                }
            }
        }
        self.poll_flush(cx)
    }

    // ---- driving ----

    /// Records how the connection ended ([`State::end`]) and wakes whoever
    /// waits on the socket's write readiness too: a broadcast waiting for
    /// room learns of the end from the event count.
    fn finish(&self, st: &mut State, result: Result<CloseInfo, Error>) {
        st.end(result);
        self.wakers.write().wake_all();
    }

    /// One step of the connection for `waker`'s task: a message, the end
    /// (`None`, with the outcome recorded), or `Pending`.
    fn progress(&self, st: &mut State, waker: &Waker) -> Poll<Option<Received>> {
        let Phase::Open(driver) = &mut st.phase else {
            return Poll::Ready(None);
        };
        let progress = self.wakers.poll_reading(waker, |wakers| {
            let progress = driver.poll_progress(wakers);
            (progress, driver.wants_write())
        });
        st.wake_writer_if_room();
        match progress {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Progress::Received(received)) => Poll::Ready(Some(received)),
            Poll::Ready(Progress::Ended(result)) => {
                self.finish(&mut *st, result);
                Poll::Ready(None)
            }
        }
    }

    /// Reads for the readable while it is not being polled, as `closed`
    /// does: holds one message (or the start of one read in chunks) for it
    /// and stops there, answering pings and the peer's close on the way;
    /// with no reader, discards.
    fn read_ahead(&self, st: &mut State, waker: &Waker) {
        match st.reader.room() {
            None => self.drive_discarding(st, waker),
            Some(true) => {
                if let Poll::Ready(Some(received)) = self.progress(st, waker) {
                    st.reader.hold(received);
                }
            }
            // Held for the readable: taking it wakes whoever waits.
            Some(false) => {}
        }
    }

    /// Reads for a reader that is not there: messages are dropped, control
    /// frames handled, the close handshake finished.
    fn drive_discarding(&self, st: &mut State, waker: &Waker) {
        while let Poll::Ready(Some(_dropped)) = self.progress(st, waker) {}
    }
}

/// A handle that may still take the halves: the `WebSocketStream`, or an
/// `opened` future that has not resolved. While one lives, what arrives
/// before the halves are taken is held for them; once none does, no one
/// can ever read it, so it is discarded as it arrives and `closed` can
/// finish the close handshake.
pub(crate) struct Opener(Arc<Shared>);

impl Opener {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        shared.lock().openers += 1;
        Self(shared)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.0
    }
}

impl Drop for Opener {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.openers = st.openers.saturating_sub(1);
        if st.openers == 0 && matches!(st.reader, Reader::Untaken { .. }) {
            st.reader = Reader::Gone;
            // A `closed` that stopped at a held message may go on.
            st.wake_all();
        }
    }
}

impl SocketWakersOwner for Shared {
    fn socket_wakers(&self) -> &SocketWakers {
        &self.wakers
    }
}

impl Drop for Shared {
    /// With every handle gone, a handshake still in flight has no one to
    /// report to: stop it.
    fn drop(&mut self) {
        if let Some(abort) = &self.abort {
            abort.cancel();
        }
    }
}

impl State {
    /// Records how the connection ended and lets everyone know. After a
    /// protocol failure, or any end of an HTTP/2 stream, the transport is
    /// drained on a task of its own until the peer ends its direction
    /// (bounded: see `Driver::linger`), so our close frame is not
    /// destroyed by a reset.
    fn end(&mut self, result: Result<CloseInfo, Error>) {
        if let Phase::Ended(_) = self.phase {
            return;
        }
        if let Phase::Open(driver) = std::mem::replace(&mut self.phase, Phase::Ended(result)) {
            if driver.should_linger() {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(driver.linger());
                }
            }
        }
        self.wake_all();
    }

    /// The readable's last item once the connection has ended: its error,
    /// if it failed. No one reads from then on.
    fn end_of_reading(&mut self) -> Option<Result<Message, Error>> {
        self.reader = Reader::Gone;
        match &self.phase {
            Phase::Ended(Err(err)) => Some(Err(err.clone())),
            _ => None,
        }
    }

    /// The error for an operation on a connection that has ended.
    fn ended_error(&self) -> Error {
        match &self.phase {
            Phase::Ended(Err(err)) => err.clone(),
            _ => Error::Closed,
        }
    }

    fn wake_writer_if_room(&mut self) {
        if let Phase::Open(driver) = &self.phase {
            if driver.has_room() {
                if let Some(writer) = self.writer.take() {
                    writer.wake();
                }
            }
        }
    }

    /// Wakes whoever reads the connection (the readable, `closed`), so
    /// that it polls again and sees what changed.
    fn wake_readers(&mut self) {
        if let Reader::Reading {
            waker: Some(reader),
            ..
        } = &self.reader
        {
            reader.wake_by_ref();
        }
        self.closed_wakers.drain(..).for_each(Waker::wake);
    }

    fn wake_all(&mut self) {
        if let Reader::Reading {
            waker: Some(reader),
            ..
        } = &self.reader
        {
            reader.wake_by_ref();
        }
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
        self.opened_wakers.drain(..).for_each(Waker::wake);
        self.closed_wakers.drain(..).for_each(Waker::wake);
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::Mutex;
    use std::task::Wake;

    use bytes::BytesMut;

    use super::*;
    use crate::proto::Role;
    use crate::stream::options::ConnConfig;

    /// What the connect task would do when woken by the abort token: finish
    /// opening with a driver, right then, on the waking thread.
    struct OpenOnWake(Mutex<Option<(Arc<Shared>, Established)>>);

    impl Wake for OpenOnWake {
        fn wake(self: Arc<Self>) {
            let taken = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some((shared, established)) = taken {
                shared.finish_opening(Ok(established));
            }
        }
    }

    /// Regression: `close` before open released the lock before recording
    /// the abort, so an open that landed in between won and `close` had
    /// returned `Ok` for nothing. The open here lands exactly there: inside
    /// the abort token's wake-up, which `close` triggers.
    #[tokio::test]
    async fn close_before_open_wins_over_an_open_that_lands_during_it() {
        let shared = Shared::new(Some(CancellationToken::new()));
        // The handle, as `connect` holds it while the open runs.
        let _handle = Opener::new(shared.clone());
        let (ours, _peer) = tokio::io::duplex(64);
        let negotiated = Negotiated::default();
        let established = Established::new(
            crate::stream::wire::Wire::Bytes(Box::pin(ours)),
            Role::Client,
            ConnConfig::default(),
            BytesMut::new(),
            negotiated,
        );
        let hook = Arc::new(OpenOnWake(Mutex::new(Some((shared.clone(), established)))));
        let cancelled = shared.abort.clone().unwrap().cancelled_owned();
        let mut cancelled = std::pin::pin!(cancelled);
        let waker = Waker::from(hook.clone());
        assert!(cancelled
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());

        shared.close(None);

        assert!(hook.0.lock().unwrap().is_none(), "the open was attempted");
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(
            shared.poll_opened(&mut cx),
            Poll::Ready(Err(Error::Aborted))
        ));
        assert!(matches!(
            shared.poll_closed(&mut cx),
            Poll::Ready(Err(Error::Aborted))
        ));
    }
}
