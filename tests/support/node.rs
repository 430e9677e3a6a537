//! Peers written in Node.js, on the `ws` library from npm: a second
//! WebSocket implementation that is not ours, and one with permessage-deflate
//! (RFC 7692), to test interoperability.
//!
//! The scripts live in `tests/peers/node` beside the `package.json` and
//! `package-lock.json` that pin `ws`. The first use copies them into
//! `target/peers/node` and runs `npm ci` there (`npm install` if that fails),
//! so `cargo test` needs only `node` (18 or later) with `npm`, and access to
//! the npm registry the first time. It says so on the terminal first, and
//! gives npm `target/peers/npm-cache` for its cache and logs (nothing is
//! written to `~/.npm`). Set `WSSTREAM_NODE` to use another `node`
//! than the one on `PATH`, and `WSSTREAM_NPM` for another `npm` than the one
//! beside that `node` (or on `PATH`).
//!
//! The install is built in a staging directory and renamed into place with
//! a marker file naming the `ws` version and a fingerprint of the copied
//! files, so test binaries running at the same time never see a half-built
//! one (at worst two of them build it and one rename wins), and editing a
//! script or the pin rebuilds it. Within a process, a `OnceLock` builds it
//! once for all test threads.
//!
//! `echo_server.js` and `client.js` describe their flags and output lines at
//! their top.

#![allow(dead_code)]

#[path = "peer_process.rs"]
mod peer_process;
#[path = "programs.rs"]
mod programs;

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

use peer_process::{collect, remove_stale, run, text_of, unique_suffix};
use programs::{announce, shown, target_peers};
use std::time::{Duration, Instant};

/// The `ws` release the interop tests run against: the exact version that
/// `tests/peers/node/package.json` pins (the install checks they agree).
pub const WS_VERSION: &str = "8.23.0";

/// The oldest Node.js major version the peers are run on.
const MIN_NODE_MAJOR: u32 = 18;

/// How long a server may take to print its port.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);

/// How long `client.js` may run.
pub const CLIENT_LIMIT: Duration = Duration::from_secs(60);

/// The marker written into a finished install: the `ws` version and a
/// fingerprint of the files copied from `tests/peers/node`.
const READY_MARKER: &str = ".wsstream-ready";

/// Where the Node.js peer scripts and the `ws` pin live in the source tree.
pub fn sources_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/node")
}

/// The `node` binary: `WSSTREAM_NODE` if set, else `node` found on `PATH`.
/// Panics with what is missing if it is not there or older than Node.js 18:
/// the interop tests must not pass without running.
pub fn node() -> &'static Path {
    static NODE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match NODE.get_or_init(find_node) {
        Ok(path) => path,
        Err(why) => panic!("cannot run the Node.js interop peers: {why}"),
    }
}

/// The directory with the scripts and `node_modules/ws` installed, set up on
/// first use. Panics with what went wrong if it cannot be set up.
pub fn peers_dir() -> &'static Path {
    static PEERS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PEERS.get_or_init(prepare) {
        Ok(path) => path,
        Err(why) => panic!("cannot run the Node.js interop peers: {why}"),
    }
}

fn executable_name(name: &str) -> String {
    if cfg!(windows) {
        format!("{name}.exe")
    } else {
        name.to_owned()
    }
}

/// `name` in the first directory of `PATH` that has it.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn find_node() -> Result<PathBuf, String> {
    let node = match std::env::var_os("WSSTREAM_NODE") {
        Some(path) => PathBuf::from(path),
        None => on_path(&executable_name("node")).ok_or_else(|| {
            format!(
                "node not found on PATH. Install Node.js >= {MIN_NODE_MAJOR} with npm \
                 (CI does), or point WSSTREAM_NODE at a node binary"
            )
        })?,
    };
    let output = Command::new(&node)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("{} is not runnable: {err}", node.display()))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let major = version
        .strip_prefix('v')
        .and_then(|rest| rest.split('.').next())
        .and_then(|major| major.parse::<u32>().ok());
    match major {
        Some(major) if major >= MIN_NODE_MAJOR => Ok(node),
        Some(_) => Err(format!(
            "{} is Node.js {version}; the peers need {MIN_NODE_MAJOR} or later",
            node.display()
        )),
        None => Err(format!(
            "{} --version printed {version:?}{}",
            node.display(),
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

/// `WSSTREAM_NPM` if set, else the `npm` beside `node`, else `npm` on `PATH`.
fn npm(node: &Path) -> PathBuf {
    if let Some(path) = std::env::var_os("WSSTREAM_NPM") {
        return PathBuf::from(path);
    }
    let name = if cfg!(windows) { "npm.cmd" } else { "npm" };
    node.parent()
        .map(|dir| dir.join(name))
        .filter(|candidate| candidate.is_file())
        .or_else(|| on_path(name))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The files of `tests/peers/node` that an install copies: the scripts and
/// the two package files, sorted by name (`node_modules` and anything else
/// left there by hand is not copied).
fn source_files() -> Result<Vec<(String, Vec<u8>)>, String> {
    let dir = sources_dir();
    let entries =
        std::fs::read_dir(&dir).map_err(|err| format!("reading {}: {err}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let wanted = name.ends_with(".js") || name == "package.json" || name == "package-lock.json";
        if !wanted || !entry.path().is_file() {
            continue;
        }
        let bytes = std::fs::read(entry.path())
            .map_err(|err| format!("reading {}: {err}", entry.path().display()))?;
        files.push((name, bytes));
    }
    files.sort();
    for required in [
        "package.json",
        "package-lock.json",
        "cli.js",
        "echo_server.js",
        "client.js",
    ] {
        if !files.iter().any(|(name, _)| name == required) {
            return Err(format!("{} has no {required}", dir.display()));
        }
    }
    Ok(files)
}

/// What the marker of an install of `files` holds: the `ws` version and an
/// FNV-1a hash of the files' names and contents.
fn marker_text(files: &[(String, Vec<u8>)]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, bytes) in files {
        for &byte in name.as_bytes().iter().chain([0u8].iter()).chain(bytes) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("ws@{WS_VERSION} {hash:016x}")
}

fn is_ready(dir: &Path, marker: &str) -> bool {
    std::fs::read_to_string(dir.join(READY_MARKER)).is_ok_and(|text| text.trim() == marker)
        && dir.join("node_modules/ws/package.json").is_file()
}

fn prepare() -> Result<PathBuf, String> {
    let files = source_files()?;
    let marker = marker_text(&files);
    let peers = target_peers();
    let installed = peers.join("node");
    if is_ready(&installed, &marker) {
        return Ok(installed);
    }
    let node = find_node()?;
    announce(&format!(
        "installing ws@{WS_VERSION} from npm into {} (first run only)",
        shown(&installed)
    ));
    std::fs::create_dir_all(&peers)
        .map_err(|err| format!("creating {}: {err}", peers.display()))?;
    remove_stale(&peers, "node");

    let staging = peers.join(format!("node.staging-{}", unique_suffix()));
    if let Err(why) = build(&node, &peers, &staging, &files, &marker) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(why);
    }
    // Publish atomically. A rename onto a non-empty directory fails, so
    // whoever renames first wins and everyone else uses that one.
    for _ in 0..3 {
        if std::fs::rename(&staging, &installed).is_ok() {
            return Ok(installed);
        }
        if is_ready(&installed, &marker) {
            let _ = std::fs::remove_dir_all(&staging);
            return Ok(installed);
        }
        // An install of other files or another version, or a broken one:
        // move it aside.
        let old = peers.join(format!("node.old-{}", unique_suffix()));
        if std::fs::rename(&installed, &old).is_ok() {
            let _ = std::fs::remove_dir_all(&old);
        }
    }
    let _ = std::fs::remove_dir_all(&staging);
    Err(format!(
        "could not move the new install into {}",
        installed.display()
    ))
}

fn build(
    node: &Path,
    peers: &Path,
    staging: &Path,
    files: &[(String, Vec<u8>)],
    marker: &str,
) -> Result<(), String> {
    std::fs::create_dir_all(staging)
        .map_err(|err| format!("creating {}: {err}", staging.display()))?;
    for (name, bytes) in files {
        std::fs::write(staging.join(name), bytes)
            .map_err(|err| format!("copying {name} into {}: {err}", staging.display()))?;
    }

    let npm = npm(node);
    // npm's cache and logs (`~/.npm` by default) go under target/peers too.
    let npm_cache = peers.join("npm-cache");
    let npm_command = |subcommand: &str| {
        let mut command = Command::new(&npm);
        command
            .arg(subcommand)
            .args([
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--no-progress",
            ])
            .current_dir(staging)
            .env("npm_config_cache", &npm_cache)
            .env("npm_config_logs_dir", npm_cache.join("_logs"))
            .env("npm_config_update_notifier", "false");
        // npm is itself a node script (`#!/usr/bin/env node`): make it, and
        // anything it starts, run on our node.
        if let Some(dir) = node.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let paths = std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&path));
            if let Ok(joined) = std::env::join_paths(paths) {
                command.env("PATH", joined);
            }
        }
        command
    };
    let clean = run(&mut npm_command("ci"), "installing ws from npm (npm ci)");
    if let Err(ci_failed) = clean {
        run(
            &mut npm_command("install"),
            "installing ws from npm (npm install, after npm ci failed)",
        )
        .map_err(|why| format!("{ci_failed}\n{why}"))?;
    }

    let output = run(
        Command::new(node)
            .args(["-p", "require('ws/package.json').version"])
            .current_dir(staging),
        "checking the ws install",
    )?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if version != WS_VERSION {
        return Err(format!(
            "npm installed ws {version}, but WS_VERSION in tests/support/node.rs is {WS_VERSION}: \
             make it agree with tests/peers/node/package.json"
        ));
    }
    std::fs::write(staging.join(READY_MARKER), marker)
        .map_err(|err| format!("writing the marker in {}: {err}", staging.display()))
}

/// A `node SCRIPT ARGS` command in the install directory.
fn script_command<I, S>(script: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let dir = peers_dir();
    let mut command = Command::new(node());
    command.arg(dir.join(script)).args(args).current_dir(dir);
    command
}

/// The lines a server printed, queued by their first word (`PORT`, `OFFER`,
/// `EXTENSIONS`, `ERROR`, `CLOSED`), so that waiting for one kind never
/// consumes another.
#[derive(Default)]
struct LineQueues {
    state: Mutex<QueueState>,
    arrived: Condvar,
}

#[derive(Default)]
struct QueueState {
    by_kind: HashMap<String, VecDeque<String>>,
    all: Vec<String>,
    ended: bool,
}

impl LineQueues {
    fn push(&self, line: String) {
        let (kind, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .by_kind
            .entry(kind.to_owned())
            .or_default()
            .push_back(rest.to_owned());
        state.all.push(line);
        self.arrived.notify_all();
    }

    fn end(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ended = true;
        self.arrived.notify_all();
    }

    /// The next line of `kind`, waiting up to `timeout`; `None` if none
    /// came in time or the output ended first.
    fn next(&self, kind: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(line) = state.by_kind.get_mut(kind).and_then(VecDeque::pop_front) {
                return Some(line);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if state.ended || left.is_zero() {
                return None;
            }
            state = self
                .arrived
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn take(&self, kind: &str) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .by_kind
            .get_mut(kind)
            .map(|queue| queue.drain(..).collect())
            .unwrap_or_default()
    }

    fn all(&self) -> String {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.all.iter().map(|line| format!("{line}\n")).collect()
    }
}

/// A running `ws` echo server (`tests/peers/node/echo_server.js`) on
/// 127.0.0.1. Dropping it kills the process; the process also exits by
/// itself when its standard input closes, so it never outlives the test
/// binary.
pub struct NodeServer {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    lines: Arc<LineQueues>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl NodeServer {
    /// Starts the echo server with `args` (`--deflate`,
    /// `--server-no-context-takeover`, `--client-no-context-takeover`,
    /// `--server-max-window-bits N`, `--client-max-window-bits N`,
    /// `--max-payload N`) and waits until it listens. Panics, with its
    /// stderr, if it exits or does not print its port within 30 s.
    pub fn start(args: &[&str]) -> Self {
        Self::start_script("echo_server.js", args)
    }

    /// Starts another server script of `tests/peers/node` with `args`, one
    /// that prints `PORT <n>` once it listens and exits when its standard
    /// input closes (`h2_server.js`, which describes its flags and output
    /// lines at its top), and waits until it listens. Panics, with its
    /// stderr, if it exits or does not print its port within 30 s.
    pub fn start_script(script: &str, args: &[&str]) -> Self {
        let mut command = script_command(script, args);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("could not start {command:?}: {err}"));
        let stdin = child.stdin.take();

        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::new(LineQueues::default());
        let mut readers = Vec::new();
        if let Some(pipe) = child.stderr.take() {
            readers.push(collect(pipe, stderr.clone()));
        }
        if let Some(stdout) = child.stdout.take() {
            let lines = lines.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    lines.push(line);
                }
                lines.end();
            }));
        }

        let mut server = Self {
            child,
            stdin,
            port: 0,
            lines,
            stderr,
            readers,
        };
        let line = server.lines.next("PORT", STARTUP_LIMIT);
        match line
            .as_deref()
            .and_then(|port| port.trim().parse::<u16>().ok())
        {
            Some(port) if port != 0 => server.port = port,
            _ => {
                server.stop();
                panic!(
                    "{command:?} did not print its port within {STARTUP_LIMIT:?} (got {line:?}); \
                     its stdout:\n{}its stderr:\n{}",
                    server.lines.all(),
                    server.stderr_text()
                );
            }
        }
        server
    }

    /// The port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ws://127.0.0.1:<port>/`: the server echoes on every path.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    /// The `Sec-WebSocket-Extensions` of the server's 101 response to the
    /// next connection not asked about yet (empty when it answered none).
    /// Panics if none comes within `timeout`.
    pub fn next_extensions(&self, timeout: Duration) -> String {
        self.expect("EXTENSIONS", timeout)
    }

    /// The `Sec-WebSocket-Extensions` that the client of the next connection
    /// not asked about yet sent (empty if none). Panics if none comes within
    /// `timeout`.
    pub fn next_offer(&self, timeout: Duration) -> String {
        self.expect("OFFER", timeout)
    }

    /// How the next connection not asked about yet ended, as ws saw it:
    /// `"<code> <reason>"` of the client's close frame (`"1000 done"`), the
    /// code alone without a reason, `1005` for a close frame without a code
    /// and `1006` for none at all (ws failed the connection or it dropped).
    /// Panics if none comes within `timeout`.
    pub fn next_closed(&self, timeout: Duration) -> String {
        self.expect("CLOSED", timeout)
    }

    /// The next line of `kind` (its first word: `OFFER`, `EXTENSIONS`,
    /// `ERROR`, `CLOSED`) with the kind removed, or `None` if none comes
    /// within `timeout` or the server exited.
    pub fn next_line(&self, kind: &str, timeout: Duration) -> Option<String> {
        self.lines.next(kind, timeout)
    }

    /// The lines of `kind` printed so far and not taken yet, without
    /// waiting: `take_lines("ERROR")` is what ws failed connections or
    /// refused handshakes with.
    pub fn take_lines(&self, kind: &str) -> Vec<String> {
        self.lines.take(kind)
    }

    /// What the server wrote to its standard error so far.
    pub fn stderr_text(&self) -> String {
        text_of(&self.stderr)
    }

    fn expect(&self, kind: &str, timeout: Duration) -> String {
        self.lines.next(kind, timeout).unwrap_or_else(|| {
            panic!(
                "the ws server printed no {kind} line within {timeout:?}; its stdout:\n{}\
                 its stderr:\n{}",
                self.lines.all(),
                self.stderr_text()
            )
        })
    }

    fn stop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "--- ws server stdout ---\n{}--- ws server stderr ---\n{}--- end ---",
                self.lines.all(),
                self.stderr_text()
            );
        }
    }
}

/// A running `client.js`, started by [`spawn_client`].
pub struct NodeClient {
    command: String,
    child: Child,
    started: Instant,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl NodeClient {
    /// Waits for the client to finish and returns its output. Panics, with
    /// what it printed, if it runs longer than [`CLIENT_LIMIT`] from its
    /// start. Blocks the thread: call it from `spawn_blocking` in an async
    /// test whose server runs on the same runtime.
    pub fn wait(mut self) -> Output {
        let status = self.wait_bounded();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let stdout =
            std::mem::take(&mut *self.stdout.lock().unwrap_or_else(PoisonError::into_inner));
        let stderr =
            std::mem::take(&mut *self.stderr.lock().unwrap_or_else(PoisonError::into_inner));
        match status {
            Some(status) => Output {
                status,
                stdout,
                stderr,
            },
            None => panic!(
                "{} ran longer than {CLIENT_LIMIT:?}; its stdout:\n{}its stderr:\n{}",
                self.command,
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            ),
        }
    }

    fn wait_bounded(&mut self) -> Option<ExitStatus> {
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if self.started.elapsed() < CLIENT_LIMIT => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) | Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return None;
                }
            }
        }
    }
}

impl Drop for NodeClient {
    fn drop(&mut self) {
        // Only when not waited for: `wait` leaves an exited child.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `node client.js URL ARGS` (`--deflate` and the
/// `--*-context-takeover` / `--*-max-window-bits N` flags, `--count N`,
/// `--size BYTES`, `--binary`) without waiting for it.
pub fn spawn_client(url: &str, args: &[&str]) -> NodeClient {
    spawn_script("client.js", url, args)
}

/// Starts `node SCRIPT URL ARGS` for another client script of
/// `tests/peers/node` (`h2_client.js`, which describes its flags and output
/// lines at its top) without waiting for it; [`NodeClient::wait`] bounds it
/// by [`CLIENT_LIMIT`] like `client.js`.
pub fn spawn_script(script: &str, url: &str, args: &[&str]) -> NodeClient {
    let mut command = script_command(script, std::iter::once(url).chain(args.iter().copied()));
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|err| panic!("could not start {command:?}: {err}"));
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let mut readers = Vec::new();
    if let Some(pipe) = child.stdout.take() {
        readers.push(collect(pipe, stdout.clone()));
    }
    if let Some(pipe) = child.stderr.take() {
        readers.push(collect(pipe, stderr.clone()));
    }
    NodeClient {
        command: format!("{command:?}"),
        child,
        started: Instant::now(),
        stdout,
        stderr,
        readers,
    }
}

/// Runs `node client.js URL ARGS` to completion (see [`spawn_client`]) and
/// returns its output: exit code 0 and `OK <n>` / `CLOSED <code>` lines when
/// every echo matched. Panics if it runs longer than [`CLIENT_LIMIT`].
/// Blocks the thread.
pub fn run_client(url: &str, args: &[&str]) -> Output {
    spawn_client(url, args).wait()
}

/// The first line of `output`'s stdout that starts with the word `kind`,
/// with the kind removed: `output_line(&out, "EXTENSIONS")`.
pub fn output_line(output: &Output, kind: &str) -> Option<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| {
            let (first, rest) = line.split_once(' ').unwrap_or((line, ""));
            (first == kind).then(|| rest.to_owned())
        })
}
