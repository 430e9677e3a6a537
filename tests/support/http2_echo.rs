//! What the HTTP/2 interop tests with peers that are not ours share
//! (`tests/http2_node.rs`, `tests/http2_nghttpx.rs`): bounded steps, the
//! messages a WebSocket sends, a wsstream client WebSocket over HTTP/2 that
//! checks every echo and closes cleanly, and a wsstream echo server on
//! hyper's HTTP/2 (extended CONNECT on) that records what it saw of each
//! request.

#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use wsstream::{Message, Options, ServerOptions, WebSocketStream};

/// The longest any single step may take.
pub const STEP: Duration = Duration::from_secs(30);

/// `future`, failing the test if it takes longer than [`STEP`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {STEP:?}: {what}"))
}

/// The messages WebSocket `stream` sends, one of each size in `sizes`:
/// text and binary by turns, the text multibyte UTF-8 (a repeated
/// `héllo wörld — <stream>/<index> 🦀 <text_tail>`, cut at a character
/// boundary), each different per stream so that crossed streams show.
pub fn messages(stream: usize, sizes: &[usize], text_tail: &str) -> Vec<Message> {
    sizes
        .iter()
        .enumerate()
        .map(|(index, &size)| {
            if (stream + index) % 2 == 0 {
                let unit = format!("héllo wörld — {stream}/{index} 🦀 {text_tail}");
                let mut text = unit.repeat(size / unit.len() + 1);
                let mut cut = size;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                Message::text(text)
            } else {
                Message::binary(
                    (0..size)
                        .map(|i| (i * 31 + stream * 7 + index) as u8)
                        .collect::<Vec<u8>>(),
                )
            }
        })
        .collect()
}

fn describe(message: &Message) -> String {
    let kind = if message.is_text() { "text" } else { "binary" };
    format!("{kind} of {} bytes", message.len())
}

/// Opens a WebSocket to `url` with `options`, checks that it runs over
/// HTTP/2 (`200`) with the `expected_protocol`, sends `sent` while reading
/// their echoes (checked by type and content, in order), then closes with
/// 1000 "done" and expects the same back.
pub async fn echo_over(url: String, options: Options, sent: Vec<Message>, expected_protocol: &str) {
    let ws = WebSocketStream::connect(url.clone(), options);
    let opened = within("the opening handshake", ws.opened())
        .await
        .unwrap_or_else(|err| panic!("opening {url} failed: {err} ({err:?})"));
    assert_eq!(
        opened.response.version(),
        http::Version::HTTP_2,
        "{url}: not HTTP/2"
    );
    assert_eq!(opened.response.status(), http::StatusCode::OK, "{url}");
    assert_eq!(opened.protocol.as_deref(), Some(expected_protocol), "{url}");

    let (mut readable, mut writable) = (opened.readable, opened.writable);
    let writer = async {
        for message in sent.clone() {
            within("sending a message", writable.send(message))
                .await
                .unwrap();
        }
    };
    let reader = async {
        for (n, message) in sent.iter().enumerate() {
            let echoed = within("an echo", readable.next())
                .await
                .unwrap_or_else(|| panic!("{url}: the readable ended before echo {n}"))
                .unwrap_or_else(|err| panic!("{url}: echo {n} failed: {err} ({err:?})"));
            assert!(
                echoed == *message,
                "{url}: echo {n} came back as {}, sent {}",
                describe(&echoed),
                describe(message)
            );
        }
    };
    tokio::join!(writer, reader);

    ws.close(1000, "done").unwrap();
    let after = within("the end of the readable", readable.next()).await;
    assert!(after.is_none(), "{url}: after the close, {after:?}");
    let closed = within("the close handshake", ws.closed())
        .await
        .unwrap_or_else(|err| panic!("{url}: unclean close: {err} ({err:?})"));
    assert_eq!((closed.code, closed.reason.as_str()), (1000, "done"));
}

/// What the echo server saw of one request; filled in as its WebSocket
/// ends.
#[derive(Debug)]
pub struct Seen {
    pub version: http::Version,
    pub method: http::Method,
    /// The extended CONNECT's `:protocol`.
    pub protocol: Option<String>,
    pub path: String,
    /// The HTTP version of the request the `WebSocketStream` reports.
    pub stream_version: Option<http::Version>,
    /// The `Sec-WebSocket-Extensions` the server agreed on.
    pub extensions: String,
    /// The close code, when the close was clean.
    pub closed: Option<u16>,
}

impl Seen {
    /// Checks that the request was an HTTP/2 extended CONNECT with
    /// `:protocol websocket` whose WebSocket closed cleanly with 1000.
    pub fn assert_websocket_over_http2(&self) {
        assert_eq!(self.version, http::Version::HTTP_2, "{self:?}");
        assert_eq!(self.method, http::Method::CONNECT, "{self:?}");
        assert_eq!(self.protocol.as_deref(), Some("websocket"), "{self:?}");
        assert_eq!(self.closed, Some(1000), "{self:?}");
    }
}

/// A connection as the echo server serves it: TCP, or TLS over TCP.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// What the echo server does with a TCP connection before it serves HTTP/2
/// on it (a TLS handshake, or nothing).
pub type Accepting = std::pin::Pin<Box<dyn Future<Output = std::io::Result<Box<dyn Io>>> + Send>>;

/// Serves accepted TCP connections as they are.
pub fn plain(tcp: tokio::net::TcpStream) -> Accepting {
    Box::pin(async move { Ok(Box::new(tcp) as Box<dyn Io>) })
}

/// The echo server's port, the number of TCP connections it accepted, and
/// what it saw of each request.
pub struct EchoServer {
    pub port: u16,
    pub connections: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl EchoServer {
    /// Waits until the server recorded `count` requests (each is recorded
    /// once its WebSocket is closed) and checks that there are no more.
    pub async fn wait_seen(&self, count: usize) {
        within("the server's WebSockets to end", async {
            while self.seen.lock().unwrap().len() < count {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        let seen = self.seen.lock().unwrap();
        assert_eq!(seen.len(), count, "{seen:?}");
    }

    /// How many TCP connections the server accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Starts a wsstream echo server (`readable.forward(writable)`) with
/// `options` on hyper's HTTP/2 with extended CONNECT on, on 127.0.0.1, each
/// TCP connection first passed through `accept` ([`plain`], or TLS).
pub async fn hyper_h2_echo_server(
    options: ServerOptions,
    accept: impl Fn(tokio::net::TcpStream) -> Accepting + Send + 'static,
) -> EchoServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (accepted, log) = (connections.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            accepted.fetch_add(1, Ordering::SeqCst);
            let (options, log) = (options.clone(), log.clone());
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    let (options, log) = (options.clone(), log.clone());
                    async move {
                        let mut seen = Seen {
                            version: request.version(),
                            method: request.method().clone(),
                            protocol: request
                                .extensions()
                                .get::<hyper::ext::Protocol>()
                                .map(|p| p.as_str().to_owned()),
                            path: request.uri().path().to_owned(),
                            stream_version: None,
                            extensions: String::new(),
                            closed: None,
                        };
                        let response = match wsstream::hyper::upgrade(&mut request, &options) {
                            Ok((response, upgrading)) => {
                                tokio::spawn(async move {
                                    let ws = upgrading.await.unwrap();
                                    seen.stream_version = ws.request().map(|r| r.version());
                                    let opened = ws.opened().await.unwrap();
                                    seen.extensions = opened.extensions.clone();
                                    let _ = opened.readable.forward(opened.writable).await;
                                    seen.closed = ws.closed().await.ok().map(|c| c.code);
                                    log.lock().unwrap().push(seen);
                                });
                                response
                            }
                            Err(rejection) => {
                                log.lock().unwrap().push(seen);
                                rejection.into_response().map(Full::<Bytes>::new)
                            }
                        };
                        Ok::<_, hyper::Error>(response)
                    }
                });
            let io = accept(tcp);
            tokio::spawn(async move {
                let io = io.await?;
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .enable_connect_protocol()
                    .serve_connection(TokioIo::new(io), service)
                    .await
                    .map_err(std::io::Error::other)
            });
        }
    });
    EchoServer {
        port,
        connections,
        seen,
    }
}
