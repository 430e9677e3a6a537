//! Measuring on a shared machine: a timed run during which other
//! processes took CPU time is run again once the machine is quiet.

use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::os_limits::machine_busy;

/// Other processes' CPU use over a timed run, in % of one core, above
/// which the measurement is disturbed.
pub(super) const DISTURBED: f64 = 10.0;
/// Runs of a measurement at most, the least disturbed one kept (quick
/// mode runs each once).
pub(super) const ATTEMPTS: usize = 3;
/// The window in which the machine must be quiet.
const WINDOW: Duration = Duration::from_millis(200);
/// How long to wait for a quiet window at most.
const PATIENCE: Duration = Duration::from_secs(10);

/// Whether other processes took more than [`DISTURBED`] of a run of
/// `wall`, allowing for the resolution of `/proc/stat` (a tick of 10 ms,
/// which may be missed at either end, per CPU).
pub(super) fn disturbed(others: Duration, wall: Duration) -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    others > wall.mul_f64(DISTURBED / 100.0) + Duration::from_millis(10) * cpus
}

/// Waits (at most [`PATIENCE`]) until the machine, on which nothing of
/// ours runs meanwhile, is busy less than [`DISTURBED`] over a
/// [`WINDOW`].
pub(super) fn wait_for_quiet() {
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        let before = machine_busy();
        sleep(WINDOW);
        let busy = machine_busy().saturating_sub(before);
        if busy.as_secs_f64() * 100.0 / WINDOW.as_secs_f64() < DISTURBED {
            return;
        }
    }
}
