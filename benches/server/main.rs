//! wsstream as a server beside tokio-tungstenite, fastwebsockets and
//! tokio-websockets: the same echo server written with each library, one
//! load generator for all of them, and Markdown tables on stdout.
//!
//! `cargo bench -p wsstream-benches --bench server` (about 7 minutes on 2 cores, once built;
//! `SERVER_QUICK=1` for a smoke run of one round with a tenth of the
//! messages, under a minute; `SERVER_ROUNDS=n` for another number of
//! rounds, `SERVER_ONLY=i` for the `i`th workload alone, from 0;
//! `SERVER_CORE=1` adds wsstream's sans-io core, below).
//!
//! Method:
//!
//! - **The servers** (this binary again, `SERVER_ROLE=server`) are the
//!   same program for every library: a tokio runtime, a listener on
//!   127.0.0.1, `TCP_NODELAY` and a spawned task per connection, library
//!   defaults otherwise (every default lets 16 KiB messages through), and
//!   a plain thread that answers `STATS` on stdin with the process's
//!   CPU time (`getrusage`, user + system, and the user-space part),
//!   `VmRSS` and `VmHWM`.
//!   - wsstream: `WebSocketStream::accept` with `ServerOptions::default()`,
//!     `opened()`, then `readable.forward(writable)`. A hand-written poll
//!     loop (read while ready, `start_send` each message when `poll_ready`
//!     is ready, `poll_flush` when the read side is `Pending`) measured the
//!     no faster in a trial here (1.07-1.16 µs of server CPU per 20 B
//!     message against 1.03-1.08 with `forward`, 37-45 against 31-43 µs
//!     per 16 KiB one), so `forward` stays.
//!   - tokio-tungstenite: `accept_async` on the `TcpStream`, and that poll
//!     loop on the unsplit stream.
//!   - tokio-websockets: `ServerBuilder::new().accept`, and the same loop.
//!     Its stream writes what is queued before it reads each frame, so it
//!     makes a write per message whatever the loop does.
//!   - fastwebsockets: the HTTP upgrade through wsstream's sans-io
//!     handshake (its own needs hyper), then `read_frame` and
//!     `write_frame` with `set_writev(true)`, auto-close and auto-pong on,
//!     over benches/compare's `Batch` writer: the echoes of what one read
//!     brought leave in one write once reading would block. It echoes
//!     frame by frame (the load generator sends whole messages, one frame
//!     each) and, like fastwebsockets, does not check the mask bit.
//!   - With `SERVER_CORE=1`, wsstream's sans-io core as well, in a table of
//!     its own and never as a peer: `proto::Connection` driven by hand in
//!     each connection's task (core_echo.rs), the HTTP upgrade as for
//!     fastwebsockets, the `WebSocketStream`'s read-buffer policy, reads
//!     until the socket would block and then one `writev`. It is the
//!     `WebSocketStream` server less its `Stream`/`Sink` layer and the
//!     state its readable, writable and `closed` share, so the two
//!     together show what that layer costs.
//! - **The runtimes.** Single-thread: `new_current_thread`, the server
//!   pinned to one CPU (`SERVER_CPU`, else the last one allowed) and the
//!   load generator to another. Multi-thread: `new_multi_thread` with a
//!   worker per core (what `#[tokio::main]` builds), nothing pinned, so
//!   the load generator shares the two cores with the server.
//! - **One load generator** (`SERVER_ROLE=load`), written once: raw tokio
//!   `TcpStream`s on a current-thread runtime, the upgrade through
//!   wsstream's `ClientHandshake`, then frames it makes itself. The masked
//!   frames of the timed run are made before it: 64 copies (or as many as
//!   are in flight) of the payload, each under a random key, back to back
//!   in one ring, so the frames due on a connection are one or two slices
//!   of it and sending costs neither masking nor a copy. It parses the
//!   server's frames by hand without copying them: FIN, binary, unmasked
//!   and the length, byte for byte, and the first and last payload bytes.
//!   Every connection keeps N messages in flight: it sends N, then one
//!   more per echo, all the frames due on a connection in one write, and
//!   every connection reads into one shared buffer. Before the timed run,
//!   each connection sends N distinct payloads (one with idle connections)
//!   and compares every byte of their echoes.
//! - **Workloads**: those of uWebSockets' load_test that tokio-websockets'
//!   and fastwebsockets' READMEs chart (100 connections × 20 B, 10 × 1 KiB,
//!   200 × 16 KiB, 500 × 16 KiB), each a fixed number of messages (half a
//!   second to a second with the fastest library here, which keeps the
//!   whole run within 8 minutes), and 10,000 connections of which 1,000
//!   echo 32 B messages while 9,000 stay idle (RLIMIT_NOFILE raised in
//!   both processes, the connections opened 250 at a time). The in-flight
//!   counts (the Setup table) keep the fastest single-thread server at
//!   99-100% of its core with the load generator at 65-90% of its own; at
//!   20 B, 16 in flight had the load generator at 91-97%. The idle
//!   workload runs on the single-thread runtime only: it is there for the
//!   server's memory per connection, which the runtime barely changes
//!   (3.05 and 3.33 KiB for wsstream, 5.76 and 6.00 for fastwebsockets in
//!   a trial), and the other workloads show the multi-thread runtime's
//!   throughput.
//! - **Figures.** The parent reads the server's `STATS` before the first
//!   connection, when the load generator is ready (every connection open
//!   and warmed, plus half a second with idle connections, so that every
//!   server task is parked in its read), and after the timed run. Server
//!   CPU per message is the CPU time between the last two over the
//!   messages, and its user-space part the same for user time (what is
//!   left is the kernel's: system calls and TCP, much the same work for
//!   every library, so the user-space part is where libraries differ);
//!   peak RSS is `VmHWM` at the end (a fresh server process per
//!   measurement, so the figure is its own); RSS per idle connection is
//!   `VmRSS` when ready less `VmRSS` before the first connection, over the
//!   connections. msgs/s is the load generator's count over its wall time.
//!   The server's CPU use over the run shows whether the load generator
//!   kept it busy: on the single-thread runtime the fastest server should
//!   stay at 90% or more of its core.
//! - **A shared machine.** `/proc/stat` gives the machine's busy time over
//!   the run; what the server and the load generator did not use of it,
//!   other processes did. A run in which they took more than 10% of a
//!   core is run again once the machine is quiet (at most three runs; the
//!   least disturbed one is kept), and the Setup says how often.
//! - **Rounds**: each workload runs 5 rounds per runtime, every library
//!   once per round in an order that rotates from round to round, each
//!   measurement a fresh server process and a fresh load generator. The
//!   tables give the medians.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// `MaskCheck` is compare's alone; this bench uses `Batch`.
#[allow(dead_code)]
#[path = "../compare/batch_io.rs"]
mod batch_io;
#[path = "../common/mod.rs"]
mod common;
mod core_echo;
mod echo;
mod fast_echo;
mod frames;
mod load;
#[path = "../common/os_limits.rs"]
mod os_limits;
mod parent;
mod process;
mod quiet;
mod report;
mod server;
mod workloads;

use std::env;

fn main() {
    match env::var(process::ROLE).as_deref() {
        Ok("server") => server::run_server(),
        Ok("load") => load::run_load(),
        _ if env::args().any(|a| a == "--bench") => parent::run_parent(),
        // `cargo test --benches` runs bench binaries without `--bench`.
        _ => println!("server: run it with `cargo bench -p wsstream-benches --bench server`"),
    }
}
