//! A peer that stops reading: the writer waits at the high-water mark, and the
//! close timeout still works.

use super::*;

/// The writer's high-water mark and message size in that test.
const HIGH_WATER: usize = 64 * 1024;
const MESSAGE: usize = 16 * 1024;

/// A client frame's header for a 16 KiB payload: 2 bytes, a 16-bit
/// length, the mask.
const FRAME_OVERHEAD: usize = 2 + 2 + 4;

/// How long a send may wait before the writer counts as stopped.
const PROBE: Duration = Duration::from_secs(1);

/// The bytes a namespace's established TCP sockets hold: not yet
/// acknowledged by the peer (`tx_queue`), and received but not read
/// (`rx_queue`), from `/proc/thread-self/net/tcp` (the calling thread's
/// namespace; `/proc/net` would be the main thread's).
fn tcp_queues(ns: &Netns) -> (u64, u64) {
    ns.run(|| {
        let table = std::fs::read_to_string("/proc/thread-self/net/tcp").unwrap();
        let mut queues = (0, 0);
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Established only (state 01): not the listener.
            if fields.get(3) != Some(&"01") {
                continue;
            }
            let (tx, rx) = fields[4].split_once(':').unwrap();
            queues.0 += u64::from_str_radix(tx, 16).unwrap();
            queues.1 += u64::from_str_radix(rx, 16).unwrap();
        }
        queues
    })
}

#[tokio::test]
async fn a_writer_whose_peer_stops_reading_waits_at_the_high_water_mark() {
    const TEST: &str = "peer stops reading";
    const CLOSE: Duration = Duration::from_secs(2);
    let hold = if long_mode() {
        Duration::from_secs(180)
    } else {
        Duration::from_secs(3)
    };
    let Some(pair) = NetPair::new(TEST) else {
        return;
    };
    let addr = pair.server_addr(PORT);
    let listener = listen_in(&pair.server, addr);
    let limit = hold + STEP;
    let (release, released) = oneshot::channel::<()>();
    let (stalled_tx, stalled) = oneshot::channel::<(usize, usize)>();
    let (checked, checked_rx) = oneshot::channel::<()>();

    let server = pair
        .server
        .spawn("server that never reads", limit, move || async move {
            let tcp = accept_one(listener).await;
            let ws = WebSocketStream::accept(tcp, ServerOptions::default().ping_interval(None))
                .await
                .unwrap();
            let opened = ws.opened().await.unwrap();
            // Neither the readable nor `closed` is ever polled.
            let _ = released.await;
            drop((opened, ws));
        });
    let client = pair.client.spawn("writer", limit, move || async move {
        let options = Options::default()
            .write_high_water(HIGH_WATER)
            .close_timeout(CLOSE)
            .ping_interval(None);
        let ws = WebSocketStream::connect(format!("ws://{addr}/"), options);
        let Opened {
            readable,
            mut writable,
            ..
        } = within("open", STEP, ws.opened()).await.unwrap();
        let started = Instant::now();
        let mut accepted = 0usize;
        let mut messages = 0usize;
        loop {
            let message = Message::binary(vec![messages as u8; MESSAGE]);
            match tokio::time::timeout(PROBE, writable.feed(message)).await {
                Ok(result) => result.unwrap(),
                // Dropped before `start_send`: the message was not taken.
                Err(_) => break,
            }
            accepted += MESSAGE;
            messages += 1;
            assert!(
                accepted < 1 << 30,
                "1 GiB accepted, the writer never waited"
            );
        }
        let filled_in = started.elapsed().saturating_sub(PROBE);
        stalled_tx.send((accepted, messages)).unwrap();
        // Still waiting, however long the peer does not read.
        {
            let mut next = pin!(writable.feed(Message::binary(vec![0xFF; MESSAGE])));
            let held = tokio::time::timeout(hold, &mut next).await;
            assert!(
                held.is_err(),
                "a send completed after {hold:?} though the peer read nothing: {held:?}"
            );
        }
        checked_rx.await.unwrap();
        // The application gives up. The close frame cannot even be
        // written: the socket is full.
        ws.close(1000, "giving up").unwrap();
        let closing = Instant::now();
        let closed = within("closed", STEP, ws.closed()).await;
        let took = closing.elapsed();
        let late = writable.send(Message::text("late")).await;
        drop(readable);
        (accepted, messages, filled_in, closed, took, late)
    });

    let (accepted, messages) = within("the writer to stop", STEP, stalled).await.unwrap();
    let (client_tx, _) = tcp_queues(&pair.client);
    let (_, server_rx) = tcp_queues(&pair.server);
    checked.send(()).unwrap();
    let (accepted_total, _, filled_in, closed, took, late) = within(TEST, limit, client).await;
    assert_eq!(accepted_total, accepted);
    let _ = release.send(());
    within("the server", STEP, server).await;

    // What the library holds: the frames it accepted, less what the kernel
    // holds on both sides.
    let framed = (accepted + messages * FRAME_OVERHEAD) as u64;
    let in_kernel = client_tx + server_rx;
    let queued = framed.saturating_sub(in_kernel);
    let bound = (HIGH_WATER + MESSAGE + FRAME_OVERHEAD) as u64;
    assert!(
        queued <= bound,
        "{queued} bytes queued in the writer (accepted {framed} framed, {in_kernel} in the \
         kernel), more than high-water + one message ({bound})"
    );
    assert!(
        matches!(closed, Err(Error::Timeout(Timeout::Close))),
        "closed() gave {closed:?}"
    );
    assert!(
        took >= CLOSE && took <= CLOSE + MARGIN,
        "gave up after {took:?}, close_timeout is {CLOSE:?}"
    );
    assert!(
        matches!(late, Err(Error::Timeout(Timeout::Close))),
        "a send after the close timeout gave {late:?}"
    );
    report(&format!(
        "{TEST}: the writer took {messages} messages of 16 KiB ({}) in {} ms, then waited \
         (held {}): {} in the kernel (client send queue {}, server receive queue {}), {} KiB \
         queued in the writer (high-water {} KiB); close(1000) with the socket full: \
         Timeout(Close) after {} (close_timeout {})",
        mib(accepted as u64),
        filled_in.as_millis(),
        seconds(hold),
        mib(in_kernel),
        mib(client_tx),
        mib(server_rx),
        queued / 1024,
        HIGH_WATER / 1024,
        seconds(took),
        seconds(CLOSE),
    ));
}
