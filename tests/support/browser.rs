//! A real headless Chromium for tests, driven over WebDriver: a test serves
//! a page from 127.0.0.1, opens it with [`Browser::goto`] and runs the
//! page's own JavaScript with [`Browser::execute_async`], getting a JSON
//! value back.
//!
//! The browser comes from Debian's `chromium` and `chromium-driver`
//! packages. The first use checks that `/usr/bin/chromium` and
//! `/usr/bin/chromedriver` are there; when one is missing and the tests run
//! as root, it runs `tests/peers/install-browser.sh` (apt-get). Set
//! `WSSTREAM_CHROMIUM` and `WSSTREAM_CHROMEDRIVER` to use other programs
//! (then nothing is installed).
//!
//! Each [`Browser`] is one `chromedriver` on a free port of 127.0.0.1 and
//! one headless session with a fresh profile in a temporary directory, which
//! also holds chromedriver's log; dropping it ends the session, kills
//! chromedriver and removes the directory (printing the log tails first if
//! the thread is panicking). chromedriver is spoken to with a minimal
//! HTTP/1.1 client over `std::net::TcpStream`. Observed with chromedriver
//! 148: every response carries `Content-Length` (no chunked bodies), and
//! to a request with `Connection: close` it answers `Connection:close` yet
//! leaves the connection open, so reading to EOF would hang: the body is
//! read by its length.
//!
//! Everything is blocking: from a `#[tokio::test]`, call it inside
//! `tokio::task::spawn_blocking` while the server under test runs on the
//! runtime, as [`with_browser`] does.

#![allow(dead_code)]

#[path = "programs.rs"]
mod programs;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use programs::{
    free_port, is_executable, is_root, not_root_hint, read_lossy, run_install_script, unique_dir,
};
use serde_json::{json, Value};

/// The script that installs the packages, relative to the crate root.
const INSTALL_SCRIPT: &str = "tests/peers/install-browser.sh";

/// The Debian packages the browser comes from.
const PACKAGES: &str = "chromium chromium-driver";

/// How long chromedriver may take to answer `GET /status` with `ready`.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);

/// How long a script may run before the browser fails it (the session's
/// `script` timeout), and how long a page may take to load.
const SCRIPT_LIMIT: Duration = Duration::from_secs(60);

/// How long one WebDriver command may take: beyond [`SCRIPT_LIMIT`], so
/// that a slow script fails with chromedriver's own `script timeout`.
const COMMAND_LIMIT: Duration = Duration::from_secs(90);

/// How long the requests made while starting and stopping may take.
const SHORT_LIMIT: Duration = Duration::from_secs(10);

/// How many ports chromedriver is started on before giving up, when the
/// free port found was taken by someone else before chromedriver bound it.
const START_ATTEMPTS: usize = 3;

/// The flags Chromium runs with. It runs as root here, hence
/// `--no-sandbox`; the `--disable-*` ones keep it from reaching out to
/// Google's services (refused in a closed network, and noise anyway).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// Where the two programs are.
struct Programs {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

/// One chromedriver process and one headless Chromium session.
pub struct Browser {
    child: Child,
    addr: SocketAddr,
    session: String,
    /// The browser's process id, killed on drop if ending the session fails.
    browser_pid: Option<u64>,
    /// Holds `profile/` (Chromium's user data) and chromedriver's logs.
    dir: PathBuf,
}

impl Browser {
    /// Starts chromedriver on a free 127.0.0.1 port and a headless session.
    /// Installs the packages via `tests/peers/install-browser.sh` when
    /// missing and running as root.
    ///
    /// Returns `Err(reason)` only when the machine cannot have Chromium (it
    /// is not installed and we are not root, or there is no apt-get): the
    /// caller prints the reason and skips. Any other failure (the install
    /// failed, the driver or the browser does not start) panics with
    /// chromedriver's log tail.
    pub fn start() -> Result<Browser, String> {
        Self::start_with_args(&[])
    }

    /// [`start`](Self::start) with `extra` command-line flags for Chromium
    /// after the usual ones (for instance
    /// `--ignore-certificate-errors-spki-list=...` to trust a test
    /// certificate).
    pub fn start_with_args(extra: &[String]) -> Result<Browser, String> {
        let programs = programs()?;
        let mut taken = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let mut driver = spawn_driver(programs, port);
            match driver.wait_ready() {
                Ok(()) => {
                    driver.new_session(programs, extra);
                    return Ok(driver);
                }
                // chromedriver prints `bind() failed: Address already in use`.
                Err(why) if driver.read_log("output.log").contains("already in use") => {
                    taken.push(format!("port {port}: {why}"));
                }
                Err(why) => driver.fail(&format!("chromedriver did not start: {why}")),
            }
        }
        panic!(
            "chromedriver could not listen on a free port in {START_ATTEMPTS} attempts: {}",
            taken.join("; ")
        );
    }

    /// Navigates to `url` and waits until the page has loaded.
    pub fn goto(&self, url: &str) {
        self.command("POST", "url", &json!({ "url": url }));
    }

    /// Runs `script` in the page with WebDriver's "Execute Async Script":
    /// `script` is a function body whose arguments are `args` (an array;
    /// `null` is none and any other value is the one argument) followed by
    /// the completion callback, so `arguments[arguments.length - 1](value)`
    /// finishes it. Returns that value as JSON. Panics on a script error or
    /// when the callback is not called within the script timeout (60 s).
    pub fn execute_async(&self, script: &str, args: Value) -> Value {
        let body = json!({ "script": script, "args": as_args(args) });
        self.command("POST", "execute/async", &body)
    }

    /// Calls the page's function `function` with `args` (an array) through
    /// [`execute`](Self::execute); returns what its promise resolved to.
    pub fn call(&self, function: &str, args: Value) -> Value {
        self.execute(&format!("return {function}(...arguments);"), args)
    }

    /// Runs `script` in the page with WebDriver's "Execute Script": a
    /// function body whose arguments are `args` (as for
    /// [`execute_async`](Self::execute_async)); returns what it returns,
    /// after awaiting it if it is a promise.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        let body = json!({ "script": script, "args": as_args(args) });
        self.command("POST", "execute/sync", &body)
    }

    /// The browser console's lines since the previous call, each as
    /// `LEVEL message` (the message starts with the script's URL and
    /// position), for failure messages; empty when they cannot be had.
    pub fn console_log(&self) -> Vec<String> {
        let path = format!("/session/{}/se/log", self.session);
        let Ok((_, body)) = self.request(
            "POST",
            &path,
            Some(&json!({ "type": "browser" })),
            SHORT_LIMIT,
        ) else {
            return Vec::new();
        };
        let entries = body["value"].as_array().cloned().unwrap_or_default();
        entries
            .iter()
            .map(|entry| {
                let level = entry["level"].as_str().unwrap_or("?");
                let message = entry["message"].as_str().unwrap_or_default();
                format!("{level} {message}")
            })
            .collect()
    }

    /// The last lines of chromedriver's log, for failure messages.
    pub fn driver_log_tail(&self) -> String {
        let mut tail = String::new();
        for name in ["chromedriver.log", "output.log"] {
            let text = self.read_log(name);
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(40);
            tail.push_str(&format!(
                "--- {name} (last {} lines) ---\n",
                lines.len() - from
            ));
            for line in &lines[from..] {
                tail.push_str(line);
                tail.push('\n');
            }
        }
        tail
    }

    /// The file `name` of the directory holding chromedriver's logs.
    fn read_log(&self, name: &str) -> String {
        read_lossy(&self.dir.join(name))
    }

    /// Sends a command of the session (`path` is relative to
    /// `/session/{id}/`) and returns the response's `value`; panics with
    /// the WebDriver error otherwise.
    fn command(&self, method: &str, path: &str, body: &Value) -> Value {
        let path = format!("/session/{}/{path}", self.session);
        match self.request(method, &path, Some(body), COMMAND_LIMIT) {
            Ok((200, mut response)) => response["value"].take(),
            // The drop that follows prints the browser console.
            Ok((status, response)) => panic!(
                "WebDriver {method} {path} failed (HTTP {status}): {}",
                webdriver_error(&response)
            ),
            Err(err) => self.fail(&format!("WebDriver {method} {path}: {err}")),
        }
    }

    /// One HTTP request to chromedriver: status code and JSON body.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        limit: Duration,
    ) -> Result<(u16, Value), String> {
        http(self.addr, method, path, body, limit)
    }

    /// Polls `GET /status` until chromedriver says it is ready; `Err` when
    /// it exits first (its logs say why) or does not get ready in time.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_LIMIT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Err(format!("exited with {status}")),
                Ok(None) => {}
                Err(err) => return Err(format!("could not poll the process: {err}")),
            }
            if let Ok((200, body)) = self.request("GET", "/status", None, SHORT_LIMIT) {
                if body["value"]["ready"] == true {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "not ready on {} within {STARTUP_LIMIT:?}",
                    self.addr
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Creates the headless session, with the script and page-load timeouts
    /// and the browser console kept for [`console_log`](Self::console_log),
    /// Chromium running with [`CHROMIUM_ARGS`], its profile and `extra`.
    fn new_session(&mut self, programs: &Programs, extra: &[String]) {
        let profile = self.dir.join("profile");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|arg| (*arg).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.extend(extra.iter().cloned());
        let limit = SCRIPT_LIMIT.as_millis();
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": programs.chromium,
                        "args": args,
                    },
                    "goog:loggingPrefs": { "browser": "ALL" },
                    "timeouts": { "script": limit, "pageLoad": limit },
                }
            }
        });
        match self.request("POST", "/session", Some(&capabilities), COMMAND_LIMIT) {
            Ok((200, response)) => {
                let value = &response["value"];
                let Some(session) = value["sessionId"].as_str() else {
                    self.fail(&format!("new session: no sessionId in {response}"));
                };
                self.session = session.to_owned();
                self.browser_pid = value["capabilities"]["goog:processID"].as_u64();
            }
            Ok((status, response)) => self.fail(&format!(
                "the browser did not start (HTTP {status}): {}",
                webdriver_error(&response)
            )),
            Err(err) => self.fail(&format!("new session: {err}")),
        }
    }

    /// Panics with `what` and chromedriver's log tail (the drop that
    /// follows cleans up).
    fn fail(&self, what: &str) -> ! {
        panic!("{what}\n{}", self.driver_log_tail());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.session.is_empty() {
            let console = self.console_log();
            eprintln!(
                "--- browser console ({} lines) ---\n{}{}--- end ---",
                console.len(),
                console
                    .iter()
                    .map(|line| format!("{line}\n"))
                    .collect::<String>(),
                self.driver_log_tail()
            );
        }
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let ended = matches!(
                self.request("DELETE", &path, None, SHORT_LIMIT),
                Ok((200, _))
            );
            if let (false, Some(pid)) = (ended, self.browser_pid) {
                // chromedriver could not quit the browser: kill it by its id.
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `steps` on a blocking thread (call it from a `#[tokio::test]`)
/// with a [`Browser`] started with the Chromium `flags` (see
/// [`Browser::start_with_args`]), and panics if that takes longer than
/// `limit`. `None` when the machine cannot have Chromium (the reason is
/// printed).
pub async fn with_browser<T: Send + 'static>(
    flags: Vec<String>,
    limit: Duration,
    steps: impl FnOnce(&Browser) -> T + Send + 'static,
) -> Option<T> {
    let run = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let browser = match Browser::start_with_args(&flags) {
            Ok(browser) => browser,
            Err(reason) => {
                // On the terminal even when the tests pass: a skipped
                // browser test is news.
                programs::announce(&format!("skipping a browser test: {reason}"));
                return None;
            }
        };
        eprintln!("Browser::start took {:?}", started.elapsed());
        Some(steps(&browser))
    });
    match tokio::time::timeout(limit, run).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => std::panic::resume_unwind(join.into_panic()),
        Err(_) => panic!("the browser steps took longer than {limit:?}"),
    }
}

/// Starts chromedriver on `port` with its logs in a new temporary
/// directory; the returned [`Browser`] has no session yet.
fn spawn_driver(programs: &Programs, port: u16) -> Browser {
    let dir = unique_dir("browser");
    std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("creating {}: {err}", dir.display()));
    let output = dir.join("output.log");
    let out = std::fs::File::create(&output)
        .unwrap_or_else(|err| panic!("creating {}: {err}", output.display()));
    let err = out
        .try_clone()
        .unwrap_or_else(|err| panic!("duplicating a file handle: {err}"));
    let mut command = Command::new(&programs.chromedriver);
    command
        .arg(format!("--port={port}"))
        .arg(format!(
            "--log-path={}",
            dir.join("chromedriver.log").display()
        ))
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let child = command.spawn().unwrap_or_else(|err| {
        let _ = std::fs::remove_dir_all(&dir);
        panic!("could not start {command:?}: {err}")
    });
    Browser {
        child,
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        session: String::new(),
        browser_pid: None,
        dir,
    }
}

/// The programs, found (and installed if need be) once per process.
fn programs() -> Result<&'static Programs, String> {
    static PROGRAMS: OnceLock<Result<Programs, String>> = OnceLock::new();
    PROGRAMS.get_or_init(prepare).as_ref().map_err(Clone::clone)
}

fn prepare() -> Result<Programs, String> {
    // A program named by the environment is used as it is, never installed.
    let overridden = |var: &str, default: &str| match std::env::var_os(var) {
        Some(path) if !is_executable(Path::new(&path)) => {
            panic!(
                "{var}={} is not an executable file",
                Path::new(&path).display()
            )
        }
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(default),
    };
    let programs = Programs {
        chromium: overridden("WSSTREAM_CHROMIUM", "/usr/bin/chromium"),
        chromedriver: overridden("WSSTREAM_CHROMEDRIVER", "/usr/bin/chromedriver"),
    };
    let missing = || {
        [&programs.chromium, &programs.chromedriver]
            .into_iter()
            .filter(|path| !is_executable(path))
            .map(|path| path.display().to_string())
            .collect::<Vec<_>>()
    };
    let before = missing();
    if before.is_empty() {
        return Ok(programs);
    }
    if !is_root() {
        return Err(format!(
            "{} missing and {}",
            before.join(" and "),
            not_root_hint(INSTALL_SCRIPT, PACKAGES)
        ));
    }
    if !is_executable(Path::new("/usr/bin/apt-get")) {
        return Err(format!(
            "{} missing and no apt-get to install {PACKAGES}",
            before.join(" and ")
        ));
    }
    if let Err(why) = run_install_script(INSTALL_SCRIPT, PACKAGES) {
        panic!("installing {PACKAGES} failed: {why}");
    }
    let after = missing();
    assert!(
        after.is_empty(),
        "installing {PACKAGES} with `bash {INSTALL_SCRIPT}` left {after:?} missing"
    );
    Ok(programs)
}

/// A minimal HTTP/1.1 exchange with chromedriver at `addr`: sends one
/// request with a JSON body and `Connection: close`, reads the response head,
/// then `Content-Length` bytes of body (or up to EOF without one). Returns
/// the status code and the body as JSON.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
    limit: Duration,
) -> Result<(u16, Value), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, limit).map_err(|err| format!("connect: {err}"))?;
    stream
        .set_read_timeout(Some(limit))
        .and_then(|()| stream.set_write_timeout(Some(limit)))
        .map_err(|err| format!("setting timeouts: {err}"))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|err| format!("sending the request: {err}"))?;

    let mut received = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut head_end = None;
    let mut length: Option<usize> = None;
    loop {
        if let Some(end) = head_end {
            if length.is_some_and(|length| received.len() >= end + length) {
                break;
            }
        }
        let n = stream
            .read(&mut chunk)
            .map_err(|err| format!("reading the response: {err}"))?;
        if n == 0 {
            break;
        }
        received.extend_from_slice(&chunk[..n]);
        if head_end.is_none() {
            if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                head_end = Some(at + 4);
                let head = String::from_utf8_lossy(&received[..at]);
                if header(&head, "transfer-encoding").is_some() {
                    return Err(format!("chunked responses are not supported:\n{head}"));
                }
                length = header(&head, "content-length").and_then(|value| value.parse().ok());
            }
        }
    }
    let end = head_end.ok_or_else(|| {
        format!(
            "connection closed before the response head: {:?}",
            String::from_utf8_lossy(&received)
        )
    })?;
    let head = String::from_utf8_lossy(&received[..end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status code in {head:?}"))?;
    let body = &received[end..length.map_or(received.len(), |length| end + length)];
    let json = serde_json::from_slice(body).map_err(|err| {
        format!(
            "HTTP {status} with a body that is not JSON ({err}): {:?}",
            String::from_utf8_lossy(body)
        )
    })?;
    Ok((status, json))
}

/// The value of header `name` (lower case) in a response head. chromedriver
/// writes `Content-Length:250`, without a space.
fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// A WebDriver error response as `error: message`, without the stack trace
/// of chromedriver's own frames.
fn webdriver_error(response: &Value) -> String {
    let value = &response["value"];
    match (value["error"].as_str(), value["message"].as_str()) {
        // chromedriver's messages usually start with the error already.
        (Some(error), Some(message)) if !message.starts_with(error) => {
            format!("{error}: {message}")
        }
        (Some(_), Some(message)) => message.to_owned(),
        _ => response.to_string(),
    }
}

/// Script arguments as WebDriver wants them: an array.
fn as_args(args: Value) -> Value {
    match args {
        Value::Null => json!([]),
        Value::Array(_) => args,
        one => json!([one]),
    }
}
