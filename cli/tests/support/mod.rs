//! What the CLI's tests share: running `wsstream` (and shell pipelines of
//! it) with every wait bounded, and its `serve` command as a server.
//!
//! Each test binary includes it with `mod support;` and uses a part of it.

#![allow(dead_code)] // each test binary uses only some of the helpers

pub mod process;
/// The library's tests' `programs.rs`: finding and installing programs.
#[path = "../../../tests/support/programs.rs"]
pub mod programs;
pub mod tmux;

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub use process::Running;

/// How long any one wait of a test may take before it fails: generous, as
/// CI machines are slow, but never forever.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Variables removed from the tests' commands: the proxy variables that
/// `wsstream connect` reads when it has no `--proxy` (a proxy set for the
/// machine must never see loopback tests), and `TMUX` (a test run inside
/// tmux still starts tmux servers of its own).
const REMOVED_VARS: [&str; 14] = [
    "ws_proxy",
    "WS_PROXY",
    "wss_proxy",
    "WSS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "RUST_LOG",
    "TMUX",
];

/// The `wsstream` binary that cargo built for these tests.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_wsstream"))
}

/// A command in a clean environment (see [`REMOVED_VARS`]).
pub fn clean(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    for var in REMOVED_VARS {
        command.env_remove(var);
    }
    command
}

/// `wsstream ARGS…` in a clean environment.
pub fn wsstream<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = clean(binary());
    command.args(args);
    command
}

/// `sh -c SCRIPT` in a clean environment, with `$WSSTREAM` naming the
/// binary: for real pipelines such as `echo hi | "$WSSTREAM" connect URL`.
pub fn shell(script: &str) -> Command {
    let mut command = clean("sh");
    command.arg("-c").arg(script).env("WSSTREAM", binary());
    command
}

/// A port of 127.0.0.1 that nothing listens on (it was free a moment ago).
pub fn closed_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|err| panic!("binding 127.0.0.1:0 to find a free port: {err}"))
}

/// `wsstream serve 127.0.0.1:0 EXTRA…`, running until dropped.
pub struct Server {
    /// The server process.
    pub process: Running,
    /// `ws://127.0.0.1:PORT`, as the server printed it.
    pub url: String,
}

impl Server {
    /// Starts the server and waits until it says where it listens.
    pub fn start(extra: &[&str]) -> Self {
        let mut args = vec!["serve", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut process = Running::spawn(wsstream(args));
        let line = process.stderr.wait_for("the listening address", |line| {
            line.contains("listening on ws://")
        });
        let url = line
            .split_once("listening on ")
            .map(|(_, url)| url.trim().to_owned())
            .unwrap_or_else(|| panic!("no URL in {line:?}"));
        Self { process, url }
    }
}

/// Runs `handle` on each TCP connection to a new listener on 127.0.0.1, on
/// a runtime of its own thread that lives as long as the test process;
/// returns the address. For servers written with the library, beside the
/// `wsstream serve` under test.
pub fn serve_on_thread<F, Fut>(handle: F) -> std::net::SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("its address");
    listener.set_nonblocking(true).expect("non-blocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            loop {
                if let Ok((tcp, _)) = listener.accept().await {
                    tokio::spawn(handle(tcp));
                }
            }
        });
    });
    addr
}
