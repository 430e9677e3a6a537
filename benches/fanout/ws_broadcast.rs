//! wsstream's `Broadcast`: every connection's writable joins one
//! broadcast, and its task reads the readable.

use futures::StreamExt;
use tokio::net::TcpStream;
use wsstream::{
    Backpressure, Broadcast, CloseCode, Delivery, Message, ServerOptions, WebSocketStream,
};

use crate::cases::{Case, Policy, MAX_BUFFERED};
use crate::message::Messages;
use crate::server::{joined, Fanout, Pace};

#[derive(Clone)]
pub(super) struct WsBroadcast {
    group: Broadcast,
}

impl WsBroadcast {
    pub(super) fn new(policy: Policy) -> Self {
        let policy = match policy {
            Policy::Wait => Backpressure::Wait,
            Policy::Drop => Backpressure::Drop,
            Policy::Close => Backpressure::Close(CloseCode::TRY_AGAIN_LATER),
        };
        Self {
            group: Broadcast::new(MAX_BUFFERED, policy),
        }
    }
}

impl Fanout for WsBroadcast {
    /// `accept` with `ServerOptions::default()`; the writable joins the
    /// broadcast and the task reads (and discards) until the client goes.
    /// Reading also writes what a socket did not take at once.
    fn serve(&self, tcp: TcpStream) {
        let group = self.group.clone();
        tokio::spawn(async move {
            let Ok(ws) = WebSocketStream::accept(tcp, ServerOptions::default()).await else {
                return;
            };
            let Ok(opened) = ws.opened().await else {
                return;
            };
            group.add(&opened.writable);
            joined();
            let (mut readable, writable) = (opened.readable, opened.writable);
            while let Some(Ok(_)) = readable.next().await {}
            drop(writable);
        });
    }

    /// `feed(message).await` for each message of a burst and one `flush`
    /// after it, or `send(message).await` for each paced message; the
    /// `SENT` line has the `Delivery` counts summed over the run.
    async fn broadcast(&self, case: &Case, count: usize, size: usize) -> String {
        let messages = Messages::new(size);
        let mut total = Delivery::default();
        let mut pace = Pace::new(case);
        // A burst is fed and flushed once; a paced feed sends each
        // message alone, written at once.
        let burst = case.tick().is_none();
        for n in 0..count as u64 {
            pace.next().await;
            let message = Message::binary(messages.payload(n));
            let delivery = if burst {
                self.group.feed(message).await
            } else {
                self.group.send(message).await
            };
            total.queued += delivery.queued;
            total.dropped += delivery.dropped;
            total.closed += delivery.closed;
            total.busy += delivery.busy;
            total.ended += delivery.ended;
        }
        if burst {
            self.group.flush();
        }
        format!(
            "queued={} dropped={} closed={} busy={} ended={}",
            total.queued, total.dropped, total.closed, total.busy, total.ended
        )
    }
}
