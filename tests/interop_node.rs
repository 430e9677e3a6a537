//! Interoperability with the Node.js `ws` library (npm), the most used
//! WebSocket implementation with permessage-deflate: wsstream as client of
//! a `ws` server and as server to a `ws` client, plain and compressed
//! under each RFC 7692 parameter. The first test to run installs the
//! pinned `ws` into `target/peers/node`; see `support/node.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/node.rs"]
mod node;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use node::{output_line, spawn_client, NodeServer};
use wsstream::{Message, Options, ServerOptions, WebSocketStream};

const STEP: Duration = Duration::from_secs(30);

async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn messages() -> Vec<Message> {
    let mut messages = vec![
        Message::text(""),
        Message::text("tiny"),
        Message::binary(Vec::new()),
        Message::binary(
            (0..1usize << 20)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<_>>(),
        ),
        Message::text("héllo wörld — こんにちは 🦀 ".repeat(10_000)),
    ];
    for i in 0..40 {
        messages.push(Message::text(
            format!("{{\"seq\":{i},\"bid\":101.25,\"ask\":101.5}}").repeat(i + 1),
        ));
    }
    messages
}

/// Echoes `messages()` through the server at `url` and closes cleanly;
/// returns the negotiated extensions.
async fn echo_through(url: &str, options: Options) -> String {
    let ws = WebSocketStream::connect(url, options);
    let mut opened = within("opened", ws.opened()).await.unwrap();
    for message in messages() {
        within("send", opened.send(message.clone())).await.unwrap();
        let echoed = within("echo", opened.next()).await.unwrap().unwrap();
        assert!(
            echoed == message,
            "{} bytes came back different",
            message.len()
        );
    }
    ws.close(1000, "done").unwrap();
    let closed = within("closed", ws.closed()).await.unwrap();
    assert_eq!((closed.code, closed.reason.as_str()), (1000, "done"));
    opened.extensions.clone()
}

#[tokio::test]
async fn plain_echo_with_a_ws_server() {
    let server = NodeServer::start(&[]);
    assert_eq!(echo_through(&server.url(), Options::default()).await, "");
    assert_eq!(server.next_extensions(STEP), "");
}

#[tokio::test]
async fn plain_ws_client_to_our_server() {
    let (url, server) = our_server(ServerOptions::default()).await;
    let output = within(
        "the ws client",
        client(&url, &["--count", "20", "--size", "100000"]),
    )
    .await;
    assert_eq!(output_line(&output, "OK").as_deref(), Some("20"));
    assert_eq!(output_line(&output, "EXTENSIONS").as_deref(), Some(""));
    within("server", server).await.unwrap();
}

/// Runs client.js to completion off the runtime's threads.
async fn client(url: &str, args: &[&str]) -> std::process::Output {
    let client = spawn_client(url, args);
    let output = tokio::task::spawn_blocking(move || client.wait())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "ws client failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A wsstream echo server for one connection; resolves to the extensions
/// it agreed on once the client closed cleanly.
async fn our_server(options: ServerOptions) -> (String, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = WebSocketStream::accept(tcp, options).await.unwrap();
        let opened = ws.opened().await.unwrap();
        let extensions = opened.extensions.clone();
        let _ = opened.readable.forward(opened.writable).await;
        assert_eq!(ws.closed().await.unwrap().code, 1000);
        extensions
    });
    (url, server)
}

#[cfg(feature = "deflate")]
mod deflate {
    use super::*;
    use wsstream::DeflateConfig;

    #[tokio::test]
    async fn compressed_echo_with_a_ws_server_under_each_parameter() {
        let cases: [(&[&str], DeflateConfig, &[&str]); 5] = [
            (&[], DeflateConfig::default(), &[]),
            (
                &[
                    "--server-no-context-takeover",
                    "--client-no-context-takeover",
                ],
                DeflateConfig::default(),
                &["server_no_context_takeover", "client_no_context_takeover"],
            ),
            (
                &[
                    "--server-max-window-bits",
                    "8",
                    "--client-max-window-bits",
                    "8",
                ],
                DeflateConfig::default().threshold(0),
                &["server_max_window_bits=8", "client_max_window_bits=8"],
            ),
            // What the client asks for, the server grants.
            (
                &[],
                DeflateConfig::default()
                    .server_no_context_takeover(true)
                    .server_max_window_bits(10)
                    .client_max_window_bits(9),
                &[
                    "server_no_context_takeover",
                    "server_max_window_bits=10",
                    "client_max_window_bits=9",
                ],
            ),
            (&[], DeflateConfig::default().level(9).threshold(0), &[]),
        ];
        for (server_flags, config, expected) in cases {
            let mut args = vec!["--deflate"];
            args.extend_from_slice(server_flags);
            let server = NodeServer::start(&args);
            let extensions = echo_through(&server.url(), Options::default().deflate(config)).await;
            assert!(
                extensions.starts_with("permessage-deflate"),
                "{extensions:?}"
            );
            for param in expected {
                assert!(
                    extensions.contains(param),
                    "{server_flags:?}: {param} not in {extensions:?}"
                );
            }
            assert_eq!(server.next_extensions(STEP), extensions);
        }
    }

    #[tokio::test]
    async fn a_ws_client_compresses_to_our_server_under_each_parameter() {
        let cases: [(&[&str], DeflateConfig); 4] = [
            (&[], DeflateConfig::default()),
            (
                &[
                    "--server-no-context-takeover",
                    "--client-no-context-takeover",
                ],
                DeflateConfig::default(),
            ),
            (
                &[
                    "--server-max-window-bits",
                    "8",
                    "--client-max-window-bits",
                    "8",
                ],
                DeflateConfig::default().threshold(0),
            ),
            (
                &[],
                DeflateConfig::default()
                    .server_max_window_bits(9)
                    .client_max_window_bits(10)
                    .client_no_context_takeover(true),
            ),
        ];
        for (client_flags, policy) in cases {
            for kind in [&[][..], &["--binary"][..]] {
                let (url, server) = our_server(ServerOptions::default().deflate(policy)).await;
                let mut args = vec!["--deflate", "--count", "30", "--size", "60000"];
                args.extend_from_slice(client_flags);
                args.extend_from_slice(kind);
                let output = within("the ws client", client(&url, &args)).await;
                assert_eq!(output_line(&output, "OK").as_deref(), Some("30"));
                let ours = within("server", server).await.unwrap();
                assert!(ours.starts_with("permessage-deflate"), "{ours:?}");
                assert_eq!(
                    output_line(&output, "EXTENSIONS").as_deref(),
                    Some(ours.as_str())
                );
            }
        }
    }
}
