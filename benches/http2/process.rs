//! Process glue: the environment variables, the /proc figures only this
//! bench reports, and the server and client children as the parent drives
//! them (the runtime, CPU pinning and rusage are in `benches/common/os.rs`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Lines, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;
use std::{env, fs};

use crate::common::os::env_string;
use crate::workloads::Http;

/// `server`, `client`, or unset for the parent.
pub(super) const ROLE: &str = "HTTP2_BENCH_ROLE";
/// The CPU every process is pinned to.
pub(super) const CPU: &str = "HTTP2_BENCH_CPU";
/// `h1` or `h2`.
pub(super) const HTTP: &str = "HTTP2_BENCH_HTTP";
/// The index of the client's workload.
pub(super) const WORKLOAD: &str = "HTTP2_BENCH_WORKLOAD";
/// The server's address, for the client.
pub(super) const ADDR: &str = "HTTP2_BENCH_ADDR";

pub(super) fn env_http() -> Http {
    Http::from_env_value(&env_string(HTTP))
}

/// This process's open file descriptors.
pub(super) fn open_fds() -> u64 {
    // The directory listing's own descriptor is in it; leave it out.
    fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as u64 - 1)
}

/// What the kernel holds for TCP sockets, machine-wide, in bytes: the slab
/// caches each socket allocates, and TCP buffer pages. `None` when
/// `/proc/slabinfo` cannot be read (it needs root).
pub(super) fn kernel_socket_bytes() -> Option<u64> {
    const CACHES: [&str; 4] = ["TCP", "sock_inode_cache", "filp", "eventpoll_epi"];
    let slabs = fs::read_to_string("/proc/slabinfo").ok()?;
    let mut bytes = 0;
    for line in slabs.lines() {
        let mut fields = line.split_whitespace();
        let Some(name) = fields.next() else { continue };
        if !CACHES.contains(&name) {
            continue;
        }
        // name <active_objs> <num_objs> <objsize> ...
        let numbers: Vec<u64> = fields.take(3).filter_map(|f| f.parse().ok()).collect();
        if let [active, _, size] = numbers[..] {
            bytes += active * size;
        }
    }
    let sockstat = fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let pages = sockstat
        .lines()
        .find_map(|line| line.strip_prefix("TCP:"))
        .and_then(|tcp| {
            let fields: Vec<&str> = tcp.split_whitespace().collect();
            let at = fields.iter().position(|f| *f == "mem")?;
            fields.get(at + 1)?.parse::<u64>().ok()
        })
        .unwrap_or(0);
    Some(bytes + pages * 4096)
}

/// `KEY k=v k=v ...` with numeric values.
pub(super) fn parse_fields(line: &str, key: &str) -> Option<BTreeMap<String, u64>> {
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
    pub(super) cpu: Duration,
    pub(super) rss_kib: u64,
    pub(super) fds: u64,
    pub(super) connections: u64,
}

/// One server child; it exits when its stdin closes.
pub(super) struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    pub(super) addr: SocketAddr,
}

impl Server {
    pub(super) fn start(cpu: usize, http: Http) -> Self {
        let mut child = Command::new(env::current_exe().expect("current_exe"))
            .env(ROLE, "server")
            .env(CPU, cpu.to_string())
            .env(HTTP, http.env_value())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let line = stdout.next().expect("server's first line").expect("read");
        let port: u16 = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("server said {line:?}, not PORT"));
        Self {
            child,
            stdin,
            stdout,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// Asks the server for its figures now.
    pub(super) fn stats(&mut self) -> ServerStats {
        let stdin = self.stdin.as_mut().expect("server stdin");
        writeln!(stdin, "STATS").expect("ask the server");
        stdin.flush().expect("ask the server");
        let line = self.stdout.next().expect("server stats").expect("read");
        let fields = parse_fields(&line, "STATS ").expect("a STATS line");
        ServerStats {
            cpu: Duration::from_nanos(fields["cpu_ns"]),
            rss_kib: fields["rss_kib"],
            fds: fields["fds"],
            connections: fields["connections"],
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// What the parent saw of one client run: the client's `RESULT` fields,
/// and the server's figures when all were open and when the timed section
/// ended.
pub(super) struct ClientRun {
    pub(super) result: BTreeMap<String, u64>,
    pub(super) server_before: ServerStats,
    pub(super) server_after: ServerStats,
}

/// Runs one client child against `server`: waits for `READY`, reads the
/// server's figures, says `GO`, waits for `RESULT`, reads them again, and
/// lets the client go. `None` (with the reason on stderr) when the client
/// failed.
pub(super) fn run_client_child(
    server: &mut Server,
    cpu: usize,
    http: Http,
    workload: usize,
) -> Option<ClientRun> {
    let mut child = Command::new(env::current_exe().expect("current_exe"))
        .env(ROLE, "client")
        .env(CPU, cpu.to_string())
        .env(HTTP, http.env_value())
        .env(WORKLOAD, workload.to_string())
        .env(ADDR, server.addr.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start a client");
    let mut stdin = child.stdin.take().expect("client stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("client stdout")).lines();
    let mut next_line = || stdout.next().and_then(Result::ok);
    let run = (|| {
        let ready = next_line()?;
        if ready != "READY" {
            eprintln!("client said {ready:?}, not READY");
            return None;
        }
        let server_before = server.stats();
        writeln!(stdin, "GO").ok()?;
        stdin.flush().ok()?;
        let line = next_line()?;
        let server_after = server.stats();
        let result = parse_fields(&line, "RESULT ")?;
        Some(ClientRun {
            result,
            server_before,
            server_after,
        })
    })();
    drop(stdin);
    let status = child.wait().expect("wait for the client");
    if !status.success() {
        eprintln!("{} client failed: {status}", http.name());
        return None;
    }
    run
}
