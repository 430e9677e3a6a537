//! Process glue: the environment variables, and the server and load
//! generator children as the parent drives them.

use std::collections::BTreeMap;
use std::env;
use std::io::{BufRead, BufReader, Lines, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use crate::os_limits::machine_busy;
use crate::workloads::{library_name, Flavour};

/// `server`, `load`, or unset for the parent.
pub(super) const ROLE: &str = "SERVER_ROLE";
/// The server's library: an index into `LIBRARIES`, or `CORE`.
pub(super) const LIBRARY: &str = "SERVER_LIBRARY";
/// The server's runtime: `current` or `multi`.
pub(super) const FLAVOUR: &str = "SERVER_FLAVOUR";
/// The CPU a child pins itself to; unset, it runs anywhere.
pub(super) const PIN: &str = "SERVER_PIN";
/// The load generator's workload: an index into `workloads()`.
pub(super) const WORKLOAD: &str = "SERVER_WORKLOAD";
/// The server's address, for the load generator.
pub(super) const ADDR: &str = "SERVER_ADDR";

/// `KEY k=v k=v ...` with numeric values.
fn parse_fields(line: &str, key: &str) -> Option<BTreeMap<String, u64>> {
    line.strip_prefix(key)?
        .split_whitespace()
        .map(|field| {
            let (k, v) = field.split_once('=')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// What the server reported at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ServerStats {
    /// User + system CPU time so far, every thread.
    pub(super) cpu: Duration,
    /// The part of `cpu` spent in user space: the library's own code, the
    /// runtime's and libc's; the rest is the kernel's (system calls, TCP).
    pub(super) user: Duration,
    pub(super) rss_kib: u64,
    pub(super) hwm_kib: u64,
}

/// One echo server child; it exits when its stdin closes.
pub(super) struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    pub(super) addr: SocketAddr,
}

impl Server {
    pub(super) fn start(library: usize, flavour: Flavour, pin: Option<usize>) -> Self {
        let mut command = Command::new(env::current_exe().expect("current_exe"));
        command
            .env(ROLE, "server")
            .env(LIBRARY, library.to_string())
            .env(FLAVOUR, flavour.env_value())
            .env_remove(PIN)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if let Some(cpu) = pin {
            command.env(PIN, cpu.to_string());
        }
        let mut child = command.spawn().expect("start the server");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let line = stdout.next().expect("server's first line").expect("read");
        let port: u16 = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("{} server said {line:?}, not PORT", library_name(library)));
        Self {
            child,
            stdin,
            stdout,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// Asks the server for its figures now; `None` if it has died.
    pub(super) fn stats(&mut self) -> Option<ServerStats> {
        let stdin = self.stdin.as_mut()?;
        writeln!(stdin, "STATS").ok()?;
        stdin.flush().ok()?;
        let line = self.stdout.next()?.ok()?;
        let fields = parse_fields(&line, "STATS ")?;
        Some(ServerStats {
            cpu: Duration::from_nanos(*fields.get("cpu_ns")?),
            user: Duration::from_nanos(*fields.get("user_ns")?),
            rss_kib: *fields.get("rss_kib")?,
            hwm_kib: *fields.get("hwm_kib")?,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// One measurement: the server's figures before the first connection,
/// with every connection open and warmed (just before the timed run), and
/// after it; and what the load generator measured.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    pub(super) messages: u64,
    pub(super) wall: Duration,
    /// The load generator's CPU time over the timed run.
    pub(super) load_cpu: Duration,
    pub(super) empty: ServerStats,
    pub(super) ready: ServerStats,
    pub(super) after: ServerStats,
    /// The whole machine's busy CPU time over the timed run.
    pub(super) machine: Duration,
}

impl Sample {
    pub(super) fn rate(&self) -> f64 {
        self.messages as f64 / self.wall.as_secs_f64()
    }

    /// The server's CPU time over the timed run.
    pub(super) fn server_cpu(&self) -> Duration {
        self.after.cpu.saturating_sub(self.ready.cpu)
    }

    pub(super) fn cpu_us_per_message(&self) -> f64 {
        self.server_cpu().as_secs_f64() * 1e6 / self.messages as f64
    }

    /// The user-space part of [`cpu_us_per_message`](Self::cpu_us_per_message).
    pub(super) fn user_us_per_message(&self) -> f64 {
        let user = self.after.user.saturating_sub(self.ready.user);
        user.as_secs_f64() * 1e6 / self.messages as f64
    }

    /// The server's CPU time over the wall time of the run, in % of one
    /// core.
    pub(super) fn server_busy(&self) -> f64 {
        self.server_cpu().as_secs_f64() * 100.0 / self.wall.as_secs_f64()
    }

    /// The load generator's, likewise.
    pub(super) fn load_busy(&self) -> f64 {
        self.load_cpu.as_secs_f64() * 100.0 / self.wall.as_secs_f64()
    }

    /// What the rest of the machine (other processes, the hypervisor's
    /// steal) took over the run.
    pub(super) fn others(&self) -> Duration {
        self.machine
            .saturating_sub(self.server_cpu() + self.load_cpu)
    }

    /// That, in % of one core.
    pub(super) fn others_busy(&self) -> f64 {
        self.others().as_secs_f64() * 100.0 / self.wall.as_secs_f64()
    }

    pub(super) fn peak_rss_mib(&self) -> f64 {
        self.after.hwm_kib as f64 / 1024.0
    }

    /// The server's RSS growth from no connection to all open and
    /// settled, per connection, in KiB.
    pub(super) fn rss_per_connection_kib(&self, conns: usize) -> f64 {
        self.ready.rss_kib.saturating_sub(self.empty.rss_kib) as f64 / conns as f64
    }
}

/// Runs the load generator for `workload` against `server`, which has no
/// connection yet: reads the server's figures before it starts, at its
/// `READY` and after its `RESULT`. `None` (with the reason on stderr) when
/// it failed.
pub(super) fn measure(server: &mut Server, workload: usize, pin: Option<usize>) -> Option<Sample> {
    let Some(empty) = server.stats() else {
        eprintln!("the server died before the load generator started");
        return None;
    };
    let mut command = Command::new(env::current_exe().expect("current_exe"));
    command
        .env(ROLE, "load")
        .env(WORKLOAD, workload.to_string())
        .env(ADDR, server.addr.to_string())
        .env_remove(PIN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(cpu) = pin {
        command.env(PIN, cpu.to_string());
    }
    let mut child = command.spawn().expect("start the load generator");
    let mut stdin = child.stdin.take().expect("load stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("load stdout")).lines();
    let mut next_line = || stdout.next().and_then(Result::ok);
    let run = (|| {
        let ready = next_line()?;
        if ready != "READY" {
            eprintln!("the load generator said {ready:?}, not READY");
            return None;
        }
        let ready = server.stats()?;
        let machine = machine_busy();
        writeln!(stdin, "GO").ok()?;
        stdin.flush().ok()?;
        let line = next_line()?;
        let after = server.stats()?;
        let machine = machine_busy().saturating_sub(machine);
        let result = parse_fields(&line, "RESULT ")?;
        Some(Sample {
            messages: *result.get("messages")?,
            wall: Duration::from_nanos(*result.get("wall_ns")?),
            load_cpu: Duration::from_nanos(*result.get("cpu_ns")?),
            empty,
            ready,
            after,
            machine,
        })
    })();
    drop(stdin);
    let status = child.wait().expect("wait for the load generator");
    if !status.success() {
        eprintln!("the load generator failed: {status}");
        return None;
    }
    run
}
