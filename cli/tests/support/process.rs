//! A child process whose output is read as it comes, line by line, with
//! every wait bounded by [`DEADLINE`](super::DEADLINE), and which is
//! killed (with its process group) when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::DEADLINE;

/// The lines of one output of a child, read on a thread.
pub struct Lines {
    /// Which output: `stdout` or `stderr`, for failure messages.
    name: &'static str,
    receiver: Receiver<String>,
    /// Every line received so far.
    seen: Vec<String>,
}

impl Lines {
    fn read(name: &'static str, output: impl Read + Send + 'static) -> Self {
        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(output).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            name,
            receiver,
            seen: Vec::new(),
        }
    }

    /// Waits for a line that `matches`, and returns it; panics with what
    /// was seen when none comes before the deadline or the output ends.
    pub fn wait_for(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.seen.iter().find(|line| matches(line)) {
            return line.clone();
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no {what} on {} within {DEADLINE:?}; seen:\n{}",
                        self.name,
                        self.text()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{} ended without {what}; seen:\n{}", self.name, self.text())
                }
            }
        }
    }

    /// Reads to the end of the output (bounded by the deadline) and returns
    /// all of it.
    fn read_to_end(&mut self) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => return self.text(),
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "{} still open {DEADLINE:?} after the process ended (a child holds it?)",
                        self.name
                    )
                }
            }
        }
    }

    /// What was received so far, as text (lines ended with `\n`).
    pub fn text(&self) -> String {
        self.seen.iter().map(|line| format!("{line}\n")).collect()
    }
}

/// How a child ended, and everything it wrote.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

/// A running child, in a process group of its own, with stdin, stdout
/// and stderr piped.
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Its stdout.
    pub stdout: Lines,
    /// Its stderr.
    pub stderr: Lines,
}

impl Running {
    /// Starts `command`; panics if it cannot.
    pub fn spawn(mut command: Command) -> Self {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so that dropping it ends a pipeline's every
            // process (and Ctrl-C at a terminal never reaches it).
            .process_group(0);
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
        let stdin = child.stdin.take();
        let stdout = Lines::read("stdout", child.stdout.take().expect("piped stdout"));
        let stderr = Lines::read("stderr", child.stderr.take().expect("piped stderr"));
        Self {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    /// Runs `command` with `input` on its stdin (then closed) to the end.
    /// A child may exit before it read all of `input` (it could not
    /// connect, say): what it did not take is dropped.
    pub fn run(command: Command, input: &str) -> Finished {
        let mut running = Self::spawn(command);
        if let Some(stdin) = running.stdin.as_mut() {
            let _ = stdin.write_all(input.as_bytes());
        }
        running.close_stdin();
        running.finish()
    }

    /// The process id (also its process group's).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Writes `text` to the child's stdin.
    pub fn write(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        stdin
            .write_all(text.as_bytes())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|err| panic!("writing to the child's stdin: {err}"));
    }

    /// Closes the child's stdin: the end of its input.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Sends SIGINT (what Ctrl-C sends) to the child alone.
    pub fn interrupt(&self) {
        signal("-INT", &self.id().to_string());
    }

    /// Waits (up to the deadline) for the child to exit, and returns its
    /// status and all it wrote; panics on the deadline.
    pub fn finish(mut self) -> Finished {
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) => panic!(
                    "still running after {DEADLINE:?}\nstdout:\n{}stderr:\n{}",
                    self.stdout.text(),
                    self.stderr.text()
                ),
                Err(err) => panic!("waiting for the child: {err}"),
            }
        };
        Finished {
            code: status.code(),
            stdout: self.stdout.read_to_end(),
            stderr: self.stderr.read_to_end(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Never a panic here: this may run while a test unwinds.
            let group = format!("-{}", self.child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = self.child.wait();
        }
    }
}

/// `kill SIGNAL -- TARGET`: a process (`PID`) or a process group (`-PID`)
/// that this test started.
fn signal(signal: &str, target: &str) {
    let status = Command::new("kill")
        .args([signal, "--", target])
        .status()
        .unwrap_or_else(|err| panic!("cannot run kill: {err}"));
    assert!(
        status.success(),
        "kill {signal} -- {target} failed: {status}"
    );
}
