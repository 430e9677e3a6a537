//! WebSockets over HTTP/2 (RFC 8441) through a real HTTP/2 reverse proxy:
//! nghttpx, from Debian's `nghttp2-proxy`, translates in both directions.
//!
//! - wsstream's HTTP/2 client → nghttpx's HTTP/2 frontend (cleartext with
//!   prior knowledge, or TLS with ALPN `h2`) → an HTTP/1.1 backend, the
//!   Python `websockets` echo server: nghttpx turns each extended CONNECT
//!   into a `GET` with `Upgrade: websocket` and its own `Sec-WebSocket-Key`,
//!   and the backend's `101` into `:status 200`.
//! - Python `websockets` clients speaking HTTP/1.1 → nghttpx's HTTP/1.1
//!   frontend → wsstream's hyper HTTP/2 server as an `h2` backend
//!   (`--backend=HOST,PORT;;proto=h2`): nghttpx turns each `Upgrade` into
//!   an extended CONNECT, `Sec-WebSocket-Extensions` passed on both ways,
//!   all on one backend connection. This is how a client that speaks only
//!   HTTP/1.1 (Autobahn's fuzzingclient) reaches an HTTP/2 WebSocket server.
//!
//! Observed with nghttpx 1.52.0 (Debian bookworm): its access log shows an
//! HTTP/2 WebSocket as `CONNECT <authority> HTTP/2` with status 101 (what
//! the backend answered; the client got 200). After the close handshake it
//! ends the client's stream and then resets it with `RST_STREAM(NO_ERROR)`
//! ("to finish off incomplete request"), which a client must take as a clean
//! end. Toward an `h2` backend that does not send
//! `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1` it answers the HTTP/1.1 client
//! `400 Bad Request` itself. Toward a TLS `h2` backend
//! (`;;proto=h2;tls`) it checks the certificate's DNS names against the
//! backend host or `sni=NAME`, not IP addresses: `127.0.0.1` fails with
//! "hostname does not match" even with an IP SAN, `sni=localhost` works.
//!
//! The first use checks that `nghttpx` is installed; when it is missing and
//! the tests run as root, it runs `tests/peers/install-nghttpx.sh` (apt-get).
//! When it cannot be had (not root, no apt-get, the install failed) each test
//! says why on stderr and returns. Set `WSSTREAM_NGHTTPX` to use another
//! `nghttpx` (then nothing is installed). Every nghttpx runs in the
//! foreground as a child of the test (`--single-process`, no configuration
//! file), on a free port of 127.0.0.1, with its logs in a temporary
//! directory; it is killed when the test ends.
//!
//! Every await is bounded, so a bug fails a test instead of hanging it.

#![cfg(all(feature = "http2", feature = "hyper"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::duplicate_mod,
    reason = "this test and support/python.rs each include support/programs.rs as a private module"
)]

#[cfg(feature = "tls")]
#[path = "support/certs.rs"]
mod certs;
#[path = "support/http2_echo.rs"]
mod http2_echo;
#[path = "support/programs.rs"]
mod programs;
#[path = "support/python.rs"]
mod python;

use std::ffi::OsString;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use http2_echo::{echo_over, hyper_h2_echo_server, plain, within, STEP};
use programs::{
    find_program, free_port, is_executable, is_root, not_root_hint, read_lossy, run_install_script,
    unique_dir,
};
use python::PythonServer;
use wsstream::{HttpVersion, Message, Options, ServerOptions};

/// How many WebSockets the client tests open on their one connection.
const STREAMS: usize = 3;

/// The script that installs nghttpx, relative to the crate root.
const INSTALL_SCRIPT: &str = "tests/peers/install-nghttpx.sh";

/// The Debian package nghttpx comes from.
const PACKAGE: &str = "nghttp2-proxy";

/// How long nghttpx may take to listen on its port.
const STARTUP_LIMIT: Duration = Duration::from_secs(10);

/// How many ports nghttpx is started on before giving up, when the free
/// port found was taken by someone else before nghttpx bound it.
const START_ATTEMPTS: usize = 3;

/// The access log's format: the client's port (one per connection), the
/// frontend's protocol (`h2c`, `h2`, `http/1.1`), the status the backend
/// answered, and the request line.
const ACCESS_LOG_FORMAT: &str = r#"$remote_port $alpn $status "$request""#;

// ---------------------------------------------------------------------------
// nghttpx: found or installed once, started per test.

/// The `nghttpx` program, or why there is none (the tests then skip).
fn nghttpx() -> Result<&'static Path, String> {
    static PROGRAM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PROGRAM
        .get_or_init(prepare)
        .as_deref()
        .map_err(Clone::clone)
}

/// [`nghttpx`], or `None` after saying on stderr why the test skips.
fn nghttpx_or_skip() -> Option<&'static Path> {
    match nghttpx() {
        Ok(program) => Some(program),
        Err(why) => {
            // On the terminal even when the tests pass: a skip is news.
            programs::announce(&format!("skipping an nghttpx test: {why}"));
            None
        }
    }
}

fn prepare() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("WSSTREAM_NGHTTPX") {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(path)
        } else {
            panic!(
                "WSSTREAM_NGHTTPX={} is not an executable file",
                path.display()
            )
        };
    }
    if let Some(path) = find_program(&["nghttpx"]) {
        return Ok(path);
    }
    if !is_root() {
        return Err(format!(
            "nghttpx missing and {}",
            not_root_hint(INSTALL_SCRIPT, PACKAGE)
        ));
    }
    if find_program(&["apt-get"]).is_none() {
        return Err(format!(
            "nghttpx missing and no apt-get to install {PACKAGE}"
        ));
    }
    let installed = run_install_script(INSTALL_SCRIPT, PACKAGE);
    match (installed, find_program(&["nghttpx"])) {
        (Ok(()), Some(path)) => Ok(path),
        (Ok(()), None) => Err(format!(
            "nghttpx missing, even after `bash {INSTALL_SCRIPT}` installed {PACKAGE}"
        )),
        (Err(why), _) => Err(format!(
            "nghttpx missing, and installing {PACKAGE} failed (no network?): {why}"
        )),
    }
}

/// One request in nghttpx's access log (see [`ACCESS_LOG_FORMAT`]).
#[derive(Debug)]
struct Logged {
    client_port: u16,
    alpn: String,
    status: u16,
    request: String,
}

/// An nghttpx running as a child process on 127.0.0.1. Dropping it kills
/// the process and removes its directory (logs); if the thread is
/// panicking, the logs are printed first.
struct Nghttpx {
    port: u16,
    child: Child,
    dir: PathBuf,
}

impl Nghttpx {
    /// Starts `nghttpx` with one frontend on 127.0.0.1 (`frontend` is what
    /// follows the address: `;no-tls` for cleartext, where nghttpx takes
    /// HTTP/1.1 and HTTP/2 with prior knowledge alike, or empty for TLS,
    /// with the key and certificate files in `extra`), one `--backend`
    /// (`HOST,PORT[;PATTERN[;PARAMS]]`), and `extra` arguments.
    fn start(program: &Path, frontend: &str, backend: &str, extra: &[OsString]) -> Self {
        let mut taken = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let dir = unique_dir("nghttpx");
            std::fs::create_dir_all(&dir).expect("nghttpx directory");
            let output = File::create(dir.join("output.log")).expect("nghttpx output file");
            let mut command = Command::new(program);
            command
                .arg("--conf=/dev/null")
                .arg("--single-process")
                .arg("--workers=1")
                .arg("--no-ocsp")
                .arg(format!("--frontend=127.0.0.1,{port}{frontend}"))
                .arg(format!("--backend={backend}"))
                .arg(os_arg("--errorlog-file=", &dir.join("error.log")))
                .arg(os_arg("--accesslog-file=", &dir.join("access.log")))
                .arg(format!("--accesslog-format={ACCESS_LOG_FORMAT}"))
                .args(extra)
                .stdin(Stdio::null())
                .stdout(output.try_clone().expect("nghttpx output file"))
                .stderr(output);
            let child = command
                .spawn()
                .unwrap_or_else(|err| panic!("could not start {command:?}: {err}"));
            let mut proxy = Self { port, child, dir };
            match proxy.wait_ready() {
                Ok(()) => return proxy,
                Err(why) if proxy.logs().contains("Address already in use") => {
                    taken.push(format!("port {port}: {why}"));
                }
                Err(why) => panic!("{command:?} did not start: {why}\n{}", proxy.logs()),
            }
        }
        panic!(
            "nghttpx could not listen on a free port in {START_ATTEMPTS} attempts: {}",
            taken.join("; ")
        );
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_LIMIT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Err(format!("exited with {status}")),
                Ok(None) => {}
                Err(err) => return Err(format!("could not poll the process: {err}")),
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("did not listen on {addr} within {STARTUP_LIMIT:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn read(&self, name: &str) -> String {
        read_lossy(&self.dir.join(name))
    }

    /// Everything nghttpx wrote, for failure messages.
    fn logs(&self) -> String {
        format!(
            "--- nghttpx error log ---\n{}--- access log ---\n{}--- stdout/stderr ---\n{}",
            self.read("error.log"),
            self.read("access.log"),
            self.read("output.log")
        )
    }

    /// The requests in the access log so far. nghttpx writes a WebSocket's
    /// line when its stream or connection ends.
    fn logged(&self) -> Vec<Logged> {
        self.read("access.log")
            .lines()
            .map(|line| {
                let mut parts = line.splitn(4, ' ');
                let mut next = || parts.next().unwrap_or_default();
                let (port, alpn, status, request) = (next(), next(), next(), next());
                Logged {
                    client_port: port.parse().unwrap_or(0),
                    alpn: alpn.to_owned(),
                    status: status.parse().unwrap_or(0),
                    request: request.trim_matches('"').to_owned(),
                }
            })
            .collect()
    }

    /// Waits until the access log holds `count` requests, and returns them.
    async fn wait_logged(&self, count: usize) -> Vec<Logged> {
        let deadline = Instant::now() + STEP;
        loop {
            let logged = self.logged();
            if logged.len() >= count || Instant::now() >= deadline {
                assert_eq!(logged.len(), count, "{logged:?}");
                return logged;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Nghttpx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- nghttpx on port {} ---\n{}--- end ---",
                self.port,
                self.logs()
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn os_arg(flag: &str, path: &Path) -> OsString {
    let mut arg = OsString::from(flag);
    arg.push(path);
    arg
}

// ---------------------------------------------------------------------------
// wsstream's HTTP/2 client → nghttpx → Python `websockets` (HTTP/1.1).

/// The messages WebSocket `stream` sends: text and binary by turns, from
/// empty to 1 MiB, a few above the 64 KiB initial HTTP/2 window, each
/// different per stream.
fn messages(stream: usize) -> Vec<Message> {
    let sizes = [0usize, 1, 126, 1000, 65_536, 70_000, 16, 300_000, 1 << 20];
    http2_echo::messages(stream, &sizes, "")
}

/// [`STREAMS`] WebSockets at once through `proxy` to the Python backend's
/// `/echo`, then checks in nghttpx's access log that they came as HTTP/2
/// (`alpn`) on one client connection and the backend accepted each.
async fn through_proxy(proxy: &Nghttpx, scheme: &str, options: Options, alpn: &str) {
    let url = format!("{scheme}://127.0.0.1:{}/echo", proxy.port);
    let all = (0..STREAMS).map(|n| echo_over(url.clone(), options.clone(), messages(n), "chat"));
    futures::future::join_all(all).await;

    let logged = proxy.wait_logged(STREAMS).await;
    for line in &logged {
        assert_eq!(line.alpn, alpn, "{line:?}");
        assert!(
            line.request.starts_with("CONNECT ") && line.request.ends_with(" HTTP/2"),
            "{line:?}"
        );
        assert_eq!(line.status, 101, "the backend's answer: {line:?}");
    }
    let port = logged[0].client_port;
    assert!(
        logged.iter().all(|line| line.client_port == port),
        "the WebSockets came on more than one connection: {logged:?}"
    );
}

/// wsstream's client over cleartext HTTP/2 (prior knowledge) to nghttpx,
/// which forwards each WebSocket to Python `websockets` over HTTP/1.1.
#[tokio::test]
async fn wsstream_h2c_client_through_nghttpx_to_python_websockets() {
    let Some(program) = nghttpx_or_skip() else {
        return;
    };
    let backend = PythonServer::echo(&["--protocols", "chat"]);
    let proxy = Nghttpx::start(
        program,
        ";no-tls",
        &format!("127.0.0.1,{}", backend.port()),
        &[],
    );
    let options = Options::default()
        .http_version(HttpVersion::RequireHttp2)
        .http2_prior_knowledge(true)
        .protocols(["chat"]);
    through_proxy(&proxy, "ws", options, "h2c").await;
}

/// The same over TLS: nghttpx's frontend with the test certificate, HTTP/2
/// chosen by ALPN.
#[cfg(feature = "tls")]
#[tokio::test]
async fn wsstream_h2_client_over_tls_through_nghttpx_to_python_websockets() {
    let Some(program) = nghttpx_or_skip() else {
        return;
    };
    let pki = certs::TestPki::generate(&["127.0.0.1", "localhost"]);
    let backend = PythonServer::echo(&["--protocols", "chat"]);
    // nghttpx takes the frontend's key and certificate as its two operands.
    let proxy = Nghttpx::start(
        program,
        "",
        &format!("127.0.0.1,{}", backend.port()),
        &[pki.key_pem.clone().into(), pki.cert_pem.clone().into()],
    );
    let options = Options::default()
        .http_version(HttpVersion::RequireHttp2)
        .tls_config(Arc::new(pki.client_config()))
        .protocols(["chat"]);
    through_proxy(&proxy, "wss", options, "h2").await;
}

// ---------------------------------------------------------------------------
// HTTP/1.1 clients (Python `websockets`) → nghttpx → wsstream's hyper HTTP/2
// server.

/// Runs `tests/peers/python/client.py URL ARGS` (HTTP/1.1 only) to its
/// end; it is killed if the step times out.
async fn python_client(url: &str, args: &[&str]) -> std::process::Output {
    let run = tokio::process::Command::new(python::interpreter())
        .arg(python::scripts_dir().join("client.py"))
        .arg(url)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    within("the Python client", run).await.unwrap()
}

/// Python `websockets` clients, HTTP/1.1 only, through nghttpx to
/// wsstream's HTTP/2 server: nghttpx sends each `Upgrade: websocket` on as
/// an extended CONNECT, all on one backend connection, and the
/// permessage-deflate offer and answer through; every message comes back
/// and every close is clean.
#[tokio::test]
async fn http1_clients_through_nghttpx_to_the_wsstream_http2_server() {
    let Some(program) = nghttpx_or_skip() else {
        return;
    };
    let options = ServerOptions::default();
    #[cfg(feature = "deflate")]
    let options = options.deflate(wsstream::DeflateConfig::default());
    let server = hyper_h2_echo_server(options, plain).await;
    let proxy = Nghttpx::start(
        program,
        ";no-tls",
        &format!("127.0.0.1,{};;proto=h2", server.port),
        &[],
    );
    // The client alternates text and binary; the first offers
    // permessage-deflate (websockets' default), the others do not.
    let runs: [(&str, &[&str]); 3] = [
        ("/deflate", &["--count", "20", "--size", "100000"]),
        (
            "/large",
            &["--count", "10", "--size", "300000", "--no-compression"],
        ),
        (
            "/small",
            &["--count", "50", "--size", "10", "--no-compression"],
        ),
    ];
    let front = proxy.port;
    let outputs = futures::future::join_all(runs.iter().map(|(path, args)| async move {
        let url = format!("ws://127.0.0.1:{front}{path}");
        (url.clone(), python_client(&url, args).await)
    }))
    .await;
    for ((url, output), (_, args)) in outputs.iter().zip(&runs) {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains(&format!("OK {}\n", args[1])),
            "{url}: the Python client failed ({}):\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    server.wait_seen(runs.len()).await;
    {
        let seen = server.seen.lock().unwrap();
        let mut paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(paths, ["/deflate", "/large", "/small"]);
        for request in seen.iter() {
            request.assert_websocket_over_http2();
            let deflate = cfg!(feature = "deflate") && request.path == "/deflate";
            assert_eq!(
                request.extensions.starts_with("permessage-deflate"),
                deflate,
                "{request:?}"
            );
            // What the server agreed on reached the HTTP/1.1 client in the 101.
            let (url, output) = outputs
                .iter()
                .find(|(url, _)| url.ends_with(&request.path))
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                stdout.contains(&format!("EXTENSIONS {}\n", request.extensions)),
                "{url}: {stdout}"
            );
        }
    }
    assert_eq!(
        server.connections(),
        1,
        "nghttpx opened more than one HTTP/2 connection to the server"
    );

    let logged = proxy.wait_logged(runs.len()).await;
    for line in &logged {
        assert_eq!(line.alpn, "http/1.1", "{line:?}");
        assert!(line.request.starts_with("GET /"), "{line:?}");
    }
}
