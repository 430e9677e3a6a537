//! Process glue: runtimes, CPU pinning, rusage and /proc figures, and the
//! server and client child processes.

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;
use std::{env, fs};

use crate::client::Sample;
use crate::libraries::LIBRARIES;

pub(super) fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

pub(super) fn env_usize(name: &str) -> usize {
    env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} must be set to a number"))
}

/// Pins this process (its only thread so far) to one CPU.
#[allow(unsafe_code)]
pub(super) fn pin_to_cpu(cpu: usize) {
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

/// User plus system CPU time of this process.
#[allow(unsafe_code)]
pub(super) fn cpu_time() -> Duration {
    // SAFETY: `rusage` is plain integers, so all zeroes is a valid value;
    // `getrusage` writes into the valid reference it is given.
    let (rc, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let rc = libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        (rc, usage)
    };
    assert_eq!(rc, 0, "getrusage: {}", io::Error::last_os_error());
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// `VmHWM`: the peak resident set size of this process, in KiB.
pub(super) fn peak_rss_kib() -> u64 {
    status_field("VmHWM")
        .and_then(|v| v.trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn status_field(name: &str) -> Option<String> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// The CPU everything runs on: `COMPARE_CPU`, else the last one this
/// process may use.
pub(super) fn chosen_cpu() -> usize {
    if let Some(cpu) = env::var("COMPARE_CPU").ok().and_then(|v| v.parse().ok()) {
        return cpu;
    }
    let allowed = status_field("Cpus_allowed_list").unwrap_or_default();
    allowed
        .split(',')
        .filter_map(|range| range.rsplit('-').next()?.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

/// The echo server child; it exits when `stdin` is dropped.
pub(super) struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    pub(super) addr: SocketAddr,
}

impl Server {
    pub(super) fn start(cpu: usize) -> Self {
        let mut child = Command::new(env::current_exe().expect("current_exe"))
            .env("COMPARE_ROLE", "server")
            .env("COMPARE_CPU", cpu.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the echo server");
        let stdin = child.stdin.take();
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("server port");
        let port: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .expect("PORT line");
        Self {
            child,
            stdin,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Runs one measurement in a fresh child process.
pub(super) fn run_child(
    server: &Server,
    cpu: usize,
    library: usize,
    workload: usize,
) -> Option<Sample> {
    let mut command = Command::new(env::current_exe().expect("current_exe"));
    command
        .env("COMPARE_ROLE", "client")
        .env("COMPARE_CPU", cpu.to_string())
        .env("COMPARE_LIBRARY", library.to_string())
        .env("COMPARE_WORKLOAD", workload.to_string())
        .env("COMPARE_ADDR", server.addr.to_string())
        .stdin(Stdio::null());
    let output = command.output().expect("run a client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let sample = stdout.lines().find_map(Sample::from_line);
    if !output.status.success() || sample.is_none() {
        eprintln!(
            "{} failed ({}):\n{}",
            LIBRARIES[library],
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    sample.filter(|_| output.status.success())
}
