//! tokio-tungstenite and tokio-websockets: a task per connection that
//! forwards a tokio broadcast channel of `Bytes` through the library's
//! `Sink` and reads its `Stream`.

use bytes::Bytes;
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::channel::ChannelLibrary;
use crate::server::joined;

pub(super) struct Tungstenite;

impl ChannelLibrary for Tungstenite {
    type Item = Bytes;

    fn item(payload: Bytes) -> Bytes {
        payload
    }

    /// `accept_async` with its defaults. Its stream yields pings and close
    /// frames too, which it answers itself.
    async fn serve(tcp: TcpStream, channel: broadcast::Sender<Bytes>) {
        let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
            return;
        };
        let messages = channel.subscribe();
        joined();
        forward(
            ws,
            messages,
            tokio_tungstenite::tungstenite::Message::Binary,
        )
        .await;
    }
}

pub(super) struct TokioWebsockets;

impl ChannelLibrary for TokioWebsockets {
    type Item = Bytes;

    fn item(payload: Bytes) -> Bytes {
        payload
    }

    /// `ServerBuilder::new().accept` with its defaults. Its stream yields
    /// pings and close frames too, which it answers itself.
    async fn serve(tcp: TcpStream, channel: broadcast::Sender<Bytes>) {
        let Ok((_request, ws)) = tokio_websockets::ServerBuilder::new().accept(tcp).await else {
            return;
        };
        let messages = channel.subscribe();
        joined();
        forward(ws, messages, tokio_websockets::Message::binary).await;
    }
}

/// One task, `select!` over the channel and the connection's stream (both
/// cancel-safe): each message the channel has is `feed` into the sink,
/// which is flushed once the channel is empty; whatever the client sends
/// is read and dropped.
async fn forward<S, M, E>(
    mut ws: S,
    mut messages: broadcast::Receiver<Bytes>,
    message: fn(Bytes) -> M,
) where
    S: Stream<Item = Result<M, E>> + Sink<M, Error = E> + Unpin,
{
    loop {
        tokio::select! {
            received = messages.recv() => match received {
                Ok(first) => {
                    if send_burst(&mut ws, &mut messages, first, message).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            read = ws.next() => if !matches!(read, Some(Ok(_))) {
                return;
            },
        }
    }
}

/// Feeds `first` and whatever else the channel holds, then flushes.
async fn send_burst<S, M, E>(
    ws: &mut S,
    messages: &mut broadcast::Receiver<Bytes>,
    first: Bytes,
    message: fn(Bytes) -> M,
) -> Result<(), E>
where
    S: Sink<M, Error = E> + Unpin,
{
    ws.feed(message(first)).await?;
    while let Ok(payload) = messages.try_recv() {
        ws.feed(message(payload)).await?;
    }
    ws.flush().await
}
