//! WebSockets over HTTP/2 (RFC 8441, extended CONNECT) with peers that are
//! not ours: Node.js's own `node:http2` carrying the `ws` library's framing
//! (`tests/peers/node/h2_server.js` and `h2_client.js`, which describe their
//! flags and output at their top). wsstream as the client of a Node server,
//! and wsstream's hyper server as the server of a Node client, each over
//! cleartext HTTP/2 with prior knowledge and over TLS with ALPN `h2`. In
//! both directions several WebSockets share one HTTP/2 connection, messages
//! larger than the 64 KiB initial HTTP/2 window make flow control stall and
//! resume, every echo is checked by type and content, and after the close
//! handshake (1000 both ways) each side ends its half of the stream. The
//! first test to run installs the pinned `ws` into `target/peers/node`; see
//! `support/node.rs`.
//!
//! Every await is bounded, so a bug fails a test instead of hanging it.

#![cfg(all(feature = "http2", feature = "hyper"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "tls")]
#[path = "support/certs.rs"]
mod certs;
#[path = "support/http2_echo.rs"]
mod http2_echo;
#[path = "support/node.rs"]
mod node;

#[cfg(feature = "tls")]
use std::sync::Arc;

use http2_echo::{echo_over, hyper_h2_echo_server, plain, within, EchoServer, STEP};
#[cfg(feature = "tls")]
use http2_echo::{Accepting, Io};
use node::{output_line, spawn_script, NodeServer};
use serde_json::Value;
use wsstream::{HttpVersion, Message, Options, ServerOptions};

/// How many WebSockets each test opens on its one HTTP/2 connection.
const STREAMS: usize = 4;

/// The messages WebSocket `stream` sends: text and binary by turns, from
/// empty to 1 MiB (five above the 64 KiB initial HTTP/2 window), text with
/// multibyte UTF-8, each different per stream so that crossed streams show.
fn messages(stream: usize) -> Vec<Message> {
    let sizes = [
        0usize,
        1,
        125,
        126,
        127,
        1000,
        65_535,
        65_536,
        70_000,
        16,
        200_003,
        4000,
        1 << 20,
    ];
    http2_echo::messages(stream, &sizes, "こんにちは ")
}

/// Opens [`STREAMS`] WebSockets at once with clones of one `options` to
/// `base` + `/ws/<n>`, each sending [`messages`] with [`echo_over`].
async fn echo_many(base: &str, options: &Options, expected_protocol: &str) {
    let all = (0..STREAMS).map(|n| {
        let url = format!("{base}/ws/{n}?stream={n}");
        echo_over(url, options.clone(), messages(n), expected_protocol)
    });
    futures::future::join_all(all).await;
}

/// A line of `h2_server.js`: its kind's JSON fields.
fn fields(server: &NodeServer, kind: &str) -> Value {
    let line = server.next_line(kind, STEP).unwrap_or_else(|| {
        panic!(
            "h2_server.js printed no {kind} line within {STEP:?}; its stderr:\n{}",
            server.stderr_text()
        )
    });
    serde_json::from_str(&line).unwrap_or_else(|err| panic!("{kind} {line}: {err}"))
}

/// Checks what `h2_server.js` printed about [`echo_many`] (see
/// [`server_saw`]), on a blocking thread so that the runtime keeps driving
/// the client's HTTP/2 connection meanwhile; returns the server.
async fn check_server_saw(
    server: NodeServer,
    scheme: &'static str,
    alpn: &'static str,
    selected: &'static str,
) -> NodeServer {
    let check = tokio::task::spawn_blocking(move || {
        server_saw(&server, scheme, alpn, selected);
        server
    });
    match check.await {
        Ok(server) => server,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// Checks what `h2_server.js` printed about [`echo_many`]: one HTTP/2
/// session with `alpn`, [`STREAMS`] extended CONNECTs on it with the
/// expected pseudo-headers, as many clean closes with every message
/// echoed, and each stream then ended by the client. Blocks the thread
/// while it waits for lines.
fn server_saw(server: &NodeServer, scheme: &str, alpn: &str, selected: &str) {
    let session = fields(server, "SESSION");
    assert_eq!(session["alpn"], alpn, "SESSION {session}");
    let number = session["session"].clone();

    let mut paths = Vec::new();
    for _ in 0..STREAMS {
        let stream = fields(server, "STREAM");
        assert_eq!(stream["session"], number, "another session: {stream}");
        assert_eq!(stream["http"], "2", "{stream}");
        assert_eq!(stream["method"], "CONNECT", "{stream}");
        assert_eq!(stream["protocol"], "websocket", "{stream}");
        assert_eq!(stream["scheme"], scheme, "{stream}");
        assert_eq!(stream["version"], "13", "{stream}");
        assert_eq!(stream["selected"], selected, "{stream}");
        assert_eq!(
            stream["key"], false,
            "RFC 8441 has no sec-websocket-key: {stream}"
        );
        let offered = stream["offered"].as_str().unwrap().replace(' ', "");
        assert_eq!(offered, "superchat,chat", "{stream}");
        let authority = stream["authority"].as_str().unwrap();
        assert!(
            authority.ends_with(&format!(":{}", server.port())),
            "{stream}"
        );
        paths.push(stream["path"].as_str().unwrap().to_owned());
    }
    paths.sort();
    let expected: Vec<String> = (0..STREAMS)
        .map(|n| format!("/ws/{n}?stream={n}"))
        .collect();
    assert_eq!(paths, expected);

    let count = messages(0).len();
    for _ in 0..STREAMS {
        let closed = fields(server, "CLOSED");
        assert_eq!(closed["session"], number, "{closed}");
        assert_eq!(closed["code"], 1000, "{closed}");
        assert_eq!(closed["reason"], "done", "{closed}");
        assert_eq!(closed["messages"], count, "{closed}");
    }
    // After the close handshake the client ends its side of each stream
    // (END_STREAM), and nobody resets it.
    for _ in 0..STREAMS {
        let ended = fields(server, "ENDED");
        assert_eq!(ended["session"], number, "{ended}");
        assert_eq!(
            (&ended["clientEnded"], &ended["rstCode"]),
            (&Value::Bool(true), &Value::from(0)),
            "the client did not end the stream with END_STREAM: {ended}"
        );
    }
    let more = server.take_lines("SESSION");
    assert!(
        more.is_empty(),
        "more HTTP/2 connections than one: {more:?}"
    );
    let rejected = server.take_lines("REJECTED");
    let errors = server.take_lines("ERROR");
    assert!(
        rejected.is_empty() && errors.is_empty(),
        "{rejected:?} {errors:?}"
    );
}

/// wsstream's client over cleartext HTTP/2 (prior knowledge) to a Node
/// `node:http2` + `ws` server: [`STREAMS`] WebSockets on one connection,
/// a negotiated subprotocol, every message echoed, clean closes.
#[tokio::test]
async fn wsstream_client_to_a_node_h2c_server() {
    let server = NodeServer::start_script("h2_server.js", &["--protocols", "chat,superchat"]);
    let options = Options::default()
        .http_version(HttpVersion::RequireHttp2)
        .http2_prior_knowledge(true)
        .protocols(["superchat", "chat"]);
    let base = format!("ws://127.0.0.1:{}", server.port());
    echo_many(&base, &options, "superchat").await;
    check_server_saw(server, "http", "h2c", "superchat").await;
}

/// The same over TLS, HTTP/2 chosen by ALPN, both when HTTP/2 is required
/// and when it is only preferred: each `Options` value has its connection.
#[cfg(feature = "tls")]
#[tokio::test]
async fn wsstream_client_to_a_node_h2_server_over_tls() {
    let pki = certs::TestPki::generate(&["127.0.0.1", "localhost"]);
    let (cert, key) = (
        pki.cert_pem.to_str().unwrap(),
        pki.key_pem.to_str().unwrap(),
    );
    let mut server = NodeServer::start_script(
        "h2_server.js",
        &["--tls", cert, key, "--protocols", "chat,superchat"],
    );
    let base = format!("wss://127.0.0.1:{}", server.port());
    for version in [HttpVersion::RequireHttp2, HttpVersion::PreferHttp2] {
        let options = Options::default()
            .http_version(version)
            .tls_config(Arc::new(pki.client_config()))
            .protocols(["superchat", "chat"]);
        echo_many(&base, &options, "superchat").await;
        server = check_server_saw(server, "https", "h2", "superchat").await;
    }
}

/// Runs `h2_client.js URL ARGS` with `streams` WebSockets of 12 messages
/// each, offering "superchat, chat", and checks its report: one session
/// with `alpn` that allowed extended CONNECT, every echo right, the
/// subprotocol "chat", close code 1000 on each, and the server ending each
/// stream after the close handshake.
async fn run_h2_client(url: String, args: &[&str], streams: usize, alpn: &str) {
    let mut all = vec![
        "--streams".to_owned(),
        streams.to_string(),
        "--messages".to_owned(),
        "12".to_owned(),
        "--protocols".to_owned(),
        "superchat, chat".to_owned(),
        "--expect-protocol".to_owned(),
        "chat".to_owned(),
    ];
    all.extend(args.iter().map(|arg| (*arg).to_owned()));
    let client = tokio::task::spawn_blocking(move || {
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        spawn_script("h2_client.js", &url, &all).wait()
    });
    let output = within("h2_client.js", client).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "h2_client.js failed ({}):\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    let session: Value = serde_json::from_str(&output_line(&output, "SESSION").unwrap()).unwrap();
    assert_eq!(session["alpn"], alpn);
    assert_eq!(session["connectProtocol"], true);
    let ok = output_line(&output, "OK").unwrap();
    assert!(
        ok.starts_with(&format!("streams={streams} messages={} ", streams * 12)),
        "OK {ok}"
    );
    let codes = output_line(&output, "CLOSED").unwrap();
    assert_eq!(codes, vec!["1000"; streams].join(" "));
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("STREAM "))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), streams, "{stdout}");
    for stream in lines {
        assert_eq!(stream["status"], 200, "{stream}");
        assert_eq!(stream["protocol"], "chat", "{stream}");
        assert_eq!(stream["code"], 1000, "{stream}");
        assert_eq!(
            stream["serverEnded"], true,
            "the server did not end the stream after the close handshake: {stream}"
        );
    }
}

/// Checks what the hyper server saw once `streams` WebSockets ended: each
/// an HTTP/2 extended CONNECT with `:protocol websocket` to `/chat`, a
/// WebSocketStream whose request is HTTP/2, a clean close with 1000; all
/// on one TCP connection.
async fn check_hyper_saw(server: &EchoServer, streams: usize) {
    server.wait_seen(streams).await;
    for request in server.seen.lock().unwrap().iter() {
        request.assert_websocket_over_http2();
        assert_eq!(request.path, "/chat", "{request:?}");
        assert_eq!(
            request.stream_version,
            Some(http::Version::HTTP_2),
            "{request:?}"
        );
    }
    assert_eq!(
        server.connections(),
        1,
        "the client's WebSockets came on more than one connection"
    );
}

/// A Node `node:http2` + `ws` client to wsstream's hyper HTTP/2 server over
/// cleartext HTTP/2: several WebSockets on one connection, every message
/// checked by the client, clean closes both ways, and the server saw each
/// request arrive as an HTTP/2 extended CONNECT with `:protocol websocket`.
#[tokio::test]
async fn node_h2_client_to_the_wsstream_hyper_server() {
    let streams = 6;
    let options = ServerOptions::default().protocols(["chat"]);
    let server = hyper_h2_echo_server(options, plain).await;
    let url = format!("ws://127.0.0.1:{}/chat", server.port);
    run_h2_client(url, &[], streams, "h2c").await;
    check_hyper_saw(&server, streams).await;
}

/// The same over TLS, the hyper server offering ALPN `h2` alone.
#[cfg(feature = "tls")]
#[tokio::test]
async fn node_h2_client_over_tls_to_the_wsstream_hyper_server() {
    let streams = 3;
    let pki = certs::TestPki::generate(&["127.0.0.1", "localhost"]);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(pki.server_config_with_alpn(&[b"h2"])));
    let tls = move |tcp: tokio::net::TcpStream| -> Accepting {
        let acceptor = acceptor.clone();
        Box::pin(async move { Ok(Box::new(acceptor.accept(tcp).await?) as Box<dyn Io>) })
    };
    let options = ServerOptions::default().protocols(["chat"]);
    let server = hyper_h2_echo_server(options, tls).await;
    let ca = pki.ca_pem.to_str().unwrap();
    let url = format!("wss://127.0.0.1:{}/chat", server.port);
    run_h2_client(url, &["--ca", ca], streams, "h2").await;
    check_hyper_saw(&server, streams).await;
}
