//! The pass conditions, each with the figures it compared.
//!
//! Memory is checked twice, after the churn, with no connection left:
//!
//! - **Heap in use** (glibc's `mallinfo2`: what the allocator has handed
//!   out and not had back) must be back to what it was before the first
//!   connection, + [`HEAP_MARGIN_MIB`]. This is the leak check proper: it
//!   counts live bytes, whatever the allocator keeps for reuse, so a leak
//!   of a few dozen bytes per connection shows after a CI run (the report
//!   gives the smallest one the margin lets through).
//! - **RSS**, once the allocator has given its free pages back
//!   (`malloc_trim`), must be back near the start: within
//!   [`RSS_MARGIN_MIB`] plus [`RSS_MARGIN_PERCENT`] of the warm baseline
//!   of the RSS before the first connection. The
//!   allocator keeps freed memory, and under a random mix of connections
//!   (deflate's 300 KiB contexts, 128 KiB messages) its high-water mark
//!   creeps for minutes while the heap in use stays flat: in a trial, the
//!   client's RSS went from 266 MiB at 15 s to 360 MiB at 110 s with the
//!   same connections open, and stayed at 341 MiB after the churn with
//!   0.9 MiB in use. Untrimmed RSS against a warm baseline would fail on
//!   that. Trimmed, it falls back to 20 MiB; what stays is code first run
//!   during the churn, the runtime's tables, and pages that still hold
//!   some live allocation, which grow with the peak heap: hence a fixed
//!   part and a share of the warm baseline (the highest RSS sampled 10–20 s
//!   into the churn, every kind of connection open by then).
//!
//! The report gives the untrimmed figures too.

use crate::gauges::{FD_MARGIN, QUIET_LIMIT, TASK_MARGIN};
use crate::process::Side;
use crate::run::Run;
use crate::tally::Tally;

/// The warm-up window, in seconds after the churn started.
pub(crate) const WARM_UP: (f64, f64) = (10.0, 20.0);
/// Heap in use after the churn may exceed the start by this much.
pub(crate) const HEAP_MARGIN_MIB: f64 = 4.0;
/// Trimmed RSS after the churn may exceed the start by this much…
pub(crate) const RSS_MARGIN_MIB: f64 = 16.0;
/// …plus this share of the warm baseline.
pub(crate) const RSS_MARGIN_PERCENT: f64 = 10.0;

pub(crate) struct Check {
    pub(crate) what: String,
    pub(crate) ok: bool,
    pub(crate) detail: String,
}

fn check(checks: &mut Vec<Check>, what: &str, ok: bool, detail: String) {
    checks.push(Check {
        what: what.to_owned(),
        ok,
        detail,
    });
}

/// The warm baseline of `side`, in KiB: the highest RSS in the warm-up
/// window, or during the churn if it was shorter.
pub(crate) fn warm_rss_kib(run: &Run, side: Side) -> u64 {
    let (from, to) = (WARM_UP.0, WARM_UP.1.min(run.seconds as f64));
    let window = run.window(side, from.min(to / 2.0), to);
    window.iter().map(|r| r.rss_kib).max().unwrap_or(0)
}

/// The trimmed RSS that `side` may have after the churn, in KiB.
pub(crate) fn rss_limit_kib(start: u64, warm: u64) -> u64 {
    start + (RSS_MARGIN_MIB * 1024.0 + warm as f64 * RSS_MARGIN_PERCENT / 100.0) as u64
}

/// The heap in use that `side` may have after the churn, in KiB.
pub(crate) fn heap_limit_kib(start: u64) -> u64 {
    start + (HEAP_MARGIN_MIB * 1024.0) as u64
}

pub(crate) fn checks(run: &Run) -> Vec<Check> {
    let mut out = Vec::new();
    for problem in &run.problems {
        check(&mut out, problem, false, String::new());
    }
    let (Some(c), Some(s)) = (&run.client.result, &run.server.result) else {
        check(&mut out, "both children reported", false, String::new());
        return out;
    };
    counts(&mut out, c, s);
    for side in [Side::Server, Side::Client] {
        resources(&mut out, run, side);
    }
    out
}

/// Messages, opens, ends, codes, errors.
fn counts(out: &mut Vec<Check>, c: &Tally, s: &Tally) {
    let mismatches = c.sum("mismatch.") + s.sum("mismatch.");
    check(
        out,
        "no message corrupted",
        mismatches == 0,
        format!(
            "client {}, server {}",
            c.listing("mismatch."),
            s.listing("mismatch.")
        ),
    );
    let flow = [
        c.get("msgs.sent"),
        s.get("msgs.received"),
        s.get("msgs.verified"),
        s.get("msgs.echoed"),
        c.get("msgs.received"),
        c.get("msgs.verified"),
    ];
    check(
        out,
        "no message lost",
        flow.iter().all(|&n| n == flow[0]),
        format!(
            "client sent {}, server received {}, verified {}, echoed {}; client received {}, verified {}",
            flow[0], flow[1], flow[2], flow[3], flow[4], flow[5]
        ),
    );
    check(
        out,
        "client opens = server opens, the same connections",
        c.get("opens") == s.get("opens") && c.get("hash.open") == s.get("hash.open"),
        format!("client {}, server {}", c.get("opens"), s.get("opens")),
    );
    for (name, t) in [("client", c), ("server", s)] {
        let ends = t.sum("end.");
        check(
            out,
            &format!("every {name} open has one end"),
            ends == t.get("opens"),
            format!("{} opens, {ends} ends", t.get("opens")),
        );
    }
    for (who, key) in [("client", "close.client"), ("server", "close.server")] {
        let (cc, sc) = (
            c.with_prefix(&format!("end.{key}.")),
            s.with_prefix(&format!("end.{key}.")),
        );
        let hash = format!("hash.{key}");
        check(
            out,
            &format!("the codes of the closes the {who} started agree"),
            cc == sc && c.get(&hash) == s.get(&hash),
            format!(
                "{} closes with {} codes on the client, {} with {} on the server",
                cc.values().sum::<u64>(),
                cc.len(),
                sc.values().sum::<u64>(),
                sc.len()
            ),
        );
    }
    check(
        out,
        "client drops = the server's unclean ends, the same connections",
        c.get("end.drop") == s.get("end.drop") && c.get("hash.drop") == s.get("hash.drop"),
        format!(
            "client {}, server {} ({})",
            c.get("end.drop"),
            s.get("end.drop"),
            s.listing("unclean.")
        ),
    );
    let clean = s.sum("end.close.");
    check(
        out,
        "one close frame each way per clean close, none for the others",
        s.get("wire.in.close") == clean && s.get("wire.out.close") == clean,
        format!(
            "{clean} clean closes; the server read {} close frames and wrote {}",
            s.get("wire.in.close"),
            s.get("wire.out.close")
        ),
    );
    check(
        out,
        "one data frame per message on the wire",
        s.get("wire.in.data") == s.get("msgs.received") + s.sum("end.close.server.")
            && s.get("wire.out.data") == s.get("msgs.echoed"),
        format!(
            "the server read {} data frames for {} messages and {} close requests, wrote {} for {} echoes",
            s.get("wire.in.data"),
            s.get("msgs.received"),
            s.sum("end.close.server."),
            s.get("wire.out.data"),
            s.get("msgs.echoed")
        ),
    );
    // Each side's pings, if it had keepalive on, and the other's pongs.
    let pings = [
        (c.get("opens.keepalive"), "wire.in.ping", "wire.out.pong"),
        (s.get("opens.keepalive"), "wire.out.ping", "wire.in.pong"),
    ];
    check(
        out,
        "keepalive pings went out both ways, each answered but the last of a connection",
        pings
            .iter()
            .all(|&(on, ping, pong)| on == 0 || (s.get(ping) > 0 && s.get(pong) > 0))
            && s.get("wire.unanswered.wrong") == 0,
        format!(
            "client pings {}, answered {}; server pings {}, answered {}; last unanswered on {} connection sides, other gaps on {}",
            s.get("wire.in.ping"),
            s.get("wire.out.pong"),
            s.get("wire.out.ping"),
            s.get("wire.in.pong"),
            s.get("wire.unanswered.last"),
            s.get("wire.unanswered.wrong")
        ),
    );
    check(
        out,
        "deflate agreed on both sides",
        c.get("opens.deflate") == s.get("opens.deflate"),
        format!(
            "client {}, server {}",
            c.get("opens.deflate"),
            s.get("opens.deflate")
        ),
    );
    check(
        out,
        "no error",
        c.sum("error.") + s.sum("error.") == 0,
        format!(
            "client {}, server {}",
            c.listing("error."),
            s.listing("error.")
        ),
    );
}

/// Descriptors, tasks, connections and memory of one child after the
/// churn.
fn resources(out: &mut Vec<Check>, run: &Run, side: Side) {
    let name = side.name();
    let child = run.child(side);
    let (Some(start), Some(end)) = (child.start, child.end) else {
        check(
            out,
            &format!("the {name} reported its figures"),
            false,
            String::new(),
        );
        return;
    };
    let (quiet_ms, quiet) = child.quiet.unwrap_or_default();
    check(
        out,
        &format!("the {name} came back within {} s", QUIET_LIMIT.as_secs()),
        quiet,
        format!("{:.1} s", quiet_ms as f64 / 1000.0),
    );
    check(
        out,
        &format!("the {name} has no connection left"),
        end.conns == 0,
        format!("{} open", end.conns),
    );
    check(
        out,
        &format!("the {name}'s fds back to the start (+{FD_MARGIN})"),
        end.fds <= start.fds + FD_MARGIN,
        format!("{} at the start, {} at the end", start.fds, end.fds),
    );
    check(
        out,
        &format!("the {name}'s tasks back to the start (+{TASK_MARGIN})"),
        end.tasks <= start.tasks + TASK_MARGIN,
        format!("{} at the start, {} at the end", start.tasks, end.tasks),
    );
    check(
        out,
        &format!("the {name}'s heap in use back to the start (+{HEAP_MARGIN_MIB} MiB)"),
        end.heap_kib <= heap_limit_kib(start.heap_kib),
        format!(
            "{:.1} MiB at the start, {:.1} MiB at the end",
            start.heap_kib as f64 / 1024.0,
            end.heap_kib as f64 / 1024.0
        ),
    );
    let warm = warm_rss_kib(run, side);
    let limit = rss_limit_kib(start.rss_kib, warm);
    let trimmed = child.trimmed_rss_kib.unwrap_or(u64::MAX);
    check(
        out,
        &format!("the {name}'s RSS, free pages given back, near the start"),
        trimmed <= limit,
        format!(
            "{:.1} MiB at the start, {:.1} MiB at the end, limit {:.1} MiB ({RSS_MARGIN_MIB} MiB + {RSS_MARGIN_PERCENT}% of the warm {:.1} MiB)",
            start.rss_kib as f64 / 1024.0,
            trimmed as f64 / 1024.0,
            limit as f64 / 1024.0,
            warm as f64 / 1024.0
        ),
    );
}
