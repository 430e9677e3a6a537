//! fastwebsockets: the HTTP upgrade by hand (its own needs hyper), then
//! split halves on one task: a tokio broadcast channel of `Bytes`
//! forwarded with `write_frame` into a batched writer, and the reader.

use std::future::ready;
use std::io;

use bytes::{Bytes, BytesMut};
use fastwebsockets::{
    after_handshake_split, Frame, OpCode, Payload, Role, WebSocketError, WebSocketWrite,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;
use wsstream::handshake::{parse_request, ServerReply};

use crate::batch_io::Batch;
use crate::channel::ChannelLibrary;
use crate::server::joined;

type Writer = WebSocketWrite<Batch<OwnedWriteHalf>>;

pub(super) struct FastWebSockets;

impl ChannelLibrary for FastWebSockets {
    type Item = Bytes;

    fn item(payload: Bytes) -> Bytes {
        payload
    }

    /// The reader's `read_frame` is not cancel-safe, so it is one future
    /// pinned across the loop, `select!`ed with the channel and with the
    /// frames the reader must have sent (its automatic pong and close
    /// answers, handed over through an unbounded channel). Messages go out
    /// with `write_frame` (writev above 1 KiB, its defaults) into a
    /// [`Batch`] as in benches/compare/, flushed when the channel is
    /// empty.
    async fn serve(mut tcp: TcpStream, channel: broadcast::Sender<Bytes>) {
        if accept_upgrade(&mut tcp).await.is_err() {
            return;
        }
        let (read, write) = tcp.into_split();
        let (mut read, mut write) = after_handshake_split(read, Batch::new(write), Role::Server);
        let mut messages = channel.subscribe();
        joined();
        let (answers, mut to_answer) = mpsc::unbounded_channel::<Frame<'static>>();
        let reader = async {
            let mut answer = |frame| {
                ready(
                    answers
                        .send(frame)
                        .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe)),
                )
            };
            loop {
                let frame = read.read_frame(&mut answer).await?;
                if frame.opcode == OpCode::Close {
                    return Ok::<(), WebSocketError>(());
                }
            }
        };
        tokio::pin!(reader);
        loop {
            tokio::select! {
                _ = &mut reader => return,
                Some(answer) = to_answer.recv() => {
                    if write.write_frame(answer).await.is_err() || write.flush().await.is_err() {
                        return;
                    }
                }
                received = messages.recv() => match received {
                    Ok(first) => {
                        if send_burst(&mut write, &mut messages, first).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }
}

/// Writes `first` and whatever else the channel holds, then flushes.
async fn send_burst(
    write: &mut Writer,
    messages: &mut broadcast::Receiver<Bytes>,
    first: Bytes,
) -> Result<(), WebSocketError> {
    write
        .write_frame(Frame::binary(Payload::Borrowed(&first)))
        .await?;
    while let Ok(payload) = messages.try_recv() {
        write
            .write_frame(Frame::binary(Payload::Borrowed(&payload)))
            .await?;
    }
    write.flush().await
}

/// The server side of the HTTP upgrade, through wsstream's sans-io
/// handshake.
async fn accept_upgrade(tcp: &mut TcpStream) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(1024);
    let head = loop {
        if let Some(head) = parse_request(&mut buf).map_err(io::Error::other)? {
            break head;
        }
        if tcp.read_buf(&mut buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    };
    tcp.write_all(&ServerReply::accept(&head, None)).await
}
