//! The fastwebsockets client: a hand-made HTTP upgrade, then split halves
//! joined on one task.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use fastwebsockets::{Frame, OpCode, Payload, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;
use wsstream::handshake::{ClientHandshake, Target};

use crate::batch_io::Batch;
use crate::common::echo::check_echo;
use crate::libraries::{tcp_connect, url, Library};
use crate::workloads::Plan;

/// fastwebsockets: the HTTP upgrade by hand (wsstream's sans-io
/// handshake), then split halves; the writer is buffered like the server's
/// and flushed when the client stops sending. Payloads are masked in a
/// reused scratch buffer, the cheapest way its API allows.
pub(super) struct FastWebSockets;

pub(super) struct FastConn {
    read: fastwebsockets::WebSocketRead<OwnedReadHalf>,
    write: fastwebsockets::WebSocketWrite<Batch<OwnedWriteHalf>>,
    scratch: Vec<u8>,
}

impl FastConn {
    /// Writes one binary frame into the write buffer (no flush).
    async fn send(&mut self, payload: &[u8]) {
        self.scratch.clear();
        self.scratch.extend_from_slice(payload);
        let frame = Frame::binary(Payload::BorrowedMut(&mut self.scratch));
        self.write.write_frame(frame).await.expect("write");
    }

    async fn flush(&mut self) {
        self.write.flush().await.expect("flush");
    }
}

/// fastwebsockets' reader hands us the frames it must answer (pong,
/// close); the echo server sends none.
fn refuse(_frame: Frame<'_>) -> std::future::Ready<Result<(), io::Error>> {
    std::future::ready(Err(io::Error::other("unexpected control frame")))
}

async fn fast_read(read: &mut fastwebsockets::WebSocketRead<OwnedReadHalf>) -> Frame<'_> {
    let frame = read.read_frame(&mut refuse).await.expect("read");
    assert!(
        frame.fin && frame.opcode == OpCode::Binary,
        "expected a binary echo"
    );
    frame
}

impl Library for FastWebSockets {
    type Conn = FastConn;

    async fn connect(addr: SocketAddr) -> Self::Conn {
        let mut tcp = tcp_connect(addr).await;
        let target = Target::parse(&url(addr)).expect("url");
        let handshake =
            ClientHandshake::new(&target, &[], &http::HeaderMap::new()).expect("handshake");
        tcp.write_all(handshake.request()).await.expect("write");
        let mut buf = BytesMut::with_capacity(1024);
        while handshake.read_response(&mut buf).expect("101").is_none() {
            assert!(tcp.read_buf(&mut buf).await.expect("read") > 0, "eof");
        }
        assert!(buf.is_empty(), "the server spoke first");
        let (r, w) = tcp.into_split();
        let (read, write) = fastwebsockets::after_handshake_split(r, Batch::new(w), Role::Client);
        FastConn {
            read,
            write,
            scratch: Vec::new(),
        }
    }

    async fn round_trip(conn: &mut Self::Conn, message: &Bytes, full_check: bool) {
        conn.send(message).await;
        conn.flush().await;
        let echo = fast_read(&mut conn.read).await;
        check_echo(&echo.payload, message, full_check, "echo 0");
    }

    async fn pipeline(conn: &mut Self::Conn, plan: &Plan) {
        let received = Cell::new(0);
        let writer_waits = Cell::new(false);
        let window_opened = Notify::new();
        let FastConn {
            read,
            write,
            scratch,
        } = conn;
        let writer = async {
            let mut conn = WriterHalf { write, scratch };
            for sent in 0..plan.total {
                while sent - received.get() >= plan.window {
                    writer_waits.set(true);
                    conn.flush().await;
                    window_opened.notified().await;
                }
                conn.send(plan.payload(sent)).await;
            }
            conn.flush().await;
        };
        let reader = async {
            for index in 0..plan.total {
                let echo = fast_read(read).await;
                plan.check(index, &echo.payload);
                received.set(index + 1);
                if writer_waits.replace(false) {
                    window_opened.notify_one();
                }
            }
        };
        tokio::join!(writer, reader);
    }
}

/// The write half of a [`FastConn`], borrowed while the read half is busy.
struct WriterHalf<'a> {
    write: &'a mut fastwebsockets::WebSocketWrite<Batch<OwnedWriteHalf>>,
    scratch: &'a mut Vec<u8>,
}

impl WriterHalf<'_> {
    async fn send(&mut self, payload: &[u8]) {
        self.scratch.clear();
        self.scratch.extend_from_slice(payload);
        let frame = Frame::binary(Payload::BorrowedMut(self.scratch));
        self.write.write_frame(frame).await.expect("write");
    }

    async fn flush(&mut self) {
        self.write.flush().await.expect("flush");
    }
}
