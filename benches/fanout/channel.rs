//! The designs without `wsstream::Broadcast`: one tokio broadcast channel,
//! and a task per connection that receives each message and sends it
//! with its library's API.

use std::future::Future;
use std::marker::PhantomData;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::broadcast;

use crate::cases::Case;
use crate::message::Messages;
use crate::server::{Fanout, Pace};

/// One library's connection task.
pub(super) trait ChannelLibrary: 'static {
    /// What the channel carries.
    type Item: Clone + Send + Sync + 'static;

    fn item(payload: Bytes) -> Self::Item;

    /// The handshake, then a receiver from `channel` (and
    /// [`joined`](crate::server::joined)), then every message it gets
    /// sent, until the client goes.
    fn serve(
        tcp: TcpStream,
        channel: broadcast::Sender<Self::Item>,
    ) -> impl Future<Output = ()> + Send + 'static;
}

/// The channel every connection's task subscribes to.
pub(super) struct ChannelFanout<L: ChannelLibrary> {
    channel: broadcast::Sender<L::Item>,
    library: PhantomData<fn() -> L>,
}

impl<L: ChannelLibrary> ChannelFanout<L> {
    pub(super) fn new(case: &Case) -> Self {
        Self {
            channel: broadcast::channel(case.capacity()).0,
            library: PhantomData,
        }
    }
}

impl<L: ChannelLibrary> Clone for ChannelFanout<L> {
    fn clone(&self) -> Self {
        Self {
            channel: self.channel.clone(),
            library: PhantomData,
        }
    }
}

impl<L: ChannelLibrary> Fanout for ChannelFanout<L> {
    fn serve(&self, tcp: TcpStream) {
        tokio::spawn(L::serve(tcp, self.channel.clone()));
    }

    /// Sends every message into the channel; the connection tasks run
    /// once this returns (or, paced, while it waits for the next tick).
    async fn broadcast(&self, case: &Case, count: usize, size: usize) -> String {
        let messages = Messages::new(size);
        let mut pace = Pace::new(case);
        for n in 0..count as u64 {
            pace.next().await;
            let _ = self.channel.send(L::item(messages.payload(n)));
        }
        format!("receivers={}", self.channel.receiver_count())
    }
}
