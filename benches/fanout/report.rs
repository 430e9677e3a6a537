//! The Markdown report: the main tables, the slow-consumer table, the
//! targets and the setup.

use std::fmt::Write as _;

use crate::cases::{
    Case, Design, COLUMNS, DESIGNS, FIRST_PEER, MAX_BUFFERED, SLOW_CAPACITY, SLOW_ROWS,
    SLOW_SNDBUF, SLOW_TICK,
};
use crate::common::machine::{machine_lines, version_lines};
use crate::common::table::{fmt_count, fmt_small, median};
use crate::measure::{Pins, Sample};
use crate::parent::Results;

/// wsstream `Broadcast`'s CPU per delivered message over the best peer's
/// at 10,000 connections.
const CPU_TARGET: f64 = 0.5;

/// The median of `value` over the samples of `design` on case `c` in
/// which every fast connection got every message (`None`: none did).
fn figure(
    results: &Results,
    cases: &[Case],
    c: usize,
    design: usize,
    value: impl Fn(&Sample) -> f64,
) -> Option<f64> {
    let samples = results.get(&(c, design))?;
    median(
        samples
            .iter()
            .filter(|s| s.complete(&cases[c]))
            .map(value)
            .collect(),
    )
}

/// The main cases that ran (all but with `FANOUT_ONLY`).
fn main_cases<'a>(
    cases: &'a [Case],
    results: &'a Results,
) -> impl Iterator<Item = (usize, &'a Case)> {
    cases
        .iter()
        .enumerate()
        .filter(|(c, case)| case.slow == 0 && results.keys().any(|(rc, _)| rc == c))
}

/// wsstream `Broadcast`'s figure over the lowest peer's.
fn ratio(values: &[Option<f64>]) -> Option<f64> {
    let best = values[FIRST_PEER..]
        .iter()
        .flatten()
        .copied()
        .reduce(f64::min)?;
    Some(values[0]? / best)
}

fn fmt_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "–".to_owned(), |r| format!("{r:.2}×"))
}

fn cell(value: Option<f64>) -> String {
    value.map_or_else(|| "failed".to_owned(), fmt_small)
}

/// A row per main case, a column per design, and the ratio.
fn main_table(cases: &[Case], results: &Results, value: impl Fn(&Sample, &Case) -> f64) -> String {
    let names: Vec<&str> = COLUMNS.iter().map(|&d| DESIGNS[d].name()).collect();
    let mut out = format!(
        "| case | {} | wsstream Broadcast ÷ best peer |\n",
        names.join(" | ")
    );
    let _ = writeln!(out, "|---{}|---:|", "|---:".repeat(COLUMNS.len()));
    for (c, case) in main_cases(cases, results) {
        let values: Vec<Option<f64>> = COLUMNS
            .iter()
            .map(|&d| figure(results, cases, c, d, |s| value(s, case)))
            .collect();
        let cells: Vec<String> = values.iter().map(|&v| cell(v)).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            case.name,
            cells.join(" | "),
            fmt_ratio(ratio(&values))
        );
    }
    out
}

/// Peak RSS with its growth during the broadcast in each cell.
fn rss_table(cases: &[Case], results: &Results) -> String {
    let names: Vec<&str> = COLUMNS.iter().map(|&d| DESIGNS[d].name()).collect();
    let mut out = format!("| case | {} |\n", names.join(" | "));
    let _ = writeln!(out, "|---{}|", "|---:".repeat(COLUMNS.len()));
    for (c, case) in main_cases(cases, results) {
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|&d| {
                let peak = figure(results, cases, c, d, Sample::peak_rss_mib);
                let growth = figure(results, cases, c, d, Sample::growth_mib);
                match (peak, growth) {
                    (Some(peak), Some(growth)) => {
                        format!("{} (+{})", fmt_small(peak), fmt_small(growth))
                    }
                    _ => "failed".to_owned(),
                }
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", case.name, cells.join(" | "));
    }
    out
}

/// The bound on what slow members may hold under `Broadcast`, in MiB.
fn slow_bound_mib(case: &Case) -> f64 {
    (case.slow * MAX_BUFFERED) as f64 / (1024.0 * 1024.0)
}

/// What became of each slow-consumer run, a row per design.
fn slow_table(cases: &[Case], results: &Results) -> Option<String> {
    let (c, case) = cases.iter().enumerate().find(|(_, case)| case.slow > 0)?;
    let mut out = String::from(
        "| server | fast connections got every message (rounds) | server RSS before (MiB) | growth during the broadcast (MiB) | bound | dropped | closed | server CPU µs per delivered message | wall ms per message |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for &d in &SLOW_ROWS {
        let samples = results.get(&(c, d)).map_or(&[][..], Vec::as_slice);
        let all = |value: fn(&Sample) -> f64| median(samples.iter().map(value).collect());
        let complete = samples.iter().filter(|s| s.complete(case)).count();
        let missed: u64 = samples.iter().map(Sample::missed).sum();
        let closed: u64 = samples.iter().map(Sample::closed).sum();
        let got = if complete == samples.len() && !samples.is_empty() {
            format!("yes ({complete}/{})", samples.len())
        } else {
            format!(
                "no ({complete}/{}; {missed} missed, {closed} closed)",
                samples.len()
            )
        };
        let broadcast = matches!(DESIGNS[d], Design::Broadcast(_));
        let sent = |name: &'static str| {
            let value = median(
                samples
                    .iter()
                    .filter_map(|s| s.sent_field(name))
                    .map(|v| v as f64)
                    .collect(),
            );
            match value {
                Some(v) if broadcast => fmt_count(v),
                _ => "–".to_owned(),
            }
        };
        let bound = if broadcast {
            format!(
                "{} ({} × {} KiB)",
                fmt_small(slow_bound_mib(case)),
                case.slow,
                MAX_BUFFERED / 1024
            )
        } else {
            "–".to_owned()
        };
        let _ = writeln!(
            out,
            "| {} | {got} | {} | {} | {bound} | {} | {} | {} | {} |",
            DESIGNS[d].name(),
            cell(all(Sample::rss_before_mib)),
            cell(all(Sample::growth_mib)),
            sent("dropped"),
            sent("closed"),
            cell(all(Sample::cpu_us_per_message)),
            cell(median(
                samples
                    .iter()
                    .map(|s| s.wall_ms_per_broadcast(case))
                    .collect()
            )),
        );
    }
    Some(out)
}

fn met(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "no"
    }
}

/// The targets against this run.
fn targets(cases: &[Case], results: &Results) -> String {
    let mut out = String::from("| target | this run | met |\n|---|---|---|\n");
    // Only the cases that ran (`FANOUT_ONLY` runs one).
    let ran = |c: usize| results.keys().any(|&(rc, _)| rc == c);
    for (c, case) in cases
        .iter()
        .enumerate()
        .filter(|&(c, case)| case.slow == 0 && case.conns >= 10_000 && ran(c))
    {
        let values: Vec<Option<f64>> = COLUMNS
            .iter()
            .map(|&d| figure(results, cases, c, d, Sample::cpu_us_per_message))
            .collect();
        let r = ratio(&values);
        let _ = writeln!(
            out,
            "| {}: wsstream Broadcast's server CPU per delivered message ≤ {CPU_TARGET}× the best peer's | {} | {} |",
            case.name,
            fmt_ratio(r),
            met(r.is_some_and(|r| r <= CPU_TARGET)),
        );
    }
    if let Some((c, case)) = cases
        .iter()
        .enumerate()
        .find(|&(c, case)| case.slow > 0 && ran(c))
    {
        for &d in SLOW_ROWS
            .iter()
            .filter(|&&d| matches!(DESIGNS[d], Design::Broadcast(_)))
        {
            let samples = results.get(&(c, d)).map_or(&[][..], Vec::as_slice);
            let complete = !samples.is_empty() && samples.iter().all(|s| s.complete(case));
            let growth = median(samples.iter().map(Sample::growth_mib).collect());
            let bound = slow_bound_mib(case);
            let _ = writeln!(
                out,
                "| slow consumer, {}: the fast connections get every message, and the server's RSS grows by at most {} MiB | {}, +{} MiB | {} |",
                DESIGNS[d].name(),
                fmt_small(bound),
                if complete { "every message" } else { "messages lost" },
                growth.map_or_else(|| "–".to_owned(), fmt_small),
                met(complete && growth.is_some_and(|g| g <= bound)),
            );
        }
    }
    out
}

/// How each server is written.
fn designs() -> String {
    format!(
        "- Every server: one current-thread runtime, `TCP_NODELAY`, library defaults otherwise; a \
         task per connection that reads (and drops) what the client sends\n\
         - wsstream Broadcast: `Broadcast::new({max} KiB, Backpressure::Wait)` (slow consumer: `Drop`, and \
         `Close(CloseCode::TRY_AGAIN_LATER)`), `send_batch` of the whole burst, `send(message).await` per \
         paced message\n\
         - The others: a tokio broadcast channel with room for the whole burst (capacity ≥ count; \
         {SLOW_CAPACITY} in the slow-consumer case), and in each connection's task a `select!` over \
         `recv()` and the connection's reading. wsstream task per connection: a channel of \
         `PreparedMessage`s, `poll_ready` + `start_send_prepared` per message and one flush once the \
         channel is empty (10× less CPU than `send_prepared` per message at 10,000 × 128 B). \
         tokio-tungstenite and tokio-websockets: `feed` per message, `flush` once the channel is empty. \
         fastwebsockets: split halves on the same task (its `read_frame` is not cancel-safe, so it is \
         one future pinned across the loop), `write_frame` into a 64 KiB `Batch` writer as in \
         benches/compare/, flushed once the channel is empty\n\
         - Slow consumer: the producer sends a message every {tick} ms, and the server's sockets have \
         `SO_SNDBUF` {sndbuf} KiB (Linux doubles it), so that a client that stops reading fills the \
         kernel's buffers after ~270 KiB rather than ~4 MiB\n",
        max = MAX_BUFFERED / 1024,
        tick = SLOW_TICK.as_millis(),
        sndbuf = SLOW_SNDBUF / 1024,
    )
}

/// The machine, the toolchain, the crate versions, the designs and the
/// cases.
fn setup(cases: &[Case], pins: Pins) -> String {
    let mut out = String::from("\n### Setup\n\n");
    out += &machine_lines(
        &format!(
            "server on CPU {}, client on CPU {}",
            pins.server, pins.client
        ),
        "",
    );
    out += &version_lines(&[
        "tokio-tungstenite",
        "fastwebsockets",
        "tokio-websockets",
        "tungstenite",
        "tokio",
    ]);
    out += &designs();
    out += "\n| case | connections | of which never read | message | messages per broadcast run | deliveries per measurement |\n\
            |---|---:|---:|---:|---:|---:|\n";
    for case in cases {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} B | {} | {} |",
            case.name,
            fmt_count(case.conns as f64),
            case.slow,
            fmt_count(case.size as f64),
            fmt_count(case.count as f64),
            fmt_count(case.deliveries() as f64),
        );
    }
    out
}

pub(super) fn report(cases: &[Case], results: &Results, rounds: usize, pins: Pins) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Server CPU time per delivered message in µs, user + system (median of {rounds} rounds; lower is better)\n"
    );
    out += &main_table(cases, results, |s, _| s.cpu_us_per_message());
    out += "\n### Wall time per broadcast message in ms, from the first send to the client's last byte (informative)\n\n";
    out += &main_table(cases, results, Sample::wall_ms_per_broadcast);
    out += "\n### Server peak RSS in MiB, the whole process (in brackets: its growth during the broadcast)\n\n";
    out += &rss_table(cases, results);
    if let Some(slow) = slow_table(cases, results) {
        out += "\n### Slow consumer: 10 of the client's connections never read\n\n";
        out += &slow;
    }
    out += "\n### The targets in this run\n\n";
    out += &targets(cases, results);
    out += &setup(cases, pins);
    out
}
