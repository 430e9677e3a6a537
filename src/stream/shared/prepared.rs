//! The shared state's part in prepared messages: the writable's
//! `Sink<PreparedMessage>`, and the offer a [`Broadcast`](crate::Broadcast)
//! makes each of its members.

use std::task::{Poll, Waker};

use bytes::Bytes;

use super::{streamed, Phase, Shared, State};
use crate::proto::PreparedMessage;
use crate::stream::driver::Driver;
use crate::stream::waker_set::{Interest, WakerSet};
use crate::Error;

/// What became of a message a broadcast offered one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Queued, and written as far as the socket took it.
    Queued,
    /// Not queued: the connection holds too much already.
    Full,
    /// Not queued: the connection is sending a message in fragments, and
    /// nothing may go between them.
    Busy,
    /// Not queued: the connection is closing or over.
    Ended,
}

impl Shared {
    /// Write-readiness events of the socket so far: a broadcast waiting
    /// for room re-offers only to members whose count moved.
    pub(crate) fn write_events(&self) -> usize {
        self.wakers.write().events()
    }

    /// The writable's `start_send` of a prepared message.
    pub(crate) fn start_send_prepared(&self, message: &PreparedMessage) -> Result<(), Error> {
        let mut st = self.lock();
        let Phase::Open(driver) = &mut st.phase else {
            return Err(st.ended_error());
        };
        driver
            .proto
            .send_prepared(message)
            .map_err(streamed::send_error)
    }

    /// Queues `message` unless that would leave more than `max_buffered`
    /// bytes waiting (an empty queue takes any one message), then, with
    /// `write_now` (else once a batch waits), writes what the socket takes. When full, the queue is written first, and
    /// with a `waiter`, it is registered for the socket's write readiness
    /// and `Pending` returned; without one, the answer is `Full`.
    pub(crate) fn offer(
        &self,
        message: &PreparedMessage,
        max_buffered: usize,
        waiter: Option<&Waker>,
        write_now: bool,
    ) -> Poll<Offer> {
        self.offer_locked(&mut self.lock(), message, max_buffered, waiter, write_now)
    }

    /// Offers `messages` (consecutive messages of a batch) in turn under
    /// one lock, none of them waiting (a full queue answers `Full`), and
    /// with `write`, writes what the socket takes once they are queued
    /// (else only once a batch waits). `run`, their frames joined, goes in
    /// as one chunk if it fits the queue whole and the connection allows
    /// it. `decide` hears each message's offer and says whether to go on (a
    /// queued message always goes on); returns how many messages were
    /// offered.
    pub(crate) fn offer_batch(
        &self,
        messages: &[PreparedMessage],
        run: Option<&Bytes>,
        max_buffered: usize,
        write: bool,
        mut decide: impl FnMut(Offer) -> bool,
    ) -> usize {
        let mut st = self.lock();
        let mut offered = 0;
        if run.is_some_and(|frames| self.queue_run(&mut st, frames, max_buffered)) {
            offered = messages.len();
            (0..offered).for_each(|_| _ = decide(Offer::Queued));
        }
        while let Some(message) = messages.get(offered) {
            offered += 1;
            let offer = match self.offer_locked(&mut st, message, max_buffered, None, false) {
                Poll::Ready(offer) => offer,
                Poll::Pending => Offer::Full,
            };
            if !decide(offer) {
                break;
            }
        }
        if write {
            self.flush_locked(&mut st);
        }
        offered
    }

    /// Queues a run's joined frames as one chunk if they fit under
    /// `max_buffered` and the connection sends the messages as their plain
    /// frames; `false` if the run must go message by message.
    fn queue_run(&self, st: &mut State, frames: &Bytes, max_buffered: usize) -> bool {
        let Phase::Open(driver) = &mut st.phase else {
            return false;
        };
        if driver.proto.buffered() + frames.len() > max_buffered {
            return false;
        }
        match driver.send_broadcast_run(frames, self.wakers.write()) {
            Ok(None) => false,
            Ok(Some(backlogged)) => {
                if backlogged {
                    st.wake_readers();
                }
                true
            }
            Err(err) => {
                // The messages then find the connection over.
                self.finish(st, Err(err));
                false
            }
        }
    }

    fn offer_locked(
        &self,
        st: &mut State,
        message: &PreparedMessage,
        max_buffered: usize,
        waiter: Option<&Waker>,
        write_now: bool,
    ) -> Poll<Offer> {
        let Phase::Open(driver) = &mut st.phase else {
            return Poll::Ready(Offer::Ended);
        };
        if driver.proto.close_sent() {
            return Poll::Ready(Offer::Ended);
        }
        if driver.proto.is_sending_fragments() {
            return Poll::Ready(Offer::Busy);
        }
        let fits = |buffered: usize| buffered == 0 || buffered + message.len() <= max_buffered;
        if !fits(driver.proto.buffered()) {
            // Written since anyone last polled? Write what the socket takes.
            let make_room =
                |driver: &mut Driver, write: &WakerSet| match driver.poll_write_queued(write) {
                    Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
                    _ if fits(driver.proto.buffered()) => Poll::Ready(Ok(())),
                    _ => Poll::Pending,
                };
            let room = match waiter {
                Some(waker) => self.wakers.poll(waker, Interest::Write, |wakers| {
                    make_room(driver, wakers.write())
                }),
                None => match make_room(driver, self.wakers.write()) {
                    Poll::Pending => return Poll::Ready(Offer::Full),
                    room => room,
                },
            };
            match room {
                Poll::Pending => {
                    // Woken when the connection ends, too.
                    if let Some(waker) = waiter {
                        super::remember_in(&mut st.closed_wakers, waker);
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(err)) => {
                    self.finish(st, Err(Error::io(err)));
                    return Poll::Ready(Offer::Ended);
                }
                Poll::Ready(Ok(())) => {}
            }
        }
        let Phase::Open(driver) = &mut st.phase else {
            return Poll::Ready(Offer::Ended);
        };
        match driver.send_broadcast(message, write_now, self.wakers.write()) {
            Ok(false) => Poll::Ready(Offer::Queued),
            Ok(true) => {
                st.wake_readers();
                Poll::Ready(Offer::Queued)
            }
            Err(err) => {
                self.finish(st, Err(err));
                Poll::Ready(Offer::Ended)
            }
        }
    }

    /// Writes what the socket takes of what broadcasts fed this connection;
    /// `false` if the connection is over.
    pub(crate) fn flush_broadcast(&self) -> bool {
        self.flush_locked(&mut self.lock())
    }

    fn flush_locked(&self, st: &mut State) -> bool {
        let Phase::Open(driver) = &mut st.phase else {
            return false;
        };
        match driver.write_broadcast(self.wakers.write()) {
            Ok(false) => true,
            Ok(true) => {
                st.wake_readers();
                true
            }
            Err(err) => {
                self.finish(st, Err(err));
                false
            }
        }
    }
}
