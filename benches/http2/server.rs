//! The server process: hyper 1 serving HTTP/1.1 with upgrades or HTTP/2
//! with extended CONNECT, a wsstream echo on every WebSocket.

use std::convert::Infallible;
use std::io::{self, BufRead, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use wsstream::ServerOptions;

use crate::common::os::{cpu_time, current_thread_runtime, env_usize, peak_rss_kib, pin_to_cpu};
use crate::process::{env_http, open_fds, CPU};
use crate::workloads::{Http, SOCKETS};

/// hyper's default SETTINGS_MAX_CONCURRENT_STREAMS is 200; the bench needs
/// one stream per WebSocket.
const MAX_STREAMS: u32 = SOCKETS as u32;

/// `HTTP2_BENCH_MAX_STREAMS`: a number, or `default` to leave hyper's own
/// (`None`).
fn max_streams() -> Option<u32> {
    match std::env::var("HTTP2_BENCH_MAX_STREAMS").as_deref() {
        Ok("default") => None,
        Ok(n) => Some(n.parse().expect("HTTP2_BENCH_MAX_STREAMS: a number")),
        Err(_) => Some(MAX_STREAMS),
    }
}

/// The server process: prints `PORT n`, answers `STATS` lines on stdin,
/// and exits when stdin closes.
pub(super) fn run_server() {
    pin_to_cpu(env_usize(CPU));
    let http = env_http();
    let baseline = peak_rss_kib();
    let connections = Arc::new(AtomicU64::new(0));
    let runtime = current_thread_runtime();
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    println!("PORT {}", listener.local_addr().expect("addr").port());
    io::stdout().flush().expect("stdout");
    let counted = connections.clone();
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            if !line.is_ok_and(|l| l.trim() == "STATS") {
                break;
            }
            println!(
                "STATS cpu_ns={} rss_kib={} fds={} connections={}",
                cpu_time().as_nanos(),
                peak_rss_kib().saturating_sub(baseline),
                open_fds(),
                counted.load(Ordering::SeqCst),
            );
            io::stdout().flush().expect("stdout");
        }
        // The parent closed our stdin: the measurement is over.
        std::process::exit(0);
    });
    let options = ServerOptions::default();
    let max_streams = max_streams();
    runtime.block_on(async move {
        loop {
            let (tcp, _) = listener.accept().await.expect("accept");
            connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(tcp, http, options.clone(), max_streams));
        }
    });
}

async fn serve(tcp: TcpStream, http: Http, options: ServerOptions, max_streams: Option<u32>) {
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    let io = TokioIo::new(tcp);
    let service = service_fn(move |mut request: Request<Incoming>| {
        let response = match wsstream::hyper::upgrade(&mut request, &options) {
            Ok((response, upgrading)) => {
                tokio::spawn(async move {
                    let ws = upgrading.await?;
                    let opened = ws.opened().await?;
                    opened.readable.forward(opened.writable).await
                });
                response
            }
            Err(rejection) => {
                eprintln!("server: refused a request: {}", rejection.status());
                rejection.into_response().map(Full::new)
            }
        };
        async move { Ok::<Response<Full<Bytes>>, Infallible>(response) }
    });
    // Clients end by exiting: the errors that follow are expected.
    let _ = match http {
        Http::H1 => {
            hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades()
                .await
        }
        Http::H2 => {
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            // The windows of tests/http2.rs (hyper's default is 1 MiB for
            // both, so one stalled reader would stall the connection).
            builder
                .initial_stream_window_size(256 * 1024)
                .initial_connection_window_size(16 * 1024 * 1024)
                .enable_connect_protocol();
            if let Some(max) = max_streams {
                builder.max_concurrent_streams(max);
            }
            builder.serve_connection(io, service).await
        }
    };
}
