//! The fan-out server process, the same shape for every design: a
//! current-thread runtime pinned to one CPU, a listener, the design's
//! task per connection, and a plain thread that answers the control lines
//! on stdin.

use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::cases::{cases, quick, Case, Design, DESIGNS};
use crate::channel::ChannelFanout;
use crate::common::os::{cpu_time, current_thread_runtime, env_usize, peak_rss_kib, pin_to_cpu};
use crate::fast::FastWebSockets;
use crate::os_limits::{raise_fd_limit, rss_kib};
use crate::peers::{TokioWebsockets, Tungstenite};
use crate::process::{exit_on_panic, CASE, LIBRARY, PIN};
use crate::ws_broadcast::WsBroadcast;
use crate::ws_tasks::WsTasks;

/// The listener's backlog, as tokio's `TcpListener::bind` sets it.
const LISTEN_BACKLOG: u32 = 1024;

/// Connections through their handshake and ready for the first message
/// (in the broadcast, or subscribed to the channel).
static JOINED: AtomicUsize = AtomicUsize::new(0);

/// Called by a connection's task once it will get every message sent.
pub(super) fn joined() {
    JOINED.fetch_add(1, Ordering::Relaxed);
}

/// One server design.
pub(super) trait Fanout: Clone + Send + 'static {
    /// Serves an accepted connection (`TCP_NODELAY` on) on a task of its
    /// own; the task calls [`joined`] once it is ready.
    fn serve(&self, tcp: TcpStream);

    /// Sends `count` messages of `size` bytes to every connection, and
    /// returns the fields of the `SENT` line.
    async fn broadcast(&self, case: &Case, count: usize, size: usize) -> String;
}

/// The producer's clock: with a tick (the slow-consumer case), one
/// message per tick, the first at once; without one, a burst.
pub(super) struct Pace(Option<tokio::time::Interval>);

impl Pace {
    pub(super) fn new(case: &Case) -> Self {
        Self(case.tick().map(|tick| {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        }))
    }

    /// Waits until the next message is due.
    pub(super) async fn next(&mut self) {
        if let Some(interval) = &mut self.0 {
            interval.tick().await;
        }
    }
}

/// `BROADCAST count size`, passed from the control thread to the runtime
/// with where the `SENT` line goes.
struct Command {
    count: usize,
    size: usize,
    reply: mpsc::Sender<String>,
}

/// The server process: prints `PORT n`, then answers `STATS`,
/// `PEAK_RESET` and `BROADCAST count size` on stdin, and exits when its
/// stdin closes.
pub(super) fn run_server() {
    // Before any thread starts: the threads inherit the mask.
    if let Ok(cpu) = std::env::var(PIN) {
        pin_to_cpu(cpu.parse().expect("FANOUT_PIN: a CPU number"));
    }
    exit_on_panic();
    raise_fd_limit();
    let case = cases(quick())[env_usize(CASE)];
    let runtime = current_thread_runtime();
    let listener = runtime.block_on(listen(&case));
    println!("PORT {}", listener.local_addr().expect("addr").port());
    io::stdout().flush().expect("stdout");
    let (commands, inbox) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || control(&commands));
    let io = (listener, inbox);
    runtime.block_on(async move {
        match DESIGNS[env_usize(LIBRARY)] {
            Design::Broadcast(policy) => run(io, case, WsBroadcast::new(policy)).await,
            Design::Tasks => run(io, case, ChannelFanout::<WsTasks>::new(&case)).await,
            Design::Tungstenite => run(io, case, ChannelFanout::<Tungstenite>::new(&case)).await,
            Design::FastWebSockets => {
                run(io, case, ChannelFanout::<FastWebSockets>::new(&case)).await;
            }
            Design::TokioWebsockets => {
                run(io, case, ChannelFanout::<TokioWebsockets>::new(&case)).await;
            }
        }
    });
}

/// A listener on 127.0.0.1; its accepted sockets inherit the case's
/// `SO_SNDBUF`.
async fn listen(case: &Case) -> TcpListener {
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(size) = case.sndbuf() {
        socket.set_send_buffer_size(size).expect("SO_SNDBUF");
    }
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind");
    socket.listen(LISTEN_BACKLOG).expect("listen")
}

/// Accepts connections on a task of its own and runs the broadcasts the
/// control thread passes on.
async fn run<F: Fanout>(
    (listener, mut inbox): (TcpListener, tokio::sync::mpsc::UnboundedReceiver<Command>),
    case: Case,
    fanout: F,
) {
    let server = fanout.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.expect("accept");
            tcp.set_nodelay(true).expect("TCP_NODELAY");
            server.serve(tcp);
        }
    });
    while let Some(command) = inbox.recv().await {
        let sent = fanout.broadcast(&case, command.count, command.size).await;
        let _ = command.reply.send(sent);
    }
}

/// The control lines, on a thread of its own so that `STATS` is answered
/// while the runtime is busy. Anything else, or the end of stdin, ends
/// the process.
fn control(commands: &tokio::sync::mpsc::UnboundedSender<Command>) {
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["STATS"] => println!(
                "STATS cpu_ns={} rss_kib={} hwm_kib={} conns={}",
                cpu_time().as_nanos(),
                rss_kib(),
                peak_rss_kib(),
                JOINED.load(Ordering::Relaxed),
            ),
            // VmHWM starts again from VmRSS (Linux 4.0 on), so that the
            // peak after the broadcast is the broadcast's.
            ["PEAK_RESET"] => {
                std::fs::write("/proc/self/clear_refs", "5").expect("clear_refs");
                println!("OK");
            }
            ["BROADCAST", count, size] => {
                let (reply, answer) = mpsc::channel();
                let command = Command {
                    count: count.parse().expect("BROADCAST count"),
                    size: size.parse().expect("BROADCAST size"),
                    reply,
                };
                if commands.send(command).is_err() {
                    break;
                }
                let Ok(sent) = answer.recv() else { break };
                println!("SENT {sent}");
            }
            _ => break,
        }
        io::stdout().flush().expect("stdout");
    }
    // The parent closed our stdin: the measurement is over.
    std::process::exit(0);
}
