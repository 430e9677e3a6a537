//! Ten thousand concurrent idle connections on 127.0.0.1, and what each one
//! costs in memory. The figures are printed and written up in
//! `docs/memory.md`:
//!
//! ```sh
//! cargo test --release --test many_connections -- --nocapture
//! ```
//!
//! Each measurement runs in a fresh process (this test binary started again
//! with `WSSTREAM_MANY_ROLE` set), so that it sees only its own memory:
//!
//! - `server`: a wsstream server; each connection on its own task, parked
//!   in `readable.next()`;
//! - `client`: ten thousand wsstream clients connecting to that server,
//!   first holding their halves without polling them, then each with a task
//!   parked in `readable.next()`;
//! - `both`: client and server in one process.
//!
//! Memory is read two ways: the resident set size from `/proc/self/statm`,
//! and the bytes live on the heap, counted by a global allocator that wraps
//! the system one. Kernel socket buffers belong to neither.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/heap.rs"]
mod heap;
#[path = "support/measure.rs"]
mod measure;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use measure::{rss_bytes, wait_bounded, Lines};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use wsstream::{Opened, Options, ServerOptions, WebSocketStream};

const CONNECTIONS: usize = 10_000;
/// Connections opened at once: well under the listen backlog.
const BATCH: usize = 500;
/// The most memory one connection may cost, both ends together: generous,
/// so that only a real regression fails the test.
const BOUND_PER_CONNECTION: usize = 64 * 1024;

const ROLE: &str = "WSSTREAM_MANY_ROLE";
const SERVER_ADDR: &str = "WSSTREAM_MANY_ADDR";
/// Every child process's whole run.
const CHILD_LIMIT: Duration = Duration::from_secs(120);

// ---- counting the heap: support/heap.rs ----

/// Memory in use now: resident set and live heap bytes.
#[derive(Debug, Clone, Copy)]
struct Usage {
    rss: usize,
    heap: usize,
}

impl Usage {
    fn now() -> Self {
        Self {
            rss: rss_bytes(),
            heap: heap::live_bytes(),
        }
    }

    /// What `n` things cost each, from `before` to now, and the process's
    /// whole resident set now, as a result line.
    fn per(self, before: Usage, n: usize) -> String {
        format!(
            "rss={} heap={} total_rss={}",
            self.rss.saturating_sub(before.rss) / n,
            self.heap.saturating_sub(before.heap) / n,
            self.rss
        )
    }
}

// ---- file descriptors ----

/// Raises the soft limit on open files to at least `want`, raising the hard
/// limit too when the process may (root). Returns the soft limit in force.
#[allow(unsafe_code)]
fn raise_fd_limit(want: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    if limit.rlim_cur >= want {
        return limit.rlim_cur;
    }
    let wanted = libc::rlimit {
        rlim_cur: want,
        rlim_max: limit.rlim_max.max(want),
    };
    // SAFETY: setrlimit only reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } == 0 {
        return want;
    }
    // Not allowed past the hard limit: go as far as it.
    let hard = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &hard) } == 0 {
        return limit.rlim_max;
    }
    limit.rlim_cur
}

/// Open files a process needs besides its sockets (listener, epoll,
/// stdio, the harness).
const SPARE_FDS: u64 = 100;

/// How many connections fit in the open-file limit, once raised as far as
/// it goes, when each takes `sockets_each` sockets in this process.
fn connections_that_fit(sockets_each: u64) -> usize {
    let want = CONNECTIONS as u64 * sockets_each + SPARE_FDS;
    let limit = raise_fd_limit(want);
    (limit.saturating_sub(SPARE_FDS) / sockets_each).min(CONNECTIONS as u64) as usize
}

/// Raises the limit for [`CONNECTIONS`] sockets, or prints why the
/// measurement is skipped and returns `false`.
fn enough_fds(role: &str) -> bool {
    let fit = connections_that_fit(1);
    if fit < CONNECTIONS {
        println!(
            "SKIP {role}: {CONNECTIONS} connections need {} open files, RLIMIT_NOFILE \
             allows {} (raise it with `ulimit -n`)",
            CONNECTIONS as u64 + SPARE_FDS,
            fit as u64 + SPARE_FDS
        );
        return false;
    }
    true
}

// ---- the roles ----

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Counts connections that reached a state, and wakes whoever waits for
/// all of them.
#[derive(Default)]
struct Count {
    n: AtomicUsize,
    notify: Notify,
}

impl Count {
    fn add(&self) {
        self.n.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    async fn reach(&self, n: usize) {
        loop {
            let notified = self.notify.notified();
            if self.n.load(Ordering::SeqCst) >= n {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }
}

/// Connections the listener queues before they are accepted.
const BACKLOG: u32 = 1024;

/// A listener on 127.0.0.1 whose backlog holds a whole batch
/// (`TcpListener::bind` asks for 128 only).
fn listen() -> TcpListener {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.listen(BACKLOG).unwrap()
}

/// Accepts connections forever; each on its own task, parked in
/// `readable.next()` until the client goes.
fn serve(listener: TcpListener, ready: Arc<Count>) {
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let ready = ready.clone();
            tokio::spawn(async move {
                let ws = WebSocketStream::accept(tcp, ServerOptions::default())
                    .await
                    .expect("server handshake");
                let mut opened = ws.opened().await.expect("server opened");
                let mut next = opened.readable.next();
                // Polled once, so the connection is in its idle state.
                assert!(futures::poll!(&mut next).is_pending());
                ready.add();
                let _ = next.await;
            });
        }
    });
}

/// Opens `n` client connections to `addr`, `BATCH` at a time.
async fn connect_all(addr: SocketAddr, n: usize) -> Vec<(WebSocketStream, Opened)> {
    let url = format!("ws://{addr}/");
    let mut all = Vec::with_capacity(n);
    while all.len() < n {
        let batch = (n - all.len()).min(BATCH);
        let opening = (0..batch).map(|_| {
            let ws = WebSocketStream::connect(&url, Options::default());
            async move {
                let opened = ws.opened().await.expect("client opened");
                (ws, opened)
            }
        });
        all.extend(futures::future::join_all(opening).await);
    }
    all
}

/// Parks each client's readable in `next()` on a task of its own, as an
/// application waiting for messages does; returns once each was polled.
async fn start_readers(
    clients: Vec<(WebSocketStream, Opened)>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let polled = Arc::new(Count::default());
    let n = clients.len();
    let tasks = clients
        .into_iter()
        .map(|(ws, opened)| {
            let polled = polled.clone();
            tokio::spawn(async move {
                let mut readable = opened.readable;
                let _keep = (ws, opened.writable);
                let mut next = readable.next();
                assert!(futures::poll!(&mut next).is_pending());
                polled.add();
                let _ = next.await;
            })
        })
        .collect();
    polled.reach(n).await;
    tasks
}

/// Completes when the parent closes our stdin (or goes away).
fn parent_done() -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
}

fn server_role() {
    if !enough_fds("server") {
        return;
    }
    runtime().block_on(async {
        let listener = listen();
        let ready = Arc::new(Count::default());
        let mut parent_done = parent_done();
        let before = Usage::now();
        println!("ADDR {}", listener.local_addr().unwrap());
        serve(listener, ready.clone());
        tokio::select! {
            () = ready.reach(CONNECTIONS) => {
                println!("RESULT {}", Usage::now().per(before, CONNECTIONS));
            }
            // The client gave up: nothing to measure.
            _ = &mut parent_done => return,
        }
        let _ = parent_done.await;
    });
}

fn client_role(addr: SocketAddr) {
    if !enough_fds("client") {
        return;
    }
    runtime().block_on(async {
        // A first connection sets up what every later one shares (the
        // runtime's I/O and timer structures), outside the measurement.
        let warm = connect_all(addr, 1).await;
        let before = Usage::now();
        let started = Instant::now();
        let clients = connect_all(addr, CONNECTIONS).await;
        let opened_in = started.elapsed();
        let unpolled = Usage::now().per(before, CONNECTIONS);
        let readers = start_readers(clients).await;
        let reading = Usage::now().per(before, CONNECTIONS);
        println!(
            "RESULT opened_ms={} unpolled {unpolled} reading {reading}",
            opened_in.as_millis()
        );
        let _ = parent_done().await;
        drop((warm, readers));
    });
}

fn both_role() {
    // Two sockets a connection here: the limit may not allow all of them.
    let n = connections_that_fit(2);
    if n < CONNECTIONS / 10 {
        println!("SKIP both: RLIMIT_NOFILE allows only {n} connections in one process");
        return;
    }
    runtime().block_on(async {
        let listener = listen();
        let addr = listener.local_addr().unwrap();
        let ready = Arc::new(Count::default());
        serve(listener, ready.clone());
        let warm = connect_all(addr, 1).await;
        ready.reach(1).await;
        let before = Usage::now();
        let started = Instant::now();
        let clients = connect_all(addr, n - 1).await;
        ready.reach(n).await;
        let opened_in = started.elapsed();
        let readers = start_readers(clients).await;
        println!(
            "RESULT connections={n} opened_ms={} {}",
            opened_in.as_millis(),
            Usage::now().per(before, n - 1)
        );
        drop((warm, readers));
    });
}

/// Only runs in the child processes that `ten_thousand_idle_connections`
/// starts (it does nothing in a plain `cargo test`).
#[test]
fn child_role() {
    match std::env::var(ROLE).as_deref() {
        Ok("server") => server_role(),
        Ok("client") => client_role(std::env::var(SERVER_ADDR).unwrap().parse().unwrap()),
        Ok("both") => both_role(),
        _ => {}
    }
}

// ---- the measurement ----

/// This test binary again, running `child_role` as `role`.
fn spawn_role(role: &str, addr: Option<SocketAddr>) -> (Child, Lines) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["child_role", "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(addr) = addr {
        command.env(SERVER_ADDR, addr.to_string());
    }
    let mut child = command.spawn().expect("start a child process");
    let lines = Lines::new(child.stdout.take().unwrap());
    (child, lines)
}

/// `key=value` pairs of a result line, the values in bytes (or ms).
fn field(line: &str, after: &str, key: &str) -> usize {
    let from = line.find(after).map_or(0, |at| at + after.len());
    line[from..]
        .split_whitespace()
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} after {after:?} in {line:?}"))
}

/// The next line starting with `prefix` (the prefix removed), or `None` if
/// the child skipped the measurement (it said why, and that is printed).
fn next_line(lines: &Lines, prefix: &str) -> Option<String> {
    loop {
        let line = lines.expect("", CHILD_LIMIT);
        // The harness may have begun the line (`test child_role ... `).
        if let Some(at) = line.find(prefix) {
            return Some(line[at + prefix.len()..].to_owned());
        }
        if line.contains("SKIP") {
            println!("{line}");
            return None;
        }
        println!("  | {line}");
    }
}

fn finish(mut child: Child) {
    drop(child.stdin.take());
    let status = wait_bounded(&mut child, CHILD_LIMIT).expect("child process hung");
    assert!(status.success(), "child process failed: {status}");
}

#[test]
fn ten_thousand_idle_connections() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let started = Instant::now();
    let kib = |bytes: usize| bytes as f64 / 1024.0;

    // Client and server in separate processes.
    let (server, server_lines) = spawn_role("server", None);
    let Some(addr) = next_line(&server_lines, "ADDR ").map(|a| a.parse().unwrap()) else {
        finish(server);
        return;
    };
    let (client, client_lines) = spawn_role("client", Some(addr));
    let client_result = next_line(&client_lines, "RESULT ");
    let server_result = client_result
        .as_ref()
        .and_then(|_| next_line(&server_lines, "RESULT "));
    finish(client);
    finish(server);

    // Both in one process.
    let (both, both_lines) = spawn_role("both", None);
    let both_result = next_line(&both_lines, "RESULT ");
    finish(both);

    println!("{CONNECTIONS} idle connections on 127.0.0.1, memory per connection:");
    if let (Some(client), Some(server)) = (&client_result, &server_result) {
        println!(
            "  client, halves held, not polled: RSS {:.1} KiB, heap {:.1} KiB (all opened in {} ms)",
            kib(field(client, "unpolled", "rss")),
            kib(field(client, "unpolled", "heap")),
            field(client, "", "opened_ms"),
        );
        println!(
            "  client, readable parked in next(): RSS {:.1} KiB, heap {:.1} KiB",
            kib(field(client, "reading", "rss")),
            kib(field(client, "reading", "heap")),
        );
        println!(
            "  server, readable parked in next(): RSS {:.1} KiB, heap {:.1} KiB",
            kib(field(server, "", "rss")),
            kib(field(server, "", "heap")),
        );
        println!(
            "  whole processes: client {:.1} MiB RSS, server {:.1} MiB RSS",
            kib(field(client, "reading", "total_rss")) / 1024.0,
            kib(field(server, "", "total_rss")) / 1024.0,
        );
        // Each end alone gets half the bound, in resident and heap bytes.
        for figure in [
            field(client, "reading", "rss"),
            field(client, "reading", "heap"),
            field(server, "", "rss"),
            field(server, "", "heap"),
        ] {
            assert!(
                figure < BOUND_PER_CONNECTION / 2,
                "one end of a connection costs {figure} bytes"
            );
        }
    }
    if let Some(both) = &both_result {
        println!(
            "  both ends in one process ({} connections, opened in {} ms): RSS {:.1} KiB, heap {:.1} KiB",
            field(both, "", "connections"),
            field(both, "", "opened_ms"),
            kib(field(both, "", "rss")),
            kib(field(both, "", "heap")),
        );
        for figure in [field(both, "", "rss"), field(both, "", "heap")] {
            assert!(
                figure < BOUND_PER_CONNECTION,
                "a connection costs {figure} bytes"
            );
        }
    }
    println!("measured in {:?}", started.elapsed());
}
