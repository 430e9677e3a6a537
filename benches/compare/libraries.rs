//! The libraries' clients behind one trait: wsstream, tokio-tungstenite and
//! tokio-websockets through their `Stream` + `Sink` (fastwebsockets is in
//! `fast_client`).

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use futures::{Sink, Stream};
use tokio::net::TcpStream;

use crate::common::echo::check_echo;
use crate::workloads::Plan;

pub(super) const LIBRARIES: [&str; 4] = [
    "wsstream",
    "tokio-tungstenite",
    "fastwebsockets",
    "tokio-websockets",
];

/// One library's client, as the workloads use it.
pub(super) trait Library {
    type Conn: 'static;

    /// Opens a connection to the echo server (`TCP_NODELAY` on).
    async fn connect(addr: SocketAddr) -> Self::Conn;
    /// Sends `message` and checks its echo.
    async fn round_trip(conn: &mut Self::Conn, message: &Bytes, full_check: bool);
    /// Runs `plan` with `plan.window` messages in flight.
    async fn pipeline(conn: &mut Self::Conn, plan: &Plan);
}

/// A library whose connection is a `futures` `Stream` + `Sink` of messages.
pub(super) trait SinkLibrary {
    type Message;
    type Error: std::fmt::Debug;
    type Conn: Stream<Item = Result<Self::Message, Self::Error>>
        + Sink<Self::Message, Error = Self::Error>
        + Unpin
        + 'static;

    async fn connect(addr: SocketAddr) -> Self::Conn;
    fn message(payload: &Bytes) -> Self::Message;
    /// The payload of a binary message; anything else is a failure.
    fn payload(message: &Self::Message) -> &[u8];
}

impl<L: SinkLibrary> Library for L {
    type Conn = L::Conn;

    async fn connect(addr: SocketAddr) -> Self::Conn {
        L::connect(addr).await
    }

    async fn round_trip(conn: &mut Self::Conn, message: &Bytes, full_check: bool) {
        use futures::{SinkExt, StreamExt};
        conn.send(L::message(message)).await.expect("send");
        let echo = conn.next().await.expect("echo").expect("read");
        check_echo(L::payload(&echo), message, full_check, "echo 0");
    }

    async fn pipeline(conn: &mut Self::Conn, plan: &Plan) {
        pipeline_sink::<L>(conn, plan).await;
    }
}

/// Keeps `plan.window` messages in flight from one task: reads whatever
/// has arrived, sends while the window allows, and flushes when it stops
/// sending.
async fn pipeline_sink<L: SinkLibrary>(conn: &mut L::Conn, plan: &Plan) {
    let (mut sent, mut received, mut unflushed) = (0, 0, false);
    poll_fn(|cx| loop {
        let mut progress = false;
        while received < sent {
            match Pin::new(&mut *conn).poll_next(cx) {
                Poll::Ready(Some(Ok(echo))) => {
                    plan.check(received, L::payload(&echo));
                    received += 1;
                    progress = true;
                }
                Poll::Ready(Some(Err(err))) => panic!("read: {err:?}"),
                Poll::Ready(None) => panic!("the server closed the connection"),
                Poll::Pending => break,
            }
        }
        if received == plan.total {
            return Poll::Ready(());
        }
        while sent < plan.total && sent - received < plan.window {
            match Pin::new(&mut *conn).poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    let message = L::message(plan.payload(sent));
                    Pin::new(&mut *conn).start_send(message).expect("send");
                    sent += 1;
                    unflushed = true;
                    progress = true;
                }
                Poll::Ready(Err(err)) => panic!("send: {err:?}"),
                Poll::Pending => break,
            }
        }
        if unflushed {
            if let Poll::Ready(flushed) = Pin::new(&mut *conn).poll_flush(cx) {
                flushed.expect("flush");
                unflushed = false;
            }
        }
        if !progress {
            return Poll::Pending;
        }
    })
    .await;
}

pub(super) fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

pub(super) async fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    tcp
}

pub(super) struct Wsstream;

impl SinkLibrary for Wsstream {
    type Message = wsstream::Message;
    type Error = wsstream::Error;
    type Conn = wsstream::Opened;

    async fn connect(addr: SocketAddr) -> Self::Conn {
        // The client sets TCP_NODELAY itself. The opened halves keep the
        // connection; the `WebSocketStream` handle is not needed.
        let ws = wsstream::WebSocketStream::connect(url(addr), wsstream::Options::default());
        ws.opened().await.expect("wsstream: open")
    }

    fn message(payload: &Bytes) -> Self::Message {
        wsstream::Message::binary(payload.clone())
    }

    fn payload(message: &Self::Message) -> &[u8] {
        match message {
            wsstream::Message::Binary(data) => data,
            other => panic!("expected a binary echo, got {other:?}"),
        }
    }
}

pub(super) struct Tungstenite;

impl SinkLibrary for Tungstenite {
    type Message = tokio_tungstenite::tungstenite::Message;
    type Error = tokio_tungstenite::tungstenite::Error;
    type Conn = tokio_tungstenite::WebSocketStream<TcpStream>;

    async fn connect(addr: SocketAddr) -> Self::Conn {
        let tcp = tcp_connect(addr).await;
        let (ws, _) = tokio_tungstenite::client_async(url(addr), tcp)
            .await
            .expect("tokio-tungstenite: open");
        ws
    }

    fn message(payload: &Bytes) -> Self::Message {
        Self::Message::Binary(payload.clone())
    }

    fn payload(message: &Self::Message) -> &[u8] {
        match message {
            Self::Message::Binary(data) => data,
            other => panic!("expected a binary echo, got {other:?}"),
        }
    }
}

pub(super) struct TokioWebsockets;

impl SinkLibrary for TokioWebsockets {
    type Message = tokio_websockets::Message;
    type Error = tokio_websockets::Error;
    type Conn = tokio_websockets::WebSocketStream<TcpStream>;

    async fn connect(addr: SocketAddr) -> Self::Conn {
        let tcp = tcp_connect(addr).await;
        let (ws, _) = tokio_websockets::ClientBuilder::new()
            .uri(&url(addr))
            .expect("uri")
            .connect_on(tcp)
            .await
            .expect("tokio-websockets: open");
        ws
    }

    fn message(payload: &Bytes) -> Self::Message {
        Self::Message::binary(payload.clone())
    }

    fn payload(message: &Self::Message) -> &[u8] {
        assert!(
            message.is_binary(),
            "expected a binary echo, got {message:?}"
        );
        message.as_payload()
    }
}
