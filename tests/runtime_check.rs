//! `connect` and `accept` outside any tokio runtime report
//! `Error::NoRuntime` without a panic, even a caught one (a runtime without
//! timers is `timeouts.rs`'s). Its own test binary, because it counts
//! panics through the process-wide panic hook.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use wsstream::{Error, Options, ServerOptions, WebSocketStream};

/// Runs `f` and returns how many panics began on this thread meanwhile,
/// caught or not: a check that unwinds would abort a program built with
/// `panic = "abort"`.
fn panics_during(f: impl FnOnce()) -> usize {
    let panics = Arc::new(AtomicUsize::new(0));
    let counted = panics.clone();
    let this_thread = std::thread::current().id();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |_| {
        if std::thread::current().id() == this_thread {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    }));
    f();
    std::panic::set_hook(previous);
    panics.load(Ordering::SeqCst)
}

#[test]
fn outside_any_runtime_the_check_does_not_unwind() {
    let panics = panics_during(|| {
        let ws = WebSocketStream::connect("ws://127.0.0.1:1/", Options::default());
        let (server_io, _client_io) = tokio::io::duplex(64);
        let accepted = futures::executor::block_on(WebSocketStream::accept(
            server_io,
            ServerOptions::default(),
        ));
        assert!(matches!(accepted, Err(Error::NoRuntime)));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert!(matches!(
            runtime.block_on(ws.opened()),
            Err(Error::NoRuntime)
        ));
    });
    assert_eq!(panics, 0, "the runtime check panicked");
}

#[test]
fn a_runtime_with_timers_passes_the_check() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Nothing listens on port 1: the refused connection shows that the
        // check let it through to connecting.
        let ws = WebSocketStream::connect("ws://127.0.0.1:1/", Options::default());
        assert!(matches!(ws.opened().await, Err(Error::Io(_))));
    });
}
