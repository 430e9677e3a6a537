//! wsstream's sans-io core driven by hand: a `proto::Connection` in the
//! connection's own task, with the `WebSocketStream`'s read-buffer policy
//! and `writev`, but no `Stream`/`Sink` layer and no state shared between
//! tasks. Not one of the peers: measured with `SERVER_CORE=1`, it shows
//! what that layer costs, in a table of its own.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::io::poll_read_buf;
use wsstream::proto::{Connection, Limits, ProtocolError, Role};

use crate::fast_echo::accept_upgrade;

/// Room for a read while the peer sends little...
const READ_SMALL: usize = 4 * 1024;
/// ... and once reads fill the room they get.
const READ_LARGE: usize = 64 * 1024;
/// Slices per `writev`.
const SLICES: usize = 64;

/// The HTTP upgrade through the sans-io handshake (as for
/// fastwebsockets), then, like the `WebSocketStream` server under
/// `forward`: reads until the socket would block, queuing the echo of each
/// message as it is decoded, and writes the queue once reading would
/// block. The connection answers pings and the close handshake itself;
/// its limits are the defaults, as for the `WebSocketStream` server.
pub(super) async fn echo_core(mut tcp: TcpStream) {
    if accept_upgrade(&mut tcp).await.is_err() {
        return;
    }
    let _ = echo(&mut tcp, Connection::new(Role::Server, Limits::default())).await;
}

async fn echo(tcp: &mut TcpStream, mut conn: Connection) -> io::Result<()> {
    let mut buf = BytesMut::new();
    let mut streaming = false;
    let mut wait = false;
    // Bytes read since the socket last had nothing.
    let mut burst = 0;
    loop {
        let received = echo_received(&mut conn, &mut buf);
        // A protocol error has queued its close frame.
        if received.is_err() || conn.is_closed() {
            write_queued(tcp, &mut conn).await?;
            return tcp.shutdown().await;
        }
        match read(tcp, &mut buf, streaming, wait).await? {
            Some((0, _)) => return Ok(()),
            Some((read, room)) => {
                streaming = read >= room;
                burst += read;
                wait = false;
            }
            None => {
                // Nothing to read now: write, then wait for the next read.
                write_queued(tcp, &mut conn).await?;
                if buf.is_empty() && burst <= READ_SMALL {
                    // As the `WebSocketStream` does after a quiet turn
                    // that read little: no buffer held between messages.
                    buf = BytesMut::new();
                    streaming = false;
                }
                burst = 0;
                wait = true;
            }
        }
    }
}

/// One read; `None` when the socket has nothing now and `wait` is unset.
async fn read(
    tcp: &mut TcpStream,
    buf: &mut BytesMut,
    streaming: bool,
    wait: bool,
) -> io::Result<Option<(usize, usize)>> {
    poll_fn(
        |cx| match poll_read_once(Pin::new(&mut *tcp), cx, buf, streaming) {
            Poll::Pending if !wait => Poll::Ready(Ok(None)),
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => Poll::Ready(result.map(Some)),
        },
    )
    .await
}

/// One read with the `WebSocketStream`'s buffer policy (a copy of
/// src/stream/read_buffer.rs's, which is private): with no buffer the
/// read lands on the stack and only what arrived is kept; a buffer gets a
/// large read once reads fill the room they get. Returns the bytes read
/// and the room they had.
fn poll_read_once(
    tcp: Pin<&mut TcpStream>,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
    streaming: bool,
) -> Poll<io::Result<(usize, usize)>> {
    if buf.capacity() == 0 && !streaming {
        let mut stack = [MaybeUninit::<u8>::uninit(); READ_SMALL];
        let mut read = ReadBuf::uninit(&mut stack);
        ready!(tcp.poll_read(cx, &mut read))?;
        *buf = BytesMut::from(read.filled());
        return Poll::Ready(Ok((read.filled().len(), READ_SMALL)));
    }
    let want = if streaming { READ_LARGE } else { READ_SMALL };
    if buf.capacity() - buf.len() < want {
        buf.reserve(want);
    }
    let room = buf.capacity() - buf.len();
    let read = ready!(poll_read_buf(tcp, cx, buf))?;
    Poll::Ready(Ok((read, room)))
}

/// Queues the echo of every whole message in `buf`.
fn echo_received(conn: &mut Connection, buf: &mut BytesMut) -> Result<(), ProtocolError> {
    while let Some(message) = conn.receive(buf)? {
        if conn.send(message).is_err() {
            // Our close frame is queued: nothing more goes out.
            break;
        }
    }
    Ok(())
}

async fn write_queued(tcp: &mut TcpStream, conn: &mut Connection) -> io::Result<()> {
    let queue = conn.outgoing();
    while queue.has_remaining() {
        let written = {
            let mut slices = [IoSlice::new(&[]); SLICES];
            let count = queue.chunks_vectored(&mut slices);
            tcp.write_vectored(&slices[..count]).await?
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        queue.advance(written);
    }
    Ok(())
}
