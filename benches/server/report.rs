//! The report: the Markdown tables, the targets and the setup.

use std::fmt::Write as _;

use crate::common::machine::{machine_lines, version_lines};
use crate::common::table::{fmt_count, fmt_small, median};
use crate::parent::{Pins, Results, Timing};
use crate::process::Sample;
use crate::quiet::{disturbed, DISTURBED};
use crate::workloads::{Flavour, Workload, CORE, LIBRARIES};

/// wsstream's msgs/s over the best peer's on each load_test workload.
const RATE_TARGET_SINGLE: f64 = 1.10;
const RATE_TARGET_MULTI: f64 = 1.0;
/// The most server RSS wsstream may spend on an idle connection.
const IDLE_RSS_TARGET_KIB: f64 = 3.0;
/// The server CPU use, in % of the timed run's wall time, below which the
/// load generator may be what limits the fastest server.
const BUSY_FLOOR: f64 = 90.0;

/// A table row: its name and a median per library (`None`: failed or not
/// run).
type Row = (String, Vec<Option<f64>>);

/// The workloads measured on `flavour` in this run (all of them unless
/// `SERVER_ONLY` picked one), with their indices.
fn measured<'a>(
    workloads: &'a [Workload],
    results: &'a Results,
    flavour: Flavour,
) -> impl Iterator<Item = (usize, &'a Workload)> {
    workloads.iter().enumerate().filter(move |(w, workload)| {
        workload.flavours().contains(&flavour)
            && (0..LIBRARIES.len()).any(|lib| results.contains_key(&(*w, flavour, lib)))
    })
}

/// A row per workload measured on `flavour`: the median of `value` over
/// the rounds, per library.
fn rows(
    workloads: &[Workload],
    results: &Results,
    flavour: Flavour,
    value: impl Fn(&Workload, &Sample) -> f64,
) -> Vec<Row> {
    measured(workloads, results, flavour)
        .map(|(w, workload)| {
            let values = (0..LIBRARIES.len())
                .map(|lib| median_of(results, (w, flavour, lib), workload, &value))
                .collect();
            (workload.name.to_owned(), values)
        })
        .collect()
}

/// wsstream's figure (the first) over the best peer's.
fn ratio_to_best(values: &[Option<f64>], higher_is_better: bool) -> Option<f64> {
    let peers = values[1..].iter().flatten().copied();
    let best = if higher_is_better {
        peers.reduce(f64::max)
    } else {
        peers.reduce(f64::min)
    };
    match (values[0], best) {
        (Some(ours), Some(best)) if best > 0.0 => Some(ours / best),
        _ => None,
    }
}

fn fmt_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "–".to_owned(), |r| format!("{r:.2}×"))
}

/// A column per library, and wsstream's figure over the best peer's
/// (`higher_is_better` picks which is best) when `compare` is set.
fn table(title: &str, rows: &[Row], format: fn(f64) -> String, compare: Option<bool>) -> String {
    let ratio_head = if compare.is_some() {
        " wsstream ÷ best peer |"
    } else {
        ""
    };
    let ratio_rule = if compare.is_some() { "---|" } else { "" };
    let mut out = format!("| {title} | {} |{ratio_head}\n", LIBRARIES.join(" | "));
    let _ = writeln!(out, "|---{}|{ratio_rule}", "|---:".repeat(LIBRARIES.len()));
    for (name, values) in rows {
        let cells: Vec<String> = values
            .iter()
            .map(|v| v.map_or_else(|| "failed".to_owned(), format))
            .collect();
        let ratio = compare.map_or_else(String::new, |higher| {
            format!(" {} |", fmt_ratio(ratio_to_best(values, higher)))
        });
        let _ = writeln!(out, "| {name} | {} |{ratio}", cells.join(" | "));
    }
    out
}

/// "Single-thread runtime", "Multi-thread runtime".
fn runtime_heading(flavour: Flavour) -> String {
    let name = flavour.name();
    format!("{}{} runtime", name[..1].to_uppercase(), &name[1..])
}

fn fmt_percent(value: f64) -> String {
    format!("{value:.0}%")
}

/// The tables of one runtime.
fn flavour_tables(
    workloads: &[Workload],
    results: &Results,
    flavour: Flavour,
    rounds: usize,
    pins: Pins,
) -> String {
    let mut out = String::new();
    let placement = match flavour {
        Flavour::Current => format!(
            "the server pinned to CPU {}, the load generator to CPU {}",
            pins.server, pins.load
        ),
        Flavour::Multi => {
            "a worker thread per core, nothing pinned: the load generator shares the cores"
                .to_owned()
        }
    };
    let _ = writeln!(out, "### {} ({placement})\n", runtime_heading(flavour));
    let _ = writeln!(
        out,
        "#### Messages per second (median of {rounds} rounds; higher is better)\n"
    );
    let rates = rows(workloads, results, flavour, |_, s| s.rate());
    out += &table("workload", &rates, fmt_count, Some(true));
    let _ = writeln!(
        out,
        "\n#### Server CPU time per message in µs, user + system (lower is better)\n"
    );
    let cpus = rows(workloads, results, flavour, |_, s| s.cpu_us_per_message());
    out += &table("workload", &cpus, fmt_small, Some(false));
    let _ = writeln!(
        out,
        "\n#### The user-space part of it in µs: the library, the runtime and libc; the rest is \
         the kernel's (lower is better)\n"
    );
    let user = rows(workloads, results, flavour, |_, s| s.user_us_per_message());
    out += &table("workload", &user, fmt_small, Some(false));
    let _ = writeln!(
        out,
        "\n#### Server peak RSS in MiB, the whole process (lower is better)\n"
    );
    let rss = rows(workloads, results, flavour, |_, s| s.peak_rss_mib());
    out += &table("workload", &rss, fmt_small, Some(false));
    let _ = writeln!(
        out,
        "\n#### Server CPU use over the timed run, % of one core\n"
    );
    let busy = rows(workloads, results, flavour, |_, s| s.server_busy());
    out += &table("workload", &busy, fmt_percent, None);
    out.push('\n');
    out
}

/// RSS per idle connection: a row per runtime the idle workload ran on.
fn idle_table(workloads: &[Workload], results: &Results) -> Option<(String, Vec<Row>)> {
    let workload = workloads.iter().find(|w| w.has_idle())?;
    let per_conn = |w: &Workload, s: &Sample| s.rss_per_connection_kib(w.conns);
    let rows: Vec<Row> = workload
        .flavours()
        .iter()
        .flat_map(|&flavour| {
            rows(workloads, results, flavour, per_conn)
                .into_iter()
                .filter(|(name, _)| name == workload.name)
                .map(move |(_, values)| (flavour.name().to_owned(), values))
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    let mut out = format!(
        "### Server RSS per idle connection in KiB (lower is better)\n\n\
         The server's VmRSS with all {} connections open, warmed and settled, less its VmRSS \
         before the first, over {}.\n\n",
        fmt_count(workload.conns as f64),
        fmt_count(workload.conns as f64),
    );
    out += &table("runtime", &rows, fmt_small, Some(false));
    Some((out, rows))
}

/// The median of `value` over one library's rounds.
fn median_of(
    results: &Results,
    key: (usize, Flavour, usize),
    workload: &Workload,
    value: &impl Fn(&Workload, &Sample) -> f64,
) -> Option<f64> {
    let samples = results.get(&key)?;
    median(samples.iter().map(|s| value(workload, s)).collect())
}

/// wsstream's sans-io core driven by hand (`SERVER_CORE=1`) beside
/// wsstream's `WebSocketStream` server and the best peer: what the
/// `Stream`/`Sink` layer and the shared state cost. `None` when the core
/// was not measured.
fn core_tables(workloads: &[Workload], results: &Results) -> Option<String> {
    let mut out = String::from(
        "### wsstream's sans-io core alone (informative)\n\n\
         `SERVER_CORE=1`: the same echo written on `proto::Connection` in each connection's \
         task (benches/server/core_echo.rs), without the `Stream`/`Sink` layer and the state \
         the readable, the writable and `closed` share. Not a peer: the targets above compare \
         the `WebSocketStream` server.\n\n",
    );
    let mut any = false;
    for flavour in Flavour::ALL {
        let rows: Vec<String> = workloads
            .iter()
            .enumerate()
            .filter(|(w, _)| results.contains_key(&(*w, flavour, CORE)))
            .map(|(w, workload)| core_row(results, w, workload, flavour))
            .collect();
        if rows.is_empty() {
            continue;
        }
        any = true;
        let _ = writeln!(
            out,
            "#### {}\n\n\
             | workload | msgs/s: wsstream | core | best peer | core ÷ best peer \
             | CPU µs/msg: wsstream | core | lowest peer | core ÷ lowest peer \
             | user-space µs: wsstream | core |\n\
             |---|---:|---:|---:|---|---:|---:|---:|---|---:|---:|",
            runtime_heading(flavour)
        );
        for row in rows {
            out += &row;
        }
        out.push('\n');
    }
    any.then_some(out)
}

fn core_row(results: &Results, w: usize, workload: &Workload, flavour: Flavour) -> String {
    let of = |lib, value: fn(&Workload, &Sample) -> f64| {
        median_of(results, (w, flavour, lib), workload, &value)
    };
    let rate: fn(&Workload, &Sample) -> f64 = |_, s| s.rate();
    let cpu: fn(&Workload, &Sample) -> f64 = |_, s| s.cpu_us_per_message();
    let user: fn(&Workload, &Sample) -> f64 = |_, s| s.user_us_per_message();
    let peers = |value, higher: bool| {
        let all = (1..LIBRARIES.len()).filter_map(|lib| of(lib, value));
        if higher {
            all.reduce(f64::max)
        } else {
            all.reduce(f64::min)
        }
    };
    let (best_rate, lowest_cpu) = (peers(rate, true), peers(cpu, false));
    let cell = |v: Option<f64>, format: fn(f64) -> String| v.map_or_else(|| "–".to_owned(), format);
    let ratio = |ours: Option<f64>, theirs: Option<f64>| match (ours, theirs) {
        (Some(a), Some(b)) if b > 0.0 => fmt_ratio(Some(a / b)),
        _ => fmt_ratio(None),
    };
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
        workload.name,
        cell(of(0, rate), fmt_count),
        cell(of(CORE, rate), fmt_count),
        cell(best_rate, fmt_count),
        ratio(of(CORE, rate), best_rate),
        cell(of(0, cpu), fmt_small),
        cell(of(CORE, cpu), fmt_small),
        cell(lowest_cpu, fmt_small),
        ratio(of(CORE, cpu), lowest_cpu),
        cell(of(0, user), fmt_small),
        cell(of(CORE, user), fmt_small),
    )
}

/// Whether the fastest single-thread server kept its core busy: if not,
/// the load generator may be what limits it.
fn load_check(workloads: &[Workload], results: &Results) -> String {
    let mut out = format!(
        "### Is the load generator the bottleneck?\n\n\
         On the single-thread runtime, the fastest library's server should use at least \
         {BUSY_FLOOR:.0}% of its core over the timed run; less would mean it waited for the load \
         generator.\n\n\
         | workload | fastest (single-thread) | its server's CPU use | load generator's CPU use | ≥ {BUSY_FLOOR:.0}% |\n\
         |---|---|---:|---:|---|\n"
    );
    let flavour = Flavour::Current;
    let rates = rows(workloads, results, flavour, |_, s| s.rate());
    let busy = rows(workloads, results, flavour, |_, s| s.server_busy());
    let load = rows(workloads, results, flavour, |_, s| s.load_busy());
    for (i, (name, values)) in rates.iter().enumerate() {
        let fastest = values
            .iter()
            .enumerate()
            .filter_map(|(lib, v)| Some((lib, (*v)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((lib, _)) = fastest else { continue };
        let (Some(server), Some(load)) = (busy[i].1[lib], load[i].1[lib]) else {
            continue;
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {server:.0}% | {load:.0}% | {} |",
            LIBRARIES[lib],
            if server >= BUSY_FLOOR { "yes" } else { "no" },
        );
    }
    out.push('\n');
    out
}

/// The targets against this run.
fn targets(workloads: &[Workload], results: &Results, idle: Option<&[Row]>) -> String {
    let mut out = String::from(
        "### The targets in this run\n\n\
         | workload | runtime | msgs/s ÷ best peer (target) | server CPU/msg ÷ lowest peer (target: below 1) | met |\n\
         |---|---|---|---|---|\n",
    );
    for flavour in Flavour::ALL {
        let rates = rows(workloads, results, flavour, |_, s| s.rate());
        let cpus = rows(workloads, results, flavour, |_, s| s.cpu_us_per_message());
        let run = measured(workloads, results, flavour).map(|(_, w)| w);
        for ((workload, (_, rate)), (_, cpu)) in run.zip(&rates).zip(&cpus) {
            let rate = ratio_to_best(rate, true);
            let cpu = ratio_to_best(cpu, false);
            let target = match flavour {
                Flavour::Current => RATE_TARGET_SINGLE,
                Flavour::Multi => RATE_TARGET_MULTI,
            };
            let mut missed = Vec::new();
            let rate_cell = if workload.has_idle() {
                format!("{} (none)", fmt_ratio(rate))
            } else {
                if !rate.is_some_and(|r| r >= target) {
                    missed.push("msgs/s");
                }
                format!("{} ({target:.2}×)", fmt_ratio(rate))
            };
            if !cpu.is_some_and(|r| r < 1.0) {
                missed.push("CPU");
            }
            let _ = writeln!(
                out,
                "| {} | {} | {rate_cell} | {} | {} |",
                workload.name,
                flavour.name(),
                fmt_ratio(cpu),
                met(&missed),
            );
        }
    }
    if let Some(idle) = idle {
        out += "\n| runtime | wsstream's RSS per idle connection (target) | met |\n|---|---|---|\n";
        for (runtime, values) in idle {
            let ours = values[0];
            let _ = writeln!(
                out,
                "| {runtime} | {} KiB (≤ {IDLE_RSS_TARGET_KIB} KiB) | {} |",
                ours.map_or_else(|| "–".to_owned(), fmt_small),
                if ours.is_some_and(|kib| kib <= IDLE_RSS_TARGET_KIB) {
                    "yes"
                } else {
                    "no"
                },
            );
        }
    }
    out
}

fn met(missed: &[&str]) -> String {
    if missed.is_empty() {
        "yes".to_owned()
    } else {
        format!("no: {}", missed.join(", "))
    }
}

/// Every table, the targets and the setup, for `rounds` rounds of
/// `results`.
pub(super) fn report(
    workloads: &[Workload],
    results: &Results,
    rounds: usize,
    pins: Pins,
    timing: Timing,
) -> String {
    let mut out = String::new();
    for flavour in Flavour::ALL {
        out += &flavour_tables(workloads, results, flavour, rounds, pins);
    }
    let idle = idle_table(workloads, results);
    if let Some((table, _)) = &idle {
        out += table;
        out.push('\n');
    }
    out += &load_check(workloads, results);
    out += &targets(workloads, results, idle.as_ref().map(|(_, rows)| &rows[..]));
    if let Some(core) = core_tables(workloads, results) {
        out.push('\n');
        out += &core;
    }
    out += &setup(workloads, pins, results, timing);
    out
}

/// Setup items: how much other processes took of the machine during the
/// runs kept, the runs made again, and how long it all took.
fn disturbance(results: &Results, timing: Timing) -> String {
    let samples: Vec<&Sample> = results.values().flatten().collect();
    let others: Vec<f64> = samples.iter().map(|s| s.others_busy()).collect();
    let worst = others.iter().copied().fold(0.0, f64::max);
    let over = samples
        .iter()
        .filter(|s| disturbed(s.others(), s.wall))
        .count();
    let minutes = |d: std::time::Duration| {
        let secs = d.as_secs();
        format!("{} min {:02} s", secs / 60, secs % 60)
    };
    format!(
        "- Other processes' CPU use during the {} timed runs kept (the machine's busy time in \
         /proc/stat less the server's and the load generator's): median {:.0}%, at most {worst:.0}% \
         of a core; {} of the runs kept are over {DISTURBED:.0}%\n\
         - The whole run took {}, of which {} went to {} runs made again (and the waits for a quiet \
         machine before them) because other processes took more than {DISTURBED:.0}% of a core\n",
        others.len(),
        median(others.clone()).unwrap_or(0.0),
        over,
        minutes(timing.total),
        minutes(timing.rerun_time),
        timing.reruns,
    )
}

/// The machine, the toolchain, the crate versions and the workloads.
fn setup(workloads: &[Workload], pins: Pins, results: &Results, timing: Timing) -> String {
    let mut out = String::from("\n### Setup\n\n");
    out += &machine_lines(
        &format!(
            "single-thread runs: server on CPU {}, load generator on CPU {}; multi-thread runs: \
             nothing pinned",
            pins.server, pins.load
        ),
        "",
    );
    out += &version_lines(&[&LIBRARIES[1..], &["tungstenite", "tokio"]].concat());
    out += &disturbance(results, timing);
    out += "\n| workload | connections | active | message | in flight per active connection | messages per measurement | runtimes |\n\
            |---|---:|---:|---:|---:|---:|---|\n";
    for w in workloads {
        let runtimes: Vec<&str> = w.flavours().iter().map(|f| f.name()).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} B | {} | {} | {} |",
            w.name,
            fmt_count(w.conns as f64),
            fmt_count(w.active as f64),
            fmt_count(w.size as f64),
            w.in_flight,
            fmt_count(w.total() as f64),
            runtimes.join(", "),
        );
    }
    out
}
