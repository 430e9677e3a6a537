//! Autobahn|Testsuite echo server: the server role of wsstream, driven by
//! `wstest -m fuzzingclient`. Echoes each text and binary message through the
//! public API (`WebSocketStream::accept`, the readable Stream and the writable
//! Sink). With `--streamed` (the "streamed" role), each message is echoed as
//! it arrives instead: read in chunks (`Readable::next_streamed`) and sent
//! back in fragments (`Writable::start_streamed`), a chunk at a time.
//!
//! ```sh
//! cargo run --release --example autobahn_server -- [--streamed] 127.0.0.1:9001
//! wstest -m fuzzingclient -s spec.json   # see autobahn/run.sh
//! ```

use std::process::ExitCode;

use futures::SinkExt;
use tokio::net::TcpListener;
use wsstream::{DeflateConfig, Readable, ServerOptions, WebSocketStream, Writable};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (addr, streamed) = match args.as_slice() {
        [_, addr] => (addr.clone(), false),
        [_, flag, addr] if flag == "--streamed" => (addr.clone(), true),
        _ => {
            eprintln!("usage: autobahn_server [--streamed] <addr:port, e.g. 127.0.0.1:9001>");
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
                if streamed {
                    echo_streamed(&mut readable, &mut writable).await;
                } else {
                    // Feeds each message as it arrives and flushes when the
                    // readable has nothing ready; stops at the first error of
                    // either side (expected in the cases that send protocol
                    // violations).
                    let _ = writable.send_all(&mut readable).await;
                }
            }
            let _ = ws.closed().await;
        });
    }
}

/// Echoes each message as it arrives: its chunks go back as fragments, and
/// the message is finished when the peer's is. Stops at the first error
/// (a protocol violation fails the reader; the connection then closes with
/// its code, and the unfinished echo is dropped with it).
async fn echo_streamed(readable: &mut Readable, writable: &mut Writable) {
    while let Some(Ok(mut message)) = readable.next_streamed().await {
        let mut echo = writable.start_streamed(message.kind());
        if echo.send_all(&mut message).await.is_err() || echo.finish().await.is_err() {
            return;
        }
    }
}
