//! The parent process: every measurement, round after round, and the
//! Markdown tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::common::machine::{machine_lines, version_lines};
use crate::common::os::chosen_cpu;
use crate::common::table::{fmt_count, fmt_small, median};
use crate::process::{run_client_child, ClientRun, Server, CPU};
use crate::workloads::{quick, workloads, Http, Shape, Workload};

const ROUNDS: usize = 11;

/// One measurement, as the tables use it.
#[derive(Debug, Clone, Default)]
struct Sample {
    messages: f64,
    wall: Duration,
    client_cpu: Duration,
    server_cpu: Duration,
    client_rss_kib: f64,
    server_rss_kib: f64,
    client_fds: f64,
    server_fds: f64,
    connections: f64,
    kernel_bytes: Option<f64>,
    open_wall: Option<Duration>,
    open_cpu: Option<Duration>,
    p50: Option<Duration>,
    p99: Option<Duration>,
}

impl Sample {
    fn from_run(run: &ClientRun) -> Option<Self> {
        let field = |name: &str| run.result.get(name).copied();
        let nanos = |name: &str| field(name).map(Duration::from_nanos);
        Some(Self {
            messages: field("messages")? as f64,
            wall: nanos("wall_ns")?,
            client_cpu: nanos("cpu_ns")?,
            server_cpu: run.server_after.cpu.saturating_sub(run.server_before.cpu),
            client_rss_kib: field("rss_kib")? as f64,
            server_rss_kib: run.server_after.rss_kib as f64,
            client_fds: field("fds")? as f64,
            server_fds: run.server_before.fds as f64,
            connections: run.server_before.connections as f64,
            kernel_bytes: field("kernel_bytes").map(|b| b as f64),
            open_wall: nanos("open_wall_ns"),
            open_cpu: nanos("open_cpu_ns"),
            p50: nanos("p50_ns"),
            p99: nanos("p99_ns"),
        })
    }

    fn rate(&self) -> f64 {
        self.messages / self.wall.as_secs_f64()
    }

    fn per_message_us(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / self.messages
    }
}

type Results = BTreeMap<(usize, Http), Vec<Sample>>;

/// The parent: every workload over both HTTP versions, round after round.
pub(super) fn run_parent() {
    let quick = quick();
    let rounds = if quick { 1 } else { ROUNDS };
    let cpu = chosen_cpu(CPU);
    let workloads = workloads(quick);
    let started = Instant::now();
    let mut results = Results::new();
    let mut failures = Vec::new();
    for round in 0..rounds {
        for (w, workload) in workloads.iter().enumerate() {
            for i in 0..Http::BOTH.len() {
                let http = Http::BOTH[(i + round) % Http::BOTH.len()];
                let mut server = Server::start(cpu, http);
                let run = run_client_child(&mut server, cpu, http, w);
                drop(server);
                let Some(sample) = run.as_ref().and_then(Sample::from_run) else {
                    failures.push(format!(
                        "round {}: {} over {}",
                        round + 1,
                        workload.name,
                        http.name()
                    ));
                    continue;
                };
                eprintln!(
                    "round {}/{rounds} | {:<42} | {:<8} | {:>9.0} msgs/s | client {:>6.2} µs CPU/msg | server {:>6.2} µs CPU/msg | {:>5} fds",
                    round + 1,
                    workload.name,
                    http.name(),
                    sample.rate(),
                    sample.per_message_us(sample.client_cpu),
                    sample.per_message_us(sample.server_cpu),
                    sample.client_fds,
                );
                results.entry((w, http)).or_default().push(sample);
            }
        }
    }
    eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
    print!("{}", report(&workloads, &results, rounds, cpu, &failures));
}

/// A row of a table: what it shows and how.
struct Metric {
    label: &'static str,
    value: fn(&Sample) -> Option<f64>,
    format: fn(f64) -> String,
}

fn metrics() -> Vec<Metric> {
    vec![
        Metric {
            label: "messages per second (higher is better)",
            value: |s| Some(s.rate()),
            format: fmt_count,
        },
        Metric {
            label: "round trip p50, µs",
            value: |s| s.p50.map(us),
            format: fmt_small,
        },
        Metric {
            label: "round trip p99, µs",
            value: |s| s.p99.map(us),
            format: fmt_small,
        },
        Metric {
            label: "client CPU per message, µs (user + sys)",
            value: |s| Some(s.per_message_us(s.client_cpu)),
            format: fmt_small,
        },
        Metric {
            label: "server CPU per message, µs (user + sys)",
            value: |s| Some(s.per_message_us(s.server_cpu)),
            format: fmt_small,
        },
        Metric {
            label: "client peak RSS, MiB (above its start)",
            value: |s| Some(mib(s.client_rss_kib)),
            format: fmt_small,
        },
        Metric {
            label: "server peak RSS, MiB (above its start)",
            value: |s| Some(mib(s.server_rss_kib)),
            format: fmt_small,
        },
        Metric {
            label: "client open fds, all open",
            value: |s| Some(s.client_fds),
            format: fmt_count,
        },
        Metric {
            label: "server open fds, all open",
            value: |s| Some(s.server_fds),
            format: fmt_count,
        },
        Metric {
            label: "TCP connections the server accepted",
            value: |s| Some(s.connections),
            format: fmt_count,
        },
        Metric {
            label: "kernel socket memory, both ends, MiB (estimate)",
            value: |s| s.kernel_bytes.map(|b| b / (1024.0 * 1024.0)),
            format: fmt_estimate,
        },
        Metric {
            label: "opening them all (100 at a time), ms wall",
            value: |s| s.open_wall.map(ms),
            format: fmt_small,
        },
        Metric {
            label: "opening them all, client CPU ms",
            value: |s| s.open_cpu.map(ms),
            format: fmt_small,
        },
    ]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

/// A table per workload: a row per figure, a column per HTTP version, and
/// HTTP/2 ÷ HTTP/1.1.
fn workload_table(w: usize, results: &Results) -> String {
    let mut out = format!(
        "| | {} | {} | HTTP/2 ÷ HTTP/1.1 |\n|---|---:|---:|---:|\n",
        Http::H1.name(),
        Http::H2.name()
    );
    for metric in metrics() {
        let value = |http: Http| {
            let samples = results.get(&(w, http))?;
            median(samples.iter().filter_map(metric.value).collect())
        };
        let (h1, h2) = (value(Http::H1), value(Http::H2));
        if h1.is_none() && h2.is_none() {
            continue;
        }
        let cell = |v: Option<f64>| v.map_or_else(|| "failed".to_owned(), metric.format);
        let ratio = match (h1, h2) {
            (Some(h1), Some(h2)) if h1 > 0.0 => format!("{:.2}×", h2 / h1),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {ratio} |",
            metric.label,
            cell(h1),
            cell(h2)
        );
    }
    out
}

fn report(
    workloads: &[Workload],
    results: &Results,
    rounds: usize,
    cpu: usize,
    failures: &[String],
) -> String {
    let mut out = String::new();
    for (w, workload) in workloads.iter().enumerate() {
        let samples = Http::BOTH
            .iter()
            .map(|http| results.get(&(w, *http)).map_or(0, Vec::len))
            .min()
            .unwrap_or(0);
        let what = match workload.shape {
            Shape::Many { sockets, trips } => format!(
                "{sockets} WebSockets open at once, each doing {trips} round trips of {} one after another on a task of its own",
                fmt_size(workload.size)
            ),
            Shape::RoundTrip { count } => format!(
                "one WebSocket, {count} round trips of {} one at a time",
                fmt_size(workload.size)
            ),
        };
        let _ = writeln!(
            out,
            "### {} (median of {samples} of {rounds} rounds)\n\n{what}.\n",
            workload.name
        );
        out += &workload_table(w, results);
        out.push('\n');
    }
    if !failures.is_empty() {
        out += "### Failed measurements\n\n";
        for failure in failures {
            let _ = writeln!(out, "- {failure}");
        }
        out.push('\n');
    }
    out += &setup(cpu);
    out
}

fn fmt_size(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// An estimate: below 0.05 (a few sockets' worth, within the noise) is
/// shown as about zero.
fn fmt_estimate(value: f64) -> String {
    if value < 0.05 {
        "≈ 0".to_owned()
    } else {
        fmt_small(value)
    }
}

/// The machine, the toolchain, the server's settings and the versions.
fn setup(cpu: usize) -> String {
    let mut out = String::from("### Setup\n\n");
    out += &machine_lines(
        &format!("server and client pinned to CPU {cpu}, a fresh process each per measurement"),
        ", client and server; hyper server on a current-thread runtime",
    );
    let _ = writeln!(
        out,
        "- HTTP/2 server: initial_stream_window_size 256 KiB, initial_connection_window_size 16 MiB, max_concurrent_streams {}, enable_connect_protocol",
        match std::env::var("HTTP2_BENCH_MAX_STREAMS").as_deref() {
            Ok("default") => "hyper's default (200)".to_owned(),
            Ok(n) => n.to_owned(),
            Err(_) => "1000".to_owned(),
        }
    );
    out += &version_lines(&["h2", "hyper", "hyper-util", "tokio"]);
    out
}
