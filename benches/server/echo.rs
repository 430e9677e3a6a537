//! The echo servers of the libraries whose connection is a `futures`
//! `Stream` + `Sink` of messages: wsstream, tokio-tungstenite and
//! tokio-websockets, each with its own accept and library defaults (every
//! default lets 16 KiB messages through); one echo loop serves the last
//! two.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{ready, Poll};

use futures::{Sink, Stream, StreamExt};
use tokio::net::TcpStream;

/// Echoes every data message on `ws` until the client goes: reads while
/// messages come and the sink is ready for one, `start_send`s each, and
/// flushes when the read side returns `Pending`.
async fn echo_messages<S, M, E>(mut ws: S, is_data: fn(&M) -> bool) -> Result<(), E>
where
    S: Stream<Item = Result<M, E>> + Sink<M, Error = E> + Unpin,
{
    let mut unflushed = false;
    poll_fn(|cx| loop {
        ready!(Pin::new(&mut ws).poll_ready(cx))?;
        match Pin::new(&mut ws).poll_next(cx) {
            Poll::Ready(Some(Ok(message))) => {
                if is_data(&message) {
                    Pin::new(&mut ws).start_send(message)?;
                    unflushed = true;
                }
            }
            Poll::Ready(Some(Err(err))) => return Poll::Ready(Err(err)),
            Poll::Ready(None) => return Poll::Ready(Ok(())),
            Poll::Pending => {
                if unflushed {
                    ready!(Pin::new(&mut ws).poll_flush(cx))?;
                    unflushed = false;
                }
                return Poll::Pending;
            }
        }
    })
    .await
}

/// wsstream: `WebSocketStream::accept` with `ServerOptions::default()`,
/// `opened()`, then `readable.forward(writable)`: in a trial, the echo
/// loop on `Opened` (a `Stream` + `Sink` whole) was no faster (see the
/// top of main.rs).
pub(super) async fn echo_wsstream(tcp: TcpStream) {
    let Ok(ws) = wsstream::WebSocketStream::accept(tcp, wsstream::ServerOptions::default()).await
    else {
        return;
    };
    let Ok(opened) = ws.opened().await else {
        return;
    };
    let _ = opened.readable.forward(opened.writable).await;
}

/// tokio-tungstenite: `accept_async` on the `TcpStream`, then the echo
/// loop on the unsplit stream. Pings, pongs and close frames come out of
/// its stream too; tungstenite answers them itself.
pub(super) async fn echo_tungstenite(tcp: TcpStream) {
    use tokio_tungstenite::tungstenite::Message;
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let _ = echo_messages(ws, |m: &Message| m.is_binary() || m.is_text()).await;
}

/// tokio-websockets: `ServerBuilder::new().accept`, then the echo loop.
/// Pings and close frames come out of its stream too; it answers them
/// itself.
pub(super) async fn echo_tokio_websockets(tcp: TcpStream) {
    let Ok((_request, ws)) = tokio_websockets::ServerBuilder::new().accept(tcp).await else {
        return;
    };
    let _ = echo_messages(ws, |m: &tokio_websockets::Message| {
        m.is_binary() || m.is_text()
    })
    .await;
}
