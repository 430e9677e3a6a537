//! The wakers of the tasks that wait on one connection's socket.
//!
//! A tokio socket keeps one waker per direction. When the reader task
//! (flushing a pong) and the writer task both wait for the socket to become
//! writable, the second registration would silently replace the first and
//! one task would sleep forever. So the socket is always polled with a
//! waker of a [`WakerSet`], which wakes every task registered with it, and
//! [`SocketWakers::poll`] is the one way a task polls the socket and waits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Wake, Waker};

/// A direction of the socket: which readiness a task waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

/// The directions a poll may wait on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    /// Only the socket's write readiness (flushing, waiting for room).
    Write,
    /// Both: reading, and flushing replies while reading.
    ReadWrite,
}

/// The two waker sets of one socket, held inline by their owner (the
/// connection's shared state), so they cost no allocation of their own and
/// no pointer to follow: the socket's wakers reach them through the owner.
#[derive(Debug)]
pub(crate) struct SocketWakers {
    read: WakerSet,
    write: WakerSet,
}

/// Something that holds [`SocketWakers`] inline.
pub(crate) trait SocketWakersOwner: Send + Sync + 'static {
    fn socket_wakers(&self) -> &SocketWakers;
}

impl SocketWakers {
    /// The socket wakers its owner returns; `owner` is the owner being
    /// built (from `Arc::new_cyclic`).
    pub(crate) fn new<O: SocketWakersOwner>(owner: &Weak<O>) -> Self {
        Self {
            read: WakerSet::new(owner.clone(), Direction::Read),
            write: WakerSet::new(owner.clone(), Direction::Write),
        }
    }

    /// The set for read readiness.
    pub(crate) fn read(&self) -> &WakerSet {
        &self.read
    }

    /// The set for write readiness.
    pub(crate) fn write(&self) -> &WakerSet {
        &self.write
    }

    fn get(&self, direction: Direction) -> &WakerSet {
        match direction {
            Direction::Read => &self.read,
            Direction::Write => &self.write,
        }
    }

    /// Runs `poll`, which polls the socket with these sets' wakers, for the
    /// task of `waker`. When it returns `Pending`, the task is registered
    /// in the sets of `interest`, and woken at once if an event came while
    /// `poll` ran: that event may have found the sets without it.
    /// Registering only on `Pending` spares a lock per message while data
    /// flows.
    #[inline]
    pub(crate) fn poll<T>(
        &self,
        waker: &Waker,
        interest: Interest,
        poll: impl FnOnce(&Self) -> Poll<T>,
    ) -> Poll<T> {
        let read_seen = (interest == Interest::ReadWrite).then(|| self.read.events());
        let write_seen = self.write.events();
        let result = poll(self);
        if result.is_pending() {
            if let Some(seen) = read_seen {
                self.read.register_since(waker, seen);
            }
            self.write.register_since(waker, write_seen);
        }
        result
    }

    /// [`poll`](Self::poll) for a task that reads: on `Pending` it is
    /// registered for read readiness, and for write readiness only when
    /// `poll` says it left something to write (the second value). A reader
    /// with nothing to flush is not woken, and not registered (a lock and
    /// a waker comparison saved per wait), when the socket becomes
    /// writable.
    #[inline]
    pub(crate) fn poll_reading<T>(
        &self,
        waker: &Waker,
        poll: impl FnOnce(&Self) -> (Poll<T>, bool),
    ) -> Poll<T> {
        let read_seen = self.read.events();
        let write_seen = self.write.events();
        let (result, wants_write) = poll(self);
        if result.is_pending() {
            self.read.register_since(waker, read_seen);
            if wants_write {
                self.write.register_since(waker, write_seen);
            }
        }
        result
    }
}

/// The wakers of every task waiting for one readiness event.
#[derive(Debug)]
pub(crate) struct WakerSet {
    waiting: Mutex<Waiting>,
    /// Events so far, counted before the list is taken, so a task can
    /// register after a poll and still learn of an event during it.
    events: AtomicUsize,
    /// The waker that wakes this set, made once.
    waker: Waker,
}

impl WakerSet {
    fn new<O: SocketWakersOwner>(owner: Weak<O>, direction: Direction) -> Self {
        Self {
            waiting: Mutex::new(Waiting::default()),
            events: AtomicUsize::new(0),
            waker: Waker::from(Arc::new(Relay { owner, direction })),
        }
    }

    /// Adds a task to be woken at the next event (once per task).
    ///
    /// A task is recognised by `will_wake`, or failing that by the waker's
    /// data pointer: tokio's `block_on` hands out a waker whose clones carry
    /// another vtable, so `will_wake` never matches it, and each poll would
    /// otherwise add a clone (a list that grows, scanned at every poll,
    /// until the next event: quadratic; a `main` pipelining 16-byte messages
    /// ran 270x slower). The newest waker replaces the one it matches.
    fn register(&self, waker: &Waker) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let same_task =
            |w: &Waker| w.will_wake(waker) || (!waker.data().is_null() && w.data() == waker.data());
        let Waiting { first, more } = &mut *waiting;
        match first
            .iter_mut()
            .chain(more.iter_mut())
            .find(|w| same_task(w))
        {
            Some(known) if known.will_wake(waker) => {}
            Some(known) => known.clone_from(waker),
            None => waiting.push(waker.clone()),
        }
    }

    /// Events so far: a task that waits can tell from it, without a
    /// lock, whether anything happened since it registered.
    pub(crate) fn events(&self) -> usize {
        self.events.load(Ordering::Acquire)
    }

    fn register_since(&self, waker: &Waker, seen: usize) {
        self.register(waker);
        if self.events() != seen {
            waker.wake_by_ref();
        }
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        usize::from(waiting.first.is_some()) + waiting.more.len()
    }

    /// A context whose waker wakes every registered task.
    pub(crate) fn context(&self) -> Context<'_> {
        Context::from_waker(&self.waker)
    }

    /// Wakes every registered task; each registers again if it still waits.
    pub(crate) fn wake_all(&self) {
        // Counted before the list is taken: a task that registers after the
        // take sees the new count (the lock orders the two).
        self.events.fetch_add(1, Ordering::AcqRel);
        let (first, more) = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            (waiting.first.take(), std::mem::take(&mut waiting.more))
        };
        first.into_iter().chain(more).for_each(Waker::wake);
    }
}

/// The tasks waiting, the first one inline: one task waiting is the common
/// case, and it then costs no allocation per event.
#[derive(Debug, Default)]
struct Waiting {
    first: Option<Waker>,
    more: Vec<Waker>,
}

impl Waiting {
    fn push(&mut self, waker: Waker) {
        if self.first.is_none() {
            self.first = Some(waker);
        } else {
            self.more.push(waker);
        }
    }
}

/// The waker handed to the socket. It holds the owner weakly, so the
/// socket (owned by the connection) and the owner do not keep each other
/// alive.
struct Relay<O> {
    owner: Weak<O>,
    direction: Direction,
}

impl<O: SocketWakersOwner> Wake for Relay<O> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(owner) = self.owner.upgrade() {
            owner.socket_wakers().get(self.direction).wake_all();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Socket wakers alone in their owner, as the tests use them.
    pub(crate) struct Owner(pub(crate) SocketWakers);

    impl SocketWakersOwner for Owner {
        fn socket_wakers(&self) -> &SocketWakers {
            &self.0
        }
    }

    pub(crate) fn owner() -> Arc<Owner> {
        Arc::new_cyclic(|me| Owner(SocketWakers::new(me)))
    }

    impl std::ops::Deref for Owner {
        type Target = WakerSet;
        fn deref(&self) -> &WakerSet {
            &self.0.read
        }
    }

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_poll_that_waits_registers_and_catches_an_event_during_it() {
        let owner = owner();
        let wakers = &owner.0;
        let task = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(task.clone());
        // No event while polling: registered in both sets, not woken.
        let _ = wakers.poll(&waker, Interest::ReadWrite, |_| Poll::<()>::Pending);
        assert_eq!(task.0.load(Ordering::SeqCst), 0);
        assert_eq!((wakers.read.waiting(), wakers.write.waiting()), (1, 1));
        wakers.read().context().waker().wake_by_ref();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        // Still in the write set, until its event.
        wakers.write().wake_all();
        assert_eq!(task.0.load(Ordering::SeqCst), 2);
        // A write-only poll leaves the read set alone.
        let _ = wakers.poll(&waker, Interest::Write, |_| Poll::<()>::Pending);
        assert_eq!((wakers.read.waiting(), wakers.write.waiting()), (0, 1));
        wakers.write().wake_all();
        assert_eq!(task.0.load(Ordering::SeqCst), 3);
        // An event fires while the task polls, before it registers: the
        // list it would have been in is already gone, so it is woken now.
        let _ = wakers.poll(&waker, Interest::ReadWrite, |w| {
            w.read().context().waker().wake_by_ref();
            Poll::<()>::Pending
        });
        assert_eq!(task.0.load(Ordering::SeqCst), 4);
        // A poll that completes registers nothing.
        wakers.read().wake_all();
        wakers.write().wake_all();
        let task_count = task.0.load(Ordering::SeqCst);
        assert!(wakers
            .poll(&waker, Interest::ReadWrite, |_| Poll::Ready(()))
            .is_ready());
        assert_eq!((wakers.read.waiting(), wakers.write.waiting()), (0, 0));
        assert_eq!(task.0.load(Ordering::SeqCst), task_count);
    }

    #[test]
    fn every_registered_task_is_woken_once_per_event() {
        let set = owner();
        let a = Arc::new(Count(AtomicUsize::new(0)));
        let b = Arc::new(Count(AtomicUsize::new(0)));
        let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
        set.register(&wa);
        set.register(&wa);
        set.register(&wb);
        set.context().waker().wake_by_ref();
        assert_eq!(
            (a.0.load(Ordering::SeqCst), b.0.load(Ordering::SeqCst)),
            (1, 1)
        );
        // Woken tasks are forgotten until they register again.
        set.context().waker().wake_by_ref();
        assert_eq!(a.0.load(Ordering::SeqCst), 1);
    }

    /// A waker like tokio's `block_on` one: its clones carry another
    /// vtable (same functions, another address), so `will_wake` between
    /// the original and a clone is false. The data is a `'static` counter.
    mod split_vtable {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::{RawWaker, RawWakerVTable, Waker};

        pub(super) static WOKEN: AtomicUsize = AtomicUsize::new(0);

        fn clone(data: *const ()) -> RawWaker {
            RawWaker::new(data, &CLONED)
        }
        fn wake(_: *const ()) {
            WOKEN.fetch_add(1, Ordering::SeqCst);
        }
        fn drop(_: *const ()) {}

        static ORIGINAL: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);
        static CLONED: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);

        pub(super) fn waker() -> Waker {
            let data = std::ptr::from_ref(&WOKEN).cast::<()>();
            // SAFETY: the functions never dereference `data`, which points
            // to a static anyway; cloning and dropping own nothing, and
            // waking only bumps the static counter, so every contract of
            // `RawWakerVTable` holds on any thread, any number of times.
            #[allow(unsafe_code)]
            unsafe {
                Waker::from_raw(RawWaker::new(data, &ORIGINAL))
            }
        }
    }

    #[test]
    fn a_task_whose_waker_clones_differ_registers_once() {
        let set = owner();
        let waker = split_vtable::waker();
        assert!(!waker.clone().will_wake(&waker), "the vtables must differ");
        for _ in 0..1000 {
            set.register(&waker);
        }
        assert_eq!(set.waiting(), 1);
        set.context().waker().wake_by_ref();
        assert_eq!(
            split_vtable::WOKEN.load(std::sync::atomic::Ordering::SeqCst),
            1
        );
        assert_eq!(set.waiting(), 0);
    }
}
