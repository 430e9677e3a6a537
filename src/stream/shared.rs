//! The state the `WebSocketStream` handle, the readable, the writable and
//! every `closed` future share, and the polling that moves it forward.
//!
//! There is no background task: whoever polls drives the connection. The
//! readable reads; the writable writes; both flush queued replies. `closed`
//! reads too, so the close handshake completes while the readable sits
//! unpolled: it holds back at most one message for the readable and stops
//! there, which keeps backpressure intact. When no one reads (the readable
//! was never taken, was dropped, or has ended), the writable and `closed`
//! read in its place and discard data messages, so pings are still answered
//! and the close handshake still completes.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio_util::sync::CancellationToken;

use super::driver::{Driver, Progress};
use super::fanout::{Fanout, FanoutOwner};
use crate::handshake::Negotiated;
use crate::proto::{CloseFrame, Message, SendError};
use crate::{CloseInfo, Error};

pub(crate) struct Shared {
    state: Mutex<State>,
    read: Fanout,
    write: Fanout,
    /// Fires to abort the opening handshake.
    pub(crate) abort: CancellationToken,
}

// The driver lives inline: `State` is already behind the connection's one
// `Arc`, and a box would be one more pointer to chase on every poll.
#[allow(clippy::large_enum_variant)]
enum Phase {
    Connecting,
    Open(Driver),
    Ended,
}

struct State {
    phase: Phase,
    opened: Option<Result<Negotiated, Error>>,
    halves_taken: bool,
    reader_active: bool,
    /// A message `closed` read while driving, held for the readable.
    held: Option<Message>,
    outcome: Option<Result<CloseInfo, Error>>,
    opened_wakers: Vec<Waker>,
    closed_wakers: Vec<Waker>,
    reader: Option<Waker>,
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
    pub(crate) fn new(abort: CancellationToken) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            state: Mutex::new(State {
                phase: Phase::Connecting,
                opened: None,
                halves_taken: false,
                reader_active: false,
                held: None,
                outcome: None,
                opened_wakers: Vec::new(),
                closed_wakers: Vec::new(),
                reader: None,
                writer: None,
            }),
            read: Fanout::new(me.clone(), READ),
            write: Fanout::new(me.clone(), WRITE),
            abort,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the end of the opening handshake. Ignored if the connection
    /// was already aborted.
    pub(crate) fn finish_opening(&self, result: Result<(Driver, Negotiated), Error>) {
        let mut st = self.lock();
        if st.opened.is_some() {
            return;
        }
        match result {
            Ok((driver, negotiated)) => {
                st.phase = Phase::Open(driver);
                st.opened = Some(Ok(negotiated));
                // A `closed` polled before open has had nothing to drive; now
                // it may (found by the `stream` fuzz target).
                st.closed_wakers.drain(..).for_each(Waker::wake);
            }
            Err(err) => {
                st.phase = Phase::Ended;
                st.opened = Some(Err(err.clone()));
                st.outcome = Some(Err(err));
                st.closed_wakers.drain(..).for_each(Waker::wake);
            }
        }
        st.opened_wakers.drain(..).for_each(Waker::wake);
    }

    pub(crate) fn poll_opened(&self, cx: &mut Context<'_>) -> Poll<Result<Negotiated, Error>> {
        let mut st = self.lock();
        match &st.opened {
            None => {
                remember_in(&mut st.opened_wakers, cx.waker());
                Poll::Pending
            }
            Some(Err(err)) => Poll::Ready(Err(err.clone())),
            Some(Ok(_)) if st.halves_taken => Poll::Ready(Err(Error::AlreadyOpened)),
            Some(Ok(negotiated)) => {
                let negotiated = negotiated.clone();
                st.halves_taken = true;
                st.reader_active = true;
                Poll::Ready(Ok(negotiated))
            }
        }
    }

    pub(crate) fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<Result<CloseInfo, Error>> {
        let mut st = self.lock();
        if st.outcome.is_none() {
            if !st.reader_active {
                self.drive_discarding(&mut st, cx.waker());
            } else if st.held.is_none() {
                if let Poll::Ready(Some(message)) = self.progress(&mut st, cx.waker()) {
                    st.held = Some(message);
                    // The bytes are no longer in the socket to wake it.
                    if let Some(reader) = &st.reader {
                        reader.wake_by_ref();
                    }
                }
            }
        }
        match &st.outcome {
            Some(outcome) => Poll::Ready(outcome.clone()),
            None => {
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
                drop(st);
                self.abort.cancel();
                self.finish_opening(Err(Error::Aborted));
            }
            Phase::Open(driver) => {
                if driver.proto.close(frame.as_ref()) {
                    // Best effort now; whoever polls next finishes the write.
                    let _ = driver.poll_write_queued(&self.write);
                    st.wake_all();
                }
            }
            Phase::Ended => {}
        }
    }

    // ---- the readable ----

    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        let mut st = self.lock();
        remember(&mut st.reader, cx.waker());
        if let Some(message) = st.held.take() {
            // `closed` stopped reading to hold this message; it may go on.
            st.closed_wakers.drain(..).for_each(Waker::wake);
            return Poll::Ready(Some(Ok(message)));
        }
        if st.outcome.is_none() {
            match self.progress(&mut st, cx.waker()) {
                Poll::Ready(Some(message)) => return Poll::Ready(Some(Ok(message))),
                Poll::Ready(None) => {}
                Poll::Pending => return Poll::Pending,
            }
        }
        st.reader_active = false;
        match &st.outcome {
            Some(Err(err)) => Poll::Ready(Some(Err(err.clone()))),
            _ => Poll::Ready(None),
        }
    }

    pub(crate) fn reader_dropped(&self) {
        let mut st = self.lock();
        st.reader_active = false;
        st.reader = None;
        st.held = None;
        // Whoever waits in `closed` or the writable now reads instead.
        st.wake_all();
    }

    // ---- the writable ----

    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut st = self.lock();
        if !st.reader_active {
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
        let seen = self.write.events();
        if let Poll::Ready(Err(err)) = driver.poll_write_queued(&self.write) {
            st.end(Err(Error::io(err)));
            return Poll::Ready(Err(st.ended_error()));
        }
        if driver.has_room() {
            return Poll::Ready(Ok(()));
        }
        self.write.register_since(cx.waker(), seen);
        remember(&mut st.writer, cx.waker());
        Poll::Pending
    }

    pub(crate) fn start_send(&self, message: Message) -> Result<(), Error> {
        let mut st = self.lock();
        let Phase::Open(driver) = &mut st.phase else {
            return Err(st.ended_error());
        };
        driver.proto.send(message).map_err(|err| match err {
            SendError::Closing | SendError::ControlTooLong => Error::Closed,
            SendError::Random(err) => Error::io(err),
        })
    }

    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut st = self.lock();
        if !st.reader_active {
            self.drive_discarding(&mut st, cx.waker());
        }
        let Phase::Open(driver) = &mut st.phase else {
            return Poll::Ready(match &st.outcome {
                Some(Ok(_)) => Ok(()),
                _ => Err(st.ended_error()),
            });
        };
        let seen = self.write.events();
        match driver.poll_write_queued(&self.write) {
            Poll::Ready(Ok(())) => {
                st.wake_writer_if_room();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => {
                st.end(Err(Error::io(err)));
                Poll::Ready(Err(st.ended_error()))
            }
            Poll::Pending => {
                self.write.register_since(cx.waker(), seen);
                Poll::Pending
            }
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

    /// One step of the connection for `waker`'s task.
    fn progress(&self, st: &mut State, waker: &Waker) -> Poll<Option<Message>> {
        let Phase::Open(driver) = &mut st.phase else {
            return Poll::Ready(None);
        };
        let seen = (self.read.events(), self.write.events());
        let progress = driver.poll_progress(&self.read, &self.write);
        if progress.is_pending() {
            self.read.register_since(waker, seen.0);
            self.write.register_since(waker, seen.1);
        }
        st.wake_writer_if_room();
        match progress {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Progress::Message(message)) => Poll::Ready(Some(message)),
            Poll::Ready(Progress::Ended(result)) => {
                st.end(result);
                Poll::Ready(None)
            }
        }
    }

    /// Reads for a reader that is not there: messages are dropped, control
    /// frames handled, the close handshake finished.
    fn drive_discarding(&self, st: &mut State, waker: &Waker) {
        while let Poll::Ready(Some(_dropped)) = self.progress(st, waker) {}
    }
}

/// Which of the two fan-outs a socket waker wakes.
const READ: usize = 0;
const WRITE: usize = 1;

impl FanoutOwner for Shared {
    fn fanout(&self, which: usize) -> &Fanout {
        if which == READ {
            &self.read
        } else {
            &self.write
        }
    }
}

impl Drop for Shared {
    /// With every handle gone, a handshake still in flight has no one to
    /// report to: stop it.
    fn drop(&mut self) {
        self.abort.cancel();
    }
}

impl State {
    /// Records how the connection ended and lets everyone know. After a
    /// protocol failure, the socket is drained in the background until the
    /// peer closes, so our close frame is not destroyed by a reset.
    fn end(&mut self, result: Result<CloseInfo, Error>) {
        if self.outcome.is_none() {
            self.outcome = Some(result);
        }
        if let Phase::Open(driver) = std::mem::replace(&mut self.phase, Phase::Ended) {
            let failed = driver.proto.failure().is_some();
            if failed && !driver.at_eof() {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(driver.linger());
                }
            }
        }
        self.wake_all();
    }

    /// The error for an operation on a connection that has ended.
    fn ended_error(&self) -> Error {
        match &self.outcome {
            Some(Err(err)) => err.clone(),
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

    fn wake_all(&mut self) {
        if let Some(reader) = &self.reader {
            reader.wake_by_ref();
        }
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
        self.closed_wakers.drain(..).for_each(Waker::wake);
    }
}
