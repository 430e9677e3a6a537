//! Keepalive and timeouts for one connection, on a single tokio `Sleep` that
//! is armed at the earliest deadline. Polled by whoever drives the
//! connection, so a timer wakes the reader (or `closed`) when it is due and
//! nothing polls in between.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{Instant, Sleep};

use crate::proto::Connection;
use crate::Timeout;

/// The timeouts both roles share; `None` turns one off.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeoutConfig {
    pub(crate) close: Duration,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) ping_timeout: Option<Duration>,
    pub(crate) idle: Option<Duration>,
}

impl Default for TimeoutConfig {
    /// As Python `websockets`: a ping every 20 s, 20 s for its pong, 10 s
    /// for the close handshake; no idle timeout.
    fn default() -> Self {
        Self {
            close: Duration::from_secs(10),
            ping_interval: Some(Duration::from_secs(20)),
            ping_timeout: Some(Duration::from_secs(20)),
            idle: None,
        }
    }
}

/// What a connection's deadlines wait on, while none of them changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Armed {
    /// Not known: the next poll reads the clock.
    No,
    /// There is no deadline.
    NoDeadline,
    /// The timer, for the earliest deadline.
    Timer,
}

/// The deadlines of one connection.
pub(crate) struct Timers {
    config: TimeoutConfig,
    sleep: Option<Pin<Box<Sleep>>>,
    /// What the last poll left waiting, until a deadline changes.
    armed: Armed,
    next_ping: Option<Instant>,
    /// While a keepalive ping waits for its pong: the pong's deadline.
    awaiting: Option<Instant>,
    pings_sent: u64,
    idle_deadline: Option<Instant>,
    close_deadline: Option<Instant>,
}

impl Timers {
    pub(crate) fn new(config: TimeoutConfig) -> Self {
        let now = Instant::now();
        Self {
            config,
            sleep: None,
            armed: Armed::No,
            next_ping: config.ping_interval.map(|every| now + every),
            awaiting: None,
            pings_sent: 0,
            idle_deadline: config.idle.map(|idle| now + idle),
            close_deadline: None,
        }
    }

    /// Bytes arrived: the peer is not idle.
    pub(crate) fn on_bytes_received(&mut self) {
        if let Some(idle) = self.config.idle {
            self.idle_deadline = Some(Instant::now() + idle);
            self.armed = Armed::No;
        }
    }

    /// Checks the deadlines against the clock: sends a keepalive ping when
    /// one is due, and reports the first timeout that expired. `Pending`
    /// means the timer will wake `cx` at the next deadline. `cx` must carry
    /// the same waker at every call (the driver passes its read fan-out's):
    /// a deadline already armed is not polled again.
    #[inline]
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>, proto: &mut Connection) -> Poll<Timeout> {
        if self.still_armed(proto) {
            return Poll::Pending;
        }
        self.poll_clock(cx, proto)
    }

    /// [`poll`](Self::poll) when something may be due or has changed.
    fn poll_clock(&mut self, cx: &mut Context<'_>, proto: &mut Connection) -> Poll<Timeout> {
        if self.awaiting.is_some() && !proto.awaiting_pong() {
            // The connection saw the matching pong.
            self.awaiting = None;
        }
        loop {
            // Set again below once the timer waits for the new earliest.
            self.armed = Armed::No;
            let now = Instant::now();
            if proto.close_sent() && self.close_deadline.is_none() {
                self.close_deadline = Some(now + self.config.close);
                // Once closing, keepalive and idleness no longer matter.
                self.next_ping = None;
                self.awaiting = None;
                self.idle_deadline = None;
            }
            if self.close_deadline.is_some_and(|at| at <= now) {
                return Poll::Ready(Timeout::Close);
            }
            if self.awaiting.is_some_and(|at| at <= now) {
                return Poll::Ready(Timeout::Keepalive);
            }
            if self.idle_deadline.is_some_and(|at| at <= now) {
                return Poll::Ready(Timeout::Idle);
            }
            if self.next_ping.is_some_and(|at| at <= now) {
                self.send_ping(now, proto);
            }
            let Some(deadline) = self.earliest() else {
                self.armed = Armed::NoDeadline;
                return Poll::Pending;
            };
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                self.armed = Armed::Timer;
                return Poll::Pending;
            }
        }
    }

    fn send_ping(&mut self, now: Instant, proto: &mut Connection) {
        self.next_ping = self.config.ping_interval.map(|every| now + every);
        if self.awaiting.is_some() {
            // The previous ping still waits for its pong; its deadline rules.
            return;
        }
        self.pings_sent += 1;
        let payload = Bytes::copy_from_slice(&self.pings_sent.to_be_bytes());
        if let Some(timeout) = self.config.ping_timeout {
            if proto.send_keepalive_ping(payload).is_ok() {
                self.awaiting = Some(now + timeout);
            }
        } else {
            // No deadline: the ping only keeps middleboxes from timing out.
            let _ = proto.send_ping(payload);
        }
    }

    /// Whether the timer waits for the earliest deadline and has not
    /// fired, and the connection has neither seen the awaited pong (which
    /// ends a deadline) nor started closing (which starts one): then
    /// nothing can be due, and the clock need not be read. A deadline that
    /// passes fires the timer, which wakes the connection and ends this.
    /// Most calls (two per message read) end here: reading the clock and
    /// comparing four deadlines on each was 290 instructions of a client's
    /// small round trip, 6% of them (callgrind).
    #[inline]
    fn still_armed(&self, proto: &Connection) -> bool {
        let timer_waits = match self.armed {
            Armed::No => return false,
            Armed::NoDeadline => true,
            Armed::Timer => self.sleep.as_ref().is_some_and(|sleep| !sleep.is_elapsed()),
        };
        let no_pong_arrived = self.awaiting.is_none() || proto.awaiting_pong();
        let no_close_untimed = self.close_deadline.is_some() || !proto.close_sent();
        timer_waits && no_pong_arrived && no_close_untimed
    }

    fn earliest(&self) -> Option<Instant> {
        [
            self.next_ping,
            self.awaiting,
            self.idle_deadline,
            self.close_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{encode_frame, FrameDecoder, FrameHeader, OpCode, Role};
    use bytes::{Buf, BytesMut};

    #[test]
    fn defaults_match_python_websockets() {
        let config = TimeoutConfig::default();
        assert_eq!(config.ping_interval, Some(Duration::from_secs(20)));
        assert_eq!(config.ping_timeout, Some(Duration::from_secs(20)));
        assert_eq!(config.close, Duration::from_secs(10));
        assert_eq!(config.idle, None);
    }

    fn poll(timers: &mut Timers, proto: &mut Connection) -> Poll<Timeout> {
        timers.poll(&mut Context::from_waker(std::task::Waker::noop()), proto)
    }

    fn config(ping_interval: Option<Duration>) -> TimeoutConfig {
        TimeoutConfig {
            close: Duration::from_secs(3),
            ping_interval,
            ping_timeout: ping_interval,
            idle: None,
        }
    }

    /// While the timer waits for a far deadline (the next keepalive ping,
    /// or none at all), polls skip the clock; a close must still start its
    /// own, nearer deadline at the next poll.
    #[tokio::test(start_paused = true)]
    async fn a_close_starts_its_deadline_while_the_timer_waits_for_another() {
        for ping_interval in [Some(Duration::from_secs(20)), None] {
            let mut timers = Timers::new(config(ping_interval));
            let mut proto = Connection::new(Role::Client, Default::default());
            assert!(poll(&mut timers, &mut proto).is_pending());
            assert!(poll(&mut timers, &mut proto).is_pending());
            assert!(proto.close(None));
            let closed_at = Instant::now();
            assert!(poll(&mut timers, &mut proto).is_pending());
            tokio::time::sleep(Duration::from_millis(2999)).await;
            assert!(poll(&mut timers, &mut proto).is_pending());
            tokio::time::sleep_until(closed_at + Duration::from_secs(3)).await;
            assert_eq!(poll(&mut timers, &mut proto), Poll::Ready(Timeout::Close));
        }
    }

    /// The awaited pong ends the keepalive deadline even though the timer
    /// is armed for it and has not fired: the next deadline is the next
    /// ping, not the pong's timeout.
    #[tokio::test(start_paused = true)]
    async fn the_awaited_pong_ends_its_deadline_before_the_timer_fires() {
        let every = Duration::from_secs(2);
        let mut timers = Timers::new(config(Some(every)));
        let mut proto = Connection::new(Role::Client, Default::default());
        assert!(poll(&mut timers, &mut proto).is_pending());
        tokio::time::sleep(every).await;
        // The ping goes out; its pong is awaited for `every`.
        assert!(poll(&mut timers, &mut proto).is_pending());
        assert!(proto.awaiting_pong());
        assert!(timers.awaiting.is_some());
        // The pong arrives, as the driver would feed it: the ping's
        // payload, read as the server would.
        let len = proto.buffered();
        let mut queued = BytesMut::from(&proto.outgoing().copy_to_bytes(len)[..]);
        let ping = FrameDecoder::new(Role::Server, 125)
            .decode(&mut queued)
            .unwrap()
            .unwrap();
        assert_eq!(ping.header.opcode, OpCode::Ping);
        let pong = FrameHeader {
            opcode: OpCode::Pong,
            mask: None,
            ..ping.header
        };
        let mut wire = BytesMut::new();
        encode_frame(&pong, &ping.payload, &mut wire);
        assert!(proto.receive(&mut wire).unwrap().is_none());
        assert!(!proto.awaiting_pong());
        assert!(poll(&mut timers, &mut proto).is_pending());
        assert_eq!(timers.awaiting, None);
        // Past the pong's timeout: no keepalive failure, the next ping.
        tokio::time::sleep(every).await;
        assert!(poll(&mut timers, &mut proto).is_pending());
        assert!(proto.awaiting_pong());
    }
}
