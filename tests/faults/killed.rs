//! A peer process killed mid-message: this test binary again, in the server
//! namespace.

use super::*;

/// The test that runs as the peer process, and its environment.
const PEER_TEST: &str = "killed::peer_process";
const PEER_ROLE: &str = "WSSTREAM_FAULTS_PEER";
const PEER_ADDR: &str = "WSSTREAM_FAULTS_PEER_ADDR";

/// How the peer process marks the lines meant for the test.
const PEER_TAG: &str = "wsstream-faults-peer:";

/// How long the peer process lives if nobody kills it.
const PEER_LIFE: Duration = Duration::from_secs(60);

/// Half of the large message: what is sent (or read) before the kill.
const HALF: u64 = 4 * 1024 * 1024;

/// The chunks the large messages are written in.
const CHUNK: usize = 64 * 1024;

/// How soon the other end must fail after the kill.
const PROMPT: Duration = Duration::from_secs(3);

/// Not a test of its own: the peer process of
/// `a_killed_peer_process_fails_the_other_end_at_once`, which runs this
/// binary again in the server namespace with `--exact killed::peer_process` and
/// the role in `WSSTREAM_FAULTS_PEER`. Without it, returns at once.
#[test]
fn peer_process() {
    let Ok(role) = std::env::var(PEER_ROLE) else {
        return;
    };
    let addr: SocketAddr = std::env::var(PEER_ADDR).unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Killed long before; if not, it ends by itself.
        let _ = tokio::time::timeout(PEER_LIFE, run_peer(&role, addr)).await;
    });
}

/// Tells the test something, on stdout.
fn peer_says(what: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{PEER_TAG} {what}");
    let _ = out.flush();
}

async fn run_peer(role: &str, addr: SocketAddr) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    peer_says("listening");
    let (tcp, _) = listener.accept().await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let options = ServerOptions::default().ping_interval(None);
    let ws = WebSocketStream::accept(tcp, options).await.unwrap();
    let Opened {
        mut readable,
        mut writable,
        ..
    } = ws.opened().await.unwrap();
    match role {
        "send-half" => {
            // Half of a message, flushed; the rest never comes.
            let mut message = writable.start_streamed(MessageKind::Binary);
            let mut sent = 0u64;
            while sent < HALF {
                message
                    .feed(Bytes::from(vec![(sent / CHUNK as u64) as u8; CHUNK]))
                    .await
                    .unwrap();
                sent += CHUNK as u64;
            }
            SinkExt::<Bytes>::flush(&mut message).await.unwrap();
            peer_says(&format!("half-sent {sent}"));
            tokio::time::sleep(PEER_LIFE).await;
        }
        "read-half" => {
            // Reads half of the client's message, then stops reading.
            let mut message = readable.next_streamed().await.unwrap().unwrap();
            let mut got = 0u64;
            while got < HALF {
                got += message.next().await.unwrap().unwrap().len() as u64;
            }
            // The client keeps writing: let its bytes pile up unread, so
            // that the kill makes the kernel answer with a reset (a socket
            // closed with unread data), never a FIN.
            tokio::time::sleep(Duration::from_millis(200)).await;
            peer_says(&format!("half-received {got}"));
            tokio::time::sleep(PEER_LIFE).await;
        }
        other => panic!("unknown peer role {other:?}"),
    }
}

/// The peer process; killed when dropped, if it still runs.
struct PeerProcess {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl PeerProcess {
    fn start(server: &Netns, role: &str, addr: SocketAddr) -> Self {
        let exe = std::env::current_exe().unwrap();
        let mut child = server
            .command(&exe)
            .args([PEER_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(PEER_ROLE, role)
            .env(PEER_ADDR, addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("starting the peer process: {err}"));
        let (tx, lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may have begun the line with `test killed::peer_process ... `.
                if let Some((_, said)) = line.split_once(PEER_TAG) {
                    let _ = tx.send(said.trim().to_owned());
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        peer_process::collect(child.stderr.take().unwrap(), sink);
        Self {
            child,
            lines,
            stderr,
        }
    }

    /// Waits for the peer to say a line starting with `word`.
    async fn expect(&mut self, word: &str) -> String {
        let line = tokio::time::timeout(STEP, self.lines.recv()).await;
        match line {
            Ok(Some(line)) if line.starts_with(word) => line,
            other => panic!(
                "the peer process did not say {word:?} (got {other:?}); its stderr:\n{}",
                String::from_utf8_lossy(
                    &self.stderr.lock().unwrap_or_else(PoisonError::into_inner)
                )
            ),
        }
    }

    /// SIGKILL; returns when it was sent.
    fn kill(&mut self) -> Instant {
        let at = Instant::now();
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "{status:?}"
        );
        at
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_killed_peer_process_fails_the_other_end_at_once() {
    const TEST: &str = "peer process killed mid-message";
    let Some(pair) = NetPair::new(TEST) else {
        return;
    };

    // 1. The peer is sending a large message: killed after half of it.
    let addr = pair.server_addr(PORT);
    let mut peer = PeerProcess::start(&pair.server, "send-half", addr);
    peer.expect("listening").await;
    let (progress, mut received) = watch::channel(0u64);
    let client = pair
        .client
        .spawn("client reading", STEP, move || async move {
            let options = Options::default().ping_interval(None);
            let ws = WebSocketStream::connect(format!("ws://{addr}/"), options);
            let Opened {
                mut readable,
                writable,
                ..
            } = ws.opened().await.unwrap();
            let mut message = readable.next_streamed().await.unwrap().unwrap();
            let err = loop {
                match message.next().await {
                    Some(Ok(chunk)) => progress.send_modify(|n| *n += chunk.len() as u64),
                    Some(Err(err)) => break err,
                    None => panic!("the message ended, though its sender was killed half-way"),
                }
            };
            let failed_at = Instant::now();
            drop(message);
            let next = readable.next().await;
            let closed = ws.closed().await;
            drop(writable);
            (err, failed_at, next, closed)
        });
    peer.expect("half-sent").await;
    within("the first half", STEP, received.wait_for(|&n| n >= HALF))
        .await
        .unwrap();
    let killed_at = peer.kill();
    let (err, failed_at, next, closed) = within(TEST, STEP, client).await;
    let reading_noticed = after("the reader's failure", killed_at, failed_at);
    assert!(
        matches!(err, Error::ConnectionLost),
        "the message being read failed with {err:?}, not ConnectionLost"
    );
    assert!(next.is_none(), "the readable went on: {next:?}");
    assert!(
        matches!(closed, Err(Error::ConnectionLost)),
        "closed() gave {closed:?}"
    );
    assert!(
        reading_noticed <= PROMPT,
        "the reader failed {reading_noticed:?} after the kill"
    );
    drop(peer);

    // 2. We are sending a large message: the peer reads half of it, stops
    //    reading, and is killed with our bytes unread (its kernel resets
    //    the connection).
    let addr = pair.server_addr(PORT + 1);
    let mut peer = PeerProcess::start(&pair.server, "read-half", addr);
    peer.expect("listening").await;
    let client = pair
        .client
        .spawn("client writing", STEP, move || async move {
            let options = Options::default().ping_interval(None);
            let ws = WebSocketStream::connect(format!("ws://{addr}/"), options);
            let Opened {
                mut readable,
                mut writable,
                ..
            } = ws.opened().await.unwrap();
            let reading = async { (readable.next().await, Instant::now()) };
            let writing = async {
                let mut message = writable.start_streamed(MessageKind::Binary);
                let mut sent = 0u64;
                loop {
                    let chunk = Bytes::from(vec![(sent / CHUNK as u64) as u8; CHUNK]);
                    match message.feed(chunk).await {
                        Ok(()) => sent += CHUNK as u64,
                        Err(err) => break (err, Instant::now(), sent),
                    }
                    assert!(
                        sent < 1 << 30,
                        "1 GiB written to a peer that stopped reading"
                    );
                }
            };
            let ((read, read_at), write) = tokio::join!(reading, writing);
            let next = readable.next().await;
            (read, read_at, write, next, ws.closed().await)
        });
    peer.expect("half-received").await;
    let killed_at = peer.kill();
    let (read, read_at, (write_err, write_at, sent), next, closed) =
        within(TEST, STEP, client).await;
    let is_reset = |err: &Error| matches!(err, Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset);
    assert!(
        matches!(&read, Some(Err(err)) if is_reset(err)),
        "the readable yielded {read:?}, not Io(ConnectionReset)"
    );
    assert!(
        is_reset(&write_err),
        "the message being written failed with {write_err:?}, not Io(ConnectionReset)"
    );
    assert!(next.is_none(), "the readable went on: {next:?}");
    assert!(
        matches!(&closed, Err(err) if is_reset(err)),
        "closed() gave {closed:?}"
    );
    let read_noticed = after("the reader's failure", killed_at, read_at);
    let write_noticed = after("the writer's failure", killed_at, write_at);
    assert!(
        read_noticed <= PROMPT && write_noticed <= PROMPT,
        "failed {read_noticed:?} (reader) and {write_noticed:?} (writer) after the kill"
    );
    report(&format!(
        "{TEST}: killed sending a message after {}: the reader got ConnectionLost {} ms after \
         SIGKILL, the readable ended, closed() ConnectionLost; killed reading our message \
         (after {} of it, {} written): reader and writer got Io(ConnectionReset) {} ms and \
         {} ms after SIGKILL, closed() the same",
        mib(HALF),
        reading_noticed.as_millis(),
        mib(HALF),
        mib(sent),
        read_noticed.as_millis(),
        write_noticed.as_millis(),
    ));
}
