//! What permessage-deflate costs in memory per connection, by setting.
//!
//! `cargo bench -p wsstream-benches --bench deflate_memory`
//!
//! Opens 200 connections (client and server in this process), sends one
//! 4 KiB message each way so that every compressor and decompressor
//! exists, and reports the heap held per connection end (half of what a
//! client and its server hold together), beside the same connections
//! without compression. The heap is counted by a global
//! allocator wrapping the system one; a report, not a test.

#![allow(clippy::unwrap_used)]

#[path = "../tests/support/heap.rs"]
mod heap;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use wsstream::{DeflateConfig, Message, Opened, Options, ServerOptions, WebSocketStream};

const CONNECTIONS: usize = 200;

/// Heap bytes per connection, client end and server end together, once
/// every connection has exchanged one message each way.
async fn heap_per_connection(config: Option<DeflateConfig>) -> usize {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        for _ in 0..CONNECTIONS {
            let (tcp, _) = listener.accept().await.unwrap();
            let options = match config {
                Some(config) => ServerOptions::default().deflate(config),
                None => ServerOptions::default(),
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let ws = WebSocketStream::accept(tcp, options).await.unwrap();
                let mut opened = ws.opened().await.unwrap();
                let message = opened.next().await.unwrap().unwrap();
                opened.send(message).await.unwrap();
                // Held, idle, until the measurement is taken.
                tx.send((ws, opened)).unwrap();
            });
        }
    });
    let text = Message::text("{\"id\":12345,\"kind\":\"update\",\"price\":101.25}".repeat(100));
    let before = heap::live_bytes();
    let mut clients: Vec<(WebSocketStream, Opened)> = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let options = match config {
            Some(config) => Options::default().deflate(config),
            None => Options::default(),
        };
        let ws = WebSocketStream::connect(&url, options);
        let mut opened = ws.opened().await.unwrap();
        opened.send(text.clone()).await.unwrap();
        opened.next().await.unwrap().unwrap();
        clients.push((ws, opened));
    }
    server.await.unwrap();
    let mut servers = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        servers.push(rx.recv().await.unwrap());
    }
    let per = heap::live_bytes().saturating_sub(before) / CONNECTIONS;
    drop(clients);
    drop(servers);
    per
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let settings: [(&str, Option<DeflateConfig>); 6] = [
        ("no compression", None),
        (
            "deflate, defaults (15-bit windows, context takeover)",
            Some(DeflateConfig::default()),
        ),
        (
            "no context takeover, both directions",
            Some(
                DeflateConfig::default()
                    .client_no_context_takeover(true)
                    .server_no_context_takeover(true),
            ),
        ),
        (
            "10-bit windows",
            Some(
                DeflateConfig::default()
                    .client_max_window_bits(10)
                    .server_max_window_bits(10),
            ),
        ),
        (
            "9-bit windows, no context takeover",
            Some(
                DeflateConfig::default()
                    .client_max_window_bits(9)
                    .server_max_window_bits(9)
                    .client_no_context_takeover(true)
                    .server_no_context_takeover(true),
            ),
        ),
        ("defaults, level 9", Some(DeflateConfig::default().level(9))),
    ];
    println!("| setting | heap per connection end |");
    println!("|---|---:|");
    for (name, config) in settings {
        let per = runtime.block_on(heap_per_connection(config));
        println!("| {name} | {:.1} KiB |", per as f64 / 2048.0);
    }
}
