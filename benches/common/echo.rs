//! How the process-per-measurement benches (`compare`, `http2`, `server`)
//! check the echoes they time.

use std::fmt::Display;

/// Compares an echo with what was sent: every byte when `full`, else the
/// length and both ends. `what` names the echo in the panic message.
#[inline]
pub(crate) fn check_echo(got: &[u8], want: &[u8], full: bool, what: impl Display) {
    assert_eq!(got.len(), want.len(), "{what}: wrong length");
    let same = if full {
        got == want
    } else {
        got.first() == want.first() && got.last() == want.last()
    };
    assert!(same, "{what}: wrong content");
}
