//! Real browsers as WebSocket clients: a headless Chromium (Debian's
//! `chromium`, driven over WebDriver by Debian's `chromidriver` through
//! `support/browser.rs`) opens a page served from 127.0.0.1 by an axum
//! server built on `wsstream::axum`, and that page's own JavaScript
//! (`tests/peers/browser/page.html`) talks to wsstream with the browser's
//! `WebSocket` and `WebSocketStream`.
//!
//! The browser is installed on first use when we run as root
//! (`tests/peers/install-browser.sh`); if it cannot start, the tests fail.
//! Only a machine that cannot install it at all (not root, or no apt-get)
//! skips them, printing `skipping: ...`. The browser side is blocking, so
//! it runs in `spawn_blocking` while the servers run on the runtime.

#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/browser.rs"]
mod browser;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use browser::with_browser;
use futures::{SinkExt, StreamExt};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use wsstream::axum::WebSocketUpgrade;
use wsstream::{Acceptance, DeflateConfig, Message, Rejection, ServerOptions, WebSocketStream};

/// Bounds a whole test, browser start included, so a hang fails it.
const LIMIT: Duration = Duration::from_secs(180);

/// What the servers saw, for the test to check beside what the page saw.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn push(&self, event: String) {
        self.0.lock().unwrap().push(event);
    }

    /// Waits (a little) for an event that starts with `prefix`.
    async fn wait_for(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(event) = self
                .0
                .lock()
                .unwrap()
                .iter()
                .find(|e| e.starts_with(prefix))
            {
                return event.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {prefix:?} among {:?}",
                self.0.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The options of the page's WebSocket endpoints: the server prefers
/// `chat.v2` (the page offers `chat.v1` first), and accepts Chromium's
/// permessage-deflate offer.
fn endpoint_options() -> ServerOptions {
    ServerOptions::default()
        .protocols(["chat.v2", "chat.v1"])
        .deflate(DeflateConfig::default())
        .max_message_size(4 << 20)
}

/// `/ws/echo`: greets, echoes every message, and records how it closed.
async fn echo(ws: WebSocketUpgrade, State(seen): State<Seen>) -> axum::response::Response {
    ws.options(endpoint_options())
        .on_upgrade(move |ws| async move {
            let opened = ws.opened().await.unwrap();
            seen.push(format!("echo extensions {}", opened.extensions));
            let (mut readable, mut writable) = (opened.readable, opened.writable);
            writable
                .send(Message::text("hello from wsstream"))
                .await
                .unwrap();
            while let Some(Ok(message)) = readable.next().await {
                if message.len() == 1 << 20 {
                    seen.push(format!("echo got 1 MiB, text: {}", message.is_text()));
                }
                if writable.send(message).await.is_err() {
                    break;
                }
            }
            let closed = ws
                .closed()
                .await
                .map(|c| format!("{} {}", c.code, c.reason));
            seen.push(format!("echo closed {closed:?}"));
        })
}

/// `/ws/bye`: closes with its own code and reason at the first message.
async fn bye(ws: WebSocketUpgrade) -> axum::response::Response {
    ws.on_upgrade(|ws| async move {
        let mut opened = ws.opened().await.unwrap();
        let _ = opened.readable.next().await;
        ws.close(4002, "server says bye").unwrap();
        while opened.readable.next().await.is_some() {}
    })
}

/// `/cookie`: the `Cookie` the browser sent.
async fn cookie(headers: HeaderMap) -> String {
    headers
        .get(COOKIE)
        .map_or("none".into(), |v| v.to_str().unwrap().to_owned())
}

/// The page's server: the page, `/cookie`, and two WebSocket endpoints.
async fn start_page_server(seen: Seen) -> String {
    let app = axum::Router::new()
        .route(
            "/",
            get(|| async { Html(include_str!("peers/browser/page.html")) }),
        )
        .route("/cookie", get(cookie))
        .route("/ws/echo", get(echo))
        .route("/ws/bye", get(bye))
        .with_state(seen);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// A raw-socket server whose accept hook refuses `/deny` with a 403 and
/// sets a cookie on `/first`; each accepted connection is greeted with the
/// `Cookie` its request carried.
async fn start_hook_server(seen: Seen) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("ws://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let options = ServerOptions::default().accept_hook(|request| {
        let path = request.uri().path().to_owned();
        async move {
            match path.as_str() {
                "/deny" => Err(Rejection::new(StatusCode::FORBIDDEN).body("denied")),
                "/first" => Ok(Acceptance::new().header(
                    SET_COOKIE,
                    HeaderValue::from_static("wsstream_hook=yes; Path=/; SameSite=Lax"),
                )),
                _ => Ok(Acceptance::new()),
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (options, seen) = (options.clone(), seen.clone());
            tokio::spawn(async move {
                let ws = match WebSocketStream::accept(tcp, options).await {
                    Ok(ws) => ws,
                    Err(err) => return seen.push(format!("hook refused: {err:?}")),
                };
                let request = ws.request().unwrap();
                let path = request.uri().path().to_owned();
                let cookie = request
                    .headers()
                    .get(COOKIE)
                    .map_or("none".into(), |v| v.to_str().unwrap().to_owned());
                seen.push(format!("hook accepted {path} cookie {cookie}"));
                let mut opened = ws.opened().await.unwrap();
                opened
                    .writable
                    .send(Message::text(format!("cookie: {cookie}")))
                    .await
                    .unwrap();
                while opened.readable.next().await.is_some() {}
            });
        }
    });
    base
}

/// The browser's `WebSocket` and (where Chromium has it) its
/// `WebSocketStream`: the server's subprotocol, permessage-deflate,
/// text, binary and a 1 MiB compressible text both ways, and a close with a
/// chosen code and reason each way.
#[tokio::test]
async fn chromium_talks_to_wsstream_over_websocket_and_websocketstream() {
    let seen = Seen::default();
    let base = start_page_server(seen.clone()).await;
    let Some((socket, stream, server_closed, unmatched)) =
        with_browser(Vec::new(), LIMIT, move |browser| {
            browser.goto(&format!("http://{base}/"));
            let echo = json!([format!("ws://{base}/ws/echo")]);
            let socket = browser.call("websocketEcho", echo.clone());
            let stream = browser.call("websocketStreamEcho", echo);
            let server_closed =
                browser.call("serverCloses", json!([format!("ws://{base}/ws/bye")]));
            let unmatched = browser.call(
                "unmatchedProtocols",
                json!([format!("ws://{base}/ws/echo")]),
            );
            (socket, stream, server_closed, unmatched)
        })
        .await
    else {
        return;
    };

    for (api, seen_by_page, close) in [
        // The page's close event reports the server's answering close
        // frame: the code alone. The reason the page sent is checked on
        // the server's side below.
        (
            "WebSocket",
            &socket,
            json!({"code": 4001, "reason": "", "wasClean": true}),
        ),
        (
            "WebSocketStream",
            &stream,
            json!({"code": 4003, "reason": ""}),
        ),
    ] {
        if seen_by_page.get("unavailable").is_some() {
            println!("this Chromium has no WebSocketStream: only WebSocket was tested");
            continue;
        }
        assert_eq!(seen_by_page["protocol"], "chat.v2", "{api}: {seen_by_page}");
        let extensions = seen_by_page["extensions"].as_str().unwrap();
        assert!(
            extensions.starts_with("permessage-deflate"),
            "{api}: {extensions}"
        );
        assert_eq!(seen_by_page["greeting"], "hello from wsstream", "{api}");
        assert!(
            seen_by_page["text"]
                .as_str()
                .unwrap()
                .starts_with("hello from the"),
            "{api}"
        );
        assert_eq!(seen_by_page["binary"], json!([0, 1, 2, 255]), "{api}");
        assert_eq!(seen_by_page["bigLength"], 1 << 20, "{api}");
        assert_eq!(seen_by_page["bigIntact"], true, "{api}");
        assert_eq!(seen_by_page["close"], close, "{api}");
    }
    assert_eq!(
        server_closed,
        json!({"code": 4002, "reason": "server says bye", "wasClean": true})
    );
    // A browser that offered subprotocols refuses a 101 that names none
    // (docs/servers.md says so; this is where it is checked).
    assert_eq!(unmatched, "failed");
    // The server's side of the same connections.
    let extensions = seen.wait_for("echo extensions").await;
    assert!(extensions.contains("permessage-deflate"), "{extensions}");
    assert_eq!(
        seen.wait_for("echo got 1 MiB").await,
        "echo got 1 MiB, text: true"
    );
    assert_eq!(
        seen.wait_for("echo closed Ok(\"4001").await,
        "echo closed Ok(\"4001 page says bye\")"
    );
    if stream.get("unavailable").is_none() {
        seen.wait_for("echo closed Ok(\"4003 stream says bye").await;
    }
}

/// The raw-socket accept hook, seen from the browser: its refusal is a
/// failed connection in the page, and its `Set-Cookie` is sent back by the
/// browser on the next requests, over HTTP and WebSocket alike.
#[tokio::test]
async fn chromium_sees_the_accept_hooks_refusal_and_keeps_its_cookie() {
    let seen = Seen::default();
    let base = start_page_server(seen.clone()).await;
    let hook_base = start_hook_server(seen.clone()).await;
    let Some(hook) = with_browser(Vec::new(), LIMIT, move |browser| {
        browser.goto(&format!("http://{base}/"));
        browser.call("acceptHook", json!([hook_base]))
    })
    .await
    else {
        return;
    };
    assert_eq!(hook["denied"], "failed", "{hook}");
    assert_eq!(hook["deniedClose"]["code"], 1006, "{hook}");
    assert_eq!(hook["firstGreeting"], "cookie: none", "{hook}");
    assert_eq!(hook["cookieOnFetch"], "wsstream_hook=yes", "{hook}");
    assert_eq!(
        hook["secondGreeting"], "cookie: wsstream_hook=yes",
        "{hook}"
    );
    let refused = seen.wait_for("hook refused").await;
    assert!(refused.contains("403"), "{refused}");
    seen.wait_for("hook accepted /second cookie wsstream_hook=yes")
        .await;
}
