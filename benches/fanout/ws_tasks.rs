//! wsstream without `Broadcast`, as a user would write it: a tokio
//! broadcast channel of `PreparedMessage`s (each encoded once), and a task
//! per connection that forwards it to its writable and reads its
//! readable.

use std::future::poll_fn;
use std::pin::Pin;

use bytes::Bytes;
use futures::{Sink, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast::{self, error::RecvError};
use wsstream::{Message, PreparedMessage, ServerOptions, WebSocketStream, Writable};

use crate::channel::ChannelLibrary;
use crate::server::joined;

pub(super) struct WsTasks;

impl ChannelLibrary for WsTasks {
    type Item = PreparedMessage;

    fn item(payload: Bytes) -> PreparedMessage {
        PreparedMessage::new(Message::binary(payload))
    }

    /// One task, `select!` over the channel and the readable (both
    /// cancel-safe): each message the channel has is queued with
    /// `start_send_prepared` (after `poll_ready`), and the writable is
    /// flushed once the channel is empty, so a burst leaves in few
    /// writes.
    async fn serve(tcp: TcpStream, channel: broadcast::Sender<PreparedMessage>) {
        let Ok(ws) = WebSocketStream::accept(tcp, ServerOptions::default()).await else {
            return;
        };
        let Ok(opened) = ws.opened().await else {
            return;
        };
        let mut messages = channel.subscribe();
        joined();
        let (mut readable, mut writable) = (opened.readable, opened.writable);
        loop {
            tokio::select! {
                received = messages.recv() => match received {
                    Ok(first) => {
                        if send_burst(&mut writable, &mut messages, first).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
                read = readable.next() => if !matches!(read, Some(Ok(_))) {
                    return;
                },
            }
        }
    }
}

/// Queues `first` and whatever else the channel holds, then flushes.
async fn send_burst(
    writable: &mut Writable,
    messages: &mut broadcast::Receiver<PreparedMessage>,
    first: PreparedMessage,
) -> Result<(), wsstream::Error> {
    let mut message = first;
    loop {
        poll_fn(|cx| Sink::<Message>::poll_ready(Pin::new(&mut *writable), cx)).await?;
        writable.start_send_prepared(&message)?;
        match messages.try_recv() {
            Ok(next) => message = next,
            Err(_) => break,
        }
    }
    poll_fn(|cx| Sink::<Message>::poll_flush(Pin::new(&mut *writable), cx)).await
}
