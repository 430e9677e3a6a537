//! WebSockets over HTTP/2 (RFC 8441) beside WebSockets over HTTP/1.1, both
//! wsstream client → wsstream server on hyper, over 127.0.0.1, in one run,
//! interleaved, and Markdown tables on stdout.
//!
//! `cargo bench -p wsstream-benches --bench http2` (about 2 minutes on
//! 2 cores, once built; `HTTP2_BENCH_QUICK=1` for a smoke run of one short
//! round, a few seconds).
//!
//! Method:
//!
//! - **Workloads.** 1000 WebSockets open at once, each doing K round trips
//!   of 32 B (and of 16 KiB), every WebSocket on a task of its own; and one
//!   WebSocket doing 32 B round trips one at a time, timed one by one for
//!   p50 and p99. Over HTTP/1.1 each WebSocket is a TCP connection and an
//!   `Upgrade`; over HTTP/2 the client connects every WebSocket with clones
//!   of one `Options` (`RequireHttp2`, prior knowledge: cleartext h2), so
//!   all of them are streams of one TCP connection, each opened by an
//!   extended CONNECT.
//! - **The server** is the same program for both: hyper 1 on a
//!   current-thread runtime, `wsstream::hyper::upgrade` on each request and
//!   an echo (`readable.forward(writable)`) on each WebSocket, with
//!   `TCP_NODELAY`. HTTP/1.1 through `http1::Builder` with upgrades;
//!   HTTP/2 through `http2::Builder` with `enable_connect_protocol()`,
//!   `initial_stream_window_size(256 KiB)` and
//!   `initial_connection_window_size(16 MiB)` (as in tests/http2.rs), and
//!   `max_concurrent_streams(1000)`. hyper's default is 200: the client
//!   then opens 200 WebSockets, the 201st waits for a stream to end and
//!   fails when its open timeout (10 s) runs out, with no second
//!   connection tried (`HTTP2_BENCH_MAX_STREAMS=default` keeps hyper's
//!   default, to see that; a number sets another limit).
//! - **Processes.** Each measurement starts a fresh server process and a
//!   fresh client process (this binary again, with `HTTP2_BENCH_ROLE`), so
//!   each side's CPU time (`getrusage`, user + system) and peak RSS
//!   (`VmHWM` less the figure at start) are its own. Both are pinned to the
//!   same CPU (`HTTP2_BENCH_CPU`, else the last one allowed), as
//!   benches/compare does: a wake-up across cores costs tens of µs on a VM.
//! - **Timed section only.** The client opens every WebSocket (untimed,
//!   though its wall and CPU time are reported), checks one round trip on
//!   each with distinct payloads compared byte for byte, counts
//!   `/proc/self/fd` and the kernel's socket memory, then says `READY` and
//!   waits. The parent reads the server's CPU time, fds and TCP connection
//!   count (the server answers `STATS` on its stdin), says `GO`, and reads
//!   the server's CPU time again once the client prints its result; so
//!   CPU per message, on both sides, covers the timed echoes alone. The
//!   timed round trips check each echo's length and both ends.
//! - **Kernel socket memory** is system-wide (both ends are on this
//!   machine): the growth, from the client's start to all open, of the
//!   slab caches a TCP socket allocates (`TCP`, `sock_inode_cache`, `filp`,
//!   `eventpoll_epi` in `/proc/slabinfo`, which needs root) plus TCP buffer
//!   pages (`/proc/net/sockstat`). Other processes' sockets would show in
//!   it too; it is an estimate.
//! - **Rounds.** Every round runs every workload once over each HTTP
//!   version, the order of the two alternating from round to round; the
//!   tables give the median of the rounds, and HTTP/2 ÷ HTTP/1.1.
//! - **Stuck runs.** A client that has not finished after a minute prints
//!   how many WebSockets it opened and how many finished, and exits; the
//!   parent reports the measurement as failed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client;
#[path = "../common/mod.rs"]
mod common;
mod process;
mod report;
mod server;
mod workloads;

use std::env;

fn main() {
    match env::var(process::ROLE).as_deref() {
        Ok("server") => server::run_server(),
        Ok("client") => client::run_client(),
        _ if env::args().any(|a| a == "--bench") => report::run_parent(),
        // `cargo test --benches` runs bench binaries without `--bench`.
        _ => println!("http2: run it with `cargo bench -p wsstream-benches --bench http2`"),
    }
}
