//! Autobahn|Testsuite echo server served by hyper 1: the server role of
//! wsstream through `wsstream::hyper::upgrade`, driven by
//! `wstest -m fuzzingclient`. The same echo and the same `ServerOptions` as
//! `examples/autobahn_server.rs` (the raw-socket server), so the two reports
//! compare case for case; only the HTTP side differs: hyper reads the
//! request and writes the `101`, then hands the connection over.
//!
//! ```sh
//! cargo run --release --features hyper --example autobahn_hyper_server -- 127.0.0.1:9001
//! wstest -m fuzzingclient -s spec.json   # see autobahn/run.sh
//! ```

use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use wsstream::{DeflateConfig, ServerOptions};

/// The options of `examples/autobahn_server.rs`, unchanged: permessage-deflate
/// accepted with the defaults, so 12.* and 13.* can run.
fn options() -> ServerOptions {
    ServerOptions::default().deflate(DeflateConfig::default())
}

/// Upgrades the request and echoes on the connection once hyper hands it
/// over; anything else gets the rejection (400, 405, 426 or 500).
async fn serve(mut request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let options = options();
    match wsstream::hyper::upgrade(&mut request, &options) {
        Ok((response, upgrading)) => {
            tokio::spawn(async move {
                let ws = match upgrading.await {
                    Ok(ws) => ws,
                    Err(e) => {
                        eprintln!("autobahn_hyper_server: upgrade failed: {e}");
                        return;
                    }
                };
                if let Ok(opened) = ws.opened().await {
                    let mut readable = opened.readable;
                    let mut writable = opened.writable;
                    // As in autobahn_server.rs: feeds each message as it
                    // arrives, flushes when the readable has nothing ready,
                    // and stops at the first error of either side (expected
                    // in the cases that send protocol violations).
                    let _ = writable.send_all(&mut readable).await;
                }
                let _ = ws.closed().await;
            });
            Ok(response)
        }
        Err(rejection) => {
            eprintln!("autobahn_hyper_server: rejected a request: {rejection}");
            Ok(rejection.into_response().map(Full::new))
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let addr = match args.as_slice() {
        [_, addr] => addr.clone(),
        _ => {
            eprintln!("usage: autobahn_hyper_server <addr:port, e.g. 127.0.0.1:9001>");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("autobahn_hyper_server: cannot listen on {addr}: {e}");
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
                eprintln!("autobahn_hyper_server: accept failed: {e}");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            let served = http1::Builder::new()
                // The raw server bounds the handshake by ServerOptions'
                // handshake_timeout (10 s by default); here reading the
                // request is hyper's, so bound it the same.
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(tcp), service_fn(serve))
                .with_upgrades()
                .await;
            if let Err(e) = served {
                eprintln!("autobahn_hyper_server: connection from {peer}: {e}");
            }
        });
    }
}
