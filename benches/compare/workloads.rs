//! What is measured: the seven workloads, their payloads, and the plan of
//! a pipelined run.

use bytes::Bytes;

use crate::common::echo::check_echo;
use crate::common::os::env_flag;

/// What one measurement does.
#[derive(Debug, Clone, Copy)]
pub(super) enum Shape {
    /// One message at a time, `count` round trips.
    RoundTrip { count: usize },
    /// `window` messages in flight, `total` echoed.
    Pipelined { window: usize, total: usize },
    /// `conns` connections at once, `trips` round trips each.
    Connections { conns: usize, trips: usize },
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Workload {
    pub(super) name: &'static str,
    pub(super) size: usize,
    pub(super) shape: Shape,
    /// The target for wsstream's msgs/s over the best peer's.
    pub(super) rate_target: f64,
}

/// The seven workloads; counts chosen for 0.5-1 s a measurement here, and a
/// tenth of that (one round) in quick mode.
pub(super) fn workloads(quick: bool) -> Vec<Workload> {
    let n = |full: usize| if quick { full / 10 } else { full };
    let pipelined = |name, size, window, total, rate_target| Workload {
        name,
        size,
        shape: Shape::Pipelined {
            window,
            total: n(total),
        },
        rate_target,
    };
    vec![
        Workload {
            name: "round trip, 32 B",
            size: 32,
            shape: Shape::RoundTrip { count: n(40_000) },
            rate_target: 1.10,
        },
        pipelined("pipelined 16 B, 1024 in flight", 16, 1024, 2_000_000, 1.10),
        pipelined("pipelined 1 KiB, 256 in flight", 1024, 256, 600_000, 1.10),
        pipelined(
            "pipelined 64 KiB, 128 in flight",
            64 * 1024,
            128,
            15_000,
            1.05,
        ),
        pipelined("pipelined 1 MiB, 8 in flight", 1 << 20, 8, 800, 1.0),
        Workload {
            name: "100 connections × 400 round trips, 32 B",
            size: 32,
            shape: Shape::Connections {
                conns: 100,
                trips: if quick { 40 } else { 400 },
            },
            rate_target: 1.0,
        },
        Workload {
            name: "1000 connections × 80 round trips, 32 B",
            size: 32,
            shape: Shape::Connections {
                conns: 1000,
                trips: if quick { 10 } else { 80 },
            },
            rate_target: 1.0,
        },
    ]
}

pub(super) fn quick() -> bool {
    env_flag("COMPARE_QUICK")
}

// ----------------------------------------------------------------- payloads

/// A payload of `size` bytes whose content depends on `seed`.
pub(super) fn payload(size: usize, seed: usize) -> Bytes {
    (0..size)
        .map(|i| (i.wrapping_mul(7) ^ seed.wrapping_mul(131).wrapping_add(1)) as u8)
        .collect()
}

/// The messages of a pipelined run: message `i` carries `payloads[i % n]`.
pub(super) struct Plan {
    pub(super) window: usize,
    pub(super) total: usize,
    payloads: Vec<Bytes>,
    full_check: bool,
}

impl Plan {
    /// A short run of distinct payloads whose echoes are compared in full.
    pub(super) fn verify(size: usize, window: usize) -> Self {
        Self {
            window,
            total: (2 * window).max(64),
            payloads: (0..7).map(|seed| payload(size, seed)).collect(),
            full_check: true,
        }
    }

    pub(super) fn timed(size: usize, window: usize, total: usize) -> Self {
        Self {
            window,
            total,
            payloads: vec![payload(size, 0)],
            full_check: false,
        }
    }

    pub(super) fn payload(&self, index: usize) -> &Bytes {
        &self.payloads[index % self.payloads.len()]
    }

    pub(super) fn check(&self, index: usize, got: &[u8]) {
        check_echo(
            got,
            self.payload(index),
            self.full_check,
            format_args!("echo {index}"),
        );
    }
}
