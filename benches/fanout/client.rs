//! The client process, the same for every server: raw tokio `TcpStream`s,
//! the HTTP upgrade through wsstream's sans-io `ClientHandshake`, then
//! every connection read and its frames checked by hand.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use wsstream::handshake::{ClientHandshake, Target};

use crate::cases::{cases, quick, Case};
use crate::common::os::{current_thread_runtime, env_string, env_usize, pin_to_cpu};
use crate::message::Messages;
use crate::os_limits::raise_fd_limit;
use crate::parse::Parser;
use crate::process::{exit_on_panic, ADDR, CASE, PIN};

/// Connections opened at once.
const OPEN_BATCH: usize = 250;
/// The one read buffer every connection reads into.
const READ_BUFFER: usize = 256 * 1024;
/// Once messages flow, this long without a byte on any connection ends
/// the wait: the server will send no more (it dropped the last message
/// for some connection, or it hangs).
const STALL: Duration = Duration::from_secs(5);
/// How long the client may take in all before it gives up.
const WATCHDOG: Duration = Duration::from_secs(180);

/// Over the fast connections: messages received and numbers skipped,
/// connections done (the last message received, or closed by the
/// server) and closed, and bytes read (the stall check's progress).
static RECEIVED: AtomicU64 = AtomicU64::new(0);
static MISSED: AtomicU64 = AtomicU64::new(0);
static FINISHED: AtomicUsize = AtomicUsize::new(0);
static CLOSED: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

/// The client: opens every connection, says `READY`, reads until every
/// fast connection has the last message (or closed, or the stream
/// stalled), says `DONE …`, and exits when its stdin closes.
pub(super) fn run_client() {
    if let Ok(cpu) = std::env::var(PIN) {
        pin_to_cpu(cpu.parse().expect("FANOUT_PIN: a CPU number"));
    }
    exit_on_panic();
    raise_fd_limit();
    let case = cases(quick())[env_usize(CASE)];
    let addr: SocketAddr = env_string(ADDR).parse().expect("FANOUT_ADDR: an address");
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!(
            "client stuck after {WATCHDOG:?}: {} messages received",
            RECEIVED.load(Ordering::Relaxed)
        );
        std::process::exit(3);
    });
    let local = tokio::task::LocalSet::new();
    let task = local.spawn_local(run(case, addr));
    local
        .block_on(&current_thread_runtime(), task)
        .expect("client task");
}

async fn run(case: Case, addr: SocketAddr) {
    let mut conns = Vec::with_capacity(case.conns);
    while conns.len() < case.conns {
        let batch = (case.conns - conns.len()).min(OPEN_BATCH);
        conns.extend(futures::future::join_all((0..batch).map(|_| connect(addr))).await);
    }
    let messages = Rc::new(Messages::new(case.size));
    let buffer = Rc::new(RefCell::new(vec![0; READ_BUFFER]));
    let mut slow = Vec::new();
    for (i, tcp) in conns.into_iter().enumerate() {
        if case.is_slow(i) {
            slow.push(tcp);
            continue;
        }
        let mut reader = Reader {
            tcp,
            parser: Parser::new(case.size),
            count: case.count as u64,
        };
        let (messages, buffer) = (messages.clone(), buffer.clone());
        tokio::task::spawn_local(async move {
            poll_fn(|cx| reader.poll_read_all(cx, &buffer, &messages)).await;
            // Open until the process ends.
            std::future::pending::<()>().await;
        });
    }
    println!("READY");
    io::stdout().flush().expect("stdout");
    let complete = wait(case.fast()).await;
    println!(
        "DONE messages={} missed={} closed={} complete={}",
        RECEIVED.load(Ordering::Relaxed),
        MISSED.load(Ordering::Relaxed),
        CLOSED.load(Ordering::Relaxed),
        u8::from(complete),
    );
    io::stdout().flush().expect("stdout");
    // The connections stay open while the parent reads the server's
    // figures; it closes our stdin when it has them. Blocking the runtime
    // here stops the reading, as the slow connections never started.
    let _ = io::stdin().lock().read_line(&mut String::new());
    drop(slow);
}

/// Waits until all `fast` connections are done (`true`), or no byte came
/// for [`STALL`] once some had.
async fn wait(fast: usize) -> bool {
    let mut last = 0;
    let mut still = Duration::ZERO;
    let tick = Duration::from_millis(10);
    loop {
        if FINISHED.load(Ordering::Relaxed) == fast {
            return true;
        }
        tokio::time::sleep(tick).await;
        let bytes = BYTES.load(Ordering::Relaxed);
        still = if bytes == last && bytes > 0 {
            still + tick
        } else {
            Duration::ZERO
        };
        last = bytes;
        if still >= STALL {
            return false;
        }
    }
}

/// A TCP connection (`TCP_NODELAY` on) through the opening handshake.
async fn connect(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    // Closed with a reset: no TIME_WAIT left behind to slow the next
    // measurement's connects.
    tcp.set_zero_linger().expect("SO_LINGER");
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

/// One fast connection: reads until the last message, a close frame or
/// the end of the stream.
struct Reader {
    tcp: TcpStream,
    parser: Parser,
    count: u64,
}

impl Reader {
    /// Reads into the shared buffer (borrowed only within this call) and
    /// feeds the parser; updates the totals.
    fn poll_read_all(
        &mut self,
        cx: &mut Context<'_>,
        buffer: &RefCell<Vec<u8>>,
        messages: &Messages,
    ) -> Poll<()> {
        let mut buffer = buffer.borrow_mut();
        loop {
            let mut read = ReadBuf::new(&mut buffer);
            match Pin::new(&mut self.tcp).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) if !read.filled().is_empty() => {
                    let data = read.filled();
                    BYTES.fetch_add(data.len() as u64, Ordering::Relaxed);
                    let (received, missed) = (self.parser.received, self.parser.missed);
                    self.parser.feed(data, messages);
                    RECEIVED.fetch_add(self.parser.received - received, Ordering::Relaxed);
                    MISSED.fetch_add(self.parser.missed - missed, Ordering::Relaxed);
                    if self.parser.closed() {
                        CLOSED.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    if self.parser.received + self.parser.missed == self.count {
                        break;
                    }
                }
                // The end of the stream, or an error: this connection is over.
                Poll::Ready(_) => {
                    CLOSED.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        FINISHED.fetch_add(1, Ordering::Relaxed);
        Poll::Ready(())
    }
}
