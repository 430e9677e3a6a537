//! One message to many connections: wsstream's `Broadcast` beside a task
//! per connection (wsstream, tokio-tungstenite, fastwebsockets,
//! tokio-websockets), 1,000 and 10,000 connections, and a slow consumer.
//!
//! `cargo bench -p wsstream-benches --bench fanout` (about 6 minutes; `FANOUT_QUICK=1` for a
//! tenth of the messages and one round; `FANOUT_ROUNDS=n` for another
//! number of rounds, `FANOUT_ONLY=i` for the `i`th case alone).
//!
//! Method:
//!
//! - **A fan-out server per design** in a child process of its own
//!   (`FANOUT_ROLE=server`), one current-thread runtime pinned to one CPU:
//!   it accepts connections (`TCP_NODELAY`), each on a task that reads
//!   and discards what the client sends, and on `BROADCAST count size`
//!   sends `count` numbered messages of `size` bytes to every connection,
//!   then says `SENT`. `STATS` gives its CPU time (getrusage, user +
//!   system), VmRSS, VmHWM and the connections ready; `PEAK_RESET` resets
//!   VmHWM (`/proc/self/clear_refs`), so the peak after the broadcast is
//!   the broadcast's.
//! - **wsstream `Broadcast`**: every writable joins one `Broadcast`
//!   (256 KiB per member, `Backpressure::Wait`); a burst is one
//!   `send_batch` of its messages, a paced message `send(message).await`. **The other designs** are what a user without `Broadcast`
//!   writes: a tokio broadcast channel (of `PreparedMessage`s for
//!   wsstream, `Bytes` for the peers) and a task per connection that
//!   sends every message the channel holds and flushes once it is empty.
//! - **One client for every server** (`FANOUT_ROLE=client`), pinned to
//!   the other CPU: raw TCP, the upgrade through wsstream's
//!   `ClientHandshake`, then every connection read into one buffer and its
//!   frames checked as they arrive (each message's number must be the
//!   next one, its length and pattern right).
//! - **Each measurement** starts a fresh server and client; the parent
//!   waits for every connection, reads `STATS`, sends `BROADCAST`, waits
//!   for the client's `DONE` and reads `STATS` again. The server's CPU per
//!   delivered message is its CPU time over that span divided by the
//!   messages the client received.
//! - **Paced**: 10,000 connections × 128 B, one message every 10 ms, each
//!   written alone (no burst to batch).
//! - **Slow consumer**: 10 of 1,000 connections never read after the
//!   handshake; the producer yields after each message (a live feed
//!   rather than one burst), the channel designs' channel holds 64
//!   messages, and `Broadcast` runs under `Drop` and `Close`.
//! - **Rounds**: 5, every design once per round in rotating order;
//!   medians.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// `MaskCheck` is compare's alone; this bench uses `Batch`.
#[allow(dead_code)]
#[path = "../compare/batch_io.rs"]
mod batch_io;
mod cases;
mod channel;
mod client;
// The shared modules hold helpers of the other benches too.
#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;
mod fast;
mod measure;
mod message;
#[allow(dead_code)]
#[path = "../common/os_limits.rs"]
mod os_limits;
mod parent;
mod parse;
mod peers;
mod process;
mod report;
mod server;
mod ws_broadcast;
mod ws_tasks;

use std::env;

fn main() {
    match env::var(process::ROLE).as_deref() {
        Ok("server") => server::run_server(),
        Ok("client") => client::run_client(),
        _ if env::args().any(|a| a == "--bench") => parent::run_parent(),
        // `cargo test --benches` runs bench binaries without `--bench`.
        _ => println!("fanout: run it with `cargo bench -p wsstream-benches --bench fanout`"),
    }
}
