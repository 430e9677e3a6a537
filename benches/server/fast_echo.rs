//! The fastwebsockets echo server: the HTTP upgrade by hand (its own needs
//! hyper), then frames echoed as they come, its writes gathered.

use std::io;

use bytes::BytesMut;
use fastwebsockets::{Frame, OpCode, Role, WebSocket, WebSocketError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsstream::handshake::{parse_request, ServerReply};

use crate::batch_io::Batch;

/// fastwebsockets: `read_frame` and `write_frame` on a `WebSocket` with
/// `set_writev(true)`, auto-close and auto-pong on (its defaults), over a
/// [`Batch`] writer as in benches/compare/server.rs: the echoes of what one
/// read brought leave in one write once reading would block. It echoes
/// frame by frame with each frame's opcode and FIN (the load generator
/// sends whole messages, one frame each). fastwebsockets does not check
/// that client frames are masked, and neither does this server.
pub(super) async fn echo_fastwebsockets(mut tcp: TcpStream) {
    if accept_upgrade(&mut tcp).await.is_err() {
        return;
    }
    let mut ws = WebSocket::after_handshake(Batch::new(tcp), Role::Server);
    ws.set_writev(true);
    let _ = echo_frames(&mut ws).await;
}

async fn echo_frames(ws: &mut WebSocket<Batch<TcpStream>>) -> Result<(), WebSocketError> {
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                ws.write_frame(Frame::new(frame.fin, frame.opcode, None, frame.payload))
                    .await?;
            }
            // fastwebsockets has queued its answer.
            OpCode::Close => return ws.flush().await,
            OpCode::Ping | OpCode::Pong => {}
        }
    }
}

/// The server side of the HTTP upgrade, through wsstream's sans-io
/// handshake.
pub(super) async fn accept_upgrade(tcp: &mut TcpStream) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(1024);
    let head = loop {
        if let Some(head) = parse_request(&mut buf).map_err(io::Error::other)? {
            break head;
        }
        if tcp.read_buf(&mut buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    };
    if !buf.is_empty() {
        return Err(io::Error::other("client sent frames before the 101"));
    }
    tcp.write_all(&ServerReply::accept(&head, None)).await
}
