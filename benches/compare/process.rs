//! Process glue: the server and client child processes (the runtime, CPU
//! pinning, rusage and /proc figures are in `benches/common/os.rs`).

use std::env;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::client::Sample;
use crate::libraries::LIBRARIES;

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
