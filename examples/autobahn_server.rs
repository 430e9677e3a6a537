//! Autobahn|Testsuite echo server: the server role of wsstream, driven by
//! `wstest -m fuzzingclient`. Echoes each text and binary message through the
//! public API (`WebSocketStream::accept`, the readable Stream and the writable
//! Sink).
//!
//! ```sh
//! cargo run --release --example autobahn_server -- 127.0.0.1:9001
//! wstest -m fuzzingclient -s spec.json   # see autobahn/run.sh
//! ```

use std::process::ExitCode;

use futures::SinkExt;
use tokio::net::TcpListener;
use wsstream::{DeflateConfig, ServerOptions, WebSocketStream};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let addr = match args.as_slice() {
        [_, addr] => addr.clone(),
        _ => {
            eprintln!("usage: autobahn_server <addr:port, e.g. 127.0.0.1:9001>");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("autobahn_server: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(a) => println!("listening on {a}"),
        Err(_) => println!("listening on {addr}"),
    }

    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("autobahn_server: accept failed: {e}");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            // permessage-deflate accepted with the defaults, so 12.* and 13.* run.
            let options = ServerOptions::default().deflate(DeflateConfig::default());
            let ws = match WebSocketStream::accept(tcp, options).await {
                Ok(ws) => ws,
                Err(e) => {
                    eprintln!("autobahn_server: handshake with {peer} failed: {e}");
                    return;
                }
            };
            if let Ok(opened) = ws.opened().await {
                let mut readable = opened.readable;
                let mut writable = opened.writable;
                // Feeds each message as it arrives and flushes when the readable
                // has nothing ready; stops at the first error of either side
                // (expected in the cases that send protocol violations).
                let _ = writable.send_all(&mut readable).await;
            }
            let _ = ws.closed().await;
        });
    }
}
