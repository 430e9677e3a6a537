//! wsstream beside tokio-tungstenite, fastwebsockets and tokio-websockets:
//! the same echo traffic over 127.0.0.1, every library measured in the same
//! run, interleaved, and a Markdown table on stdout.
//!
//! `cargo bench -p wsstream-benches --bench compare` (about 3 minutes; `COMPARE_QUICK=1` for a
//! smoke run of one short round).
//!
//! Method:
//!
//! - **One echo server** for every client: fastwebsockets on a
//!   current-thread runtime, in a child process started once per run. It
//!   echoes each frame with its opcode, and its writes gather in a buffer
//!   that goes out when reading would block (or past 64 KiB), so a burst of
//!   echoes leaves in one syscall. `TCP_NODELAY` is on. It checks the mask
//!   bit of every frame it reads and drops a connection that sends an
//!   unmasked one (fastwebsockets itself accepts them); a self-test at the
//!   start proves that the check fires.
//! - **Each measurement in a fresh child process** (this binary, run again
//!   with `COMPARE_ROLE=client`): one library's client on a current-thread
//!   runtime with `TCP_NODELAY` and library defaults otherwise, so that
//!   its CPU time (`getrusage`) and peak RSS (`VmHWM` less the figure at
//!   start) are the client's alone. The server and every client are pinned
//!   to the same core: a wake-up across cores costs ~30 µs on a VM and
//!   would hide the libraries' differences.
//! - **Checked echoes.** Before its timed run, each child sends distinct
//!   payloads and compares every echo byte for byte; the timed run checks
//!   the length and the first and last bytes of every echo.
//! - **Pipelined N in flight**: from one task, the client sends while fewer
//!   than N echoes are outstanding, flushes whenever it stops sending, and
//!   reads whatever has arrived. Stream + Sink libraries run one `poll_fn`
//!   loop; fastwebsockets, whose calls are `async fn`s, runs a reader and a
//!   writer half joined on the same task, its writer buffered like the
//!   server's.
//! - **In a spawned task.** Each client runs its workload as a task on a
//!   `LocalSet`, not as the runtime's `block_on` future, whose waker tokio
//!   rebuilds with a vtable at another address than its clones carry, so
//!   `Waker::will_wake` never matches them (this bench found wsstream 270x
//!   slower there, fixed in its fan-out waker since). `COMPARE_IN_BLOCK_ON=1`
//!   runs it in `block_on` instead.
//! - **Rounds**: each workload runs 7 rounds; a round measures every
//!   library once (the order rotates from round to round). The tables give
//!   the median of the rounds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batch_io;
mod client;
#[path = "../common/mod.rs"]
mod common;
mod fast_client;
mod libraries;
mod process;
mod report;
mod server;
mod workloads;

use std::env;

use client::run_client;
use report::run_parent;
use server::run_server;

fn main() {
    match env::var("COMPARE_ROLE").as_deref() {
        Ok("server") => run_server(),
        Ok("client") => run_client(),
        _ if env::args().any(|a| a == "--bench") => run_parent(),
        // `cargo test --benches` runs bench binaries without `--bench`.
        _ => println!("compare: run it with `cargo bench -p wsstream-benches --bench compare`"),
    }
}
