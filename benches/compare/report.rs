//! The parent process: runs every measurement and prints the Markdown
//! tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::client::Sample;
use crate::common::machine::{machine_lines, version_lines};
use crate::common::os::chosen_cpu;
use crate::common::table::{fmt_count, fmt_small, median};
use crate::libraries::LIBRARIES;
use crate::process::{run_child, Server};
use crate::server::masking_self_test;
use crate::workloads::{quick, workloads, Shape, Workload};

const ROUNDS: usize = 7;

type Results = BTreeMap<(usize, usize), Vec<Sample>>;

/// The parent: server, self-test, every measurement, the tables.
pub(super) fn run_parent() {
    let quick = quick();
    let rounds = if quick { 1 } else { ROUNDS };
    let cpu = chosen_cpu("COMPARE_CPU");
    let server = Server::start(cpu);
    masking_self_test(server.addr);
    let workloads = workloads(quick);
    let mut results = Results::new();
    for (w, workload) in workloads.iter().enumerate() {
        for round in 0..rounds {
            for i in 0..LIBRARIES.len() {
                let library = (i + round) % LIBRARIES.len();
                let Some(sample) = run_child(&server, cpu, library, w) else {
                    continue;
                };
                eprintln!(
                    "{} | round {}/{rounds} | {:<17} {:>12.0} msgs/s {:>8.3} µs CPU/msg",
                    workload.name,
                    round + 1,
                    LIBRARIES[library],
                    sample.rate(),
                    sample.cpu_us_per_message(),
                );
                results.entry((w, library)).or_default().push(sample);
            }
        }
    }
    drop(server);
    print!("{}", report(&workloads, &results, rounds, cpu));
}

/// One table: a row per workload, a column per library, and wsstream's
/// figure over the best peer's (`higher_is_better` picks which is best).
fn table(
    title: &str,
    rows: &[(String, Vec<Option<f64>>)],
    format: fn(f64) -> String,
    higher_is_better: bool,
) -> String {
    let mut out = format!(
        "| {title} | {} | wsstream ÷ best peer |\n",
        LIBRARIES.join(" | ")
    );
    out.push_str(&format!("|---{}|---|\n", "|---:".repeat(LIBRARIES.len())));
    for (name, values) in rows {
        let cells: Vec<String> = values
            .iter()
            .map(|v| v.map_or_else(|| "failed".to_owned(), format))
            .collect();
        let ratio = ratio_to_best(values, higher_is_better)
            .map_or_else(|| "–".to_owned(), |r| format!("{r:.2}×"));
        let _ = writeln!(out, "| {name} | {} | {ratio} |", cells.join(" | "));
    }
    out
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

/// Peak RSS wsstream may reach at 1000 connections (the target).
const RSS_TARGET_MIB: f64 = 8.0;

/// The targets against this run: msgs/s over the best peer's at
/// or above the workload's target, client CPU below every peer's, and at
/// 1000 connections a peak RSS of at most 8 MiB.
fn targets(
    workloads: &[Workload],
    rates: &[(String, Vec<Option<f64>>)],
    cpus: &[(String, Vec<Option<f64>>)],
    rss: &[(String, Vec<Option<f64>>)],
) -> String {
    let mut out = String::from(
        "| workload | msgs/s ÷ best peer (target) | CPU ÷ lowest peer (target: below 1) | peak RSS (target) | met |\n|---|---|---|---|---|\n",
    );
    for (i, workload) in workloads.iter().enumerate() {
        let rate = ratio_to_best(&rates[i].1, true);
        let cpu = ratio_to_best(&cpus[i].1, false);
        let rate_met = rate.is_some_and(|r| r >= workload.rate_target);
        let cpu_met = cpu.is_some_and(|r| r < 1.0);
        let (rss_cell, rss_met) = match workload.shape {
            Shape::Connections { .. } => {
                let ours = rss[i].1[0];
                let cell = ours.map_or_else(
                    || "–".to_owned(),
                    |mib| format!("{mib:.2} MiB (≤ {RSS_TARGET_MIB} MiB)"),
                );
                (cell, ours.is_some_and(|mib| mib <= RSS_TARGET_MIB))
            }
            _ => ("–".to_owned(), true),
        };
        let show = |r: Option<f64>| r.map_or_else(|| "–".to_owned(), |r| format!("{r:.2}×"));
        let mut missed = Vec::new();
        if !rate_met {
            missed.push("msgs/s");
        }
        if !cpu_met {
            missed.push("CPU");
        }
        if !rss_met {
            missed.push("RSS");
        }
        let met = if missed.is_empty() {
            "yes".to_owned()
        } else {
            format!("no: {}", missed.join(", "))
        };
        let _ = writeln!(
            out,
            "| {} | {} ({:.2}×) | {} | {rss_cell} | {met} |",
            workload.name,
            show(rate),
            workload.rate_target,
            show(cpu),
        );
    }
    out
}

fn rows(
    workloads: &[Workload],
    results: &Results,
    only: impl Fn(&Workload) -> bool,
    value: impl Fn(&Sample) -> Option<f64>,
) -> Vec<(String, Vec<Option<f64>>)> {
    workloads
        .iter()
        .enumerate()
        .filter(|(_, w)| only(w))
        .map(|(w, workload)| {
            let values = (0..LIBRARIES.len())
                .map(|lib| {
                    let samples = results.get(&(w, lib))?;
                    median(samples.iter().filter_map(&value).collect())
                })
                .collect();
            (workload.name.to_owned(), values)
        })
        .collect()
}

fn report(workloads: &[Workload], results: &Results, rounds: usize, cpu: usize) -> String {
    let all = |_: &Workload| true;
    let rates = rows(workloads, results, all, |s| Some(s.rate()));
    let cpus = rows(workloads, results, all, |s| Some(s.cpu_us_per_message()));
    let users = rows(workloads, results, all, |s| Some(s.user_us_per_message()));
    let rss = rows(workloads, results, all, |s| Some(s.rss_kib as f64 / 1024.0));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Messages per second (median of {rounds} rounds; higher is better)\n"
    );
    out += &table("workload", &rates, fmt_count, true);
    let latency = rows(
        workloads,
        results,
        |w| matches!(w.shape, Shape::RoundTrip { .. }),
        |s| s.p50.map(|p| p.as_secs_f64() * 1e6),
    );
    let _ = writeln!(
        out,
        "\n### Round-trip latency, p50 in µs (lower is better)\n"
    );
    out += &table("workload", &latency, fmt_small, false);
    let _ = writeln!(
        out,
        "\n### Client CPU time per message in µs, user + system (lower is better)\n"
    );
    out += &table("workload", &cpus, fmt_small, false);
    let _ = writeln!(
        out,
        "\n### The user-space part of it in µs: the library, the runtime and libc; the rest is the kernel's (lower is better)\n"
    );
    out += &table("workload", &users, fmt_small, false);
    let _ = writeln!(
        out,
        "\n### Client peak RSS in MiB, above the process's own at start (lower is better)\n"
    );
    out += &table("workload", &rss, fmt_small, false);
    let _ = writeln!(out, "\n### The issue's targets in this run\n");
    out += &targets(workloads, &rates, &cpus, &rss);
    out += &machine(cpu);
    out
}

/// The machine, the toolchain and the exact crate versions.
fn machine(cpu: usize) -> String {
    let mut out = String::from("\n### Setup\n\n");
    out += &machine_lines(&format!("server and clients pinned to CPU {cpu}"), "");
    out += &version_lines(&[&LIBRARIES[1..], &["tungstenite", "tokio"]].concat());
    out
}
