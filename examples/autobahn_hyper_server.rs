//! Autobahn|Testsuite echo server served by hyper 1: the server role of
//! wsstream through `wsstream::hyper::upgrade`, driven by
//! `wstest -m fuzzingclient`. The same echo and the same `ServerOptions` as
//! `examples/autobahn_server.rs` (the raw-socket server), so the two reports
//! compare case for case; only the HTTP side differs: hyper reads the
//! request and writes the `101`, then hands the connection over.
//!
//! With `--http2` (feature `http2`) each connection is served by hyper's
//! HTTP/2 instead, with extended CONNECT (RFC 8441) allowed: every
//! WebSocket is a stream of it. wstest speaks only HTTP/1.1, so an HTTP/2
//! proxy that turns the upgrade into extended CONNECT (nghttpx in
//! autobahn/run.sh) stands between the two. On SIGTERM or Ctrl-C the
//! server prints how many WebSockets it accepted over each HTTP version,
//! and exits.
//!
//! ```sh
//! cargo run --release --features hyper --example autobahn_hyper_server -- 127.0.0.1:9001
//! cargo run --release --features hyper,http2 --example autobahn_hyper_server -- --http2 127.0.0.1:9002
//! wstest -m fuzzingclient -s spec.json   # see autobahn/run.sh
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use wsstream::{DeflateConfig, ServerOptions};

/// WebSockets accepted over HTTP/2 (extended CONNECT) and over HTTP/1.x.
static OVER_HTTP2: AtomicUsize = AtomicUsize::new(0);
static OVER_HTTP1: AtomicUsize = AtomicUsize::new(0);

/// The options of `examples/autobahn_server.rs`, unchanged: permessage-deflate
/// accepted with the defaults, so 12.* and 13.* can run.
fn options() -> ServerOptions {
    ServerOptions::default().deflate(DeflateConfig::default())
}

/// Upgrades the request and echoes on the connection once hyper hands it
/// over; anything else gets the rejection (400, 405, 426 or 500).
async fn serve(mut request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let options = options();
    let version = request.version();
    match wsstream::hyper::upgrade(&mut request, &options) {
        Ok((response, upgrading)) => {
            if version == http::Version::HTTP_2 {
                OVER_HTTP2.fetch_add(1, Ordering::Relaxed);
            } else {
                OVER_HTTP1.fetch_add(1, Ordering::Relaxed);
            }
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

/// Serves one connection over HTTP/1.1, with upgrades.
async fn serve_http1(tcp: TcpStream) -> Result<(), hyper::Error> {
    http1::Builder::new()
        // The raw server bounds the handshake by ServerOptions'
        // handshake_timeout (10 s by default); here reading the request is
        // hyper's, so bound it the same.
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(TokioIo::new(tcp), service_fn(serve))
        .with_upgrades()
        .await
}

/// Serves one connection over HTTP/2 (prior knowledge), with extended
/// CONNECT: each WebSocket is a stream of it.
#[cfg(feature = "http2")]
async fn serve_http2(tcp: TcpStream) -> Result<(), hyper::Error> {
    let mut builder =
        hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .enable_connect_protocol()
        // hyper's defaults are 1 MiB per stream and for the connection:
        // one WebSocket that stops reading would stall all the others.
        .initial_stream_window_size(256 * 1024)
        .initial_connection_window_size(16 * 1024 * 1024);
    builder
        .serve_connection(TokioIo::new(tcp), service_fn(serve))
        .await
}

/// Resolves on SIGTERM (what autobahn/run.sh sends) or Ctrl-C.
async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let http2 = match args.iter().position(|a| a == "--http2") {
        Some(i) => {
            args.remove(i);
            true
        }
        None => false,
    };
    let addr = match args.as_slice() {
        [addr] => addr.clone(),
        _ => {
            eprintln!("usage: autobahn_hyper_server [--http2] <addr:port, e.g. 127.0.0.1:9001>");
            return ExitCode::from(2);
        }
    };
    if http2 && cfg!(not(feature = "http2")) {
        eprintln!(
            "autobahn_hyper_server: --http2 needs the `http2` feature (cargo build --features hyper,http2)"
        );
        return ExitCode::from(2);
    }
    let listener = match TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("autobahn_hyper_server: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let over = if http2 { "HTTP/2" } else { "HTTP/1.1" };
    match listener.local_addr() {
        Ok(a) => println!("listening on {a} ({over})"),
        Err(_) => println!("listening on {addr} ({over})"),
    }

    let shutdown = shutdown();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("autobahn_hyper_server: accept failed: {e}");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            #[cfg(feature = "http2")]
            let served = if http2 {
                serve_http2(tcp).await
            } else {
                serve_http1(tcp).await
            };
            #[cfg(not(feature = "http2"))]
            let served = serve_http1(tcp).await;
            if let Err(e) = served {
                eprintln!("autobahn_hyper_server: connection from {peer}: {e}");
            }
        });
    }
    // One line, for autobahn/run.sh to check which HTTP the WebSockets came over.
    println!(
        "autobahn_hyper_server: {} WebSockets accepted over HTTP/2, {} over HTTP/1.x",
        OVER_HTTP2.load(Ordering::Relaxed),
        OVER_HTTP1.load(Ordering::Relaxed)
    );
    ExitCode::SUCCESS
}
