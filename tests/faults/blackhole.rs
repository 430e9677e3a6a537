//! The blackhole: a peer that vanishes mid-stream, during the opening handshake
//! and during the close handshake.

use super::*;

/// Keepalive, shortened for the tests.
const PING_INTERVAL: Duration = Duration::from_secs(1);
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// How one end of the chatter ended.
#[derive(Debug)]
struct Noticed {
    /// What the readable failed with, and when.
    read: (Error, Instant),
    /// What the writer's send failed with, and when.
    write: (Error, Instant),
    received: u64,
    closed: Result<wsstream::CloseInfo, Error>,
}

/// Sends a 1 KiB message every 10 ms and reads what the peer sends, both
/// until they fail; reports how many messages arrived on `progress`.
async fn chatter(ws: WebSocketStream, opened: Opened, progress: watch::Sender<u64>) -> Noticed {
    let Opened {
        mut readable,
        mut writable,
        ..
    } = opened;
    let reading = async {
        let mut received = 0u64;
        loop {
            match readable.next().await {
                Some(Ok(_)) => {
                    received += 1;
                    progress.send_replace(received);
                }
                Some(Err(err)) => return ((err, Instant::now()), received),
                None => panic!("the readable ended cleanly, though the peer vanished"),
            }
        }
    };
    let writing = async {
        let mut i = 0u32;
        loop {
            let message = Message::binary(i.to_be_bytes().repeat(256));
            if let Err(err) = writable.send(message).await {
                return (err, Instant::now());
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let ((read, received), write) = tokio::join!(reading, writing);
    let closed = ws.closed().await;
    Noticed {
        read,
        write,
        received,
        closed,
    }
}

#[tokio::test]
async fn a_blackhole_mid_stream_is_noticed_by_keepalive_on_both_ends() {
    const TEST: &str = "blackhole mid-stream";
    let Some(pair) = NetPair::new(TEST) else {
        return;
    };
    let addr = pair.server_addr(PORT);
    let listener = listen_in(&pair.server, addr);
    let bound = PING_INTERVAL + PING_TIMEOUT + MARGIN;
    let limit = STEP;
    let (server_progress, mut server_seen) = watch::channel(0u64);
    let (client_progress, mut client_seen) = watch::channel(0u64);

    let server = pair.server.spawn("server", limit, move || async move {
        let tcp = accept_one(listener).await;
        let options = ServerOptions::default()
            .ping_interval(Some(PING_INTERVAL))
            .ping_timeout(Some(PING_TIMEOUT));
        let ws = WebSocketStream::accept(tcp, options).await.unwrap();
        let opened = ws.opened().await.unwrap();
        chatter(ws, opened, server_progress).await
    });
    let client = pair.client.spawn("client", limit, move || async move {
        let options = Options::default()
            .ping_interval(Some(PING_INTERVAL))
            .ping_timeout(Some(PING_TIMEOUT));
        let ws = WebSocketStream::connect(format!("ws://{addr}/"), options);
        let opened = within("client open", STEP, ws.opened()).await.unwrap();
        chatter(ws, opened, client_progress).await
    });

    // Both directions flow, and keepalive pings have been answered.
    within("traffic both ways", STEP, async {
        server_seen.wait_for(|&n| n >= 150).await.unwrap();
        client_seen.wait_for(|&n| n >= 150).await.unwrap();
    })
    .await;
    let cut_at = Instant::now();
    pair.blackhole(Cut::Both);
    let loaded = cut_at.elapsed();

    let (server, client) = within(TEST, limit, async { tokio::join!(server, client) }).await;
    let mut lines = Vec::new();
    for (who, noticed) in [("client", &client), ("server", &server)] {
        let (err, at) = &noticed.read;
        assert!(
            matches!(err, Error::Timeout(Timeout::Keepalive)),
            "{who}: the readable failed with {err:?}, not Timeout(Keepalive)"
        );
        let took = after(&format!("{who}'s failure"), cut_at, *at);
        assert!(
            took <= bound,
            "{who} noticed after {took:?}, more than ping_interval + ping_timeout + {MARGIN:?}"
        );
        let (write_err, write_at) = &noticed.write;
        let writer_after = write_at.saturating_duration_since(*at);
        assert!(
            matches!(write_err, Error::Timeout(Timeout::Keepalive)),
            "{who}: the writer failed with {write_err:?}, not Timeout(Keepalive)"
        );
        assert!(
            writer_after <= MARGIN,
            "{who}: the writer failed {writer_after:?} after the readable"
        );
        assert!(
            matches!(noticed.closed, Err(Error::Timeout(Timeout::Keepalive))),
            "{who}: closed() gave {:?}",
            noticed.closed
        );
        lines.push(format!(
            "{who} after {} (writer {} ms later, {} messages read before)",
            seconds(took),
            writer_after.as_millis(),
            noticed.received
        ));
    }
    report(&format!(
        "{TEST}: every packet dropped both ways (rules loaded in {} ms); \
         Timeout(Keepalive) on the readable, the writer and closed(): {}; \
         bound ping_interval {} + ping_timeout {} + margin {}",
        loaded.as_millis(),
        lines.join(", "),
        seconds(PING_INTERVAL),
        seconds(PING_TIMEOUT),
        seconds(MARGIN),
    ));
}

/// TCP, then waits for the gate to open before the handshake goes out:
/// the test cuts the link in between.
struct GatedTcp {
    gate: watch::Receiver<bool>,
}

impl Connector for GatedTcp {
    fn connect<'a>(&'a self, to: &'a Endpoint) -> ConnectFuture<'a> {
        let mut gate = self.gate.clone();
        Box::pin(async move {
            let tcp = TcpConnector.connect_tcp(to).await?;
            let _ = gate.wait_for(|open| *open).await;
            Ok(Box::pin(tcp) as BoxedTransport)
        })
    }
}

#[tokio::test]
async fn a_blackhole_during_the_opening_handshake_ends_with_the_open_timeouts() {
    const TEST: &str = "blackhole during the opening handshake";
    const SERVER_TIMEOUT: Duration = Duration::from_secs(2);
    const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);
    let Some(pair) = NetPair::new(TEST) else {
        return;
    };
    let addr = pair.server_addr(PORT);
    let listener = listen_in(&pair.server, addr);
    let (accepted_tx, accepted_rx) = oneshot::channel::<()>();
    let (gate_tx, gate) = watch::channel(false);
    let mut server_gate = gate.clone();

    // 1. The TCP handshake completes; the link is cut before the client's
    //    request leaves, so neither end sees the other's part of the
    //    WebSocket handshake.
    let server = pair.server.spawn("server", STEP, move || async move {
        let tcp = accept_one(listener).await;
        accepted_tx.send(()).unwrap();
        server_gate.wait_for(|open| *open).await.unwrap();
        let started = Instant::now();
        let options = ServerOptions::default().handshake_timeout(SERVER_TIMEOUT);
        let result = WebSocketStream::accept(tcp, options).await;
        (result.map(drop), started.elapsed())
    });
    let client = pair.client.spawn("client", STEP, move || async move {
        let options = Options::default()
            .open_timeout(CLIENT_TIMEOUT)
            .connector(GatedTcp { gate });
        let started = Instant::now();
        let ws = WebSocketStream::connect(format!("ws://{addr}/"), options);
        let opened = ws.opened().await.map(drop);
        let took = started.elapsed();
        (opened, ws.closed().await, took)
    });
    within("the TCP handshake", STEP, accepted_rx)
        .await
        .unwrap();
    pair.blackhole(Cut::Both);
    gate_tx.send_replace(true);
    let (server, client) = within(TEST, STEP, async { tokio::join!(server, client) }).await;

    let (accepted, server_took) = server;
    assert!(
        matches!(accepted, Err(Error::Timeout(Timeout::Open))),
        "server: {accepted:?}"
    );
    assert!(
        server_took >= SERVER_TIMEOUT && server_took <= SERVER_TIMEOUT + MARGIN,
        "server gave up after {server_took:?}, its handshake_timeout is {SERVER_TIMEOUT:?}"
    );
    let (opened, closed, client_took) = client;
    assert!(
        matches!(opened, Err(Error::Timeout(Timeout::Open))),
        "client opened: {opened:?}"
    );
    assert!(
        matches!(closed, Err(Error::Timeout(Timeout::Open))),
        "client closed: {closed:?}"
    );
    assert!(
        client_took >= CLIENT_TIMEOUT && client_took <= CLIENT_TIMEOUT + MARGIN,
        "client gave up after {client_took:?}, its open_timeout is {CLIENT_TIMEOUT:?}"
    );

    // 2. The link is still cut: now the client's SYN is lost too, and the
    //    open timeout covers connecting.
    let syn = pair
        .client
        .spawn("client, SYN lost", STEP, move || async move {
            let options = Options::default().open_timeout(SERVER_TIMEOUT);
            let started = Instant::now();
            let ws = WebSocketStream::connect(format!("ws://{addr}/"), options);
            let opened = ws.opened().await.map(drop);
            (opened, started.elapsed())
        });
    let (syn_opened, syn_took) = within(TEST, STEP, syn).await;
    assert!(
        matches!(syn_opened, Err(Error::Timeout(Timeout::Open))),
        "client, SYN lost: {syn_opened:?}"
    );
    assert!(
        syn_took >= SERVER_TIMEOUT && syn_took <= SERVER_TIMEOUT + MARGIN,
        "client, SYN lost, gave up after {syn_took:?}"
    );
    report(&format!(
        "{TEST}: cut after the TCP handshake, before the request: server Timeout(Open) after \
         {} (handshake_timeout {}), client Timeout(Open) on opened() and closed() after {} \
         (open_timeout {}); SYN lost: client Timeout(Open) after {} (open_timeout {})",
        seconds(server_took),
        seconds(SERVER_TIMEOUT),
        seconds(client_took),
        seconds(CLIENT_TIMEOUT),
        seconds(syn_took),
        seconds(SERVER_TIMEOUT),
    ));
}

/// How one end's close went: what the readable yielded after `close`, then
/// `closed()`, and how long that took.
type CloseOutcome = (
    Vec<Result<Message, Error>>,
    Result<wsstream::CloseInfo, Error>,
    Duration,
);

/// Both ends of a close scenario, running.
struct CloseRun {
    server: netns::NsTask<CloseOutcome>,
    client: netns::NsTask<CloseOutcome>,
    server_ready: oneshot::Receiver<()>,
    client_ready: oneshot::Receiver<()>,
    /// Tells both ends to close.
    go: watch::Sender<bool>,
}

impl CloseRun {
    /// Waits until both ends traded their message, cuts the link as `cut`
    /// says, lets them close, and returns how it went for the server and
    /// the client.
    async fn run(self, pair: &NetPair, cut: Cut) -> (CloseOutcome, CloseOutcome) {
        within("both ends ready", STEP, async {
            self.server_ready.await.unwrap();
            self.client_ready.await.unwrap();
        })
        .await;
        pair.blackhole(cut);
        self.go.send_replace(true);
        within("the close handshake", STEP, async {
            tokio::join!(self.server, self.client)
        })
        .await
    }
}

/// Opens a connection on `port` between the pair's namespaces and trades a
/// message each way; then, when the test says so, the client closes (and
/// the server too, when `server_closes`).
fn close_scenario(
    pair: &NetPair,
    port: u16,
    close_timeout: Duration,
    server_closes: bool,
) -> CloseRun {
    let addr = pair.server_addr(port);
    let listener = listen_in(&pair.server, addr);
    let (server_ready, server_ready_rx) = oneshot::channel();
    let (client_ready, client_ready_rx) = oneshot::channel();
    let (go, go_rx) = watch::channel(false);
    let mut server_go = go_rx.clone();
    let mut client_go = go_rx;

    let server = pair.server.spawn("server", STEP, move || async move {
        let tcp = accept_one(listener).await;
        let options = ServerOptions::default()
            .close_timeout(close_timeout)
            .ping_interval(None);
        let ws = WebSocketStream::accept(tcp, options).await.unwrap();
        let Opened {
            mut readable,
            mut writable,
            ..
        } = ws.opened().await.unwrap();
        let hello = readable.next().await.unwrap().unwrap();
        assert_eq!(hello.as_text(), Some("hello"));
        writable.send(Message::text("hi")).await.unwrap();
        server_ready.send(()).unwrap();
        server_go.wait_for(|go| *go).await.unwrap();
        let started = Instant::now();
        if server_closes {
            ws.close(1000, "server bye").unwrap();
        }
        let items: Vec<_> = (&mut readable).collect().await;
        let closed = ws.closed().await;
        (items, closed, started.elapsed())
    });
    let client = pair.client.spawn("client", STEP, move || async move {
        let options = Options::default()
            .close_timeout(close_timeout)
            .ping_interval(None);
        let ws = WebSocketStream::connect(format!("ws://{addr}/"), options);
        let Opened {
            mut readable,
            mut writable,
            ..
        } = ws.opened().await.unwrap();
        writable.send(Message::text("hello")).await.unwrap();
        let hi = readable.next().await.unwrap().unwrap();
        assert_eq!(hi.as_text(), Some("hi"));
        client_ready.send(()).unwrap();
        client_go.wait_for(|go| *go).await.unwrap();
        let started = Instant::now();
        ws.close(1000, "client bye").unwrap();
        let items: Vec<_> = (&mut readable).collect().await;
        let closed = ws.closed().await;
        (items, closed, started.elapsed())
    });
    CloseRun {
        server,
        client,
        server_ready: server_ready_rx,
        client_ready: client_ready_rx,
        go,
    }
}

/// Asserts that one end's close timed out: the readable yielded
/// `Timeout(Close)` and ended, `closed()` failed the same way, after the
/// close timeout.
fn assert_close_timed_out(who: &str, outcome: &CloseOutcome, close_timeout: Duration) {
    let (items, closed, took) = outcome;
    assert!(
        matches!(items.as_slice(), [Err(Error::Timeout(Timeout::Close))]),
        "{who}: the readable yielded {items:?} after close"
    );
    assert!(
        matches!(closed, Err(Error::Timeout(Timeout::Close))),
        "{who}: closed() gave {closed:?}"
    );
    assert!(
        *took >= close_timeout && *took <= close_timeout + MARGIN,
        "{who}: gave up after {took:?}, its close_timeout is {close_timeout:?}"
    );
}

#[tokio::test]
async fn a_blackhole_during_the_close_handshake_ends_with_the_close_timeout() {
    const TEST: &str = "blackhole during the close handshake";
    const CLOSE: Duration = Duration::from_millis(1500);
    let Some(pair) = NetPair::new(TEST) else {
        return;
    };

    // 1. Both ends close at once, and both close frames are lost.
    let (server, client) = close_scenario(&pair, PORT, CLOSE, true)
        .run(&pair, Cut::Both)
        .await;
    assert_close_timed_out("client", &client, CLOSE);
    assert_close_timed_out("server", &server, CLOSE);
    let both_lost = (client.2, server.2);

    // 2. The client's close arrives and the server answers, but the answer
    //    is lost: the server is done, cleanly; the client times out.
    pair.blackhole_off();
    let (server, client) = close_scenario(&pair, PORT + 1, CLOSE, false)
        .run(&pair, Cut::ToClient)
        .await;
    assert_close_timed_out("client (answer lost)", &client, CLOSE);
    let (items, closed, server_took) = &server;
    assert!(items.is_empty(), "server: the readable yielded {items:?}");
    let closed = closed
        .as_ref()
        .unwrap_or_else(|err| panic!("server: closed() failed: {err:?}"));
    assert_eq!((closed.code, closed.reason.as_str()), (1000, "client bye"));

    report(&format!(
        "{TEST}: both close frames lost: Timeout(Close) on the readable and closed() after {} \
         (client) and {} (server), close_timeout {}; only the server's answer lost: the server \
         closed cleanly with 1000 after {}, the client got Timeout(Close) after {}",
        seconds(both_lost.0),
        seconds(both_lost.1),
        seconds(CLOSE),
        seconds(*server_took),
        seconds(client.2),
    ));
}
