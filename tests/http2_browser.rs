//! A real browser opening WebSockets over HTTP/2 (RFC 8441, extended
//! CONNECT) to wsstream: a headless Chromium (`support/browser.rs`) loads a
//! page over HTTPS from an axum app served by hyper-util's HTTP/1.1 + HTTP/2
//! server in this process, and the page's script
//! (`tests/peers/browser/h2_page.html`) opens WebSockets back to the same
//! origin with `WebSocket` and `WebSocketStream`, through both ways into
//! wsstream: the axum extractor (`/ws`) and `wsstream::hyper::upgrade`
//! (`/ws/hyper`). The server records each WebSocket's request (method,
//! HTTP version, `:protocol`) and what wsstream negotiated; the test checks
//! those beside what the page saw.
//!
//! What Chromium (148) needs before it sends a WebSocket as an HTTP/2
//! stream, found by running it against a throwaway server:
//! - an HTTP/2 connection it already holds to the WebSocket's own origin
//!   (scheme, host and port). A WebSocket to another origin, even the same
//!   server under another name, gets a new TLS connection offering only
//!   `http/1.1` and a `GET` with `Upgrade: websocket`. Hence the page is
//!   served over HTTPS by the same server, and opens `wss://` to its own
//!   `location.host`.
//! - `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1` from that server (hyper:
//!   `http2().enable_connect_protocol()`). Without it Chromium falls back to
//!   HTTP/1.1 on a new connection, silently: the WebSocket still works. The
//!   second test shows that fallback, so that the first one's assertion of
//!   HTTP/2 is known to tell the two apart.
//! - no feature flag: it is on by default. The only extra flag is
//!   `--ignore-certificate-errors-spki-list` with the SHA-256 of the test
//!   certificate's public key, so that Chromium accepts the throwaway
//!   certificate (it needs `--user-data-dir`, which `support/browser.rs`
//!   always passes).
//!
//! The extended CONNECT Chromium sends carries `:protocol: websocket`,
//! `Origin`, `Sec-WebSocket-Version: 13`, the offered subprotocols and
//! `Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits`,
//! and no `Sec-WebSocket-Key`.
//!
//! Skipped (printing `skipping: ...`) only where `tests/browser.rs` is: on a
//! machine that cannot install Chromium.

#![cfg(all(feature = "http2", feature = "axum"))]
// The server speaks TLS (rustls) and negotiates Chromium's deflate offer.
#![cfg(all(feature = "tls", feature = "deflate"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/browser.rs"]
mod browser;
#[path = "support/certs.rs"]
mod certs;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get};
use browser::with_browser;
use certs::TestPki;
use futures::{SinkExt, StreamExt};
use http::{Extensions, Method, StatusCode, Uri, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use wsstream::axum::WebSocketUpgrade;
use wsstream::{DeflateConfig, Rejection, ServerOptions, WebSocketStream};

/// Bounds a whole test, browser start included, so a hang fails it.
const LIMIT: Duration = Duration::from_secs(180);

/// How many messages each page connection sends (and expects back).
const MESSAGES: usize = 3;

/// What the server saw of one WebSocket, by the label in its query.
#[derive(Clone, Debug, PartialEq)]
struct Socket {
    /// The route that answered it.
    route: &'static str,
    /// The request as the handler saw it: method, version, and the
    /// `:protocol` pseudo-header (hyper's `Protocol` extension).
    method: Method,
    version: Version,
    connect_protocol: Option<String>,
    /// The status of the response the handler returned (or its refusal).
    status: StatusCode,
    /// The version of `WebSocketStream::request`, once upgraded.
    stream_version: Option<Version>,
    /// What `opened` negotiated.
    subprotocol: Option<String>,
    deflate: bool,
    /// Messages echoed, and how the connection ended: `code reason` of a
    /// clean close, or what failed.
    echoed: usize,
    ended: Option<String>,
}

impl Socket {
    fn seen(route: &'static str, method: &Method, version: Version, ext: &Extensions) -> Self {
        Self {
            route,
            method: method.clone(),
            version,
            connect_protocol: ext
                .get::<hyper::ext::Protocol>()
                .map(|protocol| protocol.as_str().to_owned()),
            status: StatusCode::INTERNAL_SERVER_ERROR,
            stream_version: None,
            subprotocol: None,
            deflate: false,
            echoed: 0,
            ended: None,
        }
    }
}

/// The server's records, shared with its handlers.
#[derive(Clone, Default)]
struct Sockets(Arc<Mutex<BTreeMap<String, Socket>>>);

impl Sockets {
    /// Records a new WebSocket; one whose label is taken (a retry by the
    /// browser) is kept as `label (again)`, for the test to notice.
    fn insert(&self, mut label: String, socket: Socket) -> String {
        let mut all = self.0.lock().unwrap();
        while all.contains_key(&label) {
            label.push_str(" (again)");
        }
        all.insert(label.clone(), socket);
        label
    }

    fn update(&self, label: &str, change: impl FnOnce(&mut Socket)) {
        if let Some(socket) = self.0.lock().unwrap().get_mut(label) {
            change(socket);
        }
    }

    /// All the records, once every one of `labels` has ended or after a
    /// few seconds (the caller's checks then say what is missing).
    async fn wait_ended(&self, labels: &[String]) -> BTreeMap<String, Socket> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let all = self.0.lock().unwrap().clone();
            let ended = labels
                .iter()
                .all(|label| all.get(label).is_some_and(|s| s.ended.is_some()));
            if ended || Instant::now() >= deadline {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[derive(Clone)]
struct AppState {
    options: ServerOptions,
    sockets: Sockets,
}

/// The options of both WebSocket routes: the page's subprotocol, and
/// Chromium's permessage-deflate offer accepted.
fn endpoint_options() -> ServerOptions {
    ServerOptions::default()
        .protocols(["chat"])
        .deflate(DeflateConfig::default())
}

/// The label the page put in the query (`?label=...`).
fn label_of(uri: &Uri) -> String {
    uri.query()
        .and_then(|query| query.strip_prefix("label="))
        .unwrap_or("unlabelled")
        .to_owned()
}

/// `/ws`: wsstream's axum extractor, routed with `any` so that an HTTP/2
/// CONNECT reaches it as well as an HTTP/1.1 GET. A refusal is recorded
/// before it is answered.
async fn via_extractor(
    State(state): State<AppState>,
    method: Method,
    version: Version,
    uri: Uri,
    ext: Extensions,
    upgrade: Result<WebSocketUpgrade, Rejection>,
) -> Response {
    let label = label_of(&uri);
    let mut socket = Socket::seen("/ws", &method, version, &ext);
    drop(ext);
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            socket.status = rejection.status();
            socket.ended = Some(format!("refused by the extractor: {rejection}"));
            state.sockets.insert(label, socket);
            return IntoResponse::into_response(rejection);
        }
    };
    let label = state.sockets.insert(label, socket);
    let sockets = state.sockets.clone();
    let response = upgrade
        .options(state.options.clone())
        .on_failed_upgrade({
            let (sockets, label) = (sockets.clone(), label.clone());
            move |err| sockets.update(&label, |s| s.ended = Some(format!("upgrade failed: {err}")))
        })
        .on_upgrade({
            let label = label.clone();
            move |ws| echo(ws, label, sockets)
        });
    state
        .sockets
        .update(&label, |s| s.status = response.status());
    response
}

/// `/ws/hyper`: `wsstream::hyper::upgrade` on the request itself, the
/// same call for HTTP/1.1 and HTTP/2.
async fn via_hyper_upgrade(State(state): State<AppState>, mut request: Request) -> Response {
    let label = label_of(request.uri());
    let mut socket = Socket::seen(
        "/ws/hyper",
        request.method(),
        request.version(),
        request.extensions(),
    );
    match wsstream::hyper::upgrade(&mut request, &state.options) {
        Ok((response, upgrading)) => {
            socket.status = response.status();
            let label = state.sockets.insert(label, socket);
            let sockets = state.sockets.clone();
            tokio::spawn(async move {
                match upgrading.await {
                    Ok(ws) => echo(ws, label, sockets).await,
                    Err(err) => sockets.update(&label, |s| {
                        s.ended = Some(format!("upgrade failed: {err}"));
                    }),
                }
            });
            response.map(axum::body::Body::new)
        }
        Err(rejection) => {
            socket.status = rejection.status();
            socket.ended = Some(format!("refused by wsstream::hyper::upgrade: {rejection}"));
            state.sockets.insert(label, socket);
            IntoResponse::into_response(rejection)
        }
    }
}

/// Echoes every message, then records the count and how it ended.
async fn echo(ws: WebSocketStream, label: String, sockets: Sockets) {
    let stream_version = ws.request().map(|request| request.version());
    sockets.update(&label, |s| s.stream_version = stream_version);
    let opened = match ws.opened().await {
        Ok(opened) => opened,
        Err(err) => {
            sockets.update(&label, |s| s.ended = Some(format!("opened failed: {err}")));
            return;
        }
    };
    sockets.update(&label, |s| {
        s.subprotocol = opened.protocol.clone();
        s.deflate = opened.extensions.starts_with("permessage-deflate");
    });
    let (mut readable, mut writable) = (opened.readable, opened.writable);
    let mut echoed = 0;
    // An error ends the loop; `closed` then reports it.
    while let Some(Ok(message)) = readable.next().await {
        if writable.send(message).await.is_err() {
            break;
        }
        echoed += 1;
    }
    let ended = match ws.closed().await {
        Ok(closed) => format!("{} {}", closed.code, closed.reason),
        Err(err) => format!("closed with an error: {err}"),
    };
    sockets.update(&label, |s| {
        s.echoed = echoed;
        s.ended = Some(ended);
    });
}

/// The test server: its origin, its WebSocket records, and the ALPN
/// protocol of every TLS connection it accepted.
struct Server {
    origin: String,
    sockets: Sockets,
    alpn: Arc<Mutex<Vec<String>>>,
}

/// Serves the page and both WebSocket routes over TLS on 127.0.0.1 with
/// ALPN `h2` and `http/1.1`, through hyper-util's auto builder (upgrades
/// on); `extended_connect` is whether its HTTP/2 SETTINGS announce
/// extended CONNECT.
async fn start_server(pki: &TestPki, extended_connect: bool) -> Server {
    let sockets = Sockets::default();
    let state = AppState {
        options: endpoint_options(),
        sockets: sockets.clone(),
    };
    let app = axum::Router::new()
        .route(
            "/",
            get(|| async { Html(include_str!("peers/browser/h2_page.html")) }),
        )
        .route("/ws", any(via_extractor))
        .route("/ws/hyper", any(via_hyper_upgrade))
        .with_state(state);
    let tls = pki.server_config_with_alpn(&[b"h2", b"http/1.1"]);
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let alpn = Arc::new(Mutex::new(Vec::new()));
    let seen_alpn = Arc::clone(&alpn);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, app, alpn) = (acceptor.clone(), app.clone(), Arc::clone(&seen_alpn));
            tokio::spawn(async move {
                // Chromium may open a connection and drop it unused.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let protocol = tls.get_ref().1.alpn_protocol().map_or_else(
                    || "none".to_owned(),
                    |protocol| String::from_utf8_lossy(protocol).into_owned(),
                );
                alpn.lock().unwrap().push(protocol);
                let mut builder = auto::Builder::new(TokioExecutor::new());
                if extended_connect {
                    builder.http2().enable_connect_protocol();
                }
                let service = TowerToHyperService::new(app);
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Server {
        origin,
        sockets,
        alpn,
    }
}

/// Chromium's flags to accept the server's certificate: the SHA-256 of its
/// public key, base64.
fn trusting(pki: &TestPki) -> Vec<String> {
    vec![format!(
        "--ignore-certificate-errors-spki-list={}",
        pki.server_spki_sha256()
    )]
}

/// Checks what the page saw of one connection: the subprotocol, deflate,
/// every echo intact, and a clean close with 1000.
fn assert_page_saw_echoes(seen: &Value) {
    assert!(seen.get("error").is_none(), "the page failed: {seen}");
    assert_eq!(seen["protocol"], "chat", "{seen}");
    let extensions = seen["extensions"].as_str().unwrap_or_default();
    assert!(extensions.starts_with("permessage-deflate"), "{seen}");
    for echo in ["textEchoed", "smallEchoed", "bigEchoed"] {
        assert_eq!(seen[echo], true, "{echo}: {seen}");
    }
    assert_eq!(seen["close"]["code"], 1000, "{seen}");
    if let Some(clean) = seen["close"].get("wasClean") {
        assert_eq!(clean, true, "{seen}");
    }
}

/// The page's connections as a list (the result of `together` flattened),
/// leaving out a `WebSocketStream` this Chromium does not have.
fn connections(results: &[&Value]) -> Vec<Value> {
    let mut all = Vec::new();
    for result in results {
        match result {
            Value::Array(many) => all.extend(many.iter().cloned()),
            one if one.get("unavailable").is_some() => {
                println!("this Chromium has no WebSocketStream: only WebSocket was tested");
            }
            one => all.push((*one).clone()),
        }
    }
    all
}

/// What the server must have seen of the connection `label` on `route`
/// over `version`: RFC 8441's CONNECT with `:protocol: websocket` and a
/// 200 on HTTP/2, RFC 6455's GET and 101 on HTTP/1.1.
fn expected(route: &'static str, version: Version, label: &str) -> Socket {
    let http2 = version == Version::HTTP_2;
    Socket {
        route,
        method: if http2 { Method::CONNECT } else { Method::GET },
        version,
        connect_protocol: http2.then(|| "websocket".to_owned()),
        status: if http2 {
            StatusCode::OK
        } else {
            StatusCode::SWITCHING_PROTOCOLS
        },
        stream_version: Some(version),
        subprotocol: Some("chat".to_owned()),
        deflate: true,
        echoed: MESSAGES,
        ended: Some(format!("1000 done {label}")),
    }
}

fn route_of(label: &str) -> &'static str {
    if label.starts_with("hyper") {
        "/ws/hyper"
    } else {
        "/ws"
    }
}

/// Checks every connection the page made, on both sides: the page saw its
/// echoes and a clean close; the server saw exactly these WebSockets (no
/// retries), each as [`expected`] over `version`.
async fn check(server: &Server, results: &[Value], version: Version) {
    let mut labels: Vec<String> = results
        .iter()
        .map(|seen| seen["label"].as_str().unwrap().to_owned())
        .collect();
    labels.sort();
    let records = server.sockets.wait_ended(&labels).await;
    assert_eq!(
        records.keys().cloned().collect::<Vec<_>>(),
        labels,
        "the WebSockets the server saw: {records:#?}\nwhat the page saw: {results:#?}"
    );
    for seen in results {
        let label = seen["label"].as_str().unwrap();
        assert_eq!(
            records[label],
            expected(route_of(label), version, label),
            "{label}: the server's record (the page saw {seen})"
        );
        assert_page_saw_echoes(seen);
    }
}

/// Chromium, holding an HTTP/2 connection to a server that announces
/// extended CONNECT, opens every WebSocket to that origin as a stream of
/// it: `WebSocket` and `WebSocketStream`, one at a time and four at once,
/// through the axum extractor and through `wsstream::hyper::upgrade`. Each
/// negotiates the subprotocol and deflate, echoes a text, a small binary
/// and a 2 MiB binary message (beyond hyper's 1 MiB HTTP/2 window), and
/// closes with 1000.
#[tokio::test]
async fn chromium_opens_websockets_as_http2_streams() {
    let pki = TestPki::generate(&["localhost", "127.0.0.1"]);
    let server = start_server(&pki, true).await;
    let origin = server.origin.clone();
    let Some((page, results)) = with_browser(trusting(&pki), LIMIT, move |browser| {
        browser.goto(&format!("{origin}/"));
        let page = browser.call("pageProtocol", json!([]));
        let socket = browser.call("socketEcho", json!(["/ws", "socket"]));
        let stream = browser.call("streamEcho", json!(["/ws", "stream"]));
        let hyper = browser.call("socketEcho", json!(["/ws/hyper", "hyper-socket"]));
        let hyper_stream = browser.call("streamEcho", json!(["/ws/hyper", "hyper-stream"]));
        let together = browser.call(
            "together",
            json!([[
                ["/ws", "together-1"],
                ["/ws/hyper", "hyper-together-2"],
                ["/ws", "together-3"],
                ["/ws/hyper", "hyper-together-4"],
            ]]),
        );
        let results = connections(&[&socket, &stream, &hyper, &hyper_stream, &together]);
        (page, results)
    })
    .await
    else {
        return;
    };

    assert_eq!(page, "h2", "Chromium did not load the page over HTTP/2");
    check(&server, &results, Version::HTTP_2).await;
    // Every TLS connection was HTTP/2: none was opened for HTTP/1.1
    // WebSockets beside it.
    let alpn = server.alpn.lock().unwrap().clone();
    assert!(
        !alpn.is_empty() && alpn.iter().all(|protocol| protocol == "h2"),
        "ALPN of the connections: {alpn:?}"
    );
}

/// The control: the same server without extended CONNECT in its HTTP/2
/// SETTINGS. Chromium still loads the page over HTTP/2, but opens the
/// WebSockets as HTTP/1.1 upgrades on connections of their own, and they
/// work; so the first test's HTTP/2 assertions do tell the two apart.
#[tokio::test]
async fn without_extended_connect_chromium_falls_back_to_http1() {
    let pki = TestPki::generate(&["localhost", "127.0.0.1"]);
    let server = start_server(&pki, false).await;
    let origin = server.origin.clone();
    let Some((page, results)) = with_browser(trusting(&pki), LIMIT, move |browser| {
        browser.goto(&format!("{origin}/"));
        let page = browser.call("pageProtocol", json!([]));
        let socket = browser.call("socketEcho", json!(["/ws", "h1-socket"]));
        let hyper = browser.call("socketEcho", json!(["/ws/hyper", "hyper-h1-socket"]));
        (page, connections(&[&socket, &hyper]))
    })
    .await
    else {
        return;
    };

    assert_eq!(page, "h2", "Chromium did not load the page over HTTP/2");
    check(&server, &results, Version::HTTP_11).await;
    let alpn = server.alpn.lock().unwrap().clone();
    assert!(
        alpn.iter().any(|protocol| protocol == "h2")
            && alpn.iter().any(|protocol| protocol == "http/1.1"),
        "ALPN of the connections: {alpn:?}"
    );
}
