//! Ctrl-C presses, as a stream: the first asks for a clean close, a second
//! one quits at once.

use std::io;

/// Receives SIGINT (Ctrl-C) from the moment it is made, so that a press
/// between two waits is not lost.
pub(crate) struct Interrupts {
    /// The signal's stream.
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupts {
    /// Starts listening for Ctrl-C (from then on it no longer kills the
    /// process).
    pub(crate) fn new() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                signal: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Waits for the next Ctrl-C; never resolves if signals can no longer
    /// be received.
    pub(crate) async fn next(&mut self) {
        #[cfg(unix)]
        let received = self.signal.recv().await.is_some();
        #[cfg(not(unix))]
        let received = tokio::signal::ctrl_c().await.is_ok();
        if !received {
            std::future::pending::<()>().await;
        }
    }
}
