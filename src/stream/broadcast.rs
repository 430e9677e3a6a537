//! One message to many connections: [`Broadcast`], its members, and what
//! it does with a member that cannot keep up.

use std::fmt;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::Poll;

use bytes::Bytes;

use super::driver::FEED_BATCH;
use super::halves::Writable;
use super::shared::{Offer, Shared};
use crate::proto::{frame_runs, CloseCode, CloseFrame, FrameRun, PreparedMessage};

/// What a [`Broadcast`] does with a member whose write queue is full: it
/// holds more than the broadcast's `max_buffered` bytes with the message
/// added. Whatever the choice, the other members get the message at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backpressure {
    /// Wait until the member's socket takes enough of its queue, so that
    /// every member gets every message: [`Broadcast::send`] resolves once
    /// the last one has it. One slow member slows the broadcast (not the
    /// other members, who already have the message).
    Wait,
    /// Skip the message for that member; it gets the next one that fits.
    /// For data where only the latest value matters (prices, positions).
    Drop,
    /// Close that member with this code, and remove it: 1008 (policy
    /// violation) or 1013 (try again later) as uWebSockets'
    /// `closeOnBackpressureLimit` does. Its queue is written before the
    /// close frame, within the close timeout.
    Close(CloseCode),
}

/// Identifies a member of a [`Broadcast`], to [`remove`](Broadcast::remove)
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemberId {
    index: u32,
    generation: u32,
}

/// What became of one broadcast message, member by member.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// Members whose write queue took the message (most have written it
    /// to their socket by the time `send` returns).
    pub queued: usize,
    /// Members skipped under [`Backpressure::Drop`].
    pub dropped: usize,
    /// Members closed and removed under [`Backpressure::Close`].
    pub closed: usize,
    /// Members skipped because they were sending a message in fragments
    /// (through a [`MessageWriter`](crate::MessageWriter)): nothing may go
    /// between its fragments.
    pub busy: usize,
    /// Members removed because their connection is closing or over, or
    /// its halves were all dropped.
    pub ended: usize,
}

/// Sends one message to many server connections, paying its encoding once,
/// with backpressure per connection.
///
/// Each [`send`](Self::send) prepares the message once
/// ([`PreparedMessage`]): every member's write queue takes the same frame
/// (a shared `Bytes`), compressed once when permessage-deflate allows it,
/// and the message is written to each socket right away, from the task
/// that sends, without waking the members' tasks. What a socket does not
/// take at once is written as its connection is polled next (its readable,
/// its writable or its `closed`: a server that reads its connections
/// drains it), or by a later broadcast that finds its queue full.
///
/// A member whose queue would hold more than `max_buffered` bytes gets the
/// [`Backpressure`] policy instead, so a slow client never holds more than
/// that (or one message, when a single message is larger) and never slows
/// the others. The queue is the connection's own: messages its writable
/// sends count too, and its `poll_ready` waits while broadcasts fill it.
///
/// A member leaves when [`remove`](Self::remove)d, and by itself once its
/// connection is over or its halves are dropped (the broadcast never keeps
/// a connection alive). `Broadcast` is a cheap handle: clones share the
/// members.
///
/// ```
/// use std::time::Duration;
///
/// use futures::StreamExt;
/// use wsstream::{Backpressure, Broadcast, Message, Options, ServerOptions, WebSocketStream};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), wsstream::Error> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let url = format!("ws://{}/", listener.local_addr()?);
/// let ticker = Broadcast::new(256 * 1024, Backpressure::Drop);
/// let members = ticker.clone();
/// tokio::spawn(async move {
///     loop {
///         let (tcp, _) = listener.accept().await?;
///         let ws = WebSocketStream::accept(tcp, ServerOptions::default()).await?;
///         let mut opened = ws.opened().await?;
///         members.add(&opened.writable);
///         // Reading keeps the connection going: pings, close, backlog.
///         tokio::spawn(async move { while let Some(Ok(_)) = opened.readable.next().await {} });
///     }
///     #[allow(unreachable_code)]
///     Ok::<_, wsstream::Error>(())
/// });
///
/// let mut clients = Vec::new();
/// for _ in 0..3 {
///     let ws = WebSocketStream::connect(&url, Options::default());
///     clients.push(ws.opened().await?);
/// }
/// while ticker.len() < 3 {
///     tokio::time::sleep(Duration::from_millis(1)).await;
/// }
/// let delivery = ticker.send(Message::text("tick")).await;
/// assert_eq!(delivery.queued, 3);
/// for client in &mut clients {
///     let tick = client.readable.next().await.expect("a message")?;
///     assert_eq!(tick.as_text(), Some("tick"));
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Broadcast {
    group: Arc<Mutex<Group>>,
    max_buffered: usize,
    policy: Backpressure,
}

#[derive(Default)]
struct Group {
    slots: Vec<Slot>,
    free: Vec<u32>,
    members: usize,
}

struct Slot {
    generation: u32,
    member: Option<Weak<Shared>>,
}

impl Broadcast {
    /// An empty broadcast whose members may each hold up to `max_buffered`
    /// bytes waiting to be written before `policy` applies.
    pub fn new(max_buffered: usize, policy: Backpressure) -> Self {
        Self {
            group: Arc::new(Mutex::new(Group::default())),
            max_buffered,
            policy,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds the connection of `writable`. The broadcast holds it weakly:
    /// the connection still ends when its halves are dropped.
    pub fn add(&self, writable: &Writable) -> MemberId {
        let member = Some(Arc::downgrade(&writable.shared));
        let mut group = self.lock();
        group.members += 1;
        if let Some(index) = group.free.pop() {
            let slot = &mut group.slots[index as usize];
            slot.member = member;
            return MemberId {
                index,
                generation: slot.generation,
            };
        }
        let index = u32::try_from(group.slots.len()).unwrap_or(u32::MAX);
        group.slots.push(Slot {
            generation: 0,
            member,
        });
        MemberId {
            index,
            generation: 0,
        }
    }

    /// Removes a member; `false` if it had left already.
    pub fn remove(&self, id: MemberId) -> bool {
        let mut group = self.lock();
        match group.slots.get(id.index as usize) {
            Some(slot) if slot.generation == id.generation && slot.member.is_some() => {
                group.vacate(id.index);
                true
            }
            _ => false,
        }
    }

    /// The members: added, and neither removed nor found ended by a send.
    pub fn len(&self) -> usize {
        self.lock().members
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends `message` to every member, encoding it once, and writes it to
    /// each member's socket right away. Under [`Backpressure::Drop`] and
    /// [`Backpressure::Close`] it is done after the first poll; under
    /// [`Backpressure::Wait`] it resolves once every member took it.
    ///
    /// Cancel safety: dropped before it resolves (only possible under
    /// `Wait`), the members still waiting do not get the message.
    pub async fn send(&self, message: impl Into<PreparedMessage>) -> Delivery {
        self.deliver(std::slice::from_ref(&message.into()), &[], true)
            .await
    }

    /// Sends several messages to every member, in order, as
    /// [`send`](Self::send) would one after the other, but 16 KiB at a
    /// time: each member takes up to 16 KiB of the batch at one visit, with
    /// one system call, where a burst of `send`s or [`feed`](Self::feed)s
    /// visits every member once per message. For a burst that is at hand
    /// at once (a snapshot, the ticks since the last round); the fastest
    /// way to send many small messages to many connections.
    ///
    /// Each message is encoded once, and small ones are joined: a member
    /// without permessage-deflate queues the joined frames as one shared
    /// buffer rather than a copy of each. Under [`Backpressure::Wait`], a
    /// full member holds up the batch at the 16 KiB it could not take, as
    /// it would hold up `send`. The [`Delivery`] adds up what became
    /// of each message for each member, as the `send`s would have: a member
    /// that took three messages counts three in `queued`. A member closed
    /// under [`Backpressure::Close`], or found ended, counts once and gets
    /// none of the messages after that point. Under [`Backpressure::Drop`]
    /// a full member skips the messages that do not fit and gets the later
    /// ones that do.
    ///
    /// Cancel safety: as `send`'s; a member still waiting gets none of the
    /// messages from the one it waits for on.
    ///
    /// ```
    /// # async fn snapshot(ticker: &wsstream::Broadcast, prices: Vec<String>) {
    /// let delivery = ticker
    ///     .send_batch(prices.into_iter().map(wsstream::Message::text))
    ///     .await;
    /// println!("{} deliveries", delivery.queued);
    /// # }
    /// ```
    pub async fn send_batch<I>(&self, messages: I) -> Delivery
    where
        I: IntoIterator,
        I::Item: Into<PreparedMessage>,
    {
        let batch: Vec<PreparedMessage> = messages.into_iter().map(Into::into).collect();
        // Small messages' frames joined 16 KiB at a time: a member takes
        // each run as one shared chunk instead of a copy of every frame.
        let runs = frame_runs(&batch, FEED_BATCH);
        self.deliver(&batch, &runs, true).await
    }

    /// Queues `message` for every member like [`send`](Self::send), but
    /// leaves the writing to [`flush`](Self::flush): a burst of messages
    /// then costs each member one system call instead of one per message
    /// (a member is written early once 16 KiB of the burst wait, so a burst
    /// holds little memory). Call `flush` after the burst. When the whole
    /// burst is at hand, [`send_batch`](Self::send_batch) is faster.
    ///
    /// ```
    /// # async fn burst(ticker: &wsstream::Broadcast, prices: Vec<String>) {
    /// for price in prices {
    ///     ticker.feed(wsstream::Message::text(price)).await;
    /// }
    /// ticker.flush();
    /// # }
    /// ```
    pub async fn feed(&self, message: impl Into<PreparedMessage>) -> Delivery {
        self.deliver(std::slice::from_ref(&message.into()), &[], false)
            .await
    }

    /// Writes what [`feed`](Self::feed) queued: for each member, as much as
    /// its socket takes now; the rest as the connection is polled (see the
    /// type's documentation). Members whose connection is over leave.
    pub fn flush(&self) {
        let mut group = self.lock();
        for index in 0..group.slots.len() {
            let Some(member) = &group.slots[index].member else {
                continue;
            };
            let open = member
                .upgrade()
                .is_some_and(|shared| shared.flush_broadcast());
            if !open {
                group.vacate(index as u32);
            }
        }
    }

    /// Offers `batch` to every member a chunk at a time: a run of joined
    /// frames (`runs`), or the whole batch when there are none (`send` and
    /// `feed`: one message). Each chunk goes
    /// to every member at one visit (one lock, one write), then waits for
    /// the members that were full under `Wait`, before the next chunk: a
    /// burst of small messages costs each member a visit per 16 KiB rather
    /// than per message, and sockets drain between chunks. With `write`,
    /// each visit writes what the socket takes; without, only once 16 KiB
    /// wait (the rest is for `flush`).
    async fn deliver(&self, batch: &[PreparedMessage], runs: &[FrameRun], write: bool) -> Delivery {
        let mut delivery = Delivery::default();
        // The runs cover the batch; without them it is one chunk.
        let chunks = runs.iter().map(|run| (run.count, Some(&run.frames)));
        let whole = runs.is_empty().then_some((batch.len(), None));
        let mut start = 0;
        for (count, run) in chunks.chain(whole) {
            let messages = batch.get(start..start + count).unwrap_or_default();
            let waiting = self.offer_all(messages, run, write, &mut delivery);
            if !waiting.is_empty() {
                self.wait_for(waiting, messages, write, &mut delivery).await;
            }
            start += count;
        }
        delivery
    }

    /// Offers each member that was full under `Wait` the rest of
    /// `messages` as its socket makes room, until every one has taken them
    /// all or ended.
    async fn wait_for(
        &self,
        mut waiting: Vec<Waiting>,
        messages: &[PreparedMessage],
        write: bool,
        delivery: &mut Delivery,
    ) {
        poll_fn(|cx| {
            // First only the members whose socket had a write event since
            // they were offered the message: with thousands waiting, a
            // wake-up is usually one member's. If none of them moved, the
            // wake-up came from elsewhere: offer to all. (A member's end counts
            // as a write event: `Shared::finish`.)
            let mut moved = 0;
            let mut pass = |all: bool, moved: &mut usize| {
                waiting.retain_mut(|member| {
                    let Some(shared) = member.weak.upgrade() else {
                        *moved += 1;
                        return self.settle(delivery, member.id, Offer::Ended);
                    };
                    let events = shared.write_events();
                    if !all && events == member.events {
                        return true;
                    }
                    *moved += 1;
                    member.events = events;
                    // The member takes the rest in order, as far as it has
                    // room.
                    while let Some(message) = messages.get(member.next) {
                        let last = member.next + 1 == messages.len();
                        let waker = Some(cx.waker());
                        match shared.offer(message, self.max_buffered, waker, write && last) {
                            Poll::Pending => return true,
                            Poll::Ready(Offer::Ended) => {
                                return self.settle(delivery, member.id, Offer::Ended)
                            }
                            Poll::Ready(offer) => delivery.count(offer),
                        }
                        member.next += 1;
                    }
                    false
                });
            };
            pass(false, &mut moved);
            if moved == 0 {
                pass(true, &mut moved);
            }
            if waiting.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// Counts what became of a member that waited, removing it if its
    /// connection ended; `false`, for `retain`: it waits no more.
    fn settle(&self, delivery: &mut Delivery, id: MemberId, offer: Offer) -> bool {
        if offer == Offer::Ended {
            self.remove(id);
        }
        delivery.count(offer);
        false
    }

    /// Offers `messages` (with `run`, their frames joined) to every member
    /// once, one visit each; returns the members that were full under
    /// `Wait`, each with the message it waits for.
    fn offer_all(
        &self,
        messages: &[PreparedMessage],
        run: Option<&Bytes>,
        write: bool,
        delivery: &mut Delivery,
    ) -> Vec<Waiting> {
        let mut waiting = Vec::new();
        let mut group = self.lock();
        for index in 0..group.slots.len() {
            let slot = &group.slots[index];
            let Some(member) = &slot.member else {
                continue;
            };
            let id = MemberId {
                index: index as u32,
                generation: slot.generation,
            };
            let Some(shared) = member.upgrade() else {
                delivery.ended += 1;
                group.vacate(index as u32);
                continue;
            };
            // What stopped the member's messages, if anything did.
            let mut stopped = None;
            let offered = shared.offer_batch(messages, run, self.max_buffered, write, |offer| {
                match (offer, self.policy) {
                    (Offer::Full, Backpressure::Drop) => delivery.dropped += 1,
                    (Offer::Full, _) | (Offer::Ended, _) => {
                        stopped = Some(offer);
                        return false;
                    }
                    (offer, _) => delivery.count(offer),
                }
                true
            });
            match (stopped, self.policy) {
                (None, _) => {}
                (Some(Offer::Full), Backpressure::Wait) => waiting.push(Waiting {
                    id,
                    weak: Arc::downgrade(&shared),
                    // Offered again at the first wake-up, whatever woke it.
                    events: shared.write_events().wrapping_sub(1),
                    next: offered - 1,
                }),
                (Some(Offer::Full), Backpressure::Close(code)) => {
                    let frame = CloseFrame::new(code, "backpressure limit").unwrap_or_else(|| {
                        CloseFrame::truncated(CloseCode::POLICY_VIOLATION, "backpressure limit")
                    });
                    shared.close(Some(frame));
                    delivery.closed += 1;
                    group.vacate(index as u32);
                }
                (Some(_), _) => {
                    delivery.ended += 1;
                    group.vacate(index as u32);
                }
            }
        }
        waiting
    }
}

/// A member a message waits for under [`Backpressure::Wait`].
struct Waiting {
    id: MemberId,
    weak: Weak<Shared>,
    /// Its socket's write events when it was last offered the message.
    events: usize,
    /// The message it waits for, in the chunk being sent.
    next: usize,
}

impl Group {
    fn vacate(&mut self, index: u32) {
        if let Some(slot) = self.slots.get_mut(index as usize) {
            if slot.member.take().is_some() {
                slot.generation = slot.generation.wrapping_add(1);
                self.members -= 1;
                self.free.push(index);
            }
        }
    }
}

impl Delivery {
    fn count(&mut self, offer: Offer) {
        match offer {
            Offer::Queued => self.queued += 1,
            Offer::Full => self.dropped += 1,
            Offer::Busy => self.busy += 1,
            Offer::Ended => self.ended += 1,
        }
    }
}

impl fmt::Debug for Broadcast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broadcast")
            .field("members", &self.len())
            .field("max_buffered", &self.max_buffered)
            .field("policy", &self.policy)
            .finish()
    }
}
