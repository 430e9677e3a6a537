//! What goes to stderr: status lines prefixed `wsstream: `, errors with
//! their causes, and (with `-v`) the library's tracing events.

use std::error::Error;
use std::fmt::Display;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Prints a status line on stderr.
pub(crate) fn status(line: impl Display) {
    eprintln!("wsstream: {line}");
}

/// Prints `context: error: cause: cause…` on stderr: wsstream's errors
/// describe their own level only and give the cause as their `source`.
pub(crate) fn error(context: impl Display, err: &(dyn Error + 'static)) {
    status(format_args!("{context}: {}", chain(err)));
}

/// An error and its causes, joined with `: `.
pub(crate) fn chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// How a clean close is told: its code, and its reason when there is one.
pub(crate) fn close(code: u16, reason: &str) -> String {
    if reason.is_empty() {
        format!("code {code}")
    } else {
        format!("code {code}, reason {reason:?}")
    }
}

/// Prints the library's tracing events (target `wsstream`) on stderr: none
/// for `verbose` 0, debug and above for 1, trace for 2 and more.
pub(crate) fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let events = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    tracing_subscriber::registry()
        .with(events)
        .with(Targets::new().with_target("wsstream", level))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("I/O error")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_chain_names_every_cause() {
        let err = Outer(std::io::Error::other("refused"));
        assert_eq!(chain(&err), "I/O error: refused");
    }

    #[test]
    fn a_close_shows_its_reason_only_when_there_is_one() {
        assert_eq!(close(1000, ""), "code 1000");
        assert_eq!(close(4000, "bye"), "code 4000, reason \"bye\"");
    }
}
