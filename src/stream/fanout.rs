//! One waker that wakes many.
//!
//! A tokio socket keeps one waker per direction. When the reader task
//! (flushing a pong) and the writer task both wait for the socket to become
//! writable, the second registration would silently replace the first and
//! one task would sleep forever. So the socket is always polled with a
//! fan-out waker, and every task that waits registers with the fan-out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Wake, Waker};

/// The wakers of every task waiting for one readiness event.
#[derive(Debug)]
pub(crate) struct Fanout {
    waiting: Mutex<Waiting>,
    /// Events so far, counted before the list is taken, so a task can
    /// register after a poll and still learn of an event during it.
    events: AtomicUsize,
    /// A waker for this fan-out, made once.
    waker: Waker,
}

/// Something that holds fan-outs inline (the connection's shared state),
/// so that a fan-out costs no allocation of its own and no pointer to
/// follow: the socket's waker reaches it through its owner.
pub(crate) trait FanoutOwner: Send + Sync + 'static {
    /// The fan-out `which` names.
    fn fanout(&self, which: usize) -> &Fanout;
}

impl Fanout {
    /// The fan-out its owner returns for `which`; `owner` is the owner
    /// being built (from `Arc::new_cyclic`).
    pub(crate) fn new<O: FanoutOwner>(owner: Weak<O>, which: usize) -> Self {
        Self {
            waiting: Mutex::new(Waiting::default()),
            events: AtomicUsize::new(0),
            waker: Waker::from(Arc::new(Relay { owner, which })),
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

    /// The event count, to pass to [`register_since`](Self::register_since)
    /// after polling with [`context`](Self::context).
    pub(crate) fn events(&self) -> usize {
        self.events.load(Ordering::Acquire)
    }

    /// Registers a task that polled and must wait, and wakes it at once if
    /// an event came after `seen` (from [`events`](Self::events) before the
    /// poll): that event may have found the list without it. Registering
    /// only on `Pending` spares a lock per message while data flows.
    pub(crate) fn register_since(&self, waker: &Waker, seen: usize) {
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
    which: usize,
}

impl<O: FanoutOwner> Wake for Relay<O> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(owner) = self.owner.upgrade() {
            owner.fanout(self.which).wake_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Owner(Fanout);

    impl FanoutOwner for Owner {
        fn fanout(&self, _: usize) -> &Fanout {
            &self.0
        }
    }

    /// A fan-out alone in its owner, as the tests use it.
    fn fanout() -> Arc<Owner> {
        Arc::new_cyclic(|me| Owner(Fanout::new(me.clone(), 0)))
    }

    impl std::ops::Deref for Owner {
        type Target = Fanout;
        fn deref(&self) -> &Fanout {
            &self.0
        }
    }

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn registering_after_a_poll_catches_an_event_during_it() {
        let fanout = fanout();
        let task = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(task.clone());
        // No event while polling: registered, not woken.
        let seen = fanout.events();
        fanout.register_since(&waker, seen);
        assert_eq!(task.0.load(Ordering::SeqCst), 0);
        assert_eq!(fanout.waiting(), 1);
        fanout.context().waker().wake_by_ref();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        // An event fires while the task polls, before it registers: the
        // list it would have been in is already gone, so it is woken now.
        let seen = fanout.events();
        fanout.context().waker().wake_by_ref();
        fanout.register_since(&waker, seen);
        assert_eq!(task.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn every_registered_task_is_woken_once_per_event() {
        let fanout = fanout();
        let a = Arc::new(Count(AtomicUsize::new(0)));
        let b = Arc::new(Count(AtomicUsize::new(0)));
        let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
        fanout.register(&wa);
        fanout.register(&wa);
        fanout.register(&wb);
        fanout.context().waker().wake_by_ref();
        assert_eq!(
            (a.0.load(Ordering::SeqCst), b.0.load(Ordering::SeqCst)),
            (1, 1)
        );
        // Woken tasks are forgotten until they register again.
        fanout.context().waker().wake_by_ref();
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
        let fanout = fanout();
        let waker = split_vtable::waker();
        assert!(!waker.clone().will_wake(&waker), "the vtables must differ");
        for _ in 0..1000 {
            fanout.register(&waker);
        }
        assert_eq!(fanout.waiting(), 1);
        fanout.context().waker().wake_by_ref();
        assert_eq!(
            split_vtable::WOKEN.load(std::sync::atomic::Ordering::SeqCst),
            1
        );
        assert_eq!(fanout.waiting(), 0);
    }
}
