//! One measurement: a fresh server and client, every connection open,
//! the broadcast, and the server's figures around it.

use std::time::{Duration, Instant};

use crate::cases::Case;
use crate::process::{Client, Fields, Server, ServerStats};

/// How long the server may take to report every connection ready once
/// the client has them all open.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The CPUs the children are pinned to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pins {
    pub(super) server: usize,
    pub(super) client: usize,
}

/// What one measurement found.
#[derive(Debug, Clone)]
pub(super) struct Sample {
    /// The server with every connection ready, just before the broadcast.
    pub(super) before: ServerStats,
    /// Once the client had every message it was going to get.
    pub(super) after: ServerStats,
    /// From `BROADCAST` to the client's `DONE`.
    pub(super) wall: Duration,
    /// The server's `SENT` fields and the client's `DONE` fields.
    pub(super) sent: Fields,
    pub(super) done: Fields,
}

impl Sample {
    fn done_field(&self, name: &str) -> u64 {
        self.done.get(name).copied().unwrap_or(0)
    }

    /// Messages the fast connections received between them.
    pub(super) fn delivered(&self) -> u64 {
        self.done_field("messages")
    }

    /// Fast connections that missed messages (or got closed), and the
    /// messages they missed.
    pub(super) fn missed(&self) -> u64 {
        self.done_field("missed")
    }

    pub(super) fn closed(&self) -> u64 {
        self.done_field("closed")
    }

    /// Whether every fast connection got every message.
    pub(super) fn complete(&self, case: &Case) -> bool {
        self.done_field("complete") == 1
            && self.missed() == 0
            && self.closed() == 0
            && self.delivered() == case.deliveries() as u64
    }

    /// The server's CPU time over the broadcast per delivered message.
    pub(super) fn cpu_us_per_message(&self) -> f64 {
        let cpu = self.after.cpu.saturating_sub(self.before.cpu);
        cpu.as_secs_f64() * 1e6 / self.delivered().max(1) as f64
    }

    /// The wall time per broadcast message, in ms.
    pub(super) fn wall_ms_per_broadcast(&self, case: &Case) -> f64 {
        self.wall.as_secs_f64() * 1e3 / case.count as f64
    }

    /// The server's peak RSS over the whole run, in MiB.
    pub(super) fn peak_rss_mib(&self) -> f64 {
        self.before.hwm_kib.max(self.after.hwm_kib) as f64 / 1024.0
    }

    /// The server's RSS with every connection ready, in MiB.
    pub(super) fn rss_before_mib(&self) -> f64 {
        self.before.rss_kib as f64 / 1024.0
    }

    /// How far the broadcast took the server's RSS above its figure
    /// before (its VmHWM was reset then), in MiB.
    pub(super) fn growth_mib(&self) -> f64 {
        self.after.hwm_kib.saturating_sub(self.before.rss_kib) as f64 / 1024.0
    }

    /// A field of the server's `SENT` line (wsstream `Broadcast`'s
    /// `Delivery` counts).
    pub(super) fn sent_field(&self, name: &str) -> Option<u64> {
        self.sent.get(name).copied()
    }
}

/// Runs `design` on case `index`; `None` (the reason on stderr) when
/// something failed.
pub(super) fn measure(design: usize, index: usize, case: &Case, pins: Pins) -> Option<Sample> {
    let Some(mut server) = Server::start(design, index, pins.server) else {
        return failed("the server did not say PORT");
    };
    let mut client = Client::start(index, server.addr, pins.client);
    if client.ready().is_none() {
        return failed("the client did not say READY");
    }
    let Some(before) = wait_joined(&mut server, case.conns) else {
        return failed("the server did not report every connection ready");
    };
    if server.reset_peak().is_none() {
        return failed("the server did not reset its peak RSS");
    }
    let start = Instant::now();
    let Some(sent) = server.broadcast(case.count, case.size) else {
        return failed("the server did not say SENT");
    };
    let Some(done) = client.done() else {
        return failed("the client did not say DONE");
    };
    let wall = start.elapsed();
    let Some(after) = server.stats() else {
        return failed("the server died during the broadcast");
    };
    Some(Sample {
        before,
        after,
        wall,
        sent,
        done,
    })
}

fn failed<T>(why: &str) -> Option<T> {
    eprintln!("measurement failed: {why}");
    None
}

/// Asks the server for its figures until it reports `conns` connections
/// ready.
fn wait_joined(server: &mut Server, conns: usize) -> Option<ServerStats> {
    let start = Instant::now();
    loop {
        let stats = server.stats()?;
        if stats.conns == conns as u64 {
            return Some(stats);
        }
        if start.elapsed() > JOIN_TIMEOUT {
            eprintln!("{} of {conns} connections ready", stats.conns);
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
