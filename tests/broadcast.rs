//! Fan-out: one message to many server connections through `Broadcast`,
//! each member with its own backpressure, and prepared messages through a
//! writable. Over loopback TCP, and over in-memory pipes where the bytes
//! a slow consumer can hold must be exact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/raw.rs"]
mod raw;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use raw::within;
use tokio::net::TcpListener;
use wsstream::{
    Backpressure, Broadcast, CloseCode, DeflateConfig, Message, MessageKind, Opened, Options,
    PreparedMessage, Readable, ServerOptions, WebSocketStream,
};

/// A numbered payload of `size` bytes: the number in its first 4 bytes.
fn numbered(i: u32, size: usize) -> Message {
    let mut payload = vec![(i % 251) as u8; size.max(4)];
    payload[..4].copy_from_slice(&i.to_be_bytes());
    Message::binary(payload)
}

fn number(message: &Message) -> u32 {
    let payload = message.as_payload();
    let i = u32::from_be_bytes(payload[..4].try_into().unwrap());
    assert!(
        payload[4..].iter().all(|&b| b == (i % 251) as u8),
        "message {i} corrupted"
    );
    i
}

/// A server whose accepted connections join `broadcast`, each read by a
/// task of its own (as a real server's are), and `n` clients.
async fn members(
    broadcast: &Broadcast,
    n: usize,
    server: ServerOptions,
    client: Options,
) -> Vec<Opened> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let group = broadcast.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let server = server.clone();
            let group = group.clone();
            tokio::spawn(async move {
                let ws = WebSocketStream::accept(tcp, server).await.unwrap();
                let opened = ws.opened().await.unwrap();
                group.add(&opened.writable);
                drain(opened.readable).await;
                // The writable stays with the task until the peer closes.
                drop(opened.writable);
            });
        }
    });
    let mut clients = Vec::new();
    for _ in 0..n {
        let ws = WebSocketStream::connect(&url, client.clone());
        clients.push(within(ws.opened()).await.unwrap());
    }
    within(async {
        while broadcast.len() < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    clients
}

async fn drain(mut readable: Readable) {
    while let Some(Ok(_)) = readable.next().await {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_gets_every_message_in_order() {
    let broadcast = Broadcast::new(1 << 20, Backpressure::Wait);
    let mut clients = members(&broadcast, 50, ServerOptions::default(), Options::default()).await;
    let readers: Vec<_> = clients
        .drain(..)
        .map(|client| {
            tokio::spawn(async move {
                let mut readable = client.readable;
                for i in 0..200u32 {
                    let message = within(readable.next()).await.unwrap().unwrap();
                    assert_eq!(number(&message), i);
                    assert_eq!(message.len(), 100 + (i as usize % 3) * 10_000);
                }
                readable
            })
        })
        .collect();
    for i in 0..200u32 {
        let message = numbered(i, 100 + (i as usize % 3) * 10_000);
        let delivery = within(broadcast.send(message)).await;
        assert_eq!(delivery.queued, 50, "{delivery:?}");
    }
    for reader in readers {
        within(reader).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_socket_does_not_take_at_once_is_written_by_the_members_reader() {
    // A burst far larger than the socket buffers, sent without yielding:
    // the rest of each queue goes out only because the member's server
    // task, parked reading, writes it when the socket has room.
    let broadcast = Broadcast::new(64 << 20, Backpressure::Drop);
    let clients = members(&broadcast, 3, ServerOptions::default(), Options::default()).await;
    for i in 0..64u32 {
        let delivery = broadcast.send(numbered(i, 256 * 1024)).await;
        assert_eq!(delivery.queued, 3, "{delivery:?}");
    }
    for mut client in clients {
        for i in 0..64u32 {
            let message = within(client.readable.next()).await.unwrap().unwrap();
            assert_eq!(number(&message), i);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_compression_reaches_clients_of_every_deflate_setting() {
    // The server keeps no context: one compression per broadcast serves
    // every member with the same window.
    let server =
        ServerOptions::default().deflate(DeflateConfig::default().server_no_context_takeover(true));
    for client_deflate in [
        DeflateConfig::default(),
        DeflateConfig::default().server_max_window_bits(10),
    ] {
        let broadcast = Broadcast::new(1 << 20, Backpressure::Wait);
        let clients = members(
            &broadcast,
            4,
            server.clone(),
            Options::default().deflate(client_deflate),
        )
        .await;
        assert!(clients[0].extensions.contains("server_no_context_takeover"));
        let texts: Vec<String> = (0..30)
            .map(|i| format!("{{\"seq\":{i},\"price\":{}}}", 100 + i).repeat(1 + i * 7))
            .collect();
        // Half one by one, half as a batch: a connection with deflate
        // takes a batch message by message, each compressed once.
        for text in &texts[..15] {
            within(broadcast.send(Message::text(text.clone()))).await;
        }
        let delivery =
            within(broadcast.send_batch(texts[15..].iter().cloned().map(Message::text))).await;
        assert_eq!(delivery.queued, 4 * 15, "{delivery:?}");
        for mut client in clients {
            for text in &texts {
                let message = within(client.readable.next()).await.unwrap().unwrap();
                assert_eq!(message.as_text(), Some(text.as_str()));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_wait_a_slow_member_holds_up_the_broadcast_but_not_the_others() {
    let broadcast = Broadcast::new(64 * 1024, Backpressure::Wait);
    let mut clients = members(&broadcast, 4, ServerOptions::default(), Options::default()).await;
    let mut slow = clients.pop().unwrap();
    let sender = {
        let broadcast = broadcast.clone();
        tokio::spawn(async move {
            for i in 0..2000u32 {
                broadcast.send(numbered(i, 16 * 1024)).await;
            }
        })
    };
    // The fast members read along until the slow one's buffers are full
    // and the broadcast stops: each has the message it stopped on.
    let mut fast_seen = vec![0u32; clients.len()];
    let stalled = loop {
        let mut progressed = false;
        for (client, seen) in clients.iter_mut().zip(&mut fast_seen) {
            while let Ok(Some(Ok(m))) =
                tokio::time::timeout(Duration::from_millis(300), client.readable.next()).await
            {
                assert_eq!(number(&m), *seen);
                *seen += 1;
                progressed = true;
            }
        }
        if !progressed {
            break fast_seen[0];
        }
    };
    assert!(
        stalled < 2000,
        "the slow member never held the broadcast up"
    );
    assert!(fast_seen.iter().all(|&s| s == stalled), "{fast_seen:?}");
    // The slow member reads: the broadcast goes on, and it misses nothing.
    for i in 0..2000u32 {
        let message = within(slow.readable.next()).await.unwrap().unwrap();
        assert_eq!(number(&message), i);
        if i >= stalled {
            for (client, seen) in clients.iter_mut().zip(&mut fast_seen) {
                while *seen <= i {
                    let m = within(client.readable.next()).await.unwrap().unwrap();
                    assert_eq!(number(&m), *seen);
                    *seen += 1;
                }
            }
        }
    }
    within(sender).await.unwrap();
}

/// A server connection over an in-memory pipe of `pipe` bytes, joined to
/// `broadcast`, whose server side is read by a task of its own (as a real
/// server's is) and whose client reads nothing until the test does: every
/// byte queued for it is in the pipe or in the server's queue. Returns the
/// server's writable and the client.
async fn piped_member(
    broadcast: &Broadcast,
    pipe: usize,
) -> (wsstream::Writable, WebSocketStream, Opened) {
    let (server_io, client_io) = tokio::io::duplex(pipe);
    let client = WebSocketStream::connect_over(client_io, "ws://pipe/", Options::default());
    let server = WebSocketStream::accept(server_io, ServerOptions::default());
    let (server, opened) = tokio::join!(server, client.opened());
    let server = server.unwrap().opened().await.unwrap();
    broadcast.add(&server.writable);
    tokio::spawn(drain(server.readable));
    (server.writable, client, opened.unwrap())
}

#[tokio::test]
async fn under_drop_a_slow_member_holds_no_more_than_the_bound_and_gets_what_was_queued() {
    const PIPE: usize = 16 * 1024;
    const BOUND: usize = 64 * 1024;
    const SIZE: usize = 1024;
    let broadcast = Broadcast::new(BOUND, Backpressure::Drop);
    let (mut server, _client_ws, client) = piped_member(&broadcast, PIPE).await;
    let mut queued = Vec::new();
    for i in 0..1000u32 {
        let delivery = broadcast.send(numbered(i, SIZE)).await;
        assert_eq!(delivery.queued + delivery.dropped, 1, "{delivery:?}");
        if delivery.queued == 1 {
            queued.push(i);
        }
    }
    // Nothing was read: what was queued is in the pipe or the queue.
    let frame = SIZE + 4;
    assert!(
        queued.len() * frame <= PIPE + BOUND,
        "{} queued",
        queued.len()
    );
    assert!(queued.len() * frame > BOUND, "{} queued", queued.len());
    // Every message queued arrives, in order; the dropped ones do not.
    queued.push(1000);
    let got = read_all_then_one_more(&broadcast, &mut server, client, numbered(1000, SIZE)).await;
    assert_eq!(got, queued);
}

/// Reads every message `client` gets while `broadcast` sends `last` until
/// the member (its backlog read) takes it again, then closes the member's
/// `server` side; returns the numbers read.
async fn read_all_then_one_more(
    broadcast: &Broadcast,
    server: &mut wsstream::Writable,
    client: Opened,
    last: Message,
) -> Vec<u32> {
    let mut readable = client.readable;
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(Ok(message)) = readable.next().await {
            got.push(number(&message));
        }
        got
    });
    within(async {
        while broadcast.send(last.clone()).await.queued == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    within(server.close()).await.unwrap();
    within(reader).await.unwrap()
}

#[tokio::test]
async fn under_close_a_slow_member_is_closed_with_its_code_after_its_backlog() {
    let broadcast = Broadcast::new(32 * 1024, Backpressure::Close(CloseCode::TRY_AGAIN_LATER));
    let (_server, client_ws, client) = piped_member(&broadcast, 16 * 1024).await;
    let mut queued = 0u32;
    loop {
        let delivery = broadcast.send(numbered(queued, 1024)).await;
        if delivery.closed == 1 {
            break;
        }
        assert_eq!(delivery.queued, 1, "{delivery:?}");
        queued += 1;
    }
    assert!(broadcast.is_empty(), "the closed member is still a member");
    assert!(queued > 32, "closed after {queued} messages");
    let mut readable = client.readable;
    for i in 0..queued {
        let message = within(readable.next()).await.unwrap().unwrap();
        assert_eq!(number(&message), i);
    }
    assert!(within(readable.next()).await.is_none());
    let info = within(client_ws.closed()).await.unwrap();
    assert_eq!(info.code, 1013);
    assert_eq!(info.reason, "backpressure limit");
}

#[tokio::test]
async fn members_leave_when_removed_or_gone_and_a_fragmented_message_is_not_interrupted() {
    let broadcast = Broadcast::new(1 << 20, Backpressure::Drop);
    let (mut first, _first_ws, mut first_client) = piped_member(&broadcast, 1 << 20).await;
    let (mut second, _second_ws, _second_client) = piped_member(&broadcast, 1 << 20).await;
    let (third, _third_ws, _third_client) = piped_member(&broadcast, 1 << 20).await;
    let third_id = broadcast.add(&third);
    assert_eq!(broadcast.len(), 4, "added twice counts twice");
    assert!(broadcast.remove(third_id));
    assert!(!broadcast.remove(third_id));

    // The first member is in the middle of a message sent in fragments.
    let mut writer = first.start_streamed(MessageKind::Text);
    writer
        .send(bytes::Bytes::from_static(b"part one, "))
        .await
        .unwrap();
    // The second member's server closes it.
    second.close().await.unwrap();
    let delivery = broadcast.send(Message::text("news")).await;
    assert_eq!((delivery.busy, delivery.ended, delivery.queued), (1, 1, 1));
    assert_eq!(broadcast.len(), 2);
    writer
        .send(bytes::Bytes::from_static(b"part two"))
        .await
        .unwrap();
    writer.finish().await.unwrap();
    let delivery = broadcast.send(Message::text("more news")).await;
    assert_eq!(delivery.queued, 2);
    let got = within(first_client.readable.next()).await.unwrap().unwrap();
    assert_eq!(got.as_text(), Some("part one, part two"));
    let got = within(first_client.readable.next()).await.unwrap().unwrap();
    assert_eq!(got.as_text(), Some("more news"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_messages_through_a_channel_and_each_writable() {
    let (tx, _) = tokio::sync::broadcast::channel::<PreparedMessage>(64);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let subscribe = tx.clone();
    let server_options =
        ServerOptions::default().deflate(DeflateConfig::default().server_no_context_takeover(true));
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut rx = subscribe.subscribe();
            let options = server_options.clone();
            tokio::spawn(async move {
                let ws = WebSocketStream::accept(tcp, options).await.unwrap();
                let mut writable = ws.opened().await.unwrap().writable;
                while let Ok(message) = rx.recv().await {
                    writable.send_prepared(&message).await.unwrap();
                }
            });
        }
    });
    let mut clients = Vec::new();
    for deflate in [false, true] {
        let options = if deflate {
            Options::default().deflate(DeflateConfig::default())
        } else {
            Options::default()
        };
        let ws = WebSocketStream::connect(&url, options);
        clients.push(within(ws.opened()).await.unwrap());
    }
    within(async {
        while tx.receiver_count() < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    for i in 0..20u32 {
        tx.send(PreparedMessage::new(numbered(i, 3000))).unwrap();
    }
    for client in &mut clients {
        for i in 0..20u32 {
            let message = within(client.readable.next()).await.unwrap().unwrap();
            assert_eq!(number(&message), i);
        }
    }
    clients[0].writable.close().await.unwrap();
}

#[tokio::test]
async fn a_fed_burst_waits_for_flush_then_arrives_whole_and_in_order() {
    let broadcast = Broadcast::new(1 << 20, Backpressure::Drop);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (writable, ws, opened) = piped_member(&broadcast, 1 << 20).await;
        clients.push((writable, ws, opened));
    }
    // 100 messages of 100 bytes: under the 16 KiB a member writes early.
    for i in 0..100u32 {
        let delivery = broadcast.feed(numbered(i, 100)).await;
        assert_eq!(delivery.queued, 3);
    }
    tokio::task::yield_now().await;
    for (_, _, client) in &mut clients {
        let next = client.readable.next();
        assert!(
            futures::poll!(next).is_pending(),
            "a fed message went out before the flush"
        );
    }
    broadcast.flush();
    for (_, _, client) in &mut clients {
        for i in 0..100u32 {
            let message = within(client.readable.next()).await.unwrap().unwrap();
            assert_eq!(number(&message), i);
        }
    }
    // A long burst is written as it goes, without a flush: 64 messages of
    // 1 KiB pass the 16 KiB batch.
    for i in 0..64u32 {
        broadcast.feed(numbered(i, 1024)).await;
    }
    for (_, _, client) in &mut clients {
        let message = within(client.readable.next()).await.unwrap().unwrap();
        assert_eq!(number(&message), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reaches_every_member_whole_and_in_order() {
    let broadcast = Broadcast::new(4 << 20, Backpressure::Wait);
    let clients = members(&broadcast, 20, ServerOptions::default(), Options::default()).await;
    // Small and large messages mixed: a member's part of the batch is
    // written 16 KiB at a time and after its last message.
    let size = |i: u32| 10 + (i as usize * 7919) % 20_000;
    let delivery = within(broadcast.send_batch((0..300).map(|i| numbered(i, size(i))))).await;
    assert_eq!(delivery.queued, 20 * 300, "{delivery:?}");
    for mut client in clients {
        for i in 0..300u32 {
            let message = within(client.readable.next()).await.unwrap().unwrap();
            assert_eq!(number(&message), i);
            assert_eq!(message.len(), size(i).max(4));
        }
    }
}

#[tokio::test]
async fn under_wait_a_batch_waits_at_the_message_that_did_not_fit_and_resumes_there() {
    const BOUND: usize = 64 * 1024;
    let broadcast = Broadcast::new(BOUND, Backpressure::Wait);
    let (_fast_writable, _fast_ws, mut fast) = piped_member(&broadcast, 1 << 20).await;
    let (_slow_writable, _slow_ws, mut slow) = piped_member(&broadcast, 16 * 1024).await;
    // 200 KiB: more than the slow member's pipe and bound hold.
    let batch = broadcast.send_batch((0..200u32).map(|i| numbered(i, 1024)));
    let mut batch = std::pin::pin!(batch);
    assert!(
        futures::poll!(batch.as_mut()).is_pending(),
        "the batch did not wait for the slow member"
    );
    // The slow one reads; the batch goes on where it stopped, and neither
    // member misses anything.
    let reader = tokio::spawn(async move {
        for i in 0..200u32 {
            let message = within(slow.readable.next()).await.unwrap().unwrap();
            assert_eq!(number(&message), i);
        }
    });
    let fast_reader = tokio::spawn(async move {
        for i in 0..200u32 {
            let message = within(fast.readable.next()).await.unwrap().unwrap();
            assert_eq!(number(&message), i);
        }
    });
    let delivery = within(batch).await;
    assert_eq!(delivery.queued, 400, "{delivery:?}");
    within(reader).await.unwrap();
    within(fast_reader).await.unwrap();
}

#[tokio::test]
async fn under_drop_and_close_a_batch_counts_as_the_sends_would() {
    // Drop: the member skips what does not fit and gets, in order, what
    // did; once its backlog is read, it takes messages again.
    let broadcast = Broadcast::new(32 * 1024, Backpressure::Drop);
    let (mut server, _ws, client) = piped_member(&broadcast, 16 * 1024).await;
    let delivery = broadcast
        .send_batch((0..500u32).map(|i| numbered(i, 1024)))
        .await;
    assert_eq!(delivery.queued + delivery.dropped, 500, "{delivery:?}");
    assert!(delivery.dropped > 0 && delivery.queued > 32, "{delivery:?}");
    let got = read_all_then_one_more(&broadcast, &mut server, client, numbered(500, 1024)).await;
    assert_eq!(got.len(), delivery.queued + 1);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
    assert_eq!(got.last(), Some(&500));

    // Close: the member counts once, is closed after what it took, and
    // gets nothing after that point.
    let broadcast = Broadcast::new(32 * 1024, Backpressure::Close(CloseCode::TRY_AGAIN_LATER));
    let (_server, client_ws, client) = piped_member(&broadcast, 16 * 1024).await;
    let delivery = broadcast
        .send_batch((0..500u32).map(|i| numbered(i, 1024)))
        .await;
    assert_eq!(delivery.closed, 1, "{delivery:?}");
    assert_eq!(delivery.dropped + delivery.ended, 0, "{delivery:?}");
    assert!(broadcast.is_empty());
    let mut readable = client.readable;
    for i in 0..delivery.queued as u32 {
        let message = within(readable.next()).await.unwrap().unwrap();
        assert_eq!(number(&message), i);
    }
    assert!(within(readable.next()).await.is_none());
    assert_eq!(within(client_ws.closed()).await.unwrap().code, 1013);
}
