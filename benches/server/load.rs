//! The load generator process, the same for every server: raw tokio
//! `TcpStream`s, the HTTP upgrade through wsstream's sans-io
//! `ClientHandshake`, then frames it makes and parses itself.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use wsstream::handshake::{ClientHandshake, Target};

use crate::common::echo::check_echo;
use crate::common::os::{cpu_time, current_thread_runtime, env_string, env_usize, pin_to_cpu};
use crate::frames::{binary_header, put_client_frame, random_key, EchoParser, FramePool};
use crate::os_limits::raise_fd_limit;
use crate::process::{ADDR, PIN, WORKLOAD};
use crate::workloads::{payload, quick, workloads, Workload};

/// Connections opened at once.
const OPEN_BATCH: usize = 250;
/// Masked copies of the payload in the ring (at least the in-flight count).
const POOL_COPIES: usize = 64;
/// The one read buffer every connection reads into.
const READ_BUFFER: usize = 256 * 1024;
/// With idle connections: the pause after the warm-up, before the server's
/// RSS is read, so that every server task is parked in its read.
const SETTLE: Duration = Duration::from_millis(500);
/// How long the generator may take before it reports where it is and
/// gives up (a server that stops echoing would otherwise hang the run).
const WATCHDOG: Duration = Duration::from_secs(120);

/// Connections open, and echoes counted in the timed run, for the
/// watchdog's report.
static OPENED: AtomicUsize = AtomicUsize::new(0);
static ECHOED: AtomicUsize = AtomicUsize::new(0);

/// The load generator: opens and warms every connection, says `READY`,
/// runs the timed echoes on `GO`, prints `RESULT`, and exits when its
/// stdin closes.
pub(super) fn run_load() {
    if let Ok(cpu) = std::env::var(PIN) {
        pin_to_cpu(cpu.parse().expect("SERVER_PIN: a CPU number"));
    }
    raise_fd_limit();
    let workload = workloads(quick())[env_usize(WORKLOAD)];
    let addr: SocketAddr = env_string(ADDR).parse().expect("SERVER_ADDR: an address");
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!(
            "load generator stuck after {WATCHDOG:?}: {} connections open, {} echoes counted",
            OPENED.load(Ordering::Relaxed),
            ECHOED.load(Ordering::Relaxed),
        );
        std::process::exit(3);
    });
    let local = tokio::task::LocalSet::new();
    let task = local.spawn_local(run(workload, addr));
    local
        .block_on(&current_thread_runtime(), task)
        .expect("load task");
}

async fn run(workload: Workload, addr: SocketAddr) {
    let mut conns = Vec::with_capacity(workload.conns);
    while conns.len() < workload.conns {
        let batch = (workload.conns - conns.len()).min(OPEN_BATCH);
        conns.extend(futures::future::join_all((0..batch).map(|_| connect(addr))).await);
        OPENED.store(conns.len(), Ordering::Relaxed);
    }
    // A message in flight per connection with idle ones (whose server
    // buffers should stay as one exchange leaves them), else a window.
    let warm = if workload.has_idle() {
        1
    } else {
        workload.in_flight
    };
    futures::future::join_all(
        conns
            .iter_mut()
            .enumerate()
            .map(|(i, tcp)| warm_up(tcp, workload.size, warm, i * warm)),
    )
    .await;
    if workload.has_idle() {
        tokio::time::sleep(SETTLE).await;
    }
    println!("READY");
    io::stdout().flush().expect("stdout");
    // Nothing is in flight: blocking the runtime here costs nothing.
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line).expect("stdin");
    assert_eq!(line.trim(), "GO", "the parent said {line:?}, not GO");

    let pool = Rc::new(FramePool::new(
        &payload(workload.size, 0),
        POOL_COPIES.max(workload.in_flight),
    ));
    let buffer = Rc::new(RefCell::new(vec![0; READ_BUFFER]));
    let idle = conns.split_off(workload.active);
    let drivers: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, tcp)| Driver::new(tcp, &workload, pool.clone(), i))
        .collect();
    let wall = Instant::now();
    let cpu = cpu_time();
    let tasks: Vec<_> = drivers
        .into_iter()
        .map(|mut driver| {
            let buffer = buffer.clone();
            tokio::task::spawn_local(async move {
                poll_fn(|cx| driver.poll_drive(cx, &buffer)).await;
                driver.tcp
            })
        })
        .collect();
    let open = futures::future::join_all(tasks).await;
    let (wall, cpu) = (wall.elapsed(), cpu_time() - cpu);
    println!(
        "RESULT messages={} wall_ns={} cpu_ns={}",
        workload.total(),
        wall.as_nanos(),
        cpu.as_nanos()
    );
    io::stdout().flush().expect("stdout");
    // The connections stay open while the parent reads the server's
    // figures; it closes our stdin when it has them.
    let _ = io::stdin().lock().read_line(&mut String::new());
    drop((open, idle));
}

/// A TCP connection (`TCP_NODELAY` on) through the opening handshake.
async fn connect(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    let target = Target::parse(&format!("ws://{addr}/")).expect("url");
    let handshake = ClientHandshake::new(&target, &[], &http::HeaderMap::new()).expect("handshake");
    tcp.write_all(handshake.request()).await.expect("write");
    let mut buf = BytesMut::with_capacity(1024);
    while handshake.read_response(&mut buf).expect("101").is_none() {
        let n = tcp.read_buf(&mut buf).await.expect("read");
        assert!(
            n > 0,
            "the server closed the connection during the handshake"
        );
    }
    assert!(buf.is_empty(), "the server spoke first");
    tcp
}

/// Sends `count` distinct payloads at once (seeds from `seed` on), then
/// reads their echoes and compares every byte.
async fn warm_up(tcp: &mut TcpStream, size: usize, count: usize, seed: usize) {
    let payloads: Vec<_> = (seed..seed + count).map(|s| payload(size, s)).collect();
    let mut frames = Vec::new();
    for p in &payloads {
        put_client_frame(p, random_key(), &mut frames);
    }
    tcp.write_all(&frames).await.expect("warm-up write");
    let header = binary_header(size);
    let mut frame = vec![0; header.len() + size];
    for (i, sent) in payloads.iter().enumerate() {
        tcp.read_exact(&mut frame).await.expect("warm-up echo");
        let (head, echo) = frame.split_at(header.len());
        assert_eq!(head, header, "warm-up echo {i}: header");
        check_echo(echo, sent, true, format_args!("warm-up echo {i}"));
    }
}

/// One active connection in the timed run: keeps `in_flight` messages
/// outstanding, sends one more for each echo until `quota` are sent, and
/// ends when all are echoed.
struct Driver {
    tcp: TcpStream,
    pool: Rc<FramePool>,
    parser: EchoParser,
    quota: usize,
    sent: usize,
    received: usize,
    /// Bytes due but not yet written: from ring offset `out_at` on.
    out_at: usize,
    out_len: usize,
}

impl Driver {
    /// Connection `index` starts at its own place in the ring, with its
    /// first `in_flight` frames due.
    fn new(tcp: TcpStream, workload: &Workload, pool: Rc<FramePool>, index: usize) -> Self {
        let quota = workload.per_connection();
        let first = workload.in_flight.min(quota);
        let out_at = (index * pool.frame_len()) % pool.len();
        Self {
            tcp,
            parser: EchoParser::new(&payload(workload.size, 0)),
            quota,
            sent: first,
            received: 0,
            out_at,
            out_len: first * pool.frame_len(),
            pool,
        }
    }

    /// Writes what is due, reads what has come (into the shared buffer,
    /// borrowed only within this call), and queues a frame for each echo:
    /// every frame due on the connection goes out in one write.
    fn poll_drive(&mut self, cx: &mut Context<'_>, buffer: &RefCell<Vec<u8>>) -> Poll<()> {
        loop {
            while self.out_len > 0 {
                let slices = self.pool.slices(self.out_at, self.out_len);
                match Pin::new(&mut self.tcp).poll_write_vectored(cx, &slices) {
                    Poll::Ready(Ok(n)) => {
                        assert!(n > 0, "the socket took no bytes");
                        self.out_at = (self.out_at + n) % self.pool.len();
                        self.out_len -= n;
                    }
                    Poll::Ready(Err(err)) => panic!("write: {err}"),
                    Poll::Pending => break,
                }
            }
            if self.received == self.quota {
                return Poll::Ready(());
            }
            let mut buffer = buffer.borrow_mut();
            let mut read = ReadBuf::new(&mut buffer);
            match Pin::new(&mut self.tcp).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    let data = read.filled();
                    assert!(!data.is_empty(), "the server closed the connection");
                    let echoes = self.parser.feed(data);
                    self.received += echoes;
                    assert!(self.received <= self.sent, "more echoes than messages");
                    ECHOED.fetch_add(echoes, Ordering::Relaxed);
                    let more = echoes.min(self.quota - self.sent);
                    self.sent += more;
                    self.out_len += more * self.pool.frame_len();
                }
                Poll::Ready(Err(err)) => panic!("read: {err}"),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
