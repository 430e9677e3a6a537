//! The Markdown report: the setup, the verdict with every check, the
//! connections and messages counted on each side, and the resources.

use std::fmt::Write as _;
use std::path::Path;

use crate::checks::{heap_limit_kib, rss_limit_kib, warm_rss_kib, Check, WARM_UP};
use crate::common::machine::machine_lines;
use crate::common::table::fmt_count;
use crate::gauges::Reading;
use crate::process::Side;
use crate::run::Run;
use crate::tally::Tally;

const SIDES: [Side; 2] = [Side::Client, Side::Server];

fn count(n: u64) -> String {
    fmt_count(n as f64)
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

pub(crate) fn report(run: &Run, checks: &[Check], out: &Path, written: Option<&String>) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Soak: {} connections, {} s of churn\n",
        count(run.conns),
        run.seconds
    );
    md.push_str(&machine_lines(
        "nothing pinned: both processes share every core",
        "",
    ));
    let _ = writeln!(
        md,
        "- Server and client: a process each on 127.0.0.1, each a multi-thread tokio runtime with 2 workers"
    );
    transport(&mut md, run);
    let _ = writeln!(
        md,
        "- `SOAK_SEED={}`: the same seed gives every connection the same plan",
        run.seed
    );
    let _ = writeln!(
        md,
        "- Wall time {:.0} s: the churn, {:.1} s for the last connections to end, and the waits for quiet",
        run.wall,
        run.drained_ms.unwrap_or(0) as f64 / 1000.0
    );
    let failed = checks.iter().filter(|c| !c.ok).count();
    let _ = writeln!(
        md,
        "\n## Verdict: {}\n",
        if failed == 0 {
            "pass".to_owned()
        } else {
            format!("FAIL ({failed} of {} checks)", checks.len())
        }
    );
    md.push_str("| check | | figures |\n|---|---|---|\n");
    for c in checks {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            c.what,
            if c.ok { "ok" } else { "**FAILED**" },
            c.detail
        );
    }
    if let (Some(client), Some(server)) = (&run.client.result, &run.server.result) {
        connections(&mut md, run, client, server);
        messages(&mut md, client, server);
        wire(&mut md, server);
    }
    if run.client.end.is_some() && run.server.end.is_some() {
        resources(&mut md, run);
    }
    let _ = writeln!(md);
    match written {
        None => {
            let _ = writeln!(
                md,
                "Samples (one a second per process): `{}`; plot: `{}`.",
                out.join("soak-samples.csv").display(),
                out.join("soak.svg").display()
            );
        }
        Some(e) => {
            let _ = writeln!(md, "The samples and the plot could not be written: {e}");
        }
    }
    md
}

/// The setup line of the transport: `ws`, or `wss` with the server's
/// count of full and resumed TLS handshakes.
fn transport(md: &mut String, run: &Run) {
    if !run.tls {
        let _ = writeln!(md, "- Transport: ws");
        return;
    }
    let _ = write!(
        md,
        "- Transport: wss (TLS 1.3 via rustls), ring provider; a throwaway CA and a certificate for 127.0.0.1 made for this run, the client trusting that CA alone"
    );
    if let Some(s) = &run.server.result {
        let _ = write!(
            md,
            "; the server's TLS handshakes: {} full, {} resumed",
            count(s.get("tls.full")),
            count(s.get("tls.resumed"))
        );
    }
    let _ = writeln!(md);
}

fn row(md: &mut String, what: &str, client: impl ToString, server: impl ToString) {
    let _ = writeln!(
        md,
        "| {what} | {} | {} |",
        client.to_string(),
        server.to_string()
    );
}

fn connections(md: &mut String, run: &Run, c: &Tally, s: &Tally) {
    md.push_str("\n## Connections\n\n| | client | server |\n|---|---:|---:|\n");
    row(md, "opened", count(c.get("opens")), count(s.get("opens")));
    let rate = |t: &Tally| format!("{:.0}", t.get("opens") as f64 / run.seconds.max(1) as f64);
    row(md, "… per second of churn", rate(c), rate(s));
    row(
        md,
        "with permessage-deflate",
        count(c.get("opens.deflate")),
        count(s.get("opens.deflate")),
    );
    row(
        md,
        "sending keepalive pings (that side's own)",
        count(c.get("opens.keepalive")),
        count(s.get("opens.keepalive")),
    );
    row(
        md,
        "closed cleanly, the client first",
        count(c.sum("end.close.client.")),
        count(s.sum("end.close.client.")),
    );
    row(
        md,
        "closed cleanly, the server first (asked to)",
        count(c.sum("end.close.server.")),
        count(s.sum("end.close.server.")),
    );
    row(
        md,
        "dropped without a close (server: unclean end)",
        count(c.get("end.drop")),
        count(s.get("end.drop")),
    );
    row(
        md,
        "ended in an error",
        count(c.get("end.error")),
        count(s.get("end.error")),
    );
    let codes = |t: &Tally| {
        t.with_prefix("end.close.client.").len() + t.with_prefix("end.close.server.").len()
    };
    row(md, "distinct close codes", codes(c), codes(s));
    let _ = writeln!(
        md,
        "\nThe server saw the dropped connections end as: {}.",
        s.listing("unclean.")
    );
}

fn messages(md: &mut String, c: &Tally, s: &Tally) {
    md.push_str("\n## Messages\n\n| | client | server |\n|---|---:|---:|\n");
    row(
        md,
        "sent",
        count(c.get("msgs.sent")),
        count(s.get("msgs.echoed")),
    );
    row(
        md,
        "received",
        count(c.get("msgs.received")),
        count(s.get("msgs.received")),
    );
    row(
        md,
        "checked byte for byte, right",
        count(c.get("msgs.verified")),
        count(s.get("msgs.verified")),
    );
    row(
        md,
        "wrong or out of order",
        count(c.sum("mismatch.")),
        count(s.sum("mismatch.")),
    );
    let _ = writeln!(
        md,
        "\nThe client sent {:.1} MiB of messages; the server echoed each.",
        c.get("bytes.sent") as f64 / (1024.0 * 1024.0)
    );
}

fn wire(md: &mut String, s: &Tally) {
    md.push_str(
        "\n## On the server's sockets\n\nFrames counted as they crossed the server's sockets (the API shows no control frame).\n\n| frames | from the clients | from the server |\n|---|---:|---:|\n",
    );
    for kind in ["data", "ping", "pong", "close"] {
        row(
            md,
            kind,
            count(s.get(&format!("wire.in.{kind}"))),
            count(s.get(&format!("wire.out.{kind}"))),
        );
    }
    let share = |pongs: u64, pings: u64| {
        if pings == 0 {
            "–".to_owned()
        } else {
            format!("{:.2}%", pongs as f64 * 100.0 / pings as f64)
        }
    };
    let _ = writeln!(
        md,
        "\nPings answered: {} of the clients' (keepalive every 50–400 ms on 30% of the connections), {} of the server's (every 100–500 ms on 30%). Keepalive sends a ping once the last one is answered; {} connection sides ended with their last ping unanswered (still on its way, or after the other side's close frame), {} with any other gap.",
        share(s.get("wire.out.pong"), s.get("wire.in.ping")),
        share(s.get("wire.in.pong"), s.get("wire.out.ping")),
        count(s.get("wire.unanswered.last")),
        count(s.get("wire.unanswered.wrong"))
    );
}

/// The largest of `value` over `side`'s samples during the churn.
fn peak(run: &Run, side: Side, value: impl Fn(&Reading) -> u64) -> u64 {
    let (from, to) = (
        run.churn_start.unwrap_or(0.0),
        run.churn_end.unwrap_or(f64::MAX),
    );
    run.samples_of(side)
        .filter(|s| (from..=to).contains(&s.t))
        .map(|s| value(&s.reading))
        .max()
        .unwrap_or(0)
}

/// The mean of `value` over `side`'s samples from the end of the ramp
/// (2 s) to the end of the churn.
fn mean(run: &Run, side: Side, value: impl Fn(&Reading) -> u64) -> f64 {
    let (from, to) = (
        run.churn_start.unwrap_or(0.0) + 2.0,
        run.churn_end.unwrap_or(f64::MAX),
    );
    let values: Vec<u64> = run
        .samples_of(side)
        .filter(|s| (from..=to).contains(&s.t))
        .map(|s| value(&s.reading))
        .collect();
    values.iter().sum::<u64>() as f64 / values.len().max(1) as f64
}

/// `side`'s last sample before the churn ended.
fn at_churn_end(run: &Run, side: Side) -> Option<Reading> {
    let end = run.churn_end?;
    run.samples_of(side)
        .filter(|s| s.t <= end)
        .last()
        .map(|s| s.reading)
}

fn resources(md: &mut String, run: &Run) {
    let _ = writeln!(
        md,
        "\n## Resources\n\nHeap in use is what the allocator handed out and did not get back (glibc `mallinfo2`); RSS keeps what the allocator holds for reuse until it gives its free pages back (`malloc_trim`, after the churn). The warm baseline is the highest RSS sampled {}–{} s into the churn.\n\n| | client | server |\n|---|---:|---:|",
        WARM_UP.0, WARM_UP.1
    );
    let per = |f: &dyn Fn(Side) -> String| SIDES.map(f);
    let mut line = |what: &str, cells: [String; 2]| {
        let [c, s] = cells;
        row(md, what, c, s);
    };
    let start = |side: Side| run.child(side).start.unwrap_or_default();
    let end = |side: Side| run.child(side).end.unwrap_or_default();
    let warm = |side: Side| warm_rss_kib(run, side);
    let opt_mib = |v: Option<u64>| v.map_or_else(|| "–".to_owned(), mib);
    let opens = |side: Side| {
        run.child(side)
            .result
            .as_ref()
            .map_or(0, |t| t.get("opens"))
            .max(1)
    };
    line(
        "heap in use: start / peak / after (MiB)",
        per(&|s| {
            format!(
                "{} / {} / {}",
                mib(start(s).heap_kib),
                mib(peak(run, s, |r| r.heap_kib)),
                mib(end(s).heap_kib)
            )
        }),
    );
    line(
        "heap limit after (MiB)",
        per(&|s| mib(heap_limit_kib(start(s).heap_kib))),
    );
    line(
        "smallest leak per connection the heap margin lets through (B)",
        per(&|s| {
            let margin = heap_limit_kib(start(s).heap_kib) - start(s).heap_kib;
            format!("{:.0}", margin as f64 * 1024.0 / opens(s) as f64)
        }),
    );
    line(
        "RSS before the first connection (MiB)",
        per(&|s| mib(start(s).rss_kib)),
    );
    line("RSS warm baseline (MiB)", per(&|s| mib(warm(s))));
    line(
        "RSS at the end of the churn, all open (MiB)",
        per(&|s| opt_mib(at_churn_end(run, s).map(|r| r.rss_kib))),
    );
    line(
        "RSS peak during the churn (MiB)",
        per(&|s| mib(peak(run, s, |r| r.rss_kib))),
    );
    line("RSS after the churn (MiB)", per(&|s| mib(end(s).rss_kib)));
    line(
        "RSS after the churn, free pages given back (MiB)",
        per(&|s| opt_mib(run.child(s).trimmed_rss_kib)),
    );
    line(
        "RSS limit for that (MiB)",
        per(&|s| mib(rss_limit_kib(start(s).rss_kib, warm(s)))),
    );
    line(
        "fds: start / peak / after",
        per(&|s| {
            format!(
                "{} / {} / {}",
                start(s).fds,
                peak(run, s, |r| r.fds),
                end(s).fds
            )
        }),
    );
    line(
        "tokio tasks: start / peak / after",
        per(&|s| {
            format!(
                "{} / {} / {}",
                start(s).tasks,
                peak(run, s, |r| r.tasks),
                end(s).tasks
            )
        }),
    );
    line(
        "open connections: mean during the churn / peak / after",
        per(&|s| {
            format!(
                "{:.0} / {} / {}",
                mean(run, s, |r| r.conns),
                peak(run, s, |r| r.conns),
                end(s).conns
            )
        }),
    );
    line(
        "time to come back after its connections ended (s)",
        per(&|s| {
            run.child(s).quiet.map_or_else(
                || "–".to_owned(),
                |(ms, _)| format!("{:.1}", ms as f64 / 1000.0),
            )
        }),
    );
}
