//! What the process-per-measurement benches (`compare`, `http2`, `server`)
//! share of the operating system: the runtime, the environment, CPU
//! pinning, and the rusage and `/proc` figures each child reports.

use std::time::Duration;
use std::{env, fs, io};

pub(crate) fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

pub(crate) fn env_string(name: &str) -> String {
    env::var(name).unwrap_or_else(|_| panic!("{name} must be set"))
}

pub(crate) fn env_usize(name: &str) -> usize {
    env_string(name)
        .parse()
        .unwrap_or_else(|_| panic!("{name} must be a number"))
}

/// An optional numeric environment variable: the benches' round and case
/// choices (`SERVER_ROUNDS`, `FANOUT_ONLY`, ...).
#[allow(dead_code)] // compare and http2 take no such option
pub(crate) fn env_number(name: &str) -> Option<usize> {
    env::var(name).ok()?.parse().ok()
}

/// Whether `name` is set to something other than empty or `0` (the quick
/// modes).
pub(crate) fn env_flag(name: &str) -> bool {
    env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Pins this process (its only thread so far) to one CPU.
#[allow(unsafe_code)]
pub(crate) fn pin_to_cpu(cpu: usize) {
    // SAFETY: `cpu_set_t` is a plain bit mask, for which all zeroes is the
    // empty set; `CPU_SET` sets a bit within it (it checks the index), and
    // `sched_setaffinity` reads exactly `size_of::<cpu_set_t>()` bytes from
    // the valid reference it is given.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(rc, 0, "sched_setaffinity: {}", io::Error::last_os_error());
}

/// User plus system CPU time of this process, every thread included.
#[allow(dead_code)] // compare and server split it with `cpu_times`
pub(crate) fn cpu_time() -> Duration {
    let (user, system) = cpu_times();
    user + system
}

/// This process's CPU time in user space and in the kernel, every thread
/// included (`getrusage`; the kernel splits its exact total between the
/// two by where its ticks found the process).
#[allow(unsafe_code)]
pub(crate) fn cpu_times() -> (Duration, Duration) {
    // SAFETY: `rusage` is plain integers, so all zeroes is a valid value;
    // `getrusage` writes into the valid reference it is given.
    let (rc, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let rc = libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        (rc, usage)
    };
    assert_eq!(rc, 0, "getrusage: {}", io::Error::last_os_error());
    let micros =
        |t: libc::timeval| Duration::from_micros(t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64);
    (micros(usage.ru_utime), micros(usage.ru_stime))
}

/// `VmHWM`: this process's peak resident set size, in KiB.
pub(crate) fn peak_rss_kib() -> u64 {
    status_field("VmHWM")
        .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The CPU everything runs on: the one the environment variable `var`
/// names, else the last one this process may use.
pub(crate) fn chosen_cpu(var: &str) -> usize {
    if let Some(cpu) = env::var(var).ok().and_then(|v| v.parse().ok()) {
        return cpu;
    }
    status_field("Cpus_allowed_list")
        .unwrap_or_default()
        .split(',')
        .filter_map(|range| range.rsplit('-').next()?.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

/// A field of `/proc/self/status`, its value trimmed.
pub(crate) fn status_field(name: &str) -> Option<String> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}
