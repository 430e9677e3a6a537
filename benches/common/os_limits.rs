//! What the many-connection server bench needs of the OS beyond `os.rs`:
//! a higher file-descriptor limit, the current RSS, the CPUs it may pin
//! to, and the machine's busy time. Included on its own (`#[path = "../common/os_limits.rs"]`) by
//! the benches that use it, so that the others carry no dead code; it
//! needs `common` included as `crate::common`.

use std::time::Duration;
use std::{fs, io};

use crate::common::os::status_field;

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (ten
/// thousand sockets need more than the usual 1024).
#[allow(unsafe_code)]
pub(crate) fn raise_fd_limit() -> u64 {
    // SAFETY: `rlimit` is two integers, so all zeroes is a valid value;
    // `getrlimit` writes into, and `setrlimit` reads from, the valid
    // reference each is given.
    let (rc, limit) = unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        let rc = libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        if rc == 0 {
            limit.rlim_cur = limit.rlim_max;
            (libc::setrlimit(libc::RLIMIT_NOFILE, &limit), limit)
        } else {
            (rc, limit)
        }
    };
    assert_eq!(rc, 0, "RLIMIT_NOFILE: {}", io::Error::last_os_error());
    limit.rlim_cur
}

/// `VmRSS`: this process's resident set size now, in KiB.
pub(crate) fn rss_kib() -> u64 {
    status_field("VmRSS")
        .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The CPUs this process may run on (`Cpus_allowed_list`, ranges
/// expanded), in increasing order.
pub(crate) fn allowed_cpus() -> Vec<usize> {
    let list = status_field("Cpus_allowed_list").unwrap_or_default();
    let mut cpus = Vec::new();
    for range in list.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        if let (Ok(first), Ok(last)) = (first.parse::<usize>(), last.parse::<usize>()) {
            cpus.extend(first..=last);
        }
    }
    cpus
}

/// CPU time the whole machine has spent busy since boot, every CPU and
/// process together (`/proc/stat`: user, nice, system, irq, softirq and
/// steal), to tell what other processes took during a measurement.
#[allow(unsafe_code)]
pub(crate) fn machine_busy() -> Duration {
    // SAFETY: `sysconf` only reads a configuration value.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum();
    Duration::from_nanos(busy * 1_000_000_000 / ticks_per_second)
}
