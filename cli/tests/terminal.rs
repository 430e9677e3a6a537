//! `wsstream connect` at a terminal, as a person uses it: in a tmux pane
//! against `wsstream serve`, typing lines, then Ctrl-D or Ctrl-C, and
//! reading the screen.
//!
//! tmux comes from `tests/peers/install-tmux.sh`, run by the test when it
//! is missing and we are root; otherwise the test fails and says what to
//! install.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::tmux::Tmux;
use support::{binary, Server};

/// The command typed at the prompt: the client, then its exit status.
fn connect_then_status(url: &str) -> String {
    format!("'{}' connect {url}; echo \"exit=$?\"", binary().display())
}

#[test]
fn lines_typed_are_sent_and_ctrl_d_closes_cleanly() {
    let server = Server::start(&[]);
    let tmux = Tmux::start();
    tmux.type_line(&connect_then_status(&format!("{}/typed", server.url)));
    tmux.wait_for_pane("the connection", |pane| {
        pane.contains("wsstream: connected to")
    });

    tmux.type_line("hello");
    tmux.wait_for_pane("the echo", |pane| {
        pane.lines().any(|line| line == "< hello")
    });
    tmux.type_line("second line");
    tmux.wait_for_pane("the second echo", |pane| {
        pane.lines().any(|line| line == "< second line")
    });

    tmux.press("C-d");
    let pane = tmux.wait_for_pane("the exit status", |pane| {
        pane.lines().any(|line| line.starts_with("exit="))
    });
    assert!(pane.contains("wsstream: closed: code 1000"), "{pane}");
    assert!(pane.lines().any(|line| line == "exit=0"), "{pane}");
}

#[test]
fn ctrl_c_closes_cleanly() {
    let server = Server::start(&[]);
    let tmux = Tmux::start();
    tmux.type_line(&connect_then_status(&server.url));
    tmux.wait_for_pane("the connection", |pane| {
        pane.contains("wsstream: connected to")
    });
    tmux.type_line("before the interrupt");
    tmux.wait_for_pane("the echo", |pane| {
        pane.lines().any(|line| line == "< before the interrupt")
    });

    tmux.press("C-c");
    let pane = tmux.wait_for_pane("the exit status", |pane| {
        pane.lines().any(|line| line.starts_with("exit="))
    });
    assert!(pane.contains("wsstream: interrupted: closing"), "{pane}");
    // The echo server answers the close with the client's code.
    assert!(pane.contains("wsstream: closed: code 1000"), "{pane}");
    assert!(pane.lines().any(|line| line == "exit=0"), "{pane}");
}
