//! What each child measures of itself: RSS, open file descriptors, the
//! tokio tasks alive and its open connections; a line of them every
//! second; and, once the churn is over, the wait until they are back.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use crate::os_limits::rss_kib;

/// File descriptors a process may hold after the churn beyond those it
/// held before its first connection (a listener's or the runtime's
/// lazily opened ones).
pub(crate) const FD_MARGIN: u64 = 16;
/// Tasks likewise.
pub(crate) const TASK_MARGIN: u64 = 4;
/// How long a child waits at most, once its connections are done, for
/// its figures to come back.
pub(crate) const QUIET_LIMIT: Duration = Duration::from_secs(30);
/// How often a child prints its figures.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// The connections this process has open (handshake done, end not yet
/// counted).
pub(crate) static OPEN: AtomicU64 = AtomicU64::new(0);

/// Counts a connection in [`OPEN`] while it lives.
pub(crate) struct OpenGuard;

impl OpenGuard {
    pub(crate) fn new() -> Self {
        OPEN.fetch_add(1, Ordering::Relaxed);
        Self
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The figures at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reading {
    pub(crate) rss_kib: u64,
    /// What the allocator has handed out and not had back.
    pub(crate) heap_kib: u64,
    pub(crate) fds: u64,
    pub(crate) tasks: u64,
    pub(crate) conns: u64,
}

impl Reading {
    pub(crate) fn now(runtime: &Handle) -> Self {
        Self {
            rss_kib: rss_kib(),
            heap_kib: heap_kib(),
            fds: open_fds(),
            tasks: runtime.metrics().num_alive_tasks() as u64,
            conns: OPEN.load(Ordering::Relaxed),
        }
    }

    /// `rss_kib=… heap_kib=… fds=… tasks=… conns=…`.
    pub(crate) fn fields(&self) -> String {
        format!(
            "rss_kib={} heap_kib={} fds={} tasks={} conns={}",
            self.rss_kib, self.heap_kib, self.fds, self.tasks, self.conns
        )
    }

    /// Whether the connections are gone and the descriptors and tasks
    /// back within their margins of `start`.
    pub(crate) fn back_to(&self, start: &Self) -> bool {
        self.conns == 0
            && self.fds <= start.fds + FD_MARGIN
            && self.tasks <= start.tasks + TASK_MARGIN
    }
}

/// The entries of `/proc/self/fd`, less the one that reading it opens.
fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as u64 - 1)
}

/// The memory glibc's allocator has handed out and not had back (in use
/// in its arenas, and chunks it mapped on their own), in KiB: what the
/// program holds, whatever the allocator keeps for reuse. 0 elsewhere.
#[allow(unsafe_code)]
fn heap_kib() -> u64 {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: `mallinfo2` takes no argument and returns a plain
        // struct of counters.
        let info = unsafe { libc::mallinfo2() };
        ((info.uordblks + info.hblkhd) / 1024) as u64
    }
    #[cfg(not(target_env = "gnu"))]
    0
}

/// Hands the allocator's free pages back to the OS (`malloc_trim`), so
/// that RSS shows what is still in use rather than what was once.
#[allow(unsafe_code)]
pub(crate) fn trim() {
    // SAFETY: `malloc_trim` takes a size and only returns free memory.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Prints a line to stdout at once (the parent reads it as it comes).
pub(crate) fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Prints `SAMPLE <fields>` every second, from a thread of its own so
/// that a busy runtime delays no sample, until the process ends.
pub(crate) fn start_sampling(runtime: Handle) {
    std::thread::spawn(move || loop {
        say(&format!("SAMPLE {}", Reading::now(&runtime).fields()));
        std::thread::sleep(SAMPLE_EVERY);
    });
}

/// Waits, at most [`QUIET_LIMIT`], until the figures are back to
/// `start`; returns the last reading, how long it took, and whether they
/// came back.
pub(crate) async fn wait_for_quiet(start: Reading) -> (Reading, Duration, bool) {
    let began = Instant::now();
    let runtime = Handle::current();
    loop {
        let reading = Reading::now(&runtime);
        if reading.back_to(&start) {
            return (reading, began.elapsed(), true);
        }
        if began.elapsed() >= QUIET_LIMIT {
            return (reading, began.elapsed(), false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
