//! Two network namespaces joined by links the test controls, for the
//! network-fault tests (`tests/faults/`): a client namespace and a server
//! namespace, created fresh for each test and deleted when its [`NetPair`]
//! is dropped (also when the test panics).
//!
//! - A veth pair, `wsf0` in each namespace: 10.202.N.1/30 on the client's
//!   side, 10.202.N.2/30 on the server's, a clean link.
//! - On request ([`NetPair::with_lossy_link`]), a lossy one: a TUN device
//!   `wsflossy` in each namespace, 10.203.N.1 and 10.203.N.2 as a
//!   point-to-point pair, and the relay of `lossy_link.rs` between them.
//! - A blackhole ([`NetPair::blackhole`]): an nftables table in the
//!   namespace(s) that drops every packet arriving on the veth (netdev
//!   ingress), so the packets leave their sender as usual and vanish: no
//!   FIN, no RST, no ICMP, no local error for either side.
//!
//! The namespaces have no other interface than loopback: nothing in them can
//! reach, or be reached from, any address outside them, and none of these
//! addresses exists outside them. Code runs inside one on a thread of its
//! own ([`Netns::spawn`], [`Netns::run`]): the thread enters the namespace
//! with `setns` (checked against the namespace's inode before anything else
//! runs), then a current-thread tokio runtime built there creates its
//! sockets in the namespace. Programs run there through `ip netns exec`.
//!
//! Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN), `ip` (iproute2), `nft`
//! (nftables) and `/dev/net/tun`. Without root, [`NetPair::new`] says on the
//! terminal which test is skipped and why, and returns `None`; as root, a
//! missing program is installed with `tests/peers/install-netfaults.sh`,
//! and anything that still fails panics: CI runs as root and must run these
//! tests. Namespace names are `wsf-PID-COUNTER-c` and `-s`; those that a
//! killed run left behind (their process is gone) are deleted by the next
//! run.

#![allow(dead_code)]

#[path = "lossy_link.rs"]
pub mod lossy_link;
#[path = "programs.rs"]
pub mod programs;

use std::fs::File;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use lossy_link::{open_tun, LinkParams, LossyLink};
use programs::{announce, find_program, is_root, run_install_script};

/// The script that installs `nft` (and `ip`), relative to the crate root.
const INSTALL_SCRIPT: &str = "tests/peers/install-netfaults.sh";

/// The Debian packages it installs.
const PACKAGES: &str = "nftables iproute2";

/// Where `ip netns add` puts its namespaces.
const NETNS_DIR: &str = "/var/run/netns";

/// The veth device, the same name in both namespaces.
pub const VETH: &str = "wsf0";

/// The TUN device of the lossy link, the same name in both namespaces.
pub const TUN: &str = "wsflossy";

/// The nftables table of the blackhole.
const BLACKHOLE_TABLE: &str = "wsstream_faults";

/// The programs the namespaces are built with.
struct Tools {
    ip: PathBuf,
    nft: PathBuf,
}

/// `ip` and `nft`, installed first if missing (as root); `Err` says why
/// they cannot be had. Once per process, which also deletes the
/// namespaces that killed runs left behind.
fn tools() -> Result<&'static Tools, String> {
    static TOOLS: OnceLock<Result<Tools, String>> = OnceLock::new();
    TOOLS
        .get_or_init(|| {
            let locate = || Some((find_program(&["ip"])?, find_program(&["nft"])?));
            let (ip, nft) = match locate() {
                Some(found) => found,
                None => {
                    let packages = if find_program(&["ip"]).is_some() {
                        "nftables"
                    } else {
                        PACKAGES
                    };
                    run_install_script(INSTALL_SCRIPT, packages)?;
                    locate().ok_or_else(|| {
                        format!("`{INSTALL_SCRIPT}` ran, but `ip` or `nft` is still missing")
                    })?
                }
            };
            let tools = Tools { ip, nft };
            remove_stale_namespaces(&tools.ip);
            Ok(tools)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Deletes the `wsf-PID-…` namespaces whose process is gone.
fn remove_stale_namespaces(ip: &Path) {
    let Ok(output) = Command::new(ip).args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix("wsf-")
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = Command::new(ip).args(["netns", "del", name]).output();
        }
    }
}

/// Runs `program args…`; `Err` with its status and output when it fails.
fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> Result<Output, String> {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = format!("{} {}", program.display(), args.join(" "));
    let mut child = command
        .spawn()
        .map_err(|err| format!("could not run `{shown}`: {err}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        pipe.write_all(text.as_bytes())
            .map_err(|err| format!("`{shown}`: writing its input: {err}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|err| format!("`{shown}`: {err}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "`{shown}` failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Which packets the blackhole drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Everything between the namespaces, both ways.
    Both,
    /// What the server sends to the client (dropped on arrival at the client).
    ToClient,
    /// What the client sends to the server (dropped on arrival at the server).
    ToServer,
}

/// One network namespace made by [`NetPair`].
#[derive(Debug)]
pub struct Netns {
    name: String,
    /// Whether the blackhole table is loaded here.
    blackholed: Mutex<bool>,
}

impl Netns {
    /// Its name, for `ip netns exec`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file that stands for the namespace (`/var/run/netns/NAME`).
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    /// Runs `f` to completion on a fresh thread inside the namespace and
    /// returns what it returns (a panic in it is a panic here). For quick,
    /// blocking set-up work: binding a listener, which then stays in the
    /// namespace wherever it is used.
    pub fn run<T, F>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let path = self.path();
        let thread = std::thread::Builder::new()
            .name(format!("in {}", self.name))
            .spawn(move || {
                enter(&path).unwrap_or_else(|err| {
                    panic!("cannot enter network namespace {}: {err}", path.display())
                });
                f()
            })
            .unwrap_or_else(|err| panic!("spawning a thread: {err}"));
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// Starts `f()` on a fresh thread inside the namespace, on a
    /// current-thread tokio runtime of its own (I/O and time enabled),
    /// bounded by `limit`: past it the task panics, naming `what`. The
    /// returned [`NsTask`] resolves to the output, or re-raises the task's
    /// panic where it is awaited.
    pub fn spawn<F, Fut, T>(&self, what: &str, limit: Duration, f: F) -> NsTask<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let path = self.path();
        let label = format!("{what} (in {})", self.name);
        let thread_label = label.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("in {}", self.name))
            .spawn(move || {
                let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    enter(&path).unwrap_or_else(|err| {
                        panic!("cannot enter network namespace {}: {err}", path.display())
                    });
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap_or_else(|err| panic!("building a runtime: {err}"));
                    runtime.block_on(async {
                        tokio::time::timeout(limit, f()).await.unwrap_or_else(|_| {
                            panic!("{thread_label} did not finish within {limit:?}")
                        })
                    })
                }));
                let _ = tx.send(result);
            });
        if let Err(err) = spawned {
            panic!("spawning a thread for {label}: {err}");
        }
        NsTask { rx, label }
    }

    /// `ip netns exec NAME program`: a command that runs in the namespace.
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(&tools_or_panic().ip);
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// `ip -n NAME args…`.
    fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run(&tools()?.ip, &all, None).map(drop)
    }

    /// Loads the blackhole table: every packet arriving on the veth is
    /// dropped.
    fn blackhole_on(&self) -> Result<(), String> {
        let mut on = self
            .blackholed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *on {
            return Ok(());
        }
        let script = format!(
            "table netdev {BLACKHOLE_TABLE} {{\n\
             \tchain ingress {{\n\
             \t\ttype filter hook ingress device \"{VETH}\" priority -500; policy drop;\n\
             \t}}\n\
             }}\n"
        );
        let nft = tools()?.nft.to_string_lossy().into_owned();
        run(
            &tools()?.ip,
            &["netns", "exec", &self.name, &nft, "-f", "-"],
            Some(&script),
        )?;
        *on = true;
        Ok(())
    }

    /// Removes the blackhole table, if loaded.
    fn blackhole_off(&self) -> Result<(), String> {
        let mut on = self
            .blackholed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !*on {
            return Ok(());
        }
        let nft = tools()?.nft.to_string_lossy().into_owned();
        run(
            &tools()?.ip,
            &[
                "netns",
                "exec",
                &self.name,
                &nft,
                "delete",
                "table",
                "netdev",
                BLACKHOLE_TABLE,
            ],
            None,
        )?;
        *on = false;
        Ok(())
    }
}

fn tools_or_panic() -> &'static Tools {
    tools().unwrap_or_else(|why| panic!("cannot build network namespaces: {why}"))
}

/// Moves the calling thread into the network namespace at `path` (a file
/// of `ip netns`), and checks that it is there.
#[allow(unsafe_code)]
fn enter(path: &Path) -> io::Result<()> {
    let file = File::open(path)?;
    // SAFETY: setns is given a descriptor that `file` owns and keeps open
    // for the whole call, and CLONE_NEWNET; it changes only the calling
    // thread's network namespace, which no Rust invariant depends on.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // Never let a socket be made in the wrong namespace: the addresses of
    // the tests mean nothing (or something else) outside.
    let want = std::fs::metadata(path)?;
    let have = std::fs::metadata("/proc/thread-self/ns/net")?;
    if (want.dev(), want.ino()) != (have.dev(), have.ino()) {
        return Err(io::Error::other(format!(
            "after setns the thread is not in {}",
            path.display()
        )));
    }
    Ok(())
}

/// A task running in a namespace ([`Netns::spawn`]): resolves to its
/// output, or panics with its panic.
pub struct NsTask<T> {
    rx: tokio::sync::oneshot::Receiver<std::thread::Result<T>>,
    label: String,
}

impl<T> Future for NsTask<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match ready!(Pin::new(&mut self.rx).poll(cx)) {
            Ok(Ok(value)) => Poll::Ready(value),
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => panic!("{}: its thread ended without a result", self.label),
        }
    }
}

/// A client namespace and a server namespace with a veth pair between
/// them, and maybe a lossy link. Dropping it stops the lossy link and
/// deletes both namespaces (and with them the veth, the TUN devices and
/// the nftables tables).
pub struct NetPair {
    pub client: Netns,
    pub server: Netns,
    /// N in the addresses 10.202.N.x and 10.203.N.x.
    index: u8,
    lossy: Option<LossyLink>,
}

impl NetPair {
    /// A fresh pair of namespaces for the test `test`, joined by a veth
    /// pair; `None` (after saying so on the terminal) when not root.
    /// Panics as root when they cannot be built.
    pub fn new(test: &str) -> Option<Self> {
        if !is_root() {
            announce(&format!(
                "faults: {test} skipped: not root, and network namespaces, veth pairs, TUN \
                 devices and nftables rules need root (CI runs as root; by hand: `sudo bash \
                 {INSTALL_SCRIPT}` once for `nft`, then the tests as root, e.g. `sudo -E \
                 cargo test --test faults`)"
            ));
            return None;
        }
        match Self::build() {
            Ok(pair) => Some(pair),
            Err(why) => panic!("{test}: cannot build the network namespaces: {why}"),
        }
    }

    /// Like [`new`](Self::new), with the lossy link of `params` between the
    /// namespaces too (reached at [`lossy_server_addr`](Self::lossy_server_addr)).
    pub fn with_lossy_link(test: &str, params: LinkParams) -> Option<Self> {
        let mut pair = Self::new(test)?;
        if let Err(why) = pair.add_lossy_link(params) {
            panic!("{test}: cannot build the lossy link: {why}");
        }
        Some(pair)
    }

    fn build() -> Result<Self, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let tools = tools()?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = format!("wsf-{}-{n}", std::process::id());
        let namespace = |side: &str| Netns {
            name: format!("{base}-{side}"),
            blackholed: Mutex::new(false),
        };
        let pair = Self {
            client: namespace("c"),
            server: namespace("s"),
            index: (n % 256) as u8,
            lossy: None,
        };
        // From here on, dropping `pair` deletes what was made.
        for ns in [&pair.client, &pair.server] {
            run(&tools.ip, &["netns", "add", &ns.name], None)?;
        }
        pair.client.ip(&[
            "link",
            "add",
            VETH,
            "type",
            "veth",
            "peer",
            "name",
            VETH,
            "netns",
            &pair.server.name,
        ])?;
        for (ns, host) in [(&pair.client, 1), (&pair.server, 2)] {
            let addr = format!("10.202.{}.{host}/30", pair.index);
            ns.ip(&["addr", "add", &addr, "dev", VETH])?;
            ns.ip(&["link", "set", "lo", "up"])?;
            ns.ip(&["link", "set", VETH, "up"])?;
        }
        Ok(pair)
    }

    fn add_lossy_link(&mut self, params: LinkParams) -> Result<(), String> {
        let open = |ns: &Netns| {
            ns.run(|| open_tun(TUN))
                .map_err(|err| format!("creating TUN device {TUN} in {}: {err}", ns.name))
        };
        let (client_tun, server_tun) = (open(&self.client)?, open(&self.server)?);
        for (ns, local, peer) in [(&self.client, 1, 2), (&self.server, 2, 1)] {
            let local = format!("10.203.{}.{local}", self.index);
            let peer = format!("10.203.{}.{peer}", self.index);
            ns.ip(&["addr", "add", &local, "peer", &peer, "dev", TUN])?;
            ns.ip(&["link", "set", TUN, "up"])?;
        }
        self.lossy = Some(
            LossyLink::start(client_tun, server_tun, params)
                .map_err(|err| format!("starting the relay: {err}"))?,
        );
        Ok(())
    }

    /// The client's address on the veth.
    pub fn client_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 202, self.index, 1)
    }

    /// The server's address on the veth.
    pub fn server_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 202, self.index, 2)
    }

    /// `port` of the server's address on the veth.
    pub fn server_addr(&self, port: u16) -> SocketAddr {
        SocketAddr::from((self.server_ip(), port))
    }

    /// `port` of the server's address on the lossy link.
    pub fn lossy_server_addr(&self, port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::new(10, 203, self.index, 2), port))
    }

    /// The lossy link, if there is one.
    pub fn lossy(&self) -> Option<&LossyLink> {
        self.lossy.as_ref()
    }

    /// Starts dropping the packets `cut` names, on the veth. Panics if the
    /// rules cannot be loaded.
    pub fn blackhole(&self, cut: Cut) {
        let sides: &[&Netns] = match cut {
            Cut::Both => &[&self.client, &self.server],
            Cut::ToClient => &[&self.client],
            Cut::ToServer => &[&self.server],
        };
        for ns in sides {
            if let Err(why) = ns.blackhole_on() {
                panic!("loading the blackhole in {}: {why}", ns.name);
            }
        }
    }

    /// Lets every packet through again.
    pub fn blackhole_off(&self) {
        for ns in [&self.client, &self.server] {
            if let Err(why) = ns.blackhole_off() {
                panic!("removing the blackhole in {}: {why}", ns.name);
            }
        }
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        // The relay first: it holds the TUN devices' descriptors.
        drop(self.lossy.take());
        let Ok(tools) = tools() else {
            return;
        };
        for ns in [&self.client, &self.server] {
            if !ns.path().exists() {
                continue;
            }
            if let Err(why) = run(&tools.ip, &["netns", "del", &ns.name], None) {
                announce(&format!(
                    "faults: could not delete network namespace: {why}"
                ));
            }
        }
    }
}
