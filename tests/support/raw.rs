//! A hand-driven WebSocket peer for tests: it speaks the handshake with the
//! crate's sans-io pieces, then reads and writes raw frames, so a test can
//! send exactly the bytes a misbehaving peer would.

#![allow(dead_code)]

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsstream::handshake::{parse_request, ServerReply};
use wsstream::proto::{encode_frame, Frame, FrameDecoder, FrameHeader, OpCode, Role};

/// Bounds every wait in a test so a bug fails it instead of hanging it.
pub const LIMIT: Duration = Duration::from_secs(10);

pub async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(LIMIT, future)
        .await
        .expect("test step timed out")
}

/// A listener on 127.0.0.1 and the `ws://` URL that reaches it.
pub async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    (listener, url)
}

/// The server end of a raw connection, after a completed handshake.
pub struct RawPeer<S> {
    pub io: S,
    pub buf: BytesMut,
    decoder: FrameDecoder,
}

/// Accepts one TCP connection and completes the server handshake by hand.
pub async fn accept_raw(listener: &TcpListener) -> RawPeer<TcpStream> {
    let (tcp, _) = within(listener.accept()).await.unwrap();
    RawPeer::handshake(tcp, b"").await
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawPeer<S> {
    /// Reads the client's request and answers 101, appending `after` to the
    /// same write (frames the client must not lose).
    pub async fn handshake(io: S, after: &[u8]) -> Self {
        Self::handshake_with(io, None, after).await
    }

    /// Like [`handshake`](Self::handshake), answering `extensions` as the
    /// `Sec-WebSocket-Extensions` value (RSV1 is then accepted from the
    /// client).
    pub async fn handshake_with(mut io: S, extensions: Option<&str>, after: &[u8]) -> Self {
        let mut buf = BytesMut::new();
        let head = loop {
            if let Some(head) = parse_request(&mut buf).unwrap() {
                break head;
            }
            assert!(
                within(io.read_buf(&mut buf)).await.unwrap() > 0,
                "client left"
            );
        };
        let mut reply = ServerReply::accept_with_extensions(&head, None, extensions);
        reply.extend_from_slice(after);
        io.write_all(&reply).await.unwrap();
        let mut decoder = FrameDecoder::new(Role::Server, usize::MAX);
        if extensions.is_some() {
            decoder.allow_rsv(wsstream::proto::RSV1);
        }
        Self { io, buf, decoder }
    }

    /// The next frame the client sent, or `None` at end of stream.
    pub async fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self
                .decoder
                .decode(&mut self.buf)
                .expect("client sent a bad frame")
            {
                return Some(frame);
            }
            if within(self.io.read_buf(&mut self.buf)).await.unwrap_or(0) == 0 {
                return None;
            }
        }
    }

    /// Frames until the client's close frame; returns its code.
    pub async fn read_until_close(&mut self) -> Option<u16> {
        while let Some(frame) = self.read_frame().await {
            if let Some(code) = close_code(&frame) {
                return Some(code);
            }
        }
        None
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }
}

/// The code of a close frame (1005 when it has none); `None` for any
/// other frame.
pub fn close_code(frame: &Frame) -> Option<u16> {
    if frame.header.opcode != OpCode::Close {
        return None;
    }
    let p = &frame.payload;
    Some(if p.len() >= 2 {
        u16::from_be_bytes([p[0], p[1]])
    } else {
        1005
    })
}

/// One binary message as `pieces` frames (the last may be shorter), each
/// masked with `mask` if given.
pub fn binary_fragments(payload: &[u8], pieces: usize, mask: Option<[u8; 4]>) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = payload.chunks(payload.len().div_ceil(pieces)).collect();
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let opcode = if i == 0 {
                OpCode::Binary
            } else {
                OpCode::Continuation
            };
            frame(opcode, i == last, chunk, mask)
        })
        .collect()
}

/// A frame as a server sends it (unmasked), or masked with `mask`.
pub fn frame(opcode: OpCode, fin: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask,
        payload_len: 0,
    };
    let mut out = BytesMut::new();
    encode_frame(&header, payload, &mut out);
    out.to_vec()
}

/// A close frame body: code and reason.
pub fn close_body(code: u16, reason: &str) -> Vec<u8> {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(reason.as_bytes());
    body
}

impl RawPeer<TcpStream> {
    /// A second handle on the same socket, so the peer can write (a flood,
    /// say) from one task while it reads frames in another.
    pub fn split_writer(self) -> (Self, TcpStream) {
        let std = self.io.into_std().unwrap();
        let writer = std.try_clone().unwrap();
        let peer = Self {
            io: TcpStream::from_std(std).unwrap(),
            buf: self.buf,
            decoder: self.decoder,
        };
        (peer, TcpStream::from_std(writer).unwrap())
    }

    /// Reads until the client closes the TCP connection (end of stream or a
    /// reset), discarding what arrives; `false` if it stays open past
    /// [`LIMIT`].
    pub async fn sees_eof(&mut self) -> bool {
        let mut sink = [0u8; 4096];
        tokio::time::timeout(LIMIT, async {
            loop {
                match self.io.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }
}

/// Reads a client's upgrade request head from `io` without answering it
/// (for peers that answer by hand).
pub async fn read_request_head<S: AsyncRead + Unpin>(io: &mut S) -> BytesMut {
    let mut buf = BytesMut::new();
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        assert!(
            within(io.read_buf(&mut buf)).await.unwrap() > 0,
            "client left"
        );
    }
    buf
}
