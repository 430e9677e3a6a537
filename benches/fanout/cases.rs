//! What is measured: the server designs (the report's columns), the
//! cases (its rows), and the figures every process derives from them.

use std::time::Duration;

use crate::common::os::env_flag;

/// Each member's write queue bound under `Broadcast` (`max_buffered`),
/// for every policy.
pub(super) const MAX_BUFFERED: usize = 256 * 1024;
/// The tokio broadcast channel's capacity in the slow-consumer case: a
/// connection task that falls further behind skips to the oldest message
/// kept (`RecvError::Lagged`).
pub(super) const SLOW_CAPACITY: usize = 64;

/// The slow-consumer case's `SO_SNDBUF` on the server's sockets (Linux
/// doubles it): a client that stops reading then fills the kernel's
/// buffers with about 270 KiB rather than the ~4 MiB that autotuning
/// allows here, so that what the server itself holds shows within the
/// run.
pub(super) const SLOW_SNDBUF: u32 = 64 * 1024;

/// The slow-consumer case's interval between messages: about twice what
/// the client takes to read one message on every fast connection here.
pub(super) const SLOW_TICK: Duration = Duration::from_millis(30);

/// What a wsstream `Broadcast` does with a member whose queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Policy {
    Wait,
    Drop,
    /// `Backpressure::Close(CloseCode::TRY_AGAIN_LATER)`.
    Close,
}

/// One fan-out server design.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Design {
    /// Every connection's writable in one `wsstream::Broadcast`.
    Broadcast(Policy),
    /// wsstream without `Broadcast`: a tokio broadcast channel of
    /// `PreparedMessage`s and a task per connection that forwards it.
    Tasks,
    /// A tokio broadcast channel of `Bytes` and a task per connection
    /// that sends each message with the library's own API.
    Tungstenite,
    FastWebSockets,
    TokioWebsockets,
}

/// Every design, indexed by `FANOUT_LIBRARY`.
pub(super) const DESIGNS: [Design; 7] = [
    Design::Broadcast(Policy::Wait),
    Design::Tasks,
    Design::Tungstenite,
    Design::FastWebSockets,
    Design::TokioWebsockets,
    Design::Broadcast(Policy::Drop),
    Design::Broadcast(Policy::Close),
];

/// The designs of the main tables, in column order: the first is
/// wsstream's `Broadcast`, the last three are the peers.
pub(super) const COLUMNS: [usize; 5] = [0, 1, 2, 3, 4];
/// Where the peers start in `COLUMNS`.
pub(super) const FIRST_PEER: usize = 2;
/// The designs of the slow-consumer table, in row order.
pub(super) const SLOW_ROWS: [usize; 6] = [5, 6, 1, 2, 3, 4];

impl Design {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Broadcast(Policy::Wait) => "wsstream Broadcast",
            Self::Broadcast(Policy::Drop) => "wsstream Broadcast, Drop",
            Self::Broadcast(Policy::Close) => "wsstream Broadcast, Close(1013)",
            Self::Tasks => "wsstream task per connection",
            Self::Tungstenite => "tokio-tungstenite",
            Self::FastWebSockets => "fastwebsockets",
            Self::TokioWebsockets => "tokio-websockets",
        }
    }
}

/// One case: `conns` connections, `count` messages of `size` bytes sent
/// to each; `slow` of the client's connections never read after the
/// handshake.
#[derive(Debug, Clone, Copy)]
pub(super) struct Case {
    pub(super) name: &'static str,
    pub(super) conns: usize,
    pub(super) size: usize,
    pub(super) count: usize,
    pub(super) slow: usize,
    /// One message per this interval instead of a burst: each message
    /// goes alone, as a live feed's do.
    pub(super) every: Option<Duration>,
}

impl Case {
    /// The connections that read: the ones that must get every message.
    pub(super) fn fast(&self) -> usize {
        self.conns - self.slow
    }

    /// The messages the fast connections get between them.
    pub(super) fn deliveries(&self) -> usize {
        self.fast() * self.count
    }

    /// The slow-consumer case: the server's producer sends a message per
    /// [`SLOW_TICK`] (a live feed rather than one burst, slow enough for
    /// the fast connections to keep up), and the channel designs get a
    /// bounded channel.
    pub(super) fn tick(&self) -> Option<Duration> {
        self.every.or((self.slow > 0).then_some(SLOW_TICK))
    }

    /// The `SO_SNDBUF` of the server's sockets, if the case sets one.
    pub(super) fn sndbuf(&self) -> Option<u32> {
        (self.slow > 0).then_some(SLOW_SNDBUF)
    }

    /// The tokio broadcast channel's capacity: the whole burst (nothing
    /// lags) or, with slow consumers, [`SLOW_CAPACITY`].
    pub(super) fn capacity(&self) -> usize {
        if self.slow > 0 {
            SLOW_CAPACITY
        } else {
            self.count
        }
    }

    /// Whether client connection `index` is one of the slow ones: spread
    /// evenly over the connections.
    pub(super) fn is_slow(&self, index: usize) -> bool {
        self.slow > 0 && index.is_multiple_of(self.conns / self.slow)
    }
}

/// The cases, main ones first and the slow-consumer one last; counts
/// chosen for about a second per measurement with the fastest design
/// here, a tenth of that in quick mode.
pub(super) fn cases(quick: bool) -> Vec<Case> {
    let n = |full: usize| if quick { (full / 10).max(1) } else { full };
    let case = |name, conns, size, count| Case {
        name,
        conns,
        size,
        count: n(count),
        slow: 0,
        every: None,
    };
    vec![
        case("1,000 connections × 128 B", 1_000, 128, 6_000),
        case("1,000 connections × 16 KiB", 1_000, 16 * 1024, 150),
        case("10,000 connections × 128 B", 10_000, 128, 100),
        case("10,000 connections × 16 KiB", 10_000, 16 * 1024, 8),
        Case {
            name: "10,000 connections × 128 B, one every 10 ms",
            count: n(60),
            every: Some(Duration::from_millis(10)),
            ..case("", 10_000, 128, 0)
        },
        Case {
            name: "1,000 connections × 16 KiB, 10 never read",
            conns: 1_000,
            size: 16 * 1024,
            count: n(50),
            slow: 10,
            every: None,
        },
    ]
}

pub(super) fn quick() -> bool {
    env_flag("FANOUT_QUICK")
}
