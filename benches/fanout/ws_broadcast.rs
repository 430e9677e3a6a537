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

    /// A burst is one `send_batch` of all its messages (built before the
    /// send, as a channel design's burst is in its channel); a paced
    /// message is `send(message).await`. The `SENT` line has the
    /// `Delivery` counts summed over the run.
    async fn broadcast(&self, case: &Case, count: usize, size: usize) -> String {
        let messages = Messages::new(size);
        let message = |n: u64| Message::binary(messages.payload(n));
        let mut total = Delivery::default();
        let mut add = |delivery: Delivery| {
            total.queued += delivery.queued;
            total.dropped += delivery.dropped;
            total.closed += delivery.closed;
            total.busy += delivery.busy;
            total.ended += delivery.ended;
        };
        match case.tick() {
            None => add(self.group.send_batch((0..count as u64).map(message)).await),
            Some(_) => {
                let mut pace = Pace::new(case);
                for n in 0..count as u64 {
                    pace.next().await;
                    add(self.group.send(message(n)).await);
                }
            }
        }
        format!(
            "queued={} dropped={} closed={} busy={} ended={}",
            total.queued, total.dropped, total.closed, total.busy, total.ended
        )
    }
}
