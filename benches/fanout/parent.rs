//! The parent process: every measurement, in rounds, then the report.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::cases::{cases, quick, COLUMNS, DESIGNS, SLOW_ROWS};
use crate::common::os::env_number;
use crate::common::table::fmt_small;
use crate::measure::{measure, Pins, Sample};
use crate::os_limits::allowed_cpus;
use crate::report::report;

const ROUNDS: usize = 5;

/// The samples of each (case, design).
pub(super) type Results = BTreeMap<(usize, usize), Vec<Sample>>;

pub(super) fn run_parent() {
    let quick = quick();
    let rounds = env_number("FANOUT_ROUNDS").unwrap_or(if quick { 1 } else { ROUNDS });
    let only = env_number("FANOUT_ONLY");
    let cpus = allowed_cpus();
    let pins = Pins {
        server: cpus.first().copied().unwrap_or(0),
        client: cpus.last().copied().unwrap_or(0),
    };
    let cases = cases(quick);
    let start = Instant::now();
    let mut results = Results::new();
    for (c, case) in cases.iter().enumerate() {
        if only.is_some_and(|o| o != c) {
            continue;
        }
        let designs: &[usize] = if case.slow > 0 { &SLOW_ROWS } else { &COLUMNS };
        for round in 0..rounds {
            for i in 0..designs.len() {
                let design = designs[(i + round) % designs.len()];
                let Some(sample) = measure(design, c, case, pins) else {
                    eprintln!("{} | {} failed", case.name, DESIGNS[design].name());
                    continue;
                };
                eprintln!(
                    "{} | round {}/{rounds} | {:<31} {:>7} µs CPU/msg {:>8} ms/broadcast {:>6} MiB peak (+{}){} [{:.0} s]",
                    case.name,
                    round + 1,
                    DESIGNS[design].name(),
                    fmt_small(sample.cpu_us_per_message()),
                    fmt_small(sample.wall_ms_per_broadcast(case)),
                    fmt_small(sample.peak_rss_mib()),
                    fmt_small(sample.growth_mib()),
                    if sample.complete(case) {
                        String::new()
                    } else {
                        format!(
                            " INCOMPLETE: {} of {} messages, {} missed, {} closed",
                            sample.delivered(),
                            case.deliveries(),
                            sample.missed(),
                            sample.closed()
                        )
                    },
                    start.elapsed().as_secs_f64(),
                );
                results.entry((c, design)).or_default().push(sample);
            }
        }
    }
    print!("{}", report(&cases, &results, rounds, pins));
    eprintln!("fanout: done in {:.0} s", start.elapsed().as_secs_f64());
}
