//! The lossy link with Python `websockets` as the peer: its echo server
//! (`tests/peers/python/echo_server.py`, path `/echo`) in the server
//! namespace, a wsstream client in the client namespace. What that adds to
//! the wsstream-to-wsstream tests of `lossy.rs`: frames written by another
//! implementation, and another permessage-deflate (zlib, context takeover
//! both ways), whose bytes TCP cuts up differently when segments are lost,
//! delayed and reordered.
//!
//! The client sends the messages of `lossy.rs` (sizes, kinds, the streamed
//! API for some) and reads the echoes at the same time: they must come back
//! as its own sequence, each checked by SHA-1, kind, length and place. Then
//! it closes with 1000 "done"; `websockets` answers the close.

use super::lossy::{
    client_session, deflate_options, link_figures, lossy_pair, Workload, LONG_MESSAGES,
};
use super::python::{self, PythonServer};
use super::*;

/// Messages per test by default (about 2.7 MiB each way): a quarter of
/// `lossy.rs`'s, to keep each test near 2 s. In the long mode it sends as
/// many as `lossy.rs` does each way ([`LONG_MESSAGES`]): the Python echo
/// keeps up with the link.
const CI_MESSAGES: u64 = 500;

async fn python_echo(test: &str, deflate: bool, default_seed: u64) {
    let work = Workload::from_env(default_seed, CI_MESSAGES, LONG_MESSAGES);
    let Some(pair) = lossy_pair(test, work.seed) else {
        return;
    };
    // The namespaces have no route out, and the first use installs
    // `websockets` from PyPI: set it up here, outside them.
    python::interpreter();
    let addr = pair.lossy_server_addr(PORT);
    // Forked by a thread inside the server namespace, the server listens
    // there; dropping it (last, or while a panic unwinds) kills it.
    let server = pair.server.run(move || PythonServer::echo_at(addr, &[]));
    assert_eq!(server.port(), PORT);
    let (options, _) = deflate_options(deflate);
    let limit = work.limit();
    let ours = work.client();

    let client = pair
        .client
        .spawn("client of the Python echo", limit, move || async move {
            // The echo of our sequence is our sequence.
            let url = format!("ws://{addr}/echo");
            client_session(url, options, deflate, ours, ours, work.messages).await
        });

    let started = Instant::now();
    let (done, extensions, close_took) = within(test, limit + STEP, client).await;
    let elapsed = started.elapsed();
    let negotiated = if extensions.is_empty() {
        "no extension"
    } else {
        extensions.as_str()
    };
    report(&format!(
        "{test}: {} messages to Python websockets {} and back (sizes {}; {} each way; {} sent \
         through the streamed API, {} echoes read in chunks), every echo intact and in order, \
         in {} ({:.0} KiB/s each way); {negotiated}; close 1000, close() to closed() {}; seed \
         {:#x}; {}",
        done.sent.messages,
        python::WEBSOCKETS_VERSION,
        work.mix.name(),
        mib(done.sent.bytes),
        done.sent.streamed,
        done.received.streamed,
        seconds(elapsed),
        done.sent.bytes as f64 / 1024.0 / elapsed.as_secs_f64(),
        seconds(close_took),
        work.seed,
        link_figures(&pair),
    ));
    assert_eq!(done.received.messages, work.messages);
    assert_eq!(done.received.bytes, done.sent.bytes);
    drop(server);
}

#[tokio::test]
async fn python_echo_over_a_lossy_link_without_deflate_returns_every_message_intact() {
    python_echo("Python echo, lossy link, deflate off", false, 0x1055_0003).await;
}

#[cfg(feature = "deflate")]
#[tokio::test]
async fn python_echo_over_a_lossy_link_with_deflate_returns_every_message_intact() {
    python_echo("Python echo, lossy link, deflate on", true, 0x1055_0004).await;
}
