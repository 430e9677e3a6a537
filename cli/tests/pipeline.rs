//! `wsstream connect` in pipelines and with piped stdin, against
//! `wsstream serve` and against servers written here with the library:
//! what reaches stdout, what stderr says, and the exit status.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::thread;

use futures::StreamExt;
use support::process::Running;
use support::{closed_port, serve_on_thread, shell, wsstream, Server};
use wsstream::{ServerOptions, WebSocketStream};

#[test]
fn echo_hi_prints_the_reply_and_exits_0() {
    let server = Server::start(&[]);
    let script = format!("echo hi | \"$WSSTREAM\" connect {}", server.url);
    let done = Running::run(shell(&script), "");
    assert_eq!(done.stdout, "< hi\n", "stderr:\n{}", done.stderr);
    assert_eq!(done.code, Some(0), "stderr:\n{}", done.stderr);
    assert!(
        done.stderr
            .contains("wsstream: connected to ws://127.0.0.1:"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("wsstream: closed: code 1000"),
        "{}",
        done.stderr
    );
}

#[test]
fn several_lines_come_back_in_order() {
    let server = Server::start(&[]);
    let script = format!(
        "printf 'one\\ntwo\\r\\n\\nthree' | \"$WSSTREAM\" connect {}/x",
        server.url
    );
    let done = Running::run(shell(&script), "");
    // CRLF ends a line too, an empty line is an empty message, and the
    // last line needs no line end.
    assert_eq!(
        done.stdout, "< one\n< two\n< \n< three\n",
        "stderr:\n{}",
        done.stderr
    );
    assert_eq!(done.code, Some(0), "stderr:\n{}", done.stderr);
}

#[test]
fn many_lines_all_arrive() {
    let server = Server::start(&[]);
    let input: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    let done = Running::run(wsstream(["connect", &server.url]), &input);
    let expected: String = (0..2000).map(|i| format!("< line {i}\n")).collect();
    assert!(
        done.stdout == expected,
        "stdout differs; stderr:\n{}",
        done.stderr
    );
    assert_eq!(done.code, Some(0), "stderr:\n{}", done.stderr);
}

#[test]
fn binary_lines_show_length_and_hex_preview() {
    let server = Server::start(&[]);
    let long = "abcdefghijklmnopqrstuvwxyz0123456789"; // 36 bytes
    let done = Running::run(
        wsstream(["connect", "--binary", &server.url]),
        &format!("hi\n{long}\n"),
    );
    let mut lines = done.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("< [binary 2 bytes] 68 69"),
        "stderr:\n{}",
        done.stderr
    );
    let preview: Vec<String> = long.bytes().take(32).map(|b| format!("{b:02x}")).collect();
    let expected = format!("< [binary 36 bytes] {} …", preview.join(" "));
    assert_eq!(lines.next(), Some(expected.as_str()));
    assert_eq!(lines.next(), None);
    assert_eq!(done.code, Some(0), "stderr:\n{}", done.stderr);
}

#[test]
fn a_text_message_with_newlines_prints_as_is() {
    // A server of our own sends a text with a newline in it.
    let addr = spawn_server(|ws| async move {
        let mut opened = ws.opened().await?;
        futures::SinkExt::send(&mut opened.writable, "first\nsecond".into()).await?;
        while let Some(message) = opened.readable.next().await {
            message?;
        }
        Ok(())
    });
    let done = Running::run(wsstream(["connect", &format!("ws://{addr}")]), "");
    assert_eq!(done.stdout, "< first\nsecond\n", "stderr:\n{}", done.stderr);
    assert_eq!(done.code, Some(0), "stderr:\n{}", done.stderr);
}

#[test]
fn a_close_with_4000_exits_3_and_tells_code_and_reason_without_waiting_for_stdin() {
    let addr = spawn_server(|ws| async move {
        let mut opened = ws.opened().await?;
        // One message from the client, then the server closes.
        let _ = opened.readable.next().await;
        ws.close(4000, "bye")?;
        while let Some(message) = opened.readable.next().await {
            message?;
        }
        Ok(())
    });
    let mut client = Running::spawn(wsstream(["connect", &format!("ws://{addr}")]));
    client.write("hi\n");
    // stdin stays open: the client must end because the server closed.
    let done = client.finish();
    assert_eq!(done.code, Some(3), "stderr:\n{}", done.stderr);
    assert!(done.stderr.contains("4000"), "{}", done.stderr);
    assert!(done.stderr.contains("bye"), "{}", done.stderr);
}

#[test]
fn a_server_close_amid_endless_input_is_still_clean() {
    let addr = spawn_server(|ws| async move {
        let mut opened = ws.opened().await?;
        let _ = opened.readable.next().await;
        ws.close(1000, "enough")?;
        // Reads on (discarding) until the client answers the close.
        while let Some(message) = opened.readable.next().await {
            message?;
        }
        Ok(())
    });
    let script = format!("yes | \"$WSSTREAM\" connect ws://{addr}");
    let done = Running::run(shell(&script), "");
    assert_eq!(done.code, Some(0), "stderr:\n{}", done.stderr);
    assert!(
        done.stderr.contains("closed: code 1000, reason \"enough\""),
        "{}",
        done.stderr
    );
}

#[test]
fn a_refused_connection_exits_1() {
    let url = format!("ws://127.0.0.1:{}", closed_port());
    let done = Running::run(wsstream(["connect", &url]), "hi\n");
    assert_eq!(done.code, Some(1), "stderr:\n{}", done.stderr);
    assert!(done.stderr.contains("could not connect"), "{}", done.stderr);
    assert_eq!(done.stdout, "");
}

#[test]
fn a_refused_handshake_exits_1() {
    // An HTTP server that refuses the upgrade, as one checking a token would.
    let addr = spawn_raw(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n");
    let done = Running::run(wsstream(["connect", &format!("ws://{addr}")]), "");
    assert_eq!(done.code, Some(1), "stderr:\n{}", done.stderr);
    assert!(done.stderr.contains("403"), "{}", done.stderr);
}

#[test]
fn a_bad_header_is_a_usage_error() {
    let done = Running::run(
        wsstream([
            "connect",
            "-H",
            "Authorization Bearer x",
            "ws://127.0.0.1:9",
        ]),
        "",
    );
    assert_eq!(done.code, Some(2), "stderr:\n{}", done.stderr);
    assert!(done.stderr.contains("'Name: value'"), "{}", done.stderr);
    let done = Running::run(
        wsstream(["connect", "-H", "Bad Name: x", "ws://127.0.0.1:9"]),
        "",
    );
    assert_eq!(done.code, Some(2), "stderr:\n{}", done.stderr);
    assert!(
        done.stderr.contains("not a valid header name"),
        "{}",
        done.stderr
    );
}

#[test]
fn headers_reach_the_server() {
    let (sender, received) = std::sync::mpsc::channel();
    let addr = spawn_server(move |ws| {
        let sender = sender.clone();
        async move {
            let request = ws
                .request()
                .expect("a server-side connection has its request");
            let _ = sender.send(request.headers().get("x-test").cloned());
            let mut opened = ws.opened().await?;
            while let Some(message) = opened.readable.next().await {
                message?;
            }
            Ok(())
        }
    });
    let done = Running::run(
        wsstream([
            "connect",
            "-H",
            "X-Test:  yes, it works ",
            &format!("ws://{addr}"),
        ]),
        "",
    );
    assert_eq!(done.code, Some(0), "stderr:\n{}", done.stderr);
    let value = received
        .recv_timeout(support::DEADLINE)
        .expect("the server saw the request");
    assert_eq!(
        value.as_ref().map(|v| v.as_bytes()),
        Some(&b"yes, it works"[..])
    );
}

#[test]
fn the_negotiated_protocol_is_shown_on_stderr() {
    let server = Server::start(&["--protocol", "chat", "--protocol", "other"]);
    let script = format!(
        "echo hi | \"$WSSTREAM\" connect --protocol other --protocol chat {}",
        server.url
    );
    let done = Running::run(shell(&script), "");
    assert_eq!(done.code, Some(0), "stderr:\n{}", done.stderr);
    // The server's preference wins among the client's offers.
    assert!(
        done.stderr.contains("wsstream: protocol: chat"),
        "{}",
        done.stderr
    );
    assert_eq!(done.stdout, "< hi\n");
}

#[test]
fn deflate_is_negotiated_and_shown() {
    let server = Server::start(&["--deflate"]);
    let done = Running::run(
        wsstream(["connect", "--deflate", &server.url]),
        "squeeze me\n",
    );
    assert_eq!(done.code, Some(0), "stderr:\n{}", done.stderr);
    assert!(
        done.stderr
            .contains("wsstream: extensions: permessage-deflate"),
        "{}",
        done.stderr
    );
    assert_eq!(done.stdout, "< squeeze me\n");
}

#[test]
fn broadcast_reaches_every_client() {
    let mut server = Server::start(&["--broadcast"]);
    let mut listener = Running::spawn(wsstream(["connect", &server.url]));
    listener
        .stderr
        .wait_for("the connection", |line| line.contains("connected to"));
    // Once the server has logged it, the listener is a member.
    server
        .process
        .stderr
        .wait_for("the listener's connection", |line| {
            line.contains("connected to")
        });

    let script = format!("echo 'hello from b' | \"$WSSTREAM\" connect {}", server.url);
    let sender = Running::run(shell(&script), "");
    // The sender is a member too: it gets its own message.
    assert_eq!(
        sender.stdout, "< hello from b\n",
        "stderr:\n{}",
        sender.stderr
    );
    assert_eq!(sender.code, Some(0), "stderr:\n{}", sender.stderr);

    listener
        .stdout
        .wait_for("the broadcast", |line| line == "< hello from b");
    listener.close_stdin();
    let done = listener.finish();
    assert_eq!(done.code, Some(0), "stderr:\n{}", done.stderr);
    assert_eq!(done.stdout, "< hello from b\n");
}

#[test]
fn ctrl_c_stops_the_server_and_closes_its_clients() {
    let mut server = Server::start(&[]);
    let mut client = Running::spawn(wsstream(["connect", &server.url]));
    client
        .stderr
        .wait_for("the connection", |line| line.contains("connected to"));
    server
        .process
        .stderr
        .wait_for("the client's connection", |line| {
            line.contains("connected to")
        });

    server.process.interrupt();
    // The client ends by itself (its stdin is still open), with 1001: a
    // clean close with a code other than 1000.
    let done = client.finish();
    assert_eq!(done.code, Some(3), "stderr:\n{}", done.stderr);
    assert!(
        done.stderr.contains("1001") && done.stderr.contains("server shutting down"),
        "{}",
        done.stderr
    );
    let stopped = server.process.finish();
    assert_eq!(stopped.code, Some(0), "stderr:\n{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("wsstream: stopped"),
        "{}",
        stopped.stderr
    );
}

#[test]
fn ctrl_c_closes_a_piped_client_and_a_second_one_quits() {
    // A server that never answers a close: the first Ctrl-C closes and
    // waits, the second quits at once.
    let addr = spawn_server(|ws| async move {
        let _opened = ws.opened().await?;
        std::future::pending::<()>().await;
        Ok(())
    });
    let mut client = Running::spawn(wsstream(["connect", &format!("ws://{addr}")]));
    client
        .stderr
        .wait_for("the connection", |line| line.contains("connected to"));
    client.interrupt();
    client.stderr.wait_for("the closing notice", |line| {
        line.contains("interrupted: closing")
    });
    client.interrupt();
    let done = client.finish();
    assert_eq!(done.code, Some(130), "stderr:\n{}", done.stderr);
}

/// Serves WebSocket connections on 127.0.0.1 with `handle`; returns the
/// address.
fn spawn_server<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(WebSocketStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), wsstream::Error>> + Send + 'static,
{
    let handle = std::sync::Arc::new(handle);
    serve_on_thread(move |tcp| {
        let handle = handle.clone();
        async move {
            if let Ok(ws) = WebSocketStream::accept(tcp, ServerOptions::default()).await {
                let _ = handle(ws).await;
            }
        }
    })
}

/// Answers every connection on 127.0.0.1 with `response` after reading
/// its request head, then closes it; returns the address.
fn spawn_raw(response: &'static [u8]) -> SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("a second handle"));
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = stream.write_all(response);
        }
    });
    addr
}
