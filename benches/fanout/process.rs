//! Process glue: the environment variables, and the server and client
//! children as the parent drives them.

use std::collections::BTreeMap;
use std::env;
use std::io::{BufRead, BufReader, Lines, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// `server`, `client`, or unset for the parent.
pub(super) const ROLE: &str = "FANOUT_ROLE";
/// The server's design: an index into `DESIGNS`.
pub(super) const LIBRARY: &str = "FANOUT_LIBRARY";
/// The case: an index into `cases()`.
pub(super) const CASE: &str = "FANOUT_CASE";
/// The CPU a child pins itself to.
pub(super) const PIN: &str = "FANOUT_PIN";
/// The server's address, for the client.
pub(super) const ADDR: &str = "FANOUT_ADDR";

/// Makes a panic on any task end the child process (tokio would catch
/// it and leave the process running without that task).
pub(super) fn exit_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::exit(101);
    }));
}

/// The numbers of a `KEY k=v k=v …` line.
pub(super) type Fields = BTreeMap<String, u64>;

fn parse_fields(line: &str, key: &str) -> Option<Fields> {
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
    pub(super) rss_kib: u64,
    pub(super) hwm_kib: u64,
    /// Connections ready for the first message.
    pub(super) conns: u64,
}

/// A child (server or client) with its stdin and stdout lines; it exits
/// when its stdin closes.
struct Piped {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Piped {
    fn start(role: &str, case: usize, pin: usize, env: &[(&str, String)]) -> Self {
        let mut command = Command::new(env::current_exe().expect("current_exe"));
        command
            .env(ROLE, role)
            .env(CASE, case.to_string())
            .env(PIN, pin.to_string())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("start a child");
        Self {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().expect("stdout")).lines(),
            child,
        }
    }

    fn say(&mut self, line: &str) -> Option<()> {
        let stdin = self.stdin.as_mut()?;
        writeln!(stdin, "{line}").ok()?;
        stdin.flush().ok()
    }

    fn line(&mut self) -> Option<String> {
        self.stdout.next()?.ok()
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// The fan-out server child.
pub(super) struct Server {
    child: Piped,
    pub(super) addr: SocketAddr,
}

impl Server {
    pub(super) fn start(design: usize, case: usize, pin: usize) -> Option<Self> {
        let mut child = Piped::start("server", case, pin, &[(LIBRARY, design.to_string())]);
        let line = child.line()?;
        let port: u16 = line.strip_prefix("PORT ")?.trim().parse().ok()?;
        Some(Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    /// Its figures now; `None` if it has died.
    pub(super) fn stats(&mut self) -> Option<ServerStats> {
        self.child.say("STATS")?;
        let fields = parse_fields(&self.child.line()?, "STATS ")?;
        Some(ServerStats {
            cpu: Duration::from_nanos(*fields.get("cpu_ns")?),
            rss_kib: *fields.get("rss_kib")?,
            hwm_kib: *fields.get("hwm_kib")?,
            conns: *fields.get("conns")?,
        })
    }

    /// Resets its VmHWM to its VmRSS.
    pub(super) fn reset_peak(&mut self) -> Option<()> {
        self.child.say("PEAK_RESET")?;
        (self.child.line()? == "OK").then_some(())
    }

    /// Sends the broadcast; returns the fields of its `SENT` line once
    /// the server has sent every message.
    pub(super) fn broadcast(&mut self, count: usize, size: usize) -> Option<Fields> {
        self.child.say(&format!("BROADCAST {count} {size}"))?;
        parse_fields(&self.child.line()?, "SENT")
    }
}

/// The client child.
pub(super) struct Client {
    child: Piped,
}

impl Client {
    pub(super) fn start(case: usize, addr: SocketAddr, pin: usize) -> Self {
        Self {
            child: Piped::start("client", case, pin, &[(ADDR, addr.to_string())]),
        }
    }

    /// Waits for `READY`: every connection through its handshake.
    pub(super) fn ready(&mut self) -> Option<()> {
        (self.child.line()? == "READY").then_some(())
    }

    /// Waits for `DONE`; returns its fields.
    pub(super) fn done(&mut self) -> Option<Fields> {
        parse_fields(&self.child.line()?, "DONE ")
    }
}
