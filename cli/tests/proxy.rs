//! `wsstream connect --proxy` through a real HTTP proxy (tinyproxy with
//! Basic auth, from the library's tests' `support/proxies.rs`, which
//! installs it on first use as root), and the environment's proxy when
//! `--proxy` is absent.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::duplicate_mod,
    reason = "support/ and proxies.rs each include the library tests' programs.rs"
)]

#[path = "../../tests/support/proxies.rs"]
mod proxies;
mod support;

use support::process::Running;
use support::{wsstream, Server};

#[test]
fn connect_goes_through_the_proxy_given() {
    let proxy = proxies::tinyproxy(Some(("cli", "s3cret")));
    let server = Server::start(&[]);
    let mut command = wsstream(["connect", "--proxy"]);
    command
        .arg(proxy.url_with_auth("http", "cli", "s3cret"))
        .arg(&server.url);
    let done = Running::run(command, "through a proxy\n");
    assert_eq!(done.code, Some(0), "stderr:\n{}", done.stderr);
    assert_eq!(done.stdout, "< through a proxy\n");
    let port = server.url.rsplit(':').next().unwrap();
    assert!(
        proxy.log().contains(&format!("CONNECT 127.0.0.1:{port}")),
        "{}",
        proxy.log()
    );
    // The password is never shown.
    assert!(!done.stderr.contains("s3cret"), "{}", done.stderr);
}

#[test]
fn without_proxy_the_environment_is_used() {
    let proxy = proxies::tinyproxy(None);
    let server = Server::start(&[]);
    let mut command = wsstream(["connect", &server.url]);
    command.env("HTTP_PROXY", proxy.url("http"));
    let done = Running::run(command, "via the environment\n");
    assert_eq!(done.code, Some(0), "stderr:\n{}", done.stderr);
    assert_eq!(done.stdout, "< via the environment\n");
    assert!(
        proxy.log().contains("CONNECT 127.0.0.1:"),
        "{}",
        proxy.log()
    );
}
