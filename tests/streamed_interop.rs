//! Streamed messages (one message read as a stream of chunks with
//! `Readable::next_streamed`, one written as fragments with
//! `Writable::start_streamed` / `send_streamed`) against WebSocket
//! implementations that are not ours: Python `websockets`
//! (`tests/peers/python/streamed_peer.py`, which reads with `recv_streaming`
//! and sends fragments with `send` of an async iterator) and Node `ws`
//! (`tests/peers/node/streamed_peer.js`, which sends fragments with
//! `send(chunk, { fin })`). Each peer runs as a server for our client and as a
//! client of our server, without permessage-deflate and with it, with and
//! without context takeover.
//!
//! The peers answer every message they receive with its kind, length and
//! SHA-1, and on command send generated messages followed by the same
//! report of what they sent (the scripts' headers describe the commands), so
//! content is checked by digest on both sides. Messages are 8 MiB and a bit:
//! many fragments, not a multiple of the fragment size, text of 1- to 4-byte
//! characters cut across fragments.
//!
//! One connection runs the whole [`scenario`]: two streamed messages in (a
//! text one during which the peer waits for our go-ahead half-way, proving
//! that chunks arrive before the message is complete, and a binary one read
//! through `AsyncRead`), two whole messages in, streamed messages out through
//! the `Sink` (Python acknowledges half of the message before we finish it),
//! `send_streamed` and `AsyncWrite`, whole messages out, then the close
//! handshake. Every await is bounded, so a bug fails a test instead of
//! hanging it.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::duplicate_mod,
    reason = "support/python.rs and support/node.rs each include peer_process.rs and programs.rs as private modules"
)]

#[path = "support/node.rs"]
mod node;
#[path = "support/python.rs"]
mod python;

use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use node::NodeServer;
use python::PythonServer;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wsstream::{
    CloseInfo, Message, MessageKind, Options, Readable, ServerOptions, Utf8Bytes, WebSocketStream,
    Writable, DEFAULT_FRAGMENT_SIZE,
};

/// The longest any single step may take: generous, as the machine may be
/// building something else at the same time and digests of megabytes run
/// unoptimised.
const STEP: Duration = Duration::from_secs(60);

/// The size of the big messages: many fragments of 64 KiB, more than the
/// read buffer, and a multiple of neither.
const BIG: usize = 8 * 1024 * 1024 + 12_345;

/// Where the peer pauses the streamed text message until our "GO".
const PAUSE_AT: usize = BIG / 2;

/// The fragment size of the message written through `AsyncWrite`.
const COPY_FRAGMENT: usize = 100_000;

/// Sizes of the chunks we hand the writer, in turn: 1, 2 and 3 split
/// characters; 200000 is split by the writer.
const CHUNK_SIZES: &[usize] = &[1, 3, 65_536, 10_007, 2, 200_000, 5, 40_000];

/// Characters of 1, 2, 3 and 4 bytes in UTF-8.
const ALPHABET: &[char] = &[
    'a', 'z', ' ', '\n', 'é', 'ü', 'ж', 'Ω', '€', '✓', '中', '🦀', '😀', '𝄞',
];

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {STEP:?}: {what}"))
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

fn sha1_hex(data: &[u8]) -> String {
    hex(&Sha1::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A generator of pseudo-random numbers (xorshift64*), so that every
/// message differs and compresses poorly enough to take many fragments.
struct Numbers(u64);

impl Numbers {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Text of `size` bytes or up to 3 more, of characters of every UTF-8 length.
fn text_payload(size: usize, seed: u64) -> String {
    let mut numbers = Numbers::new(seed);
    let mut text = String::with_capacity(size + 4);
    while text.len() < size {
        let index = usize::try_from(numbers.next() % ALPHABET.len() as u64).unwrap();
        text.push(ALPHABET[index]);
    }
    text
}

/// `size` bytes: half noise, half a pattern that compresses.
fn binary_payload(size: usize, seed: u64) -> Bytes {
    let mut numbers = Numbers::new(seed);
    let half = size / 2;
    let mut bytes: Vec<u8> = (0..half).map(|_| numbers.next().to_le_bytes()[0]).collect();
    bytes.extend((0..size - half).map(|i| u8::try_from(i % 251).unwrap()));
    Bytes::from(bytes)
}

/// `payload` cut into chunks of [`CHUNK_SIZES`] in turn, at any byte.
fn chunks_of(payload: &Bytes) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut offset = 0;
    for size in CHUNK_SIZES.iter().cycle() {
        if offset == payload.len() {
            break;
        }
        let end = (offset + size).min(payload.len());
        chunks.push(payload.slice(offset..end));
        offset = end;
    }
    chunks
}

/// Which implementation is on the other end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    Python,
    Node,
}

/// permessage-deflate on both sides, as each side is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    not(feature = "deflate"),
    allow(dead_code, reason = "only the deflate tests use the other settings")
)]
enum Deflate {
    Off,
    /// Both sides' defaults: context kept between messages both ways.
    ContextTakeover,
    /// `server_no_context_takeover` and `client_no_context_takeover`.
    NoContextTakeover,
}

impl Deflate {
    /// The peer's command-line flags for this setting.
    fn peer_args(self, peer: Peer) -> Vec<&'static str> {
        match (peer, self) {
            (Peer::Python, Deflate::Off) => vec!["--deflate", "off"],
            (Peer::Python, Deflate::ContextTakeover) => vec!["--deflate", "default"],
            (Peer::Python, Deflate::NoContextTakeover) => {
                vec!["--deflate", "no-context-takeover"]
            }
            (Peer::Node, Deflate::Off) => vec![],
            (Peer::Node, Deflate::ContextTakeover) => vec!["--deflate"],
            (Peer::Node, Deflate::NoContextTakeover) => vec![
                "--deflate",
                "--server-no-context-takeover",
                "--client-no-context-takeover",
            ],
        }
    }

    #[cfg(feature = "deflate")]
    fn config(self) -> Option<wsstream::DeflateConfig> {
        let config = wsstream::DeflateConfig::default();
        match self {
            Deflate::Off => None,
            Deflate::ContextTakeover => Some(config),
            Deflate::NoContextTakeover => Some(
                config
                    .client_no_context_takeover(true)
                    .server_no_context_takeover(true),
            ),
        }
    }

    fn client_options(self) -> Options {
        let options = Options::default();
        #[cfg(feature = "deflate")]
        if let Some(config) = self.config() {
            return options.deflate(config);
        }
        #[cfg(not(feature = "deflate"))]
        assert_eq!(
            self,
            Deflate::Off,
            "permessage-deflate needs the deflate feature"
        );
        options
    }

    fn server_options(self) -> ServerOptions {
        let options = ServerOptions::default();
        #[cfg(feature = "deflate")]
        if let Some(config) = self.config() {
            return options.deflate(config);
        }
        #[cfg(not(feature = "deflate"))]
        assert_eq!(
            self,
            Deflate::Off,
            "permessage-deflate needs the deflate feature"
        );
        options
    }

    /// Checks the negotiated `Sec-WebSocket-Extensions`.
    fn check_extensions(self, extensions: &str) {
        match self {
            Deflate::Off => assert_eq!(extensions, "", "no extension was configured"),
            Deflate::ContextTakeover => {
                assert!(
                    extensions.starts_with("permessage-deflate")
                        && !extensions.contains("no_context_takeover"),
                    "permessage-deflate with context takeover not negotiated: {extensions:?}"
                );
            }
            Deflate::NoContextTakeover => {
                for param in [
                    "permessage-deflate",
                    "server_no_context_takeover",
                    "client_no_context_takeover",
                ] {
                    assert!(
                        extensions.contains(param),
                        "{param} missing from {extensions:?}"
                    );
                }
            }
        }
    }
}

/// What a peer reported about a message: `GOT` (received) or `SENT`.
#[derive(Debug)]
struct Report {
    kind: String,
    len: usize,
    sha1: String,
    /// How many frames (Python's `GOT` and `SENT`, Node's `SENT`).
    fragments: Option<usize>,
    /// The largest frame's payload, inflated (Python's `GOT` only).
    largest: Option<usize>,
}

/// The next message, which must be a text report starting with `word`.
async fn next_report(rd: &mut Readable, word: &str, what: &str) -> Report {
    let text = next_text(rd, &format!("the peer's {word} for {what}")).await;
    let fields: Vec<&str> = text.split(' ').collect();
    let number = |i: usize| -> Option<usize> { fields.get(i).and_then(|f| f.parse().ok()) };
    match (fields.first(), fields.get(1), number(2), fields.get(3)) {
        (Some(first), Some(kind), Some(len), Some(sha1)) if *first == word => Report {
            kind: (*kind).to_owned(),
            len,
            sha1: (*sha1).to_owned(),
            fragments: number(4),
            largest: number(5),
        },
        _ => panic!("expected {word} <kind> <len> <sha1> for {what}, got {text:?}"),
    }
}

/// The next message, which must be text (a report, not data: short).
async fn next_text(rd: &mut Readable, what: &str) -> String {
    match within(what, rd.next()).await {
        Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
        Some(Ok(Message::Binary(data))) => {
            panic!("{what}: a binary message of {} bytes", data.len())
        }
        Some(Err(err)) => panic!("{what}: reading failed: {}", chain(&err)),
        None => panic!("{what}: the readable ended"),
    }
}

async fn send(wr: &mut Writable, message: Message, what: &str) {
    within(what, wr.send(message))
        .await
        .unwrap_or_else(|err| panic!("{what}: sending failed: {}", chain(&err)));
}

async fn command(wr: &mut Writable, command: &str) {
    send(wr, Message::text(format!("CMD {command}")), command).await;
}

/// Checks a peer's report against what we sent or received.
fn check_report(report: &Report, kind: MessageKind, payload_len: usize, sha1: &str, what: &str) {
    let kind = match kind {
        MessageKind::Text => "text",
        MessageKind::Binary => "binary",
    };
    assert_eq!(report.kind, kind, "{what}: the kind differs ({report:?})");
    assert_eq!(
        report.len, payload_len,
        "{what}: the length differs ({report:?})"
    );
    assert_eq!(
        report.sha1, sha1,
        "{what}: the content differs (SHA-1; {report:?})"
    );
}

/// After a streamed message we wrote with fragments of at most `fragment`
/// bytes: Python tells how many frames came and the largest (inflated), which
/// must agree with `fragment` when nothing is compressed. Python decodes text
/// frame by frame, so a text frame's size there may include up to 3 bytes of
/// a character begun in the frame before.
fn check_fragments(report: &Report, fragment: usize, compressed: bool, what: &str) {
    let (Some(fragments), Some(largest)) = (report.fragments, report.largest) else {
        return; // Node's ws does not tell.
    };
    assert!(
        fragments >= 2,
        "{what}: a streamed message of {} bytes came in one frame",
        report.len
    );
    if !compressed {
        let carried = if report.kind == "text" { 3 } else { 0 };
        assert!(
            largest <= fragment + carried,
            "{what}: a fragment of {largest} bytes, larger than {fragment}"
        );
        assert!(
            fragments >= report.len.div_ceil(fragment),
            "{what}: {fragments} fragments cannot hold {} bytes at {fragment} each",
            report.len
        );
    }
}

/// One connection, opened: the handle, its halves, who is on the other end.
struct Connection {
    ws: WebSocketStream,
    rd: Readable,
    wr: Writable,
    peer: Peer,
    compressed: bool,
}

/// Reads a streamed text message that the peer pauses at [`PAUSE_AT`] until
/// we send "GO": chunks must come before the message is complete, each valid
/// UTF-8 and never empty.
async fn streamed_text_in(conn: &mut Connection) {
    let what = "the streamed text message from the peer";
    command(&mut conn.wr, &format!("SEND text {BIG} 1 {PAUSE_AT}")).await;
    let (received, sha1, chunks, go_sent) = {
        let mut reader = match within(what, conn.rd.next_streamed()).await {
            Some(Ok(reader)) => reader,
            Some(Err(err)) => panic!("{what}: next_streamed failed: {}", chain(&err)),
            None => panic!("{what}: the readable ended"),
        };
        assert_eq!(reader.kind(), MessageKind::Text, "{what}: kind");
        assert!(reader.is_text(), "{what}: is_text");
        let (mut hasher, mut total, mut chunks, mut go_sent) = (Sha1::new(), 0usize, 0usize, false);
        loop {
            let chunk = match within(what, reader.next()).await {
                Some(Ok(chunk)) => chunk,
                Some(Err(err)) => panic!(
                    "{what}: failed after {total} bytes in {chunks} chunks: {}",
                    chain(&err)
                ),
                None => break,
            };
            assert!(
                !chunk.is_empty(),
                "{what}: an empty chunk after {total} bytes"
            );
            if let Err(err) = std::str::from_utf8(&chunk) {
                panic!(
                    "{what}: chunk {chunks} ({} bytes at offset {total}) is not UTF-8 on its own: {err}",
                    chunk.len()
                );
            }
            hasher.update(&chunk);
            total += chunk.len();
            chunks += 1;
            assert_eq!(
                reader.received(),
                total as u64,
                "{what}: received() after chunk {chunks}"
            );
            // The peer stops at a fragment boundary at or after PAUSE_AT,
            // which may fall inside a character held back: go at 3 less.
            if !go_sent && total + 3 >= PAUSE_AT {
                send(&mut conn.wr, Message::text("GO"), "GO, half-way through").await;
                go_sent = true;
            }
        }
        (total, hex(&hasher.finalize()), chunks, go_sent)
    };
    assert!(
        go_sent,
        "{what}: ended after {received} bytes without reaching the pause at {PAUSE_AT}"
    );
    assert!(
        chunks >= 2,
        "{what}: {received} bytes came in {chunks} chunk"
    );
    let report = next_report(&mut conn.rd, "SENT", what).await;
    check_report(&report, MessageKind::Text, received, &sha1, what);
}

/// Reads a streamed binary message through `AsyncRead`.
async fn streamed_binary_in(conn: &mut Connection) {
    let what = "the streamed binary message from the peer, through AsyncRead";
    command(&mut conn.wr, &format!("SEND binary {BIG} 2 0")).await;
    let payload = {
        let mut reader = match within(what, conn.rd.next_streamed()).await {
            Some(Ok(reader)) => reader,
            Some(Err(err)) => panic!("{what}: next_streamed failed: {}", chain(&err)),
            None => panic!("{what}: the readable ended"),
        };
        assert_eq!(reader.kind(), MessageKind::Binary, "{what}: kind");
        assert!(!reader.is_text(), "{what}: is_text");
        let mut payload = Vec::new();
        within(what, reader.read_to_end(&mut payload))
            .await
            .unwrap_or_else(|err| panic!("{what}: read_to_end failed: {err} ({err:?})"));
        assert_eq!(
            reader.received(),
            payload.len() as u64,
            "{what}: received()"
        );
        payload
    };
    let report = next_report(&mut conn.rd, "SENT", what).await;
    check_report(
        &report,
        MessageKind::Binary,
        payload.len(),
        &sha1_hex(&payload),
        what,
    );
}

/// Whole messages from the peer: text through `next`, binary through
/// `next_streamed` (one frame read as a stream).
async fn whole_in(conn: &mut Connection) {
    let what = "a whole text message from the peer after the streamed ones";
    command(&mut conn.wr, "WHOLE text 100000 3").await;
    let text = next_text(&mut conn.rd, what).await;
    let report = next_report(&mut conn.rd, "SENT", what).await;
    check_report(
        &report,
        MessageKind::Text,
        text.len(),
        &sha1_hex(text.as_bytes()),
        what,
    );
    assert_eq!(report.fragments, Some(1), "{what}: {report:?}");

    let what = "a whole binary message from the peer, read with next_streamed";
    command(&mut conn.wr, "WHOLE binary 300000 4").await;
    let (payload, chunks) = {
        let mut reader = match within(what, conn.rd.next_streamed()).await {
            Some(Ok(reader)) => reader,
            Some(Err(err)) => panic!("{what}: next_streamed failed: {}", chain(&err)),
            None => panic!("{what}: the readable ended"),
        };
        assert_eq!(reader.kind(), MessageKind::Binary, "{what}: kind");
        let (mut payload, mut chunks) = (Vec::new(), 0usize);
        while let Some(chunk) = within(what, reader.next()).await {
            let chunk = chunk.unwrap_or_else(|err| panic!("{what}: {}", chain(&err)));
            assert!(!chunk.is_empty(), "{what}: an empty chunk");
            payload.extend_from_slice(&chunk);
            chunks += 1;
        }
        (payload, chunks)
    };
    assert!(chunks >= 1, "{what}: no chunk");
    let report = next_report(&mut conn.rd, "SENT", what).await;
    check_report(
        &report,
        MessageKind::Binary,
        payload.len(),
        &sha1_hex(&payload),
        what,
    );
}

/// Writes a streamed text message chunk by chunk through the `Sink`, each
/// chunk flushed (`SinkExt::send`), chunks cutting characters. Python
/// reports when half of it has arrived, which it must before we finish.
async fn streamed_text_out_through_sink(conn: &mut Connection) {
    let what = "a streamed text message through the Sink";
    let payload = Bytes::from(text_payload(BIG, 11));
    let half = payload.len() / 2;
    let acknowledged = conn.peer == Peer::Python;
    if acknowledged {
        command(&mut conn.wr, &format!("ACK {half}")).await;
    }
    {
        let mut writer = conn.wr.start_streamed(MessageKind::Text);
        assert_eq!(writer.kind(), MessageKind::Text);
        let (mut sent, mut waiting) = (0usize, acknowledged);
        for chunk in chunks_of(&payload) {
            sent += chunk.len();
            within(what, writer.send(chunk))
                .await
                .unwrap_or_else(|err| panic!("{what}: failed at {sent} bytes: {}", chain(&err)));
            // Python counts decoded text: up to 3 bytes of a character may
            // wait there for the rest.
            if waiting && sent >= half + 3 {
                waiting = false;
                let ack = next_text(&mut conn.rd, "the peer's HALF while we stream").await;
                let got = ack
                    .strip_prefix("HALF ")
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or_else(|| panic!("{what}: expected HALF <n>, got {ack:?}"));
                assert!(
                    (half..=sent).contains(&got),
                    "{what}: the peer had {got} bytes when we had sent {sent} (half: {half})"
                );
            }
        }
        within(what, writer.finish())
            .await
            .unwrap_or_else(|err| panic!("{what}: finish failed: {}", chain(&err)));
    }
    let report = next_report(&mut conn.rd, "GOT", what).await;
    check_report(
        &report,
        MessageKind::Text,
        payload.len(),
        &sha1_hex(&payload),
        what,
    );
    check_fragments(&report, DEFAULT_FRAGMENT_SIZE, conn.compressed, what);
}

/// Writes a streamed binary message with `send_streamed`.
async fn streamed_binary_out_with_send_streamed(conn: &mut Connection) {
    let what = "a streamed binary message through send_streamed";
    let payload = binary_payload(BIG, 12);
    let chunks = futures::stream::iter(chunks_of(&payload));
    within(what, conn.wr.send_streamed(MessageKind::Binary, chunks))
        .await
        .unwrap_or_else(|err| panic!("{what}: {}", chain(&err)));
    let report = next_report(&mut conn.rd, "GOT", what).await;
    check_report(
        &report,
        MessageKind::Binary,
        payload.len(),
        &sha1_hex(&payload),
        what,
    );
    check_fragments(&report, DEFAULT_FRAGMENT_SIZE, conn.compressed, what);
}

/// Writes a streamed text message through `AsyncWrite` with
/// `tokio::io::copy` (8 KiB writes that cut characters) and a fragment size
/// of our choosing, then `shutdown`.
async fn streamed_text_out_through_async_write(conn: &mut Connection) {
    let what = "a streamed text message through AsyncWrite (tokio::io::copy)";
    let payload = text_payload(BIG, 13);
    {
        let mut writer = conn
            .wr
            .start_streamed(MessageKind::Text)
            .fragment_size(COPY_FRAGMENT);
        let mut source = payload.as_bytes();
        let copied = within(what, tokio::io::copy(&mut source, &mut writer))
            .await
            .unwrap_or_else(|err| panic!("{what}: copy failed: {err} ({err:?})"));
        assert_eq!(copied, payload.len() as u64, "{what}: bytes copied");
        within(what, writer.shutdown())
            .await
            .unwrap_or_else(|err| panic!("{what}: shutdown failed: {err} ({err:?})"));
    }
    let report = next_report(&mut conn.rd, "GOT", what).await;
    check_report(
        &report,
        MessageKind::Text,
        payload.len(),
        &sha1_hex(payload.as_bytes()),
        what,
    );
    check_fragments(&report, COPY_FRAGMENT, conn.compressed, what);
}

/// Writes a streamed text message of many small `Utf8Bytes` with
/// `send_all` (no flush between them): they are coalesced into fragments.
async fn streamed_text_out_of_utf8_bytes(conn: &mut Connection) {
    let what = "a streamed text message of Utf8Bytes through send_all";
    let pieces: Vec<Utf8Bytes> = (0..2_000)
        .map(|i| Utf8Bytes::from(format!("piece {i}: {} | ", text_payload(500, i))))
        .collect();
    let payload: String = pieces.iter().map(|piece| piece.as_str()).collect();
    {
        let mut writer = conn.wr.start_streamed(MessageKind::Text);
        let mut items = futures::stream::iter(pieces.iter().cloned().map(Ok::<_, wsstream::Error>));
        within(what, writer.send_all(&mut items))
            .await
            .unwrap_or_else(|err| panic!("{what}: {}", chain(&err)));
        within(what, writer.finish())
            .await
            .unwrap_or_else(|err| panic!("{what}: finish failed: {}", chain(&err)));
    }
    let report = next_report(&mut conn.rd, "GOT", what).await;
    check_report(
        &report,
        MessageKind::Text,
        payload.len(),
        &sha1_hex(payload.as_bytes()),
        what,
    );
    check_fragments(&report, DEFAULT_FRAGMENT_SIZE, conn.compressed, what);
    if let Some(fragments) = report.fragments {
        assert!(
            fragments < pieces.len(),
            "{what}: {} pieces left in {fragments} fragments: none coalesced",
            pieces.len()
        );
    }
}

/// Whole messages to the peer after the streamed ones.
async fn whole_out(conn: &mut Connection) {
    let text = format!(
        "a whole message after the streamed ones ✓ {}",
        text_payload(70_000, 21)
    );
    let binary = binary_payload(200_000, 22);
    for (message, kind) in [
        (Message::text(text), MessageKind::Text),
        (Message::binary(binary), MessageKind::Binary),
    ] {
        let what = format!("a whole {kind:?} message to the peer after the streamed ones");
        let (len, sha1) = (message.len(), sha1_hex(message.as_payload()));
        send(&mut conn.wr, message, &what).await;
        let report = next_report(&mut conn.rd, "GOT", &what).await;
        check_report(&report, kind, len, &sha1, &what);
        if let Some(fragments) = report.fragments {
            assert_eq!(fragments, 1, "{what}: {report:?}");
        }
    }
}

/// Closes with 1000 "done": the readable ends cleanly and `closed` resolves
/// to the peer's echo of it.
async fn close_cleanly(conn: &mut Connection) {
    conn.ws.close(1000, "done").expect("close(1000, \"done\")");
    match within("the readable to end after close", conn.rd.next()).await {
        None => {}
        Some(Ok(message)) => panic!("unexpected message after close: {message:?}"),
        Some(Err(err)) => panic!("the readable failed instead of ending: {}", chain(&err)),
    }
    let info = within("closed", conn.ws.closed())
        .await
        .unwrap_or_else(|err| panic!("closed failed: {}", chain(&err)));
    assert_eq!(
        info,
        CloseInfo {
            code: 1000,
            reason: "done".into()
        },
        "the close handshake with the {:?} peer",
        conn.peer
    );
}

/// Everything one connection goes through; see the module's documentation.
async fn scenario(conn: &mut Connection) {
    streamed_text_in(conn).await;
    streamed_binary_in(conn).await;
    whole_in(conn).await;
    streamed_text_out_through_sink(conn).await;
    streamed_binary_out_with_send_streamed(conn).await;
    streamed_text_out_through_async_write(conn).await;
    streamed_text_out_of_utf8_bytes(conn).await;
    whole_out(conn).await;
    close_cleanly(conn).await;
}

/// Our client against the peer's server.
async fn against_server(peer: Peer, deflate: Deflate) {
    let args = deflate.peer_args(peer);
    // Each holds its peer process; dropping it stops the process (and prints
    // its output when the test failed).
    let (mut python_server, mut node_server) = (None, None);
    let url = match peer {
        Peer::Python => {
            let server = PythonServer::start(
                "streamed_peer.py",
                ["serve", "127.0.0.1", "0"].iter().chain(&args),
            );
            let url = format!("ws://127.0.0.1:{}/", server.port());
            python_server = Some(server);
            url
        }
        Peer::Node => {
            let server = NodeServer::start_script("streamed_peer.js", &args);
            let url = server.url();
            node_server = Some(server);
            url
        }
    };
    let ws = WebSocketStream::connect(&url, deflate.client_options());
    let opened = within("the opening handshake", ws.opened())
        .await
        .unwrap_or_else(|err| panic!("opening {url} failed: {}", chain(&err)));
    deflate.check_extensions(&opened.extensions);
    let mut conn = Connection {
        compressed: !opened.extensions.is_empty(),
        ws,
        rd: opened.readable,
        wr: opened.writable,
        peer,
    };
    scenario(&mut conn).await;
    if let Some(server) = &node_server {
        let closed = server.next_closed(STEP);
        assert_eq!(closed, "1000 done", "how the ws server saw the close");
    }
    drop(python_server);
}

/// A peer client process, killed if the test ends before it does; its
/// stderr goes to a file printed when the test fails.
struct PeerClient {
    child: tokio::process::Child,
    stderr: PathBuf,
}

impl PeerClient {
    fn spawn(peer: Peer, url: &str, deflate: Deflate) -> Self {
        let args = deflate.peer_args(peer);
        let mut command = match peer {
            Peer::Python => {
                let mut command = tokio::process::Command::new(python::interpreter());
                command
                    .arg("-u")
                    .arg(python::scripts_dir().join("streamed_peer.py"))
                    .args(["connect", url])
                    .args(&args);
                command
            }
            Peer::Node => {
                let dir = node::peers_dir();
                let mut command = tokio::process::Command::new(node::node());
                command
                    .arg(dir.join("streamed_peer.js"))
                    .args(["--connect", url])
                    .args(&args)
                    .current_dir(dir);
                command
            }
        };
        let stderr = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "streamed-peer-{}-{}.stderr",
            std::process::id(),
            url.rsplit(':').next().unwrap_or("0").trim_end_matches('/')
        ));
        let file = std::fs::File::create(&stderr)
            .unwrap_or_else(|err| panic!("creating {}: {err}", stderr.display()));
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("could not start {command:?}: {err}"));
        Self { child, stderr }
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stderr).unwrap_or_default()).into_owned()
    }

    /// Waits for the client to exit; checks it exited 0 after seeing our
    /// close with 1000 "done".
    async fn finish(&mut self, peer: Peer) {
        let mut stdout = String::new();
        if let Some(mut pipe) = self.child.stdout.take() {
            within("the peer client's output", pipe.read_to_string(&mut stdout))
                .await
                .expect("reading the peer client's stdout");
        }
        let status = within("the peer client to exit", self.child.wait())
            .await
            .expect("waiting for the peer client");
        assert!(
            status.success() && stdout.lines().any(|line| line == "CLOSED 1000 done"),
            "the {peer:?} client ended with {status}; stdout:\n{stdout}stderr:\n{}",
            self.stderr_text()
        );
    }
}

impl Drop for PeerClient {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- peer client stderr ---\n{}--- end ---",
                self.stderr_text()
            );
        }
        let _ = std::fs::remove_file(&self.stderr);
    }
}

/// Our server with the peer as client.
async fn against_client(peer: Peer, deflate: Deflate) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let mut client = PeerClient::spawn(peer, &url, deflate);
    let (tcp, _) = within("the peer client to connect", listener.accept())
        .await
        .expect("accept");
    let ws = within(
        "the opening handshake",
        WebSocketStream::accept(tcp, deflate.server_options()),
    )
    .await
    .unwrap_or_else(|err| panic!("accepting the {peer:?} client failed: {}", chain(&err)));
    let opened = within("opened", ws.opened())
        .await
        .unwrap_or_else(|err| panic!("opened failed: {}", chain(&err)));
    deflate.check_extensions(&opened.extensions);
    let mut conn = Connection {
        compressed: !opened.extensions.is_empty(),
        ws,
        rd: opened.readable,
        wr: opened.writable,
        peer,
    };
    scenario(&mut conn).await;
    client.finish(peer).await;
}

#[tokio::test]
async fn python_server_plain() {
    against_server(Peer::Python, Deflate::Off).await;
}

#[tokio::test]
async fn python_client_plain() {
    against_client(Peer::Python, Deflate::Off).await;
}

#[tokio::test]
async fn node_server_plain() {
    against_server(Peer::Node, Deflate::Off).await;
}

#[tokio::test]
async fn node_client_plain() {
    against_client(Peer::Node, Deflate::Off).await;
}

/// With permessage-deflate: every fragment inflated as it comes, and with
/// context takeover each message depending on the ones before it.
#[cfg(feature = "deflate")]
mod deflate {
    use super::*;

    #[tokio::test]
    async fn python_server_deflate_context_takeover() {
        against_server(Peer::Python, Deflate::ContextTakeover).await;
    }

    #[tokio::test]
    async fn python_server_deflate_no_context_takeover() {
        against_server(Peer::Python, Deflate::NoContextTakeover).await;
    }

    #[tokio::test]
    async fn python_client_deflate_context_takeover() {
        against_client(Peer::Python, Deflate::ContextTakeover).await;
    }

    #[tokio::test]
    async fn python_client_deflate_no_context_takeover() {
        against_client(Peer::Python, Deflate::NoContextTakeover).await;
    }

    #[tokio::test]
    async fn node_server_deflate_context_takeover() {
        against_server(Peer::Node, Deflate::ContextTakeover).await;
    }

    #[tokio::test]
    async fn node_server_deflate_no_context_takeover() {
        against_server(Peer::Node, Deflate::NoContextTakeover).await;
    }

    #[tokio::test]
    async fn node_client_deflate_context_takeover() {
        against_client(Peer::Node, Deflate::ContextTakeover).await;
    }

    #[tokio::test]
    async fn node_client_deflate_no_context_takeover() {
        against_client(Peer::Node, Deflate::NoContextTakeover).await;
    }
}
