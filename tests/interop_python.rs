//! Interoperability with a WebSocket implementation that is not ours: the
//! Python `websockets` library (PyPI), run as a server in a child process
//! (`tests/peers/python/echo_server.py`). The first test to run installs it
//! into `target/peers/python-venv`; see `support/python.rs`.
//!
//! Every await is bounded, so a bug fails a test instead of hanging it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "tls")]
#[path = "support/certs.rs"]
mod certs;
#[path = "support/python.rs"]
mod python;

use std::future::Future;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use python::PythonServer;
use wsstream::{CloseInfo, Error, Message, Opened, Options, Readable, WebSocketStream, Writable};

/// The longest any single step may take.
const STEP: Duration = Duration::from_secs(20);

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {STEP:?}: {what}"))
}

/// Connects and waits for the opening handshake.
async fn open(url: &str, options: Options) -> (WebSocketStream, Opened) {
    let ws = WebSocketStream::connect(url, options);
    let opened = within("the opening handshake", ws.opened())
        .await
        .unwrap_or_else(|err| panic!("opening {url} failed: {}", chain(&err)));
    (ws, opened)
}

/// The next message, which must be there.
async fn next_message(rd: &mut Readable) -> Message {
    match within("the next message", rd.next()).await {
        Some(Ok(message)) => message,
        Some(Err(err)) => panic!("reading failed: {}", chain(&err)),
        None => panic!("the readable ended before the expected message"),
    }
}

/// Sends `messages` while reading as many back, as two concurrent halves of
/// one task would, and returns what came back.
async fn echo_all(rd: &mut Readable, wr: &mut Writable, messages: &[Message]) -> Vec<Message> {
    let send = async {
        for message in messages {
            wr.send(message.clone())
                .await
                .unwrap_or_else(|err| panic!("sending failed: {}", chain(&err)));
        }
    };
    let receive = async {
        let mut echoed = Vec::with_capacity(messages.len());
        while echoed.len() < messages.len() {
            echoed.push(next_message(rd).await);
        }
        echoed
    };
    within("echoing every message", async {
        tokio::join!(send, receive).1
    })
    .await
}

/// Checks that every message came back with its type and content, in order.
fn assert_echoed(sent: &[Message], echoed: &[Message]) {
    assert_eq!(echoed.len(), sent.len(), "as many messages back as sent");
    for (i, (sent, got)) in sent.iter().zip(echoed).enumerate() {
        assert_eq!(got.is_text(), sent.is_text(), "message {i} changed type");
        assert!(
            got == sent,
            "message {i} came back different ({} bytes sent, {} received)",
            sent.len(),
            got.len()
        );
    }
}

/// Closes with 1000 "done", checks that the readable ends cleanly and that
/// the peer answered with the same code and reason.
async fn close_cleanly(ws: &WebSocketStream, rd: &mut Readable) {
    ws.close(1000, "done").expect("close(1000, \"done\")");
    match within("the readable to end after close", rd.next()).await {
        None => {}
        Some(Ok(message)) => panic!("unexpected message after close: {message:?}"),
        Some(Err(err)) => panic!("the readable failed instead of ending: {}", chain(&err)),
    }
    let info = within("closed", ws.closed())
        .await
        .unwrap_or_else(|err| panic!("closed failed: {}", chain(&err)));
    assert_eq!(
        info,
        CloseInfo {
            code: 1000,
            reason: "done".into()
        }
    );
}

/// An error and its sources, one after another.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn binary_pattern(len: usize) -> Vec<u8> {
    // 251 is prime: no power-of-two chunking lines up with the pattern.
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn ws_echo_keeps_types_content_and_order_then_closes_with_code() {
    let server = PythonServer::echo(&[]);
    let url = format!("ws://127.0.0.1:{}/echo", server.port());
    let (ws, opened) = open(&url, Options::default()).await;
    assert_eq!(opened.protocol, None, "no subprotocol was offered");
    assert_eq!(opened.extensions, "", "no extension was offered");
    let (mut rd, mut wr) = (opened.readable, opened.writable);

    let mut messages = vec![
        Message::text("hello"),
        Message::binary(vec![0u8, 1, 2, 0xfe, 0xff]),
        Message::text("héllo wörld — Καλημέρα κόσμε, こんにちは, 🦀🚀"),
        Message::text(""),
        Message::binary(Vec::new()),
        Message::binary(binary_pattern(1 << 20)),
        // 420 KB of 1-, 4- and 2-byte characters: frame and read
        // boundaries fall inside characters.
        Message::text("a🦀é".repeat(60_000)),
    ];
    for i in 0..100 {
        messages.push(if i % 2 == 0 {
            Message::text(format!("text #{i} ✓"))
        } else {
            Message::binary(format!("binary #{i}").into_bytes())
        });
    }
    let echoed = echo_all(&mut rd, &mut wr, &messages).await;
    assert_echoed(&messages, &echoed);

    close_cleanly(&ws, &mut rd).await;
    let late = within("sending after close", wr.send(Message::text("late"))).await;
    assert!(
        matches!(late, Err(Error::Closed)),
        "sending after a clean close: {late:?}"
    );
}

#[tokio::test]
async fn subprotocol_is_the_one_both_sides_support() {
    let server = PythonServer::echo(&["--protocols", "v1"]);
    let url = format!("ws://127.0.0.1:{}/protocol", server.port());
    let (ws, opened) = open(&url, Options::default().protocols(["v2", "v1"])).await;
    assert_eq!(opened.protocol.as_deref(), Some("v1"));
    let (mut rd, mut wr) = (opened.readable, opened.writable);
    let first = next_message(&mut rd).await;
    assert_eq!(
        first.as_text(),
        Some("v1"),
        "the server negotiated something else: {first:?}"
    );
    let echoed = echo_all(&mut rd, &mut wr, &[Message::text("after negotiation")]).await;
    assert_eq!(echoed, [Message::text("after negotiation")]);
    close_cleanly(&ws, &mut rd).await;
}

#[tokio::test]
async fn no_subprotocol_when_the_server_supports_none() {
    // RFC 6455 4.2.2: a server may answer without Sec-WebSocket-Protocol
    // even when the client offered some; the connection still opens.
    let server = PythonServer::echo(&[]);
    let url = format!("ws://127.0.0.1:{}/protocol", server.port());
    let (ws, opened) = open(&url, Options::default().protocols(["v2", "v1"])).await;
    assert_eq!(opened.protocol, None);
    let mut rd = opened.readable;
    assert_eq!(next_message(&mut rd).await.as_text(), Some("none"));
    close_cleanly(&ws, &mut rd).await;
}

#[tokio::test]
async fn server_initiated_close_ends_the_readable_and_reports_code_and_reason() {
    let server = PythonServer::echo(&[]);
    let url = format!("ws://127.0.0.1:{}/close-after-first", server.port());
    let (ws, opened) = open(&url, Options::default()).await;
    let (mut rd, mut wr) = (opened.readable, opened.writable);
    within("sending", wr.send(Message::text("only one")))
        .await
        .unwrap();
    assert_eq!(next_message(&mut rd).await, Message::text("only one"));
    match within("the readable to end on the server's close", rd.next()).await {
        None => {}
        Some(Ok(message)) => panic!("unexpected message after the echo: {message:?}"),
        Some(Err(err)) => panic!(
            "a clean close from the server ended the readable with an error: {}",
            chain(&err)
        ),
    }
    let info = within("closed", ws.closed())
        .await
        .unwrap_or_else(|err| panic!("closed failed after a clean server close: {}", chain(&err)));
    assert_eq!(
        info,
        CloseInfo {
            code: 4001,
            reason: "server says bye".into()
        }
    );
}

#[tokio::test]
async fn pings_from_the_server_are_answered_while_reading() {
    let server = PythonServer::echo(&[]);
    let url = format!("ws://127.0.0.1:{}/ping", server.port());
    let (ws, opened) = open(&url, Options::default()).await;
    let mut rd = opened.readable;
    let reply = next_message(&mut rd).await;
    assert_eq!(
        reply.as_text(),
        Some("pong received"),
        "the server saw no matching pong: {reply:?}"
    );
    close_cleanly(&ws, &mut rd).await;
}

#[tokio::test]
async fn http_url_is_mapped_to_ws() {
    let server = PythonServer::echo(&[]);
    let url = format!("http://127.0.0.1:{}/echo", server.port());
    let (ws, opened) = open(&url, Options::default()).await;
    let (mut rd, mut wr) = (opened.readable, opened.writable);
    let messages = [Message::text("via http://"), Message::binary(vec![7u8; 3])];
    let echoed = echo_all(&mut rd, &mut wr, &messages).await;
    assert_eq!(echoed, messages);
    close_cleanly(&ws, &mut rd).await;
}

/// `wss`: these need the `tls` feature (rustls).
#[cfg(feature = "tls")]
mod wss {
    use super::*;

    use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
    use std::sync::Arc;

    use certs::TestPki;

    /// Whether any error in the chain is a rustls certificate error, directly
    /// or inside an `io::Error`.
    fn has_certificate_error(err: &(dyn std::error::Error + 'static)) -> bool {
        let mut next = Some(err);
        while let Some(err) = next {
            let inner = err
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>());
            if let Some(rustls::Error::InvalidCertificate(_)) =
                err.downcast_ref::<rustls::Error>().or(inner)
            {
                return true;
            }
            next = err.source();
        }
        false
    }

    /// Starts a TLS echo server with a new throwaway PKI.
    fn tls_server(pki: &TestPki) -> PythonServer {
        let path =
            |path: &std::path::Path| path.to_str().expect("a UTF-8 temporary path").to_owned();
        PythonServer::echo(&["--tls", &path(&pki.cert_pem), &path(&pki.key_pem)])
    }

    async fn wss_echo(url: &str, pki: &TestPki) {
        let options = Options::default().tls_config(Arc::new(pki.client_config()));
        let (ws, opened) = open(url, options).await;
        let (mut rd, mut wr) = (opened.readable, opened.writable);
        let messages = [
            Message::text("over TLS ✓"),
            Message::binary(binary_pattern(1 << 20)),
            Message::text("ünïcödé 🦀"),
        ];
        let echoed = echo_all(&mut rd, &mut wr, &messages).await;
        assert_echoed(&messages, &echoed);
        close_cleanly(&ws, &mut rd).await;
    }

    #[tokio::test]
    async fn wss_echo_by_ip_address_with_a_private_ca() {
        let pki = TestPki::generate(&["localhost", "127.0.0.1"]);
        let server = tls_server(&pki);
        // An IP literal: no SNI, and the certificate must match its IP SAN.
        wss_echo(&format!("wss://127.0.0.1:{}/echo", server.port()), &pki).await;
    }

    #[tokio::test]
    async fn wss_echo_by_dns_name_with_a_private_ca() {
        let pki = TestPki::generate(&["localhost", "127.0.0.1"]);
        let server = tls_server(&pki);
        let port = server.port();
        // The server listens on 127.0.0.1 only, and the tests connect nowhere
        // else: use the name only where it resolves there first.
        let first = ("localhost", port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next());
        let host = if first == Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port))) {
            "localhost"
        } else {
            eprintln!(
                "localhost resolves to {first:?} first, not 127.0.0.1: using the IP address instead"
            );
            "127.0.0.1"
        };
        wss_echo(&format!("wss://{host}:{port}/echo"), &pki).await;
    }

    #[cfg(feature = "webpki-roots")]
    #[tokio::test]
    async fn wss_with_the_bundled_roots_refuses_a_private_ca() {
        let pki = TestPki::generate(&["localhost", "127.0.0.1"]);
        let server = tls_server(&pki);
        let ws = WebSocketStream::connect(
            format!("wss://127.0.0.1:{}/echo", server.port()),
            Options::default(),
        );
        let err = match within("a refused TLS handshake", ws.opened()).await {
            Ok(_) => panic!("a server whose CA is not among the bundled roots was trusted"),
            Err(err) => err,
        };
        let text = chain(&err);
        assert!(
            text.to_lowercase().contains("certificate"),
            "the error does not name the certificate: {text}"
        );
        assert!(
            has_certificate_error(&err),
            "no rustls certificate error in the chain: {text} ({err:?})"
        );
        let closed = within("closed after a failed opening", ws.closed()).await;
        assert!(
            closed.is_err(),
            "closed resolved after a failed opening: {closed:?}"
        );
    }

    #[tokio::test]
    async fn wss_refuses_a_certificate_for_another_name() {
        // The right CA, but the certificate names neither 127.0.0.1 nor
        // localhost: the name check must not be skipped for IP addresses.
        let pki = TestPki::generate(&["example.test", "192.0.2.1"]);
        let server = tls_server(&pki);
        let options = Options::default().tls_config(Arc::new(pki.client_config()));
        let ws =
            WebSocketStream::connect(format!("wss://127.0.0.1:{}/echo", server.port()), options);
        let err = match within("a refused TLS handshake", ws.opened()).await {
            Ok(_) => panic!("a certificate for other names was accepted for 127.0.0.1"),
            Err(err) => err,
        };
        assert!(
            has_certificate_error(&err),
            "no rustls certificate error in the chain: {} ({err:?})",
            chain(&err)
        );
    }
}

/// permessage-deflate against Python `websockets`, which negotiates it by
/// default in both roles.
#[cfg(feature = "deflate")]
mod deflate {
    use super::*;
    use wsstream::{DeflateConfig, ServerOptions};

    async fn deflate_echo(options: Options) -> String {
        let server = PythonServer::echo(&[]);
        let url = format!("ws://127.0.0.1:{}/echo", server.port());
        let (ws, opened) = open(&url, options).await;
        let extensions = opened.extensions.clone();
        assert!(
            extensions.starts_with("permessage-deflate"),
            "not negotiated: {extensions:?}"
        );
        let (mut rd, mut wr) = (opened.readable, opened.writable);
        let mut messages = vec![
            Message::text(""),
            Message::text("tiny"),
            Message::binary(binary_pattern(1 << 20)),
            Message::text("a🦀é".repeat(60_000)),
            Message::binary(Vec::new()),
        ];
        for i in 0..50 {
            messages.push(Message::text(
                format!("{{\"seq\":{i},\"kind\":\"quote\",\"bid\":101.25}}").repeat(i + 1),
            ));
        }
        let echoed = echo_all(&mut rd, &mut wr, &messages).await;
        assert_echoed(&messages, &echoed);
        close_cleanly(&ws, &mut rd).await;
        extensions
    }

    #[tokio::test]
    async fn compressed_echo_with_a_python_server() {
        deflate_echo(Options::default().deflate(DeflateConfig::default())).await;
    }

    #[tokio::test]
    async fn every_client_parameter_is_granted_and_honoured_by_python() {
        let asking = DeflateConfig::default()
            .client_no_context_takeover(true)
            .server_no_context_takeover(true)
            .server_max_window_bits(9)
            .client_max_window_bits(8)
            .threshold(0);
        let extensions = deflate_echo(Options::default().deflate(asking)).await;
        for param in [
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits=9",
        ] {
            assert!(
                extensions.contains(param),
                "{param} missing from {extensions:?}"
            );
        }
        let wide = DeflateConfig::default().server_max_window_bits(15).level(9);
        deflate_echo(Options::default().deflate(wide)).await;
    }

    #[tokio::test]
    async fn a_python_client_compresses_to_our_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let options = ServerOptions::default().deflate(DeflateConfig::default().threshold(0));
            let ws = WebSocketStream::accept(tcp, options).await.unwrap();
            let opened = ws.opened().await.unwrap();
            let extensions = opened.extensions.clone();
            let _ = opened.readable.forward(opened.writable).await;
            (extensions, ws.closed().await)
        });
        let client = tokio::task::spawn_blocking(move || {
            std::process::Command::new(python::interpreter())
                .arg(python::scripts_dir().join("client.py"))
                .args([url.as_str(), "--count", "40", "--size", "70000"])
                .output()
                .unwrap()
        });
        let output = within("the Python client", client).await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("OK 40"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (extensions, closed) = within("the server", server).await.unwrap();
        assert!(
            extensions.starts_with("permessage-deflate"),
            "{extensions:?}"
        );
        assert!(
            stdout.contains(&format!("EXTENSIONS {extensions}")),
            "{stdout}"
        );
        assert_eq!(closed.unwrap().code, 1000);
    }
}
