//! The shared state's part in prepared messages: the writable's
//! `Sink<PreparedMessage>`, and the offer a [`Broadcast`](crate::Broadcast)
//! makes each of its members.

use std::task::{Poll, Waker};

use super::{streamed, Phase, Shared};
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
        let mut st = self.lock();
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
                    self.finish(&mut st, Err(Error::io(err)));
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
                self.finish(&mut st, Err(err));
                Poll::Ready(Offer::Ended)
            }
        }
    }

    /// Writes what the socket takes of what broadcasts fed this connection;
    /// `false` if the connection is over.
    pub(crate) fn flush_broadcast(&self) -> bool {
        let mut st = self.lock();
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
                self.finish(&mut st, Err(err));
                false
            }
        }
    }
}
