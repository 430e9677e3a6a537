//! Real proxy servers from Debian packages, started on 127.0.0.1 for the
//! proxy tests: `tinyproxy` (HTTP `CONNECT`), `microsocks` (SOCKS5) and
//! `stunnel4` (TLS in front of tinyproxy, which makes an `https://` proxy).
//!
//! The first use checks that the three programs are installed; when one is
//! missing and the tests run as root, it runs `tests/peers/install-proxies.sh`
//! (apt-get). Each proxy runs in the foreground as a child of the test, on a
//! free port of 127.0.0.1, with its configuration and logs in a temporary
//! directory; dropping the [`ProxyProcess`] kills it and removes the
//! directory. The functions are synchronous, so `#[tokio::test]` bodies can
//! call them before their first `.await`.
//!
//! The behaviours that tests depend on were observed by hand with the
//! Debian bookworm packages (tinyproxy 1.11.1, microsocks 1.0.3,
//! stunnel 5.68) and are written on [`tinyproxy`], [`microsocks`] and
//! [`stunnel_front`].

#![allow(dead_code)]

#[path = "programs.rs"]
mod programs;

use std::ffi::OsString;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use programs::{
    find_program, free_port, is_root, not_root_hint, read_lossy, run_install_script, unique_dir,
};

/// How long a proxy may take to listen on its port.
const STARTUP_LIMIT: Duration = Duration::from_secs(10);

/// How often the port is tried while a proxy starts.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How many ports a proxy is started on before giving up, when the free
/// port found was taken by someone else before the proxy bound it.
const START_ATTEMPTS: usize = 3;

/// The script that installs the packages, relative to the crate root.
const INSTALL_SCRIPT: &str = "tests/peers/install-proxies.sh";

/// The Debian packages the proxies come from.
const PACKAGES: &str = "tinyproxy microsocks stunnel4";

/// Where the proxy programs are installed.
struct Binaries {
    tinyproxy: PathBuf,
    microsocks: PathBuf,
    stunnel: PathBuf,
}

/// Checks, once per process, that `tinyproxy`, `microsocks` and `stunnel4`
/// (or `stunnel`) are installed. When one is missing and the tests run as
/// root, runs `tests/peers/install-proxies.sh` to install the Debian
/// packages. Panics naming the packages and the script if they are still
/// missing: the proxy tests must not pass without running.
pub fn ensure_installed() {
    binaries();
}

fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Result<Binaries, String>> = OnceLock::new();
    match BINARIES.get_or_init(prepare) {
        Ok(binaries) => binaries,
        Err(why) => panic!("cannot run the proxy tests: {why}"),
    }
}

fn prepare() -> Result<Binaries, String> {
    let missing = match locate() {
        Ok(binaries) => return Ok(binaries),
        Err(missing) => missing,
    };
    let attempt = if is_root() {
        match run_install_script(INSTALL_SCRIPT, PACKAGES) {
            Ok(()) => String::new(),
            Err(why) => format!("; {why}"),
        }
    } else {
        format!("; {}", not_root_hint(INSTALL_SCRIPT, PACKAGES))
    };
    locate().map_err(|still| {
        format!(
            "the programs of the Debian packages {PACKAGES} are needed; missing: {} \
             (before the install attempt: {}){attempt}",
            still.join(", "),
            missing.join(", ")
        )
    })
}

/// The programs, or the names of the packages whose program is missing.
fn locate() -> Result<Binaries, Vec<&'static str>> {
    let tinyproxy = find_program(&["tinyproxy"]);
    let microsocks = find_program(&["microsocks"]);
    let stunnel = find_program(&["stunnel4", "stunnel"]);
    match (tinyproxy, microsocks, stunnel) {
        (Some(tinyproxy), Some(microsocks), Some(stunnel)) => Ok(Binaries {
            tinyproxy,
            microsocks,
            stunnel,
        }),
        (tinyproxy, microsocks, stunnel) => Err([
            (tinyproxy.is_none(), "tinyproxy"),
            (microsocks.is_none(), "microsocks"),
            (stunnel.is_none(), "stunnel4"),
        ]
        .into_iter()
        .filter_map(|(missing, package)| missing.then_some(package))
        .collect()),
    }
}

/// A proxy server running as a child process on 127.0.0.1. Dropping it
/// kills the process and removes its directory (configuration and logs);
/// if the thread is panicking, the log is printed first.
pub struct ProxyProcess {
    /// Where the proxy listens: 127.0.0.1 and a port that was free.
    pub addr: SocketAddr,
    name: &'static str,
    child: Child,
    dir: PathBuf,
    log: PathBuf,
    output: PathBuf,
}

impl ProxyProcess {
    /// The proxy's URL with `scheme`, e.g. `http://127.0.0.1:40123` (no
    /// trailing slash).
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }

    /// The proxy's URL with credentials, e.g.
    /// `socks5://user:pass@127.0.0.1:40123`; both are percent-encoded
    /// (everything but RFC 3986 unreserved characters).
    pub fn url_with_auth(&self, scheme: &str, user: &str, pass: &str) -> String {
        format!(
            "{scheme}://{}:{}@{}",
            percent_encode(user),
            percent_encode(pass),
            self.addr
        )
    }

    /// The proxy's log so far: tinyproxy's `LogFile` (level Info: each
    /// request line, e.g. `CONNECT 127.0.0.1:PORT`, and the target it
    /// opened), or what microsocks (`client[N] 127.0.0.1: connected to
    /// HOST:PORT`) and stunnel (level info) write on stdout/stderr. The
    /// readiness probe, a TCP connection closed at once, shows up first
    /// (stunnel logs it as `SSL_accept: ... unexpected eof`).
    pub fn log(&self) -> String {
        read_lossy(&self.log)
    }

    /// What the process wrote on stdout and stderr (for tinyproxy, only
    /// startup errors; for the others the same as [`log`](Self::log)).
    pub fn output(&self) -> String {
        read_lossy(&self.output)
    }

    /// The directory holding the configuration and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process id, e.g. to stop it with a signal.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the proxy now (SIGKILL) and waits for it: established tunnels
    /// are cut and new connections refused. The directory stays until drop.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything the proxy wrote, for failure messages.
    fn all_output(&self) -> String {
        let log = self.log();
        if self.log == self.output {
            return log;
        }
        format!("{log}--- stdout/stderr ---\n{}", self.output())
    }

    fn wait_ready(&mut self) -> Startup {
        let deadline = Instant::now() + STARTUP_LIMIT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    let output = self.all_output().to_ascii_lowercase();
                    return if output.contains("in use")
                        || output.contains("could not create listening sockets")
                    {
                        Startup::PortTaken(format!("exited with {status}"))
                    } else {
                        Startup::Failed(format!("exited with {status}"))
                    };
                }
                Ok(None) => {}
                Err(err) => return Startup::Failed(format!("could not poll the process: {err}")),
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(500)).is_ok() {
                // Something listens; make sure it is our child and not a
                // process that took the port after we found it free.
                return match listener_owned_by(self.child.id(), self.addr.port()) {
                    Some(false) => Startup::PortTaken("another process listens there".into()),
                    Some(true) | None => Startup::Ready,
                };
            }
            if Instant::now() >= deadline {
                return Startup::Failed(format!(
                    "did not listen on {} within {STARTUP_LIMIT:?}",
                    self.addr
                ));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- {} log ({}) ---\n{}--- end ---",
                self.name,
                self.addr,
                self.all_output()
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

enum Startup {
    Ready,
    PortTaken(String),
    Failed(String),
}

/// Starts tinyproxy as an HTTP proxy on 127.0.0.1, in the foreground
/// (`tinyproxy -d -c CONF`), allowing clients from 127.0.0.1 and `CONNECT`
/// to any port (the configuration has no `ConnectPort` line, which
/// tinyproxy reads as "all ports"; one `ConnectPort 443` line would answer
/// `403 Access violation` to other ports). With `basic_auth`, adds
/// `BasicAuth user pass`: tinyproxy's configuration grammar allows only
/// `[A-Za-z0-9._-]` there, so other characters panic here. No `User` line:
/// run as root it only warns ("You SHOULD set a UserName") and stays root.
///
/// Observed with tinyproxy 1.11.1 (Debian bookworm):
///
/// - Tunnel: `HTTP/1.0 200 Connection established\r\nProxy-agent:
///   tinyproxy/1.11.1\r\n\r\n` (HTTP/1.0 even to an HTTP/1.1 request; no
///   body, no `Content-Length`). Bytes sent in the same write as the
///   request head are forwarded into the tunnel. Host names (`localhost`)
///   and IPv6 literals (`[::1]:port`) work as targets.
/// - No `Proxy-Authorization` when auth is on: `HTTP/1.0 407 Proxy
///   Authentication Required` with `Proxy-Authenticate: Basic
///   realm="Tinyproxy"`, `Content-Type: text/html`, `Connection: close`,
///   an HTML body without `Content-Length`, then the connection is closed.
///   A credential in `Authorization:` (not `Proxy-`) counts as none: 407.
/// - Wrong credentials (wrong user or password, malformed base64, a
///   non-Basic scheme): **`HTTP/1.0 401 Unauthorized`** with
///   `WWW-Authenticate: Basic realm="Tinyproxy"`, HTML body, then close.
///   Not 407: a tinyproxy bug (tinyproxy/tinyproxy#532, fixed upstream
///   after 1.11.2), so a client must treat 401 from a proxy as a rejection
///   too.
/// - Target refuses the connection, or its name does not resolve:
///   `HTTP/1.1 500 Unable to connect` (note HTTP/1.1), `Server:
///   tinyproxy/1.11.1`, `Content-Type: text/html`, `Connection: close`,
///   HTML body without `Content-Length`, then close.
/// - An incomplete request head is waited for (no timeout within seconds).
///
/// Every response except the 200 carries a `Server:` header and an HTML
/// body and is followed by the proxy closing the connection.
pub fn tinyproxy(basic_auth: Option<(&str, &str)>) -> ProxyProcess {
    if let Some((user, pass)) = basic_auth {
        for word in [user, pass] {
            assert!(
                !word.is_empty()
                    && word
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)),
                "tinyproxy's BasicAuth takes [A-Za-z0-9._-]+ only, not {word:?}"
            );
        }
    }
    let program = &binaries().tinyproxy;
    start("tinyproxy", program, Some("tinyproxy.log"), |dir, port| {
        let log = dir.join("tinyproxy.log");
        let mut conf = format!(
            "Port {port}\n\
             Listen 127.0.0.1\n\
             Timeout 600\n\
             LogFile \"{}\"\n\
             LogLevel Info\n\
             MaxClients 100\n\
             Allow 127.0.0.1\n",
            log.display()
        );
        if let Some((user, pass)) = basic_auth {
            conf.push_str(&format!("BasicAuth {user} {pass}\n"));
        }
        let path = dir.join("tinyproxy.conf");
        std::fs::write(&path, conf).expect("writing tinyproxy.conf");
        vec!["-d".into(), "-c".into(), path.into()]
    })
}

/// Starts microsocks as a SOCKS5 proxy on 127.0.0.1
/// (`microsocks -i 127.0.0.1 -p PORT [-u USER -P PASS]`).
///
/// Observed with microsocks 1.0.3 (Debian bookworm):
///
/// - Method selection: without `auth` it picks `00` (no auth) when offered
///   and answers `05 FF` then closes when the client offers only `02`. With
///   `auth` it picks `02` (username/password) whenever it is offered, even
///   next to `00`, and answers `05 FF` then closes if only `00` is offered:
///   no unauthenticated access.
/// - RFC 1929: right credentials `01 00`; wrong user or password (or an
///   empty user) `01 02`, then it closes; a sub-negotiation version other
///   than 1 gets `01 01`, then close.
/// - RFC 1928 replies always carry `ATYP 1` with BND.ADDR `0.0.0.0` and
///   BND.PORT `0`: success `05 00 00 01 00 00 00 00 00 00`. Target refused
///   the connection: `05 05` (connection refused), then close; domain that
///   does not resolve: `05 01` (general failure), then close; unknown ATYP:
///   `05 08`; BIND and UDP ASSOCIATE: `05 07` (command not supported).
/// - `ATYP 3` (domain) is resolved by microsocks with getaddrinfo:
///   `localhost` works (reaches 127.0.0.1), and so does an IP literal sent
///   as a domain. `ATYP 4` (`::1`) works.
/// - Quirk: every handshake step is read with a single `recv`, and bytes
///   beyond the expected message are dropped (rofl0r/microsocks#105). A
///   client that sends greeting and request (or request and first payload)
///   in one write stalls or loses data: it must wait for each reply, and a
///   message split across writes fails (a split greeting gets `05 FF`).
/// - It blanks the `-u`/`-P` arguments in its command line (`ps` shows
///   spaces).
pub fn microsocks(auth: Option<(&str, &str)>) -> ProxyProcess {
    if let Some((user, pass)) = auth {
        assert!(
            !user.is_empty() && !pass.is_empty() && user.len() <= 255 && pass.len() <= 255,
            "SOCKS5 user and password must be 1 to 255 bytes"
        );
    }
    let program = &binaries().microsocks;
    start("microsocks", program, None, |_dir, port| {
        let mut args: Vec<OsString> = vec![
            "-i".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string().into(),
        ];
        if let Some((user, pass)) = auth {
            args.extend(["-u".into(), user.into(), "-P".into(), pass.into()]);
        }
        args
    })
}

/// Starts stunnel as a TLS server on 127.0.0.1 that forwards the plaintext
/// to `forward_to`: in front of [`tinyproxy`], it makes an `https://` proxy
/// (TLS to the proxy, then `CONNECT` inside). `cert_pem` is the server
/// certificate chain and `key_pem` its private key (PKCS#8 or traditional
/// PEM), e.g. `TestPki::cert_pem` and `TestPki::key_pem` from `certs.rs`.
///
/// Runs in the foreground (`foreground = yes`, no pid file, no setuid,
/// `TIMEOUTclose = 0`), logging at level info to stderr (see
/// [`ProxyProcess::log`]). Observed with stunnel 5.68 / OpenSSL 3.0: TLS 1.3
/// by default, TLS 1.2 accepted; no client certificate asked for; no ALPN;
/// the certificate is sent whatever the SNI. A client that speaks plaintext
/// to it gets a TCP reset without a byte. The forwarded connections come
/// from 127.0.0.1, so tinyproxy's `Allow 127.0.0.1` admits them.
pub fn stunnel_front(cert_pem: &Path, key_pem: &Path, forward_to: SocketAddr) -> ProxyProcess {
    let cert = std::path::absolute(cert_pem).expect("absolute path of the certificate");
    let key = std::path::absolute(key_pem).expect("absolute path of the key");
    let program = &binaries().stunnel;
    start("stunnel", program, None, |dir, port| {
        let conf = format!(
            "foreground = yes\n\
             pid =\n\
             debug = info\n\
             \n\
             [proxy]\n\
             accept = 127.0.0.1:{port}\n\
             connect = {forward_to}\n\
             cert = {}\n\
             key = {}\n\
             TIMEOUTclose = 0\n",
            cert.display(),
            key.display()
        );
        let path = dir.join("stunnel.conf");
        std::fs::write(&path, conf).expect("writing stunnel.conf");
        vec![path.into()]
    })
}

/// Starts `program` with the arguments `configure(dir, port)` returns, on a
/// free port; retries on a new port when the port was taken meanwhile.
/// `log_name` is the proxy's own log file in `dir`, if it has one.
fn start(
    name: &'static str,
    program: &Path,
    log_name: Option<&str>,
    configure: impl Fn(&Path, u16) -> Vec<OsString>,
) -> ProxyProcess {
    let mut taken = Vec::new();
    for _ in 0..START_ATTEMPTS {
        let port = free_port();
        let dir = unique_dir(name);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|err| panic!("creating {}: {err}", dir.display()));
        let args = configure(&dir, port);
        let output = dir.join("output.log");
        let out = File::create(&output)
            .unwrap_or_else(|err| panic!("creating {}: {err}", output.display()));
        let err = out.try_clone().expect("duplicating the output file handle");
        let mut command = Command::new(program);
        command
            .args(&args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = match command.spawn() {
            Ok(child) => child,
            Err(err) => {
                let _ = std::fs::remove_dir_all(&dir);
                panic!("could not start {command:?}: {err}");
            }
        };
        let mut proxy = ProxyProcess {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            name,
            child,
            log: log_name.map_or_else(|| output.clone(), |log| dir.join(log)),
            output,
            dir,
        };
        match proxy.wait_ready() {
            Startup::Ready => return proxy,
            Startup::PortTaken(why) => {
                taken.push(format!("port {port}: {why}"));
            }
            Startup::Failed(why) => {
                proxy.kill();
                let output = proxy.all_output();
                drop(proxy);
                panic!("{command:?} {why}; its log:\n{output}");
            }
        }
    }
    panic!(
        "{name} could not listen on a free port in {START_ATTEMPTS} attempts: {}",
        taken.join("; ")
    );
}

/// Whether process `pid` owns a listening TCP socket on `port`, from
/// `/proc` (Linux); `None` when that cannot be told.
fn listener_owned_by(pid: u32, port: u16) -> Option<bool> {
    let mut sockets = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st ... inode (the tenth field).
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let listens_on_port = *state == "0A"
                && local
                    .rsplit_once(':')
                    .is_some_and(|(_, hex)| u16::from_str_radix(hex, 16) == Ok(port));
            if listens_on_port {
                sockets.push(PathBuf::from(format!("socket:[{inode}]")));
            }
        }
    }
    if sockets.is_empty() {
        return None;
    }
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| sockets.contains(&target))),
    )
}

/// Percent-encodes all but RFC 3986 unreserved characters, for userinfo.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
