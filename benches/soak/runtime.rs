//! The runtime of both children.
//!
//! Multi-thread with two workers (the machine's two cores), not
//! current-thread: a connection's halves and its `closed` future share
//! one state, and a server's echo, a keepalive timer and the peer's close
//! may wake it from either worker. Two workers run those paths truly at
//! once, where a lost wakeup or a race in the close handshake shows as a
//! hang or a wrong count; one thread would serialise them and hide it.

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}
