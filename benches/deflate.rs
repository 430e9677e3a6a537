//! Compressed echo beside uncompressed: a wsstream client and server over
//! 127.0.0.1, 64 messages in flight, JSON-like text of 1 KiB and 64 KiB.
//! Each message is compressed by the client, inflated by the server,
//! compressed again and inflated again on the way back.
//!
//! `cargo bench -p wsstream-benches --bench deflate`

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use wsstream::{DeflateConfig, Message, Opened, Options, ServerOptions, WebSocketStream};

const IN_FLIGHT: usize = 64;

/// Text that compresses about as well as real JSON feeds do (4-6x).
fn json(size: usize, seed: usize) -> String {
    let mut out = String::with_capacity(size + 128);
    let mut i = seed;
    while out.len() < size {
        out.push_str(&format!(
            "{{\"id\":{i},\"symbol\":\"SYM{}\",\"bid\":{}.{:02},\"ask\":{}.{:02},\"size\":{},\"venue\":\"X{}\"}},",
            i % 97,
            100 + i % 13,
            i % 100,
            101 + i % 11,
            (i * 7) % 100,
            (i * 31) % 1000,
            i % 5
        ));
        i += 1;
    }
    out.truncate(size);
    out
}

/// A connected client, its server echoing on a task of its own.
async fn pair(deflate: Option<DeflateConfig>) -> (WebSocketStream, Opened) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        // As every server should: without it, Nagle holds the tail of each
        // batch for the client's delayed ACK (40 ms a round here).
        tcp.set_nodelay(true).unwrap();
        let options = match deflate {
            Some(config) => ServerOptions::default().deflate(config),
            None => ServerOptions::default(),
        };
        let ws = WebSocketStream::accept(tcp, options).await.unwrap();
        let opened = ws.opened().await.unwrap();
        let _ = opened.readable.forward(opened.writable).await;
    });
    let options = match deflate {
        Some(config) => Options::default().deflate(config),
        None => Options::default(),
    };
    let ws = WebSocketStream::connect(url, options);
    let opened = ws.opened().await.unwrap();
    (ws, opened)
}

fn echo(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let mut group = c.benchmark_group("echo");
    group.measurement_time(Duration::from_secs(5));
    for size in [1024, 64 * 1024] {
        let messages: Vec<Message> = (0..IN_FLIGHT)
            .map(|i| Message::text(json(size, i * 1000)))
            .collect();
        group.throughput(Throughput::Elements(1));
        for (name, deflate) in [
            ("plain", None),
            ("deflate", Some(DeflateConfig::default())),
            (
                "deflate-no-takeover",
                Some(
                    DeflateConfig::default()
                        .client_no_context_takeover(true)
                        .server_no_context_takeover(true),
                ),
            ),
        ] {
            let (_ws, opened) = runtime.block_on(pair(deflate));
            let (mut readable, mut writable) = (opened.readable, opened.writable);
            group.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        let rounds = (iters as usize).div_ceil(IN_FLIGHT);
                        let start = Instant::now();
                        for _ in 0..rounds {
                            // Writer and reader at once, as a pipeline runs:
                            // 64 large messages exceed what the sockets hold.
                            let send = async {
                                for message in &messages {
                                    writable.feed(message.clone()).await.unwrap();
                                }
                                writable.flush().await.unwrap();
                            };
                            let receive = async {
                                for _ in 0..IN_FLIGHT {
                                    readable.next().await.unwrap().unwrap();
                                }
                            };
                            tokio::join!(send, receive);
                        }
                        start
                            .elapsed()
                            .mul_f64(iters as f64 / (rounds * IN_FLIGHT) as f64)
                    })
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, echo);
criterion_main!(benches);
