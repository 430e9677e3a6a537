//! The echo server process, the same shape for every library: a runtime
//! of the chosen flavour, a listener, a spawned task per connection, and a
//! plain thread that answers `STATS` on stdin.

use std::io::{self, BufRead, Write};

use tokio::net::TcpListener;

use crate::common::os::{cpu_times, env_string, env_usize, peak_rss_kib, pin_to_cpu};
use crate::core_echo::echo_core;
use crate::echo::{echo_tokio_websockets, echo_tungstenite, echo_wsstream};
use crate::fast_echo::echo_fastwebsockets;
use crate::os_limits::{raise_fd_limit, rss_kib};
use crate::process::{FLAVOUR, LIBRARY, PIN};
use crate::workloads::{Flavour, CORE};

/// The server process: prints `PORT n`, answers each `STATS` line on
/// stdin with its CPU time (and the user-space part of it) and memory,
/// and exits when stdin closes.
pub(super) fn run_server() {
    // Before any thread starts: the threads inherit the mask.
    if let Ok(cpu) = std::env::var(PIN) {
        pin_to_cpu(cpu.parse().expect("SERVER_PIN: a CPU number"));
    }
    raise_fd_limit();
    let library = env_usize(LIBRARY);
    let runtime = Flavour::from_env_value(&env_string(FLAVOUR)).runtime();
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    println!("PORT {}", listener.local_addr().expect("addr").port());
    io::stdout().flush().expect("stdout");
    // A thread of its own, so that it answers while the runtime is busy.
    std::thread::spawn(|| {
        for line in io::stdin().lock().lines() {
            if !line.is_ok_and(|l| l.trim() == "STATS") {
                break;
            }
            let (user, system) = cpu_times();
            println!(
                "STATS cpu_ns={} user_ns={} rss_kib={} hwm_kib={}",
                (user + system).as_nanos(),
                user.as_nanos(),
                rss_kib(),
                peak_rss_kib(),
            );
            io::stdout().flush().expect("stdout");
        }
        // The parent closed our stdin: the measurement is over.
        std::process::exit(0);
    });
    runtime.block_on(async move {
        loop {
            let (tcp, _) = listener.accept().await.expect("accept");
            tcp.set_nodelay(true).expect("TCP_NODELAY");
            // The load generator ends by exiting, so every connection ends
            // in an error (EOF, reset): errors are not reported.
            match library {
                0 => tokio::spawn(echo_wsstream(tcp)),
                1 => tokio::spawn(echo_tungstenite(tcp)),
                2 => tokio::spawn(echo_fastwebsockets(tcp)),
                CORE => tokio::spawn(echo_core(tcp)),
                _ => tokio::spawn(echo_tokio_websockets(tcp)),
            };
        }
    });
}
