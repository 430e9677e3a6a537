//! What is measured: the libraries, the two runtimes, the workloads and
//! their payloads.

use bytes::Bytes;

use crate::common::os::env_flag;

pub(super) const LIBRARIES: [&str; 4] = [
    "wsstream",
    "tokio-tungstenite",
    "fastwebsockets",
    "tokio-websockets",
];

/// wsstream's sans-io core driven by hand in each connection's task
/// (core_echo.rs): the library after `LIBRARIES`, measured only with
/// `SERVER_CORE=1` and never counted as a peer.
pub(super) const CORE: usize = LIBRARIES.len();

/// The libraries this run measures: `LIBRARIES`, and the core with
/// `SERVER_CORE=1`.
pub(super) fn library_count() -> usize {
    if env_flag("SERVER_CORE") {
        CORE + 1
    } else {
        CORE
    }
}

/// A library's name in progress lines and tables.
pub(super) fn library_name(library: usize) -> &'static str {
    LIBRARIES.get(library).copied().unwrap_or("wsstream core")
}

/// The server's tokio runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Flavour {
    /// `new_current_thread`, the server pinned to one CPU and the load
    /// generator to another.
    Current,
    /// `new_multi_thread` with a worker per core (what `#[tokio::main]`
    /// builds); nothing pinned.
    Multi,
}

impl Flavour {
    pub(super) const ALL: [Self; 2] = [Self::Current, Self::Multi];

    pub(super) fn env_value(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Multi => "multi",
        }
    }

    pub(super) fn from_env_value(value: &str) -> Self {
        match value {
            "current" => Self::Current,
            "multi" => Self::Multi,
            other => panic!("SERVER_FLAVOUR must be current or multi, not {other:?}"),
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Current => "single-thread",
            Self::Multi => "multi-thread",
        }
    }

    /// The server's runtime of this flavour.
    pub(super) fn runtime(self) -> tokio::runtime::Runtime {
        let mut builder = match self {
            Self::Current => tokio::runtime::Builder::new_current_thread(),
            Self::Multi => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(std::thread::available_parallelism().map_or(1, |n| n.get()));
                builder
            }
        };
        builder.enable_all().build().expect("runtime")
    }
}

/// One workload: `conns` connections open, `active` of them echoing
/// `messages` messages of `size` bytes between them, each with
/// `in_flight` messages outstanding.
#[derive(Debug, Clone, Copy)]
pub(super) struct Workload {
    pub(super) name: &'static str,
    pub(super) conns: usize,
    pub(super) active: usize,
    pub(super) size: usize,
    pub(super) in_flight: usize,
    /// Messages echoed in the timed run, over every active connection.
    pub(super) messages: usize,
    /// Runs on the multi-thread runtime too.
    pub(super) multi: bool,
}

impl Workload {
    /// Whether some connections stay idle (the RSS-per-connection
    /// workload); the others are uWebSockets' load_test workloads.
    pub(super) fn has_idle(&self) -> bool {
        self.active < self.conns
    }

    /// The messages each active connection echoes.
    pub(super) fn per_connection(&self) -> usize {
        self.messages.div_ceil(self.active)
    }

    /// The messages of a measurement (a whole number per connection).
    pub(super) fn total(&self) -> usize {
        self.per_connection() * self.active
    }

    pub(super) fn flavours(&self) -> &'static [Flavour] {
        if self.multi {
            &Flavour::ALL
        } else {
            &Flavour::ALL[..1]
        }
    }
}

/// The workloads; message counts chosen for half a second to a second a
/// measurement with the fastest library here (tokio-websockets, with a
/// write per message, takes up to ten times as long), a tenth of that in
/// quick mode.
pub(super) fn workloads(quick: bool) -> Vec<Workload> {
    let n = |full: usize| if quick { full / 10 } else { full };
    let load_test = |name, conns, size, in_flight, messages| Workload {
        name,
        conns,
        active: conns,
        size,
        in_flight,
        messages: n(messages),
        multi: true,
    };
    vec![
        load_test("100 connections × 20 B", 100, 20, 32, 1_000_000),
        load_test("10 connections × 1 KiB", 10, 1024, 64, 800_000),
        load_test("200 connections × 16 KiB", 200, 16 * 1024, 4, 50_000),
        load_test("500 connections × 16 KiB", 500, 16 * 1024, 2, 40_000),
        Workload {
            name: "10,000 connections, 1,000 active × 32 B",
            conns: 10_000,
            active: 1_000,
            size: 32,
            in_flight: 32,
            messages: n(800_000),
            multi: false,
        },
    ]
}

pub(super) fn quick() -> bool {
    env_flag("SERVER_QUICK")
}

/// A payload of `size` bytes whose content depends on `seed`.
pub(super) fn payload(size: usize, seed: usize) -> Bytes {
    (0..size)
        .map(|i| (i.wrapping_mul(7) ^ seed.wrapping_mul(131).wrapping_add(1)) as u8)
        .collect()
}
