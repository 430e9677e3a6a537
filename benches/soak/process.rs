//! Process glue: the environment, a child's setup (it dies with the
//! parent), and the children as the parent sees them: killed when dropped,
//! their stdout lines passed to the parent's one event channel with the
//! time they arrived.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};
use std::{env, io};

/// `server`, `client`, or unset for the parent.
pub(crate) const ROLE: &str = "SOAK_ROLE";
/// The server's address, for the client.
pub(crate) const ADDR: &str = "SOAK_ADDR";
/// How long the churn lasts, in seconds.
pub(crate) const SECONDS: &str = "SOAK_SECONDS";
/// The client's concurrent connections.
pub(crate) const CONNECTIONS: &str = "SOAK_CONNECTIONS";
/// The seed of every random choice.
pub(crate) const SEED: &str = "SOAK_SEED";
/// The parent's pid: a child whose parent is already another exits.
const PARENT: &str = "SOAK_PARENT";

/// The churn's length when `SOAK_SECONDS` is unset: the CI mode.
pub(crate) const DEFAULT_SECONDS: u64 = 120;
/// The connections when `SOAK_CONNECTIONS` is unset.
pub(crate) const DEFAULT_CONNECTIONS: u64 = 5000;

/// A number from the environment, or `default`.
pub(crate) fn env_u64(name: &str, default: u64) -> u64 {
    match env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// What every child does first: die with the parent (`SIGKILL` when it
/// exits, and at once if it already has), end the process on any panic
/// (tokio would catch a task's panic and run on without it), and raise
/// the file-descriptor limit for its thousands of sockets.
pub(crate) fn child_setup() {
    die_with_parent();
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::exit(101);
    }));
    crate::os_limits::raise_fd_limit();
}

#[allow(unsafe_code)]
fn die_with_parent() {
    // SAFETY: `prctl(PR_SET_PDEATHSIG, sig)` takes an integer and touches
    // no memory; `getppid` only reads.
    let (rc, parent) = unsafe {
        (
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL),
            libc::getppid(),
        )
    };
    assert_eq!(rc, 0, "PR_SET_PDEATHSIG: {}", io::Error::last_os_error());
    // The parent may have died before the line above.
    if env::var(PARENT).ok().and_then(|p| p.parse().ok()) != Some(parent) {
        std::process::exit(1);
    }
}

/// Which child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Side {
    Server,
    Client,
}

impl Side {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
        }
    }
}

/// A line from a child (`None`: its stdout closed), and when it came.
pub(crate) struct Event {
    pub(crate) side: Side,
    pub(crate) at: Instant,
    pub(crate) line: Option<String>,
}

/// A child process, killed when dropped unless it has exited.
pub(crate) struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Proc {
    /// Starts this program as `side` with `vars`; its stdout lines go to
    /// `events`, its stderr to ours.
    pub(crate) fn start(side: Side, vars: &[(&str, String)], events: Sender<Event>) -> Self {
        let mut child = Command::new(env::current_exe().expect("current_exe"))
            .env(ROLE, side.name())
            .env(PARENT, std::process::id().to_string())
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start the {}: {e}", side.name()));
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = Event {
                    side,
                    at: Instant::now(),
                    line: Some(line),
                };
                if events.send(event).is_err() {
                    return;
                }
            }
            let _ = events.send(Event {
                side,
                at: Instant::now(),
                line: None,
            });
        });
        Self {
            stdin: child.stdin.take(),
            child,
        }
    }

    /// Writes a line to its stdin.
    pub(crate) fn say(&mut self, line: &str) {
        if let Some(stdin) = &mut self.stdin {
            let _ = writeln!(stdin, "{line}").and_then(|()| stdin.flush());
        }
    }

    /// Closes its stdin: a child exits when it sees the end.
    pub(crate) fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for it to exit, until `deadline`; then kills it. `None` if
    /// it had to be killed.
    pub(crate) fn wait(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stdin = None;
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
