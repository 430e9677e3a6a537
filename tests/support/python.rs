//! Peers written in Python, on the `websockets` library from PyPI: a
//! WebSocket implementation that is not ours, to test interoperability.
//!
//! The first use installs the pinned `websockets` into a virtual environment
//! under `target/peers/python-venv`, so `cargo test` needs only `python3`
//! (3.11 or later, with `venv` and `pip`) and access to PyPI. It says so on
//! the terminal first, and keeps pip's cache in `target/peers/pip-cache`
//! (nothing is written outside the target directory). Set
//! `WSSTREAM_PYTHON` to use another interpreter than `python3` on `PATH`.
//!
//! The environment is built in a staging directory and renamed into place
//! with a marker file naming the installed requirement, so test binaries
//! running at the same time never see a half-built one: at worst two of
//! them build it and one rename wins. Within a process, a `OnceLock` builds
//! it once for all test threads.

#![allow(dead_code)]

#[path = "peer_process.rs"]
mod peer_process;
#[path = "programs.rs"]
mod programs;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use peer_process::{collect, remove_stale, run, text_of, unique_suffix};
use programs::{announce, shown, target_peers};
use std::time::Duration;

/// The `websockets` release the interop tests run against.
pub const WEBSOCKETS_VERSION: &str = "17.4";

/// The oldest Python that `websockets` 17 supports.
const MIN_PYTHON: (u32, u32) = (3, 11);

/// How long a server may take to print its port.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);

/// The marker written into a finished environment: it holds the requirement.
const READY_MARKER: &str = ".wsstream-ready";

fn requirement() -> String {
    format!("websockets=={WEBSOCKETS_VERSION}")
}

/// Where the Python peer scripts live.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/python")
}

fn venv_interpreter(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

fn is_ready(venv: &Path) -> bool {
    std::fs::read_to_string(venv.join(READY_MARKER)).is_ok_and(|text| text.trim() == requirement())
        && venv_interpreter(venv).exists()
}

/// The interpreter of the environment with `websockets` installed, set up
/// on first use. Panics with what is missing if it cannot be set up: the
/// interop tests must not pass without running.
pub fn interpreter() -> &'static Path {
    static INTERPRETER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match INTERPRETER.get_or_init(prepare) {
        Ok(path) => path,
        Err(why) => panic!("cannot run the Python interop peers: {why}"),
    }
}

fn prepare() -> Result<PathBuf, String> {
    let peers = target_peers();
    let venv = peers.join("python-venv");
    if is_ready(&venv) {
        return Ok(venv_interpreter(&venv));
    }
    let base = std::env::var_os("WSSTREAM_PYTHON").unwrap_or_else(|| "python3".into());
    check_version(&base)?;
    announce(&format!(
        "creating {} with {} from PyPI (first run only)",
        shown(&venv),
        requirement()
    ));
    std::fs::create_dir_all(&peers)
        .map_err(|err| format!("creating {}: {err}", peers.display()))?;
    remove_stale(&peers, "python-venv");

    let staging = peers.join(format!("python-venv.staging-{}", unique_suffix()));
    let built = build(&base, &staging, &peers);
    if let Err(why) = built {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(why);
    }
    // Publish atomically. A rename onto a non-empty directory fails, so
    // whoever renames first wins and everyone else uses that one.
    for _ in 0..3 {
        if std::fs::rename(&staging, &venv).is_ok() {
            return Ok(venv_interpreter(&venv));
        }
        if is_ready(&venv) {
            let _ = std::fs::remove_dir_all(&staging);
            return Ok(venv_interpreter(&venv));
        }
        // An environment for another version, or a broken one: move it aside.
        let old = peers.join(format!("python-venv.old-{}", unique_suffix()));
        if std::fs::rename(&venv, &old).is_ok() {
            let _ = std::fs::remove_dir_all(&old);
        }
    }
    let _ = std::fs::remove_dir_all(&staging);
    Err(format!(
        "could not move the new environment into {}",
        venv.display()
    ))
}

fn check_version(base: &OsStr) -> Result<(), String> {
    let output = Command::new(base)
        .args(["-c", "import sys; print('%d %d' % sys.version_info[:2])"])
        .stdin(Stdio::null())
        .output()
        .map_err(|err| {
            format!(
                "{} not found or not runnable ({err}). Install Python >= {}.{} with venv and pip \
                 (CI does), or point WSSTREAM_PYTHON at an interpreter",
                base.to_string_lossy(),
                MIN_PYTHON.0,
                MIN_PYTHON.1
            )
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut parts = text.split_whitespace().map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) if (major, minor) >= MIN_PYTHON => Ok(()),
        (Some(Ok(major)), Some(Ok(minor))) => Err(format!(
            "{} is Python {major}.{minor}; websockets {WEBSOCKETS_VERSION} needs {}.{} or later",
            base.to_string_lossy(),
            MIN_PYTHON.0,
            MIN_PYTHON.1
        )),
        _ => Err(format!(
            "{} did not report its version: {}{}",
            base.to_string_lossy(),
            text,
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

/// `command` with pip's cache in `peers/pip-cache` (not `~/.cache/pip`)
/// and without its check for a newer pip.
fn pip_env<'c>(command: &'c mut Command, peers: &Path) -> &'c mut Command {
    command
        .env("PIP_CACHE_DIR", peers.join("pip-cache"))
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
}

fn build(base: &OsStr, staging: &Path, peers: &Path) -> Result<(), String> {
    run(
        pip_env(Command::new(base).arg("-m").arg("venv").arg(staging), peers),
        "creating a Python virtual environment (is the venv module installed?)",
    )?;
    let python = venv_interpreter(staging);
    run(
        pip_env(&mut Command::new(&python), peers).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            &requirement(),
        ]),
        "installing websockets from PyPI",
    )?;
    run(
        Command::new(&python).args(["-c", "from websockets.asyncio.server import serve"]),
        "checking the websockets install",
    )?;
    std::fs::write(staging.join(READY_MARKER), requirement())
        .map_err(|err| format!("writing the marker in {}: {err}", staging.display()))
}

/// A running Python peer. Dropping it kills the process; the process also
/// exits by itself when its standard input closes, so it never outlives the
/// test binary.
pub struct PythonServer {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl PythonServer {
    /// Starts `tests/peers/python/echo_server.py` on 127.0.0.1 with extra
    /// arguments (`--tls CERT KEY`, `--protocols a,b`).
    pub fn echo(args: &[&str]) -> Self {
        Self::echo_at(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), args)
    }

    /// Starts `echo_server.py` on `addr` (port 0 picks a free one). The
    /// process is forked from the calling thread, so called from a thread
    /// inside a network namespace (`Netns::run` of `netns.rs`) it listens
    /// in that namespace; [`interpreter`] must then have been called before,
    /// outside it, as installing `websockets` needs PyPI.
    pub fn echo_at(addr: SocketAddr, args: &[&str]) -> Self {
        let (host, port) = (addr.ip().to_string(), addr.port().to_string());
        let mut all = vec![host.as_str(), port.as_str()];
        all.extend_from_slice(args);
        Self::start("echo_server.py", all)
    }

    /// Starts a script of `tests/peers/python` that prints `PORT <n>` as its
    /// first line once it listens.
    pub fn start<I, S>(script: &str, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let python = interpreter();
        let mut command = Command::new(python);
        command
            .arg("-u")
            .arg(scripts_dir().join(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("could not start {command:?}: {err}"));
        let stdin = child.stdin.take();

        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_reader = child
            .stderr
            .take()
            .map(|pipe| collect(pipe, stderr.clone()));

        let (first_line, port_line) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                let _ = first_line.send(lines.next());
                // Keep draining so the peer never blocks on a full pipe.
                lines.for_each(drop);
            });
        }

        let mut server = Self {
            child,
            stdin,
            port: 0,
            stderr,
            stderr_reader,
        };
        let line = port_line.recv_timeout(STARTUP_LIMIT);
        let port = match &line {
            Ok(Some(Ok(line))) => line
                .strip_prefix("PORT ")
                .and_then(|port| port.trim().parse::<u16>().ok()),
            _ => None,
        };
        match port {
            Some(port) if port != 0 => server.port = port,
            _ => {
                server.stop();
                panic!(
                    "{command:?} did not print its port within {STARTUP_LIMIT:?} (first line: {line:?}); \
                     its stderr:\n{}",
                    server.stderr_text()
                );
            }
        }
        server
    }

    /// The port the server listens on (on 127.0.0.1, but for
    /// [`echo_at`](Self::echo_at)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the server wrote to its standard error so far.
    pub fn stderr_text(&self) -> String {
        text_of(&self.stderr)
    }

    fn stop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let stderr = self.stderr_text();
            if !stderr.is_empty() {
                eprintln!("--- Python peer stderr ---\n{stderr}--- end ---");
            }
        }
    }
}
