//! `Options::proxy_from_env` reads the process environment. This file
//! holds one test, so that it alone in its process sets variables.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/proxies.rs"]
mod proxies;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use wsstream::proxy::ProxyFailure;
use wsstream::{Error, Message, Options, ServerOptions, WebSocketStream};

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn proxy_from_env_reads_the_environment_when_called() {
    let proxy = proxies::tinyproxy(None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let ws = WebSocketStream::accept(tcp, ServerOptions::default()).await?;
                let opened = ws.opened().await?;
                opened.readable.forward(opened.writable).await
            });
        }
    });
    for name in [
        "ws_proxy",
        "WS_PROXY",
        "http_proxy",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
    ] {
        std::env::remove_var(name);
    }
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };

    // Upper case, as most environments set it.
    std::env::set_var("HTTP_PROXY", &dead);
    let through_dead = Options::default().proxy_from_env();
    std::env::set_var("HTTP_PROXY", proxy.url("http"));
    let through_tinyproxy = Options::default().proxy_from_env();
    std::env::set_var("NO_PROXY", "localhost,127.0.0.1");
    std::env::set_var("HTTP_PROXY", &dead);
    let bypassing = Options::default().proxy_from_env();

    let ws = WebSocketStream::connect(&url, through_dead);
    match tokio::time::timeout(LIMIT, ws.opened()).await.unwrap() {
        Err(Error::Proxy(err)) => assert!(matches!(err.failure(), ProxyFailure::Unreachable(_))),
        other => panic!("expected the dead proxy to fail, got {other:?}"),
    }
    for options in [through_tinyproxy, bypassing] {
        let ws = WebSocketStream::connect(&url, options);
        let mut opened = tokio::time::timeout(LIMIT, ws.opened())
            .await
            .unwrap()
            .unwrap();
        opened.send(Message::text("env")).await.unwrap();
        let echoed = tokio::time::timeout(LIMIT, opened.next()).await.unwrap();
        assert_eq!(echoed.unwrap().unwrap(), Message::text("env"));
    }
    assert!(proxy.log().contains("CONNECT"), "{}", proxy.log());
}
