//! The parent process: runs every measurement, round after round, and
//! prints the report.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::os::{chosen_cpu, env_number};
use crate::os_limits::allowed_cpus;
use crate::process::{measure, Sample, Server};
use crate::quiet::{disturbed, wait_for_quiet, ATTEMPTS};
use crate::report::report;
use crate::workloads::{library_count, library_name, quick, workloads, Flavour, Workload};

const ROUNDS: usize = 5;

/// The samples of each (workload, runtime, library).
pub(super) type Results = BTreeMap<(usize, Flavour, usize), Vec<Sample>>;

/// What the run took, and what measuring on a shared machine added to it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Timing {
    /// Runs made again because other processes disturbed them.
    pub(super) reruns: usize,
    /// The time those took, waits for a quiet machine included.
    pub(super) rerun_time: Duration,
    /// The whole run, from the first measurement to the last.
    pub(super) total: Duration,
}

/// Where the single-thread runs pin the server and the load generator.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pins {
    pub(super) server: usize,
    pub(super) load: usize,
}

impl Pins {
    /// The server on the CPU `SERVER_CPU` names, else on the last one
    /// allowed; the load generator on the first other one allowed.
    fn choose() -> Self {
        let server = chosen_cpu("SERVER_CPU");
        let load = allowed_cpus()
            .into_iter()
            .find(|&cpu| cpu != server)
            .unwrap_or(server);
        if server == load {
            eprintln!("server: one CPU only; the server and the load generator share it");
        }
        Self { server, load }
    }

    fn of(self, flavour: Flavour) -> (Option<usize>, Option<usize>) {
        match flavour {
            Flavour::Current => (Some(self.server), Some(self.load)),
            Flavour::Multi => (None, None),
        }
    }
}

/// The parent: every measurement in a fresh server process, then the
/// tables.
pub(super) fn run_parent() {
    let quick = quick();
    let rounds = env_number("SERVER_ROUNDS").unwrap_or(if quick { 1 } else { ROUNDS });
    let only = env_number("SERVER_ONLY");
    let pins = Pins::choose();
    let workloads = workloads(quick);
    let libraries = library_count();
    let mut results = Results::new();
    let mut timing = Timing::default();
    let start = Instant::now();
    for (w, workload) in workloads.iter().enumerate() {
        if only.is_some_and(|o| o != w) {
            continue;
        }
        for &flavour in workload.flavours() {
            for round in 0..rounds {
                for i in 0..libraries {
                    let library = (i + round) % libraries;
                    let sample = measure_quietly(library, flavour, w, pins, &mut timing);
                    let Some(sample) = sample else {
                        eprintln!("{} | {} failed", workload.name, library_name(library));
                        continue;
                    };
                    progress(workload, flavour, round, rounds, library, &sample);
                    results
                        .entry((w, flavour, library))
                        .or_default()
                        .push(sample);
                }
            }
        }
    }
    timing.total = start.elapsed();
    print!("{}", report(&workloads, &results, rounds, pins, timing));
}

/// One measurement in a fresh server process, run again (up to
/// [`ATTEMPTS`] runs, counted in `timing`; once in quick mode) while other
/// processes disturb it; the least disturbed run is kept. `None` if it
/// failed.
fn measure_quietly(
    library: usize,
    flavour: Flavour,
    workload: usize,
    pins: Pins,
    timing: &mut Timing,
) -> Option<Sample> {
    let (server_pin, load_pin) = pins.of(flavour);
    let attempts = if quick() { 1 } else { ATTEMPTS };
    let mut kept: Option<Sample> = None;
    for attempt in 0..attempts {
        let start = Instant::now();
        if attempt > 0 {
            wait_for_quiet();
        }
        let mut server = Server::start(library, flavour, server_pin);
        let sample = measure(&mut server, workload, load_pin);
        drop(server);
        if attempt > 0 {
            timing.reruns += 1;
            timing.rerun_time += start.elapsed();
        }
        let sample = sample?;
        let others = sample.others_busy();
        if kept.is_none_or(|k| others < k.others_busy()) {
            kept = Some(sample);
        }
        if !disturbed(sample.others(), sample.wall) {
            break;
        }
        eprintln!(
            "{}: other processes took {others:.0}% of a core during the run{}",
            library_name(library),
            if attempt + 1 < attempts {
                "; again once the machine is quiet"
            } else {
                ""
            }
        );
    }
    kept
}

fn progress(
    workload: &Workload,
    flavour: Flavour,
    round: usize,
    rounds: usize,
    library: usize,
    sample: &Sample,
) {
    let idle = if workload.has_idle() {
        format!(
            " {:>6.2} KiB RSS/conn",
            sample.rss_per_connection_kib(workload.conns)
        )
    } else {
        String::new()
    };
    eprintln!(
        "{} | {} | round {}/{rounds} | {:<17} {:>10.0} msgs/s {:>7.3} µs CPU/msg, server {:>3.0}% load {:>3.0}% others {:>3.0}% CPU{idle}",
        workload.name,
        flavour.name(),
        round + 1,
        library_name(library),
        sample.rate(),
        sample.cpu_us_per_message(),
        sample.server_busy(),
        sample.load_busy(),
        sample.others_busy(),
    );
}
