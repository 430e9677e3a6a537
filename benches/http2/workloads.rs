//! What is measured: the HTTP versions, the workloads and their payloads.

use bytes::Bytes;
use wsstream::{HttpVersion, Options};

use crate::common::os::env_flag;

/// How the WebSockets reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Http {
    /// A TCP connection and an HTTP/1.1 `Upgrade` per WebSocket.
    H1,
    /// A stream (extended CONNECT) per WebSocket, all on one cleartext
    /// HTTP/2 connection.
    H2,
}

impl Http {
    pub(super) const BOTH: [Http; 2] = [Http::H1, Http::H2];

    pub(super) fn name(self) -> &'static str {
        match self {
            Http::H1 => "HTTP/1.1",
            Http::H2 => "HTTP/2",
        }
    }

    pub(super) fn env_value(self) -> &'static str {
        match self {
            Http::H1 => "h1",
            Http::H2 => "h2",
        }
    }

    pub(super) fn from_env_value(value: &str) -> Self {
        match value {
            "h1" => Http::H1,
            "h2" => Http::H2,
            other => panic!("unknown HTTP version {other:?}"),
        }
    }

    /// The client's options. Every WebSocket of a run connects with a
    /// clone of one value, so over HTTP/2 they share its connection pool.
    pub(super) fn options(self) -> Options {
        match self {
            Http::H1 => Options::default().http_version(HttpVersion::Http1),
            Http::H2 => Options::default()
                .http_version(HttpVersion::RequireHttp2)
                .http2_prior_knowledge(true),
        }
    }
}

/// What one measurement does.
#[derive(Debug, Clone, Copy)]
pub(super) enum Shape {
    /// One WebSocket, one message at a time, `count` round trips.
    RoundTrip { count: usize },
    /// `sockets` WebSockets at once, `trips` round trips each.
    Many { sockets: usize, trips: usize },
}

#[derive(Debug, Clone)]
pub(super) struct Workload {
    pub(super) name: String,
    pub(super) size: usize,
    pub(super) shape: Shape,
}

impl Workload {
    fn new(size: usize, shape: Shape) -> Self {
        let size_name = if size >= 1024 {
            format!("{} KiB", size / 1024)
        } else {
            format!("{size} B")
        };
        let name = match shape {
            Shape::Many { sockets, trips } => {
                format!("{sockets} WebSockets × {trips} round trips, {size_name}")
            }
            Shape::RoundTrip { count } => {
                format!("1 WebSocket × {count} round trips, {size_name}")
            }
        };
        Self { name, size, shape }
    }
}

/// The number of WebSockets open at once.
pub(super) const SOCKETS: usize = 1000;

/// The workloads; counts chosen for one to three seconds a measurement
/// here, and far less in quick mode.
pub(super) fn workloads(quick: bool) -> Vec<Workload> {
    let pick = |full: usize, short: usize| if quick { short } else { full };
    let many = |trips| Shape::Many {
        sockets: SOCKETS,
        trips,
    };
    vec![
        Workload::new(32, many(pick(100, 10))),
        Workload::new(16 * 1024, many(pick(20, 4))),
        Workload::new(
            32,
            Shape::RoundTrip {
                count: pick(30_000, 3_000),
            },
        ),
    ]
}

pub(super) fn quick() -> bool {
    env_flag("HTTP2_BENCH_QUICK")
}

/// A payload of `size` bytes whose content depends on `seed`.
pub(super) fn payload(size: usize, seed: usize) -> Bytes {
    (0..size)
        .map(|i| (i.wrapping_mul(13) ^ seed.wrapping_mul(151).wrapping_add(7)) as u8)
        .collect()
}
