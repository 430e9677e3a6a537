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

/// The deadlines of one connection.
pub(crate) struct Timers {
    config: TimeoutConfig,
    sleep: Option<Pin<Box<Sleep>>>,
    /// The deadline `sleep` was last polled for and found pending: it will
    /// wake the connection then.
    armed: Option<Instant>,
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
            armed: None,
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
        }
    }

    /// Checks the deadlines against the clock: sends a keepalive ping when
    /// one is due, and reports the first timeout that expired. `Pending`
    /// means the timer will wake `cx` at the next deadline. `cx` must carry
    /// the same waker at every call (the driver passes its read fan-out's):
    /// a deadline already armed is not polled again.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>, proto: &mut Connection) -> Poll<Timeout> {
        if !proto.awaiting_pong() {
            // The connection saw the matching pong.
            self.awaiting = None;
        }
        loop {
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
                return Poll::Pending;
            };
            if self.armed == Some(deadline) && now < deadline {
                // Already registered for this deadline with the same waker
                // (the read fan-out's, at every call): polling the timer
                // again on every message would change nothing.
                return Poll::Pending;
            }
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                self.armed = Some(deadline);
                return Poll::Pending;
            }
            self.armed = None;
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

    #[test]
    fn defaults_match_python_websockets() {
        let config = TimeoutConfig::default();
        assert_eq!(config.ping_interval, Some(Duration::from_secs(20)));
        assert_eq!(config.ping_timeout, Some(Duration::from_secs(20)));
        assert_eq!(config.close, Duration::from_secs(10));
        assert_eq!(config.idle, None);
    }
}
