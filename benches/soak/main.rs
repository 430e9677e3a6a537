//! The soak: a wsstream server and a client with thousands of connections
//! that open, exchange messages, ping, close with random codes, drop
//! without closing and reconnect, for minutes; then checks that no
//! message was lost or corrupted, that both sides agree on every
//! connection, and that nothing is left behind (connections, file
//! descriptors, tasks, memory).
//!
//! ```sh
//! cargo bench -p wsstream-benches --bench soak                      # CI mode: 2 minutes, 5,000 connections
//! SOAK_SECONDS=1800 SOAK_OUT=docs/reliability \
//!     cargo bench -p wsstream-benches --bench soak                  # the documented run; regenerates docs/reliability/soak.svg
//! ```
//!
//! `SOAK_SECONDS` (default 120) is the churn's length, `SOAK_CONNECTIONS`
//! (default 5000) the client's connection loops (each holds one
//! connection at a time, and reconnects), `SOAK_SEED` the seed of every
//! random choice (printed; a fresh one by default), `SOAK_OUT` the
//! directory for `soak-samples.csv` and `soak.svg` (relative to the
//! workspace root; default `target/soak`), and `SOAK_TLS=1` makes every
//! connection `wss://` through rustls (default `0`: `ws://`). The report
//! goes to stdout as Markdown; the exit status is non-zero when a check
//! fails. Everything runs on 127.0.0.1, and every wait has a deadline:
//! the whole run ends within the churn plus about five minutes, and the
//! children die with the parent.
//!
//! Method:
//!
//! - **Processes.** The parent runs this binary again as the server
//!   (`SOAK_ROLE=server`) and the client (`SOAK_ROLE=client`), each with a
//!   multi-thread tokio runtime of 2 workers (`runtime.rs` says why) and
//!   the file-descriptor limit raised. They talk to the parent in lines on
//!   stdin and stdout.
//! - **TLS** (`SOAK_TLS=1`, `tls.rs`): the parent makes a throwaway CA
//!   and a certificate for 127.0.0.1 with rcgen for the run, and gives
//!   them to the children as PEM in environment variables; the client
//!   connects to `wss://` with a rustls configuration trusting that CA
//!   alone, and the server runs `tokio_rustls::TlsAcceptor` on each TCP
//!   connection (within the same step deadline as the rest; a failed
//!   handshake is an `error.tls.*`) and accepts the WebSocket on the TLS
//!   stream. TLS 1.3 only, ring provider, sessions resumed as rustls
//!   does by default. Everything else is as with `ws`; the frames are
//!   counted in plaintext, above the TLS.
//! - **The client** runs `SOAK_CONNECTIONS` loops, started over 2 s. Each
//!   connects with `WebSocketStream::connect` to
//!   `ws://127.0.0.1:port/soak/<id>` (a new id per connection), and
//!   follows a plan drawn from the seed and the id (`plan.rs`): 20% offer
//!   permessage-deflate with random parameters, 30% send keepalive pings
//!   every 50–400 ms (and stay idle, reading, for two to four of them);
//!   0 to 4 batches of 1 to 4 messages, text or binary, mostly under
//!   100 bytes, some of KiB, now and then up to 128 KiB; a pause of up to
//!   1.5 s after most batches, reading all the while. Each message carries
//!   its connection's id and sequence number and a body derived from them
//!   (`payload.rs`); each echo must equal what was sent, byte for byte.
//!   Then the connection ends one of three ways, a third each: the client
//!   closes with a random valid code (1000 or 3000–4999) and a reason of
//!   0–123 bytes, and reads to the end; it asks the server (a text
//!   message) to close with a code and reason, and checks them; or it
//!   drops everything without a close. Then it connects again, until the
//!   churn's time is up; the connections open at that moment end as
//!   planned.
//! - **The server** accepts on 127.0.0.1 with `WebSocketStream::accept`
//!   on a task per TCP connection (permessage-deflate accepted, keepalive
//!   pings every 100–500 ms on 30% of connections), checks every data
//!   message's header and body and that they come in order, echoes them
//!   (one flush for what arrived together), closes when asked, and counts
//!   how each connection ended. Its sockets count the frames that pass
//!   (`wire.rs`): the API shows no ping, pong or close frame, and this is
//!   how the soak sees keepalive at work and one close frame each way per
//!   clean close.
//! - **Counts** (`tally.rs`): each side counts opens, ends by kind and
//!   close code, messages and errors by kind, and sums a hash of each
//!   connection's id (and code) per kind of end, so that the parent checks
//!   that the same connections ended the same way on both sides, not only
//!   as many.
//! - **Samples**: each child prints its RSS (`VmRSS`), open file
//!   descriptors (`/proc/self/fd`), tokio tasks alive
//!   (`RuntimeMetrics::num_alive_tasks`) and open connections every
//!   second. After the churn, each waits (at most 30 s) for its
//!   connections to be gone and its descriptors and tasks back to where
//!   they were before the first connection.
//! - **Pass** (`checks.rs`): no message corrupted or lost (and one data
//!   frame per message on the wire); the same connections opened on both
//!   sides, each with one end; the codes of the clean closes agree both
//!   ways, with one close frame each way on the wire, none for the others;
//!   the client's drops are the server's unclean ends; keepalive pings
//!   went out both ways, each answered but the last of a connection; no
//!   error of any other kind; on each side no connection left,
//!   descriptors back to the start + 16, tasks + 4, the heap in use
//!   (glibc `mallinfo2`) back to the start + 4 MiB, and RSS, once the
//!   allocator has given its free pages back (`malloc_trim`), within
//!   16 MiB + 10% of the warm baseline (the highest RSS 10–20 s into the
//!   churn) of the start: the allocator keeps freed memory, so untrimmed
//!   RSS is reported, not checked (`checks.rs` says why, with figures).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod checks;
mod client;
// The shared modules hold helpers of the other benches too.
#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;
mod gauges;
#[allow(dead_code)]
#[path = "../common/os_limits.rs"]
mod os_limits;
mod parent;
mod payload;
mod plan;
mod plot;
mod process;
mod report;
mod rng;
mod run;
mod runtime;
mod server;
mod tally;
mod tls;
mod wire;

use std::env;

fn main() {
    match env::var(process::ROLE).as_deref() {
        Ok("server") => server::run_server(),
        Ok("client") => client::run_client(),
        _ if env::args().any(|a| a == "--bench") => parent::run_parent(),
        // `cargo test --benches` runs bench binaries without `--bench`.
        _ => println!("soak: run it with `cargo bench -p wsstream-benches --bench soak`"),
    }
}
