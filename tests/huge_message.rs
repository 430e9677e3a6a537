//! One message of 4 GiB in each direction between a wsstream client and a
//! wsstream server on 127.0.0.1, streamed (`Writable::start_streamed`,
//! `Readable::next_streamed`), and one of 512 MiB each way compressed. The
//! sender hashes what it sends, the receiver what it receives, and the two
//! digests must match; the process's peak RSS must stay within 16 MiB of
//! what it was at the start, so nothing holds the message. After the big
//! message the two sides exchange a normal message each way and close
//! cleanly. And a raw peer that sends invalid text in its 900th MiB: the
//! reader gets every valid byte before it, then the error with 1007.
//!
//! Too slow unoptimised, so ignored; run them with
//! `cargo test --release --all-features --test huge_message -- --ignored --nocapture`
//! (CI optimises only wsstream instead, see `.ci/run`). Each runs alone in
//! a fresh process, so that its memory figures are its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/measure.rs"]
mod measure;
#[path = "support/raw.rs"]
mod raw;

use std::fmt;
use std::io::Read as _;
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use measure::{peak_rss_bytes, rss_bytes, wait_bounded, CountingIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use wsstream::{Message, MessageKind, Options, Readable, ServerOptions, WebSocketStream, Writable};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// How far the peak RSS may rise above the RSS at the start of the test.
const RSS_HEADROOM: u64 = 16 * MIB;
/// How long one test may take in its own process (a release build moves
/// about 300 MiB/s on two loaded cores).
const TIME_LIMIT: Duration = Duration::from_secs(150);

#[test]
#[ignore = "4 GiB: run optimised (--release), see .ci/run"]
fn four_gib_from_client_to_server() {
    measured(
        "four_gib_from_client_to_server",
        false,
        &[Leg {
            from_client: true,
            size: 4 * GIB,
            kind: MessageKind::Binary,
            write: WriteBy::Copy,
            read: ReadBy::Stream,
        }],
    );
}

#[test]
#[ignore = "4 GiB: run optimised (--release), see .ci/run"]
fn four_gib_from_server_to_client() {
    measured(
        "four_gib_from_server_to_client",
        false,
        &[Leg {
            from_client: false,
            size: 4 * GIB,
            kind: MessageKind::Binary,
            write: WriteBy::Sink,
            read: ReadBy::AsyncRead,
        }],
    );
}

#[cfg(feature = "deflate")]
#[test]
#[ignore = "1 GiB through deflate: run optimised (--release), see .ci/run"]
fn half_a_gib_of_text_each_way_with_permessage_deflate() {
    measured(
        "half_a_gib_of_text_each_way_with_permessage_deflate",
        true,
        &[
            Leg {
                from_client: true,
                size: GIB / 2,
                kind: MessageKind::Text,
                write: WriteBy::Sink,
                read: ReadBy::AsyncRead,
            },
            Leg {
                from_client: false,
                size: GIB / 2,
                kind: MessageKind::Text,
                write: WriteBy::Copy,
                read: ReadBy::Stream,
            },
        ],
    );
}

/// A peer starts a text message and sends an invalid byte in its 900th MiB:
/// the reader gets every valid byte before it (checked by length and hash),
/// every chunk valid on its own, then the error; the peer gets 1007.
#[test]
#[ignore = "900 MiB: run optimised (--release), see .ci/run"]
fn invalid_text_in_the_900th_mib_fails_there_after_every_valid_byte() {
    const NAME: &str = "invalid_text_in_the_900th_mib_fails_there_after_every_valid_byte";
    if !alone_ignored(NAME, TIME_LIMIT) {
        return;
    }
    let rss_start = rss_bytes() as u64;
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (valid, got, peer_saw) = runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let peer = tokio::spawn(async move {
            use wsstream::proto::OpCode;
            let mut peer = raw::accept_raw(&listener).await;
            let mut generator = Generator::new(900, MessageKind::Text);
            let mut hash = RunningHash::default();
            let target = 899 * MIB + 12_345;
            let mut sent = 0u64;
            for i in 0u64.. {
                let mut frame = vec![0; MIB as usize];
                generator.fill(&mut frame);
                let end = sent + MIB;
                let valid = if (sent..end).contains(&target) {
                    // The first ASCII byte from the target on: a character
                    // boundary, so the valid text ends exactly there.
                    let at = (target - sent) as usize
                        + frame[(target - sent) as usize..]
                            .iter()
                            .position(|b| b.is_ascii())
                            .unwrap();
                    frame[at] = 0xff;
                    Some(at)
                } else {
                    None
                };
                hash.update(&frame[..valid.unwrap_or(frame.len())]);
                let opcode = if i == 0 {
                    OpCode::Text
                } else {
                    OpCode::Continuation
                };
                peer.send(&raw::frame(opcode, false, &frame, None)).await;
                sent = end;
                if valid.is_some() {
                    break;
                }
            }
            let valid = hash.digest();
            (valid, peer.read_until_close().await)
        });
        let ws = WebSocketStream::connect(&url, Options::default());
        let mut readable = ws.opened().await.unwrap().readable;
        let mut reader = readable.next_streamed().await.unwrap().unwrap();
        assert!(reader.is_text());
        let mut hash = RunningHash::default();
        let err = loop {
            match reader.next().await {
                Some(Ok(chunk)) => {
                    assert!(std::str::from_utf8(&chunk).is_ok(), "a chunk is not text");
                    hash.update(&chunk);
                }
                Some(Err(err)) => break err,
                None => panic!("the message ended without its error"),
            }
        };
        assert!(
            matches!(
                err,
                wsstream::Error::Protocol(wsstream::proto::ProtocolError::InvalidUtf8)
            ),
            "{err:?}"
        );
        let got = hash.digest();
        drop(reader);
        let (valid, peer_saw) = peer.await.unwrap();
        (valid, got, peer_saw)
    });
    let growth = (peak_rss_bytes() as u64).saturating_sub(rss_start);
    println!(
        "{NAME}: {} valid bytes then the error, in {:.1?}; peak RSS {} KiB above the start",
        got.len,
        started.elapsed(),
        growth >> 10
    );
    assert!(got.len > 899 * MIB);
    assert_eq!(
        got, valid,
        "the reader's bytes (left) differ from the valid ones"
    );
    assert_eq!(peer_saw, Some(1007));
    assert!(growth <= RSS_HEADROOM, "peak RSS rose {} KiB", growth >> 10);
}

/// One big message: who sends it, how it is written and how it is read.
#[derive(Debug, Clone, Copy)]
struct Leg {
    from_client: bool,
    size: u64,
    kind: MessageKind,
    write: WriteBy,
    read: ReadBy,
}

#[derive(Debug, Clone, Copy)]
enum WriteBy {
    /// `tokio::io::copy` from a generating `AsyncRead` into the `MessageWriter`.
    Copy,
    /// Chunks of 1 byte to 256 KiB fed to the `MessageWriter` as a `Sink`,
    /// so that it both coalesces and splits them.
    Sink,
}

#[derive(Debug, Clone, Copy)]
enum ReadBy {
    /// The `MessageReader` as a `Stream` of chunks.
    Stream,
    /// `tokio::io::copy` from the `MessageReader` as an `AsyncRead`.
    AsyncRead,
}

/// Runs `legs` in a fresh process and checks its peak RSS there.
fn measured(name: &str, deflate: bool, legs: &[Leg]) {
    if !alone_ignored(name, TIME_LIMIT) {
        return;
    }
    let rss_start = rss_bytes() as u64;
    let started = Instant::now();
    let (wire_c2s, wire_s2c) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(connection(deflate, legs.to_vec()));
    let elapsed = started.elapsed();
    let growth = (peak_rss_bytes() as u64).saturating_sub(rss_start);
    let payload: u64 = legs.iter().map(|leg| leg.size).sum();
    println!(
        "{name}: {} MiB in {elapsed:.1?} ({:.0} MiB/s); on the wire {} MiB client to server, \
         {} MiB server to client; RSS at start {} KiB, peak {} KiB above it",
        payload / MIB,
        payload as f64 / MIB as f64 / elapsed.as_secs_f64(),
        wire_c2s / MIB,
        wire_s2c / MIB,
        rss_start >> 10,
        growth >> 10,
    );
    assert!(
        growth <= RSS_HEADROOM,
        "peak RSS rose {} KiB above the start",
        growth >> 10
    );
}

/// A client and a server on 127.0.0.1 send `legs` in turn, then the client
/// closes with 1000. Returns the bytes each side read from its socket
/// (client to server, server to client).
async fn connection(deflate: bool, legs: Vec<Leg>) -> (u64, u64) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("ws://{addr}/huge");
    let (client_options, server_options) = (Options::default(), ServerOptions::default());
    #[cfg(feature = "deflate")]
    let (client_options, server_options) = if deflate {
        let config = wsstream::DeflateConfig::default();
        (
            client_options.deflate(config),
            server_options.deflate(config),
        )
    } else {
        (client_options, server_options)
    };

    let server_legs = legs.clone();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let (io, read) = CountingIo::new(tcp);
        let ws = WebSocketStream::accept(io, server_options).await.unwrap();
        let opened = ws.opened().await.unwrap();
        assert_eq!(opened.extensions.is_empty(), !deflate);
        let (mut readable, mut writable) = (opened.readable, opened.writable);
        for leg in server_legs {
            if leg.from_client {
                receive_big(&mut readable, &mut writable, leg).await;
            } else {
                send_big(&mut readable, &mut writable, leg).await;
            }
        }
        // The client closes.
        assert!(readable.next().await.is_none(), "a message after the last");
        assert_eq!(ws.closed().await.unwrap().code, 1000);
        read.load(Ordering::SeqCst) as u64
    });

    let (io, read) = CountingIo::new(TcpStream::connect(addr).await.unwrap());
    let ws = WebSocketStream::connect_over(io, &url, client_options);
    let opened = ws.opened().await.unwrap();
    assert_eq!(opened.extensions.is_empty(), !deflate);
    let (mut readable, mut writable) = (opened.readable, opened.writable);
    for leg in legs {
        if leg.from_client {
            send_big(&mut readable, &mut writable, leg).await;
        } else {
            receive_big(&mut readable, &mut writable, leg).await;
        }
    }
    ws.close(1000, "done").unwrap();
    assert!(readable.next().await.is_none(), "a message after the last");
    assert_eq!(ws.closed().await.unwrap().code, 1000);
    let server_read = server.await.unwrap();
    (server_read, read.load(Ordering::SeqCst) as u64)
}

/// Sends one big message and waits for the receiver's digest of it, then
/// answers with a normal message. The readable is polled while the message
/// goes out, as an application should: it answers the receiver's keepalive
/// pings during a transfer longer than their timeout.
async fn send_big(readable: &mut Readable, writable: &mut Writable, leg: Leg) -> Digest {
    let seed = if leg.from_client {
        0x0123_4567
    } else {
        0x89ab_cdef
    };
    let write = async {
        let mut writer = writable.start_streamed(leg.kind);
        assert_eq!(writer.kind(), leg.kind);
        let sent = match leg.write {
            WriteBy::Copy => {
                let mut source = Source {
                    generator: Generator::new(seed, leg.kind),
                    left: leg.size,
                    hash: RunningHash::default(),
                };
                let copied = tokio::io::copy(&mut source, &mut writer).await.unwrap();
                assert_eq!(copied, leg.size);
                source.hash.digest()
            }
            WriteBy::Sink => {
                let (mut generator, mut sizes) = (Generator::new(seed, leg.kind), Xorshift(!seed));
                let (mut left, mut hash) = (leg.size, RunningHash::default());
                while left > 0 {
                    let len = (1 + sizes.next() % (256 << 10)).min(left);
                    let mut chunk = vec![0; len as usize];
                    generator.fill(&mut chunk);
                    hash.update(&chunk);
                    writer.feed(Bytes::from(chunk)).await.unwrap();
                    left -= len;
                }
                hash.digest()
            }
        };
        writer.finish().await.unwrap();
        sent
    };
    let (sent, reply) = tokio::join!(write, readable.next());
    let reply = reply.expect("the connection ended before the receiver's digest");
    assert_eq!(
        reply.unwrap(),
        Message::text(sent.to_string()),
        "the receiver's digest (left) differs from the sender's"
    );
    writable.send(Message::text("digests match")).await.unwrap();
    sent
}

/// Receives one big message, hashing it as it comes, and answers with its
/// digest; then reads the sender's normal message.
async fn receive_big(readable: &mut Readable, writable: &mut Writable, leg: Leg) -> Digest {
    let mut reader = readable
        .next_streamed()
        .await
        .expect("the connection ended before the big message")
        .unwrap();
    assert_eq!(reader.kind(), leg.kind);
    assert_eq!(reader.is_text(), leg.kind == MessageKind::Text);
    let received = match leg.read {
        ReadBy::Stream => {
            let mut hash = RunningHash::default();
            while let Some(chunk) = reader.next().await {
                let chunk = chunk.unwrap();
                assert!(!chunk.is_empty(), "an empty chunk");
                if leg.kind == MessageKind::Text {
                    assert!(
                        std::str::from_utf8(&chunk).is_ok(),
                        "a chunk of text that is not UTF-8 on its own"
                    );
                }
                hash.update(&chunk);
            }
            hash.digest()
        }
        ReadBy::AsyncRead => {
            let mut sink = HashWriter(RunningHash::default());
            tokio::io::copy(&mut reader, &mut sink).await.unwrap();
            sink.0.digest()
        }
    };
    assert_eq!(reader.received(), received.len);
    drop(reader);
    writable
        .send(Message::text(received.to_string()))
        .await
        .unwrap();
    let answer = readable.next().await.expect("no answer to the digest");
    assert_eq!(answer.unwrap(), Message::text("digests match"));
    received
}

/// `measure::alone` for an ignored test (the fresh process needs
/// `--ignored` to run it): `true` in the fresh process, `false` in the
/// original one once the fresh one has passed.
fn alone_ignored(name: &str, limit: Duration) -> bool {
    const ALONE: &str = "WSSTREAM_HUGE_MESSAGE_ALONE";
    if std::env::var(ALONE).is_ok_and(|v| v == name) {
        return true;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ALONE, name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let status = wait_bounded(&mut child, limit);
    let stdout = stdout.join().unwrap();
    print!("{stdout}");
    let status = status.unwrap_or_else(|| panic!("{name} took longer than {limit:?}"));
    assert!(status.success(), "{name} failed in its own process");
    assert!(stdout.contains("1 passed"), "{name} did not run");
    false
}

/// xorshift64: fast, and its 2^64 - 1 words never repeat within a test.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The bytes of a message, 8 from each xorshift word: the word itself for
/// binary; for text, lower-case letters and spaces (4 bits of entropy a
/// byte, so deflate has something to do) with a 3-byte `€` in one word of
/// 16 and a 2-byte `é` in another, so that chunk boundaries fall inside
/// characters.
struct Generator {
    rng: Xorshift,
    text: bool,
    /// The last word made, of which the last `carried` bytes are still to
    /// be handed out: the bytes do not depend on how they are asked for.
    word: [u8; 8],
    carried: usize,
}

impl Generator {
    fn new(seed: u64, kind: MessageKind) -> Self {
        Self {
            rng: Xorshift(seed),
            text: kind == MessageKind::Text,
            word: [0; 8],
            carried: 0,
        }
    }

    fn word(&mut self) -> [u8; 8] {
        let x = self.rng.next();
        if !self.text {
            return x.to_le_bytes();
        }
        const LETTERS: &[u8; 16] = b"etaoin shrdlucmw";
        let mut word = [0; 8];
        for (i, byte) in word.iter_mut().enumerate() {
            *byte = LETTERS[(x >> (4 * i)) as usize & 15];
        }
        if x >> 60 == 0 {
            word[..3].copy_from_slice("€".as_bytes());
        }
        if (x >> 56) & 15 == 1 {
            word[6..].copy_from_slice("é".as_bytes());
        }
        word
    }

    fn fill(&mut self, out: &mut [u8]) {
        let from_carry = self.carried.min(out.len());
        out[..from_carry].copy_from_slice(&self.word[8 - self.carried..][..from_carry]);
        self.carried -= from_carry;
        let mut words = out[from_carry..].chunks_exact_mut(8);
        for slot in &mut words {
            slot.copy_from_slice(&self.word());
        }
        let rest = words.into_remainder();
        if !rest.is_empty() {
            self.word = self.word();
            rest.copy_from_slice(&self.word[..rest.len()]);
            self.carried = 8 - rest.len();
        }
    }
}

/// A running hash over little-endian u64 words: each word is mixed in by
/// a xor, a multiply by an odd constant and a rotation, each a bijection,
/// so two streams that differ in a single word always differ in digest.
/// 4.5 GB/s on this machine where the `sha1` crate makes 1.5.
#[derive(Default)]
struct RunningHash {
    state: u64,
    len: u64,
    tail: [u8; 8],
    tail_len: usize,
}

impl RunningHash {
    fn mix(&mut self, word: u64) {
        self.state = (self.state ^ word)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(31);
    }

    fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.tail_len > 0 {
            let take = (8 - self.tail_len).min(bytes.len());
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&bytes[..take]);
            self.tail_len += take;
            bytes = &bytes[take..];
            if self.tail_len < 8 {
                return;
            }
            self.mix(u64::from_le_bytes(self.tail));
            self.tail_len = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.mix(u64::from_le_bytes(word.try_into().unwrap()));
        }
        let rest = words.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    fn digest(mut self) -> Digest {
        if self.tail_len > 0 {
            self.tail[self.tail_len..].fill(0);
            self.mix(u64::from_le_bytes(self.tail));
        }
        self.mix(self.len);
        Digest {
            len: self.len,
            hash: self.state,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Digest {
    len: u64,
    hash: u64,
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes, hash {:016x}", self.len, self.hash)
    }
}

/// An `AsyncRead` of `left` generated bytes that hashes what it hands out.
struct Source {
    generator: Generator,
    left: u64,
    hash: RunningHash,
}

impl AsyncRead for Source {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let n = (buf.remaining() as u64).min(this.left) as usize;
        let out = buf.initialize_unfilled_to(n);
        this.generator.fill(out);
        this.hash.update(out);
        buf.advance(n);
        this.left -= n as u64;
        Poll::Ready(Ok(()))
    }
}

/// An `AsyncWrite` that only hashes.
struct HashWriter(RunningHash);

impl AsyncWrite for HashWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.update(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[test]
fn the_hash_sees_every_byte_however_it_is_split() {
    let mut generator = Generator::new(7, MessageKind::Text);
    let mut data = vec![0; 10_000];
    generator.fill(&mut data[..3]);
    generator.fill(&mut data[3..4000]);
    generator.fill(&mut data[4000..]);
    assert!(std::str::from_utf8(&data).is_ok());
    let mut again = vec![0; 10_000];
    Generator::new(7, MessageKind::Text).fill(&mut again);
    assert_eq!(data, again, "the bytes do not depend on the reads");

    let mut whole = RunningHash::default();
    whole.update(&data);
    let whole = whole.digest();
    let mut split = RunningHash::default();
    for piece in data.chunks(13) {
        split.update(piece);
    }
    assert_eq!(split.digest(), whole);
    data[5000] ^= 1;
    let mut changed = RunningHash::default();
    changed.update(&data);
    assert_ne!(changed.digest(), whole);
}
