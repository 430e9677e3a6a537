//! What the parent gathers from the children: their samples on one
//! timeline (the parent's clock, seconds since it started), the marks of
//! the churn, their readings before and after, their counts, and what
//! went wrong with the processes themselves.

use std::collections::BTreeMap;

use crate::gauges::Reading;
use crate::process::Side;
use crate::tally::Tally;

/// One `SAMPLE` line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) side: Side,
    /// Seconds since the parent started.
    pub(crate) t: f64,
    pub(crate) reading: Reading,
}

/// What one child reported.
#[derive(Debug, Default)]
pub(crate) struct Child {
    /// Before its first connection.
    pub(crate) start: Option<Reading>,
    /// After the churn, once back (or after `QUIET_LIMIT`).
    pub(crate) end: Option<Reading>,
    /// RSS after the allocator gave its free pages back, once quiet.
    pub(crate) trimmed_rss_kib: Option<u64>,
    /// How long it waited for that, in ms, and whether it came back.
    pub(crate) quiet: Option<(u64, bool)>,
    pub(crate) result: Option<Tally>,
}

#[derive(Debug, Default)]
pub(crate) struct Run {
    pub(crate) seconds: u64,
    pub(crate) conns: u64,
    pub(crate) seed: u64,
    /// wss (`SOAK_TLS=1`) rather than ws.
    pub(crate) tls: bool,
    pub(crate) samples: Vec<Sample>,
    pub(crate) churn_start: Option<f64>,
    pub(crate) churn_end: Option<f64>,
    /// How long the client's loops took to finish after the churn, in ms.
    pub(crate) drained_ms: Option<u64>,
    pub(crate) server: Child,
    pub(crate) client: Child,
    /// The parent's own findings: a child that died, a deadline passed.
    pub(crate) problems: Vec<String>,
    /// The parent's wall time, in seconds.
    pub(crate) wall: f64,
}

impl Run {
    pub(crate) fn child(&self, side: Side) -> &Child {
        match side {
            Side::Server => &self.server,
            Side::Client => &self.client,
        }
    }

    pub(crate) fn child_mut(&mut self, side: Side) -> &mut Child {
        match side {
            Side::Server => &mut self.server,
            Side::Client => &mut self.client,
        }
    }

    /// The samples of `side`.
    pub(crate) fn samples_of(&self, side: Side) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(move |s| s.side == side)
    }

    /// The samples of `side` taken `from..to` seconds after the churn
    /// started.
    pub(crate) fn window(&self, side: Side, from: f64, to: f64) -> Vec<Reading> {
        let Some(churn) = self.churn_start else {
            return Vec::new();
        };
        self.samples_of(side)
            .filter(|s| (churn + from..churn + to).contains(&s.t))
            .map(|s| s.reading)
            .collect()
    }
}

/// `k=v k=v …` with numeric values, ignoring anything else.
pub(crate) fn fields(text: &str) -> BTreeMap<&str, u64> {
    text.split_whitespace()
        .filter_map(|f| {
            let (k, v) = f.split_once('=')?;
            Some((k, v.parse().ok()?))
        })
        .collect()
}

/// The reading in a line of fields.
pub(crate) fn reading(text: &str) -> Reading {
    let f = fields(text);
    let get = |k: &str| f.get(k).copied().unwrap_or(0);
    Reading {
        rss_kib: get("rss_kib"),
        heap_kib: get("heap_kib"),
        fds: get("fds"),
        tasks: get("tasks"),
        conns: get("conns"),
    }
}
