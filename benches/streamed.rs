//! Streamed messages beside whole ones: a wsstream client and a wsstream
//! server over 127.0.0.1 move 1 GiB as one message written with
//! `MessageWriter` and read with `next_streamed` as a stream of chunks,
//! and the same gigabyte as 16 messages of 64 MiB through `Sink<Message>`
//! and `Readable::next`; throughput, and each side's peak RSS and CPU time.
//! Markdown tables on stdout.
//!
//! `cargo bench -p wsstream-benches --bench streamed` (1 GiB per measurement, 5 rounds; a few
//! minutes on 2 cores, most of it deflate). `STREAMED_BENCH_QUICK=1` or
//! `cargo bench -p wsstream-benches --bench streamed -- --quick` for 128 MiB and 3 rounds;
//! `STREAMED_BENCH_ROUNDS=n` sets the rounds, `STREAMED_BENCH_CASES=0,3`
//! picks cases (indexes into `CASES`).
//!
//! Method:
//!
//! - **Cases.** Streamed, binary: one message of 1 GiB, fed to a
//!   `MessageWriter` (default fragment size, 64 KiB) in 64 KiB `Bytes`
//!   chunks, read chunk by chunk from a `MessageReader`. Streamed, text:
//!   the same with JSON-like text (a price feed, as benches/deflate.rs
//!   sends), so UTF-8 is checked on both sides; once without and once with
//!   permessage-deflate (`DeflateConfig::default()` on both sides: 15-bit
//!   windows, context takeover). Whole messages, binary: 16 messages of
//!   64 MiB (the default `max_message_size` exactly), each sent with
//!   `SinkExt::send` and read with `StreamExt::next`. A 64 MiB message goes
//!   out as one frame, above the default `max_frame_size` (16 MiB), so
//!   both sides raise `max_frame_size` to 64 MiB for this case; every other
//!   setting is the default. Each case runs both ways: client to server
//!   (masked frames) and server to client (unmasked).
//! - **Processes.** Each measurement starts a fresh server process and a
//!   fresh client process (this binary again, with `STREAMED_BENCH_ROLE`),
//!   both pinned to the same CPU (`STREAMED_BENCH_CPU`, else the last one
//!   allowed), as benches/compare and benches/http2 do; so the throughput
//!   is what one core does when it runs the sender, the receiver and the
//!   kernel's loopback between them.
//! - **Memory.** Once the connection is open, each side resets its peak
//!   RSS (`5` to `/proc/self/clear_refs`) and notes its RSS; the figure is
//!   `VmHWM` after the transfer less that baseline. It includes what the
//!   application holds for the transfer: the 64 MiB message a whole-message
//!   sender builds (and clones 16 times), and a received message while it
//!   is checked. A streamed sender's source is a pattern of about 100 KiB,
//!   built before the baseline (as is the receiver's copy, to check with).
//! - **Timing.** The receiver notes its baseline and sends `go`; the sender
//!   starts the clock when `go` arrives and stops it when the receiver's
//!   `done` arrives, sent once every byte was read and checked. While
//!   writing, the sender also waits on its readable (for `done`), which
//!   keeps the connection driven (pings answered). CPU time
//!   (`getrusage`, user + system) covers the same span on each side.
//! - **Checks.** Both sides derive the bytes from their offset in the
//!   message; the receiver checks the total length and, of every chunk (or
//!   message), the first, middle and last byte against the offset it
//!   arrived at.
//! - **Rounds.** Every round measures every case in both directions, the
//!   order rotated from round to round; the tables give the median of the
//!   rounds, and the range of the throughput.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};
use std::{env, fs};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use wsstream::{
    DeflateConfig, Message, MessageKind, Opened, Options, Readable, ServerOptions, WebSocketStream,
    Writable,
};

use common::machine::{machine_lines, version_lines};
use common::os::{
    chosen_cpu, cpu_time, current_thread_runtime, env_flag, env_string, env_usize, peak_rss_kib,
    pin_to_cpu,
};
use common::table::{fmt_count, fmt_small, median};

/// `server`, `client`, or unset for the parent.
const ROLE: &str = "STREAMED_BENCH_ROLE";
/// The CPU both children are pinned to.
const CPU: &str = "STREAMED_BENCH_CPU";
/// The index of the case in [`CASES`].
const CASE: &str = "STREAMED_BENCH_CASE";
/// `up` (client to server) or `down` (server to client).
const DIRECTION: &str = "STREAMED_BENCH_DIRECTION";
/// Payload bytes per measurement.
const BYTES: &str = "STREAMED_BENCH_BYTES";
/// The server's address, for the client.
const ADDR: &str = "STREAMED_BENCH_ADDR";

const MIB: u64 = 1 << 20;
/// Payload per measurement, full and quick.
const FULL_BYTES: u64 = 1024 * MIB;
const QUICK_BYTES: u64 = 128 * MIB;
const FULL_ROUNDS: usize = 5;
const QUICK_ROUNDS: usize = 3;
/// The whole-message case's message: the default `max_message_size`.
const WHOLE_MESSAGE: u64 = 64 * MIB;
/// What a streamed sender feeds its `MessageWriter` at a time.
const CHUNK: usize = 64 * 1024;
/// The period of the payload's pattern: above [`CHUNK`], not a multiple of
/// it, and beyond deflate's 32 KiB window.
const PERIOD: usize = 100_003;
/// A child that has not finished by then says so and exits.
const WATCHDOG: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Streamed,
    Whole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Data {
    /// Bytes from a xorshift generator: incompressible.
    Binary,
    /// JSON-like text: Python's zlib at level 1 (wsstream's default)
    /// deflates it 4.4:1.
    Json,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    path: Path,
    data: Data,
    deflate: bool,
}

const CASES: [Case; 4] = [
    Case {
        name: "streamed, binary",
        path: Path::Streamed,
        data: Data::Binary,
        deflate: false,
    },
    Case {
        name: "streamed, JSON text",
        path: Path::Streamed,
        data: Data::Json,
        deflate: false,
    },
    Case {
        name: "streamed, JSON text, deflate",
        path: Path::Streamed,
        data: Data::Json,
        deflate: true,
    },
    Case {
        name: "whole messages (64 MiB), binary",
        path: Path::Whole,
        data: Data::Binary,
        deflate: false,
    },
];

/// Which way the payload goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Direction {
    /// Client to server: masked frames.
    Up,
    /// Server to client.
    Down,
}

impl Direction {
    const BOTH: [Self; 2] = [Self::Up, Self::Down];

    fn env_value(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
        }
    }

    fn from_env_value(value: &str) -> Self {
        match value {
            "up" => Self::Up,
            "down" => Self::Down,
            other => panic!("{DIRECTION} must be up or down, not {other:?}"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Up => "client → server",
            Self::Down => "server → client",
        }
    }
}

fn main() {
    match env::var(ROLE).as_deref() {
        Ok("server") => run_child(true),
        Ok("client") => run_child(false),
        _ if env::args().any(|a| a == "--bench") => run_parent(),
        // `cargo test --benches` runs bench binaries without `--bench`.
        _ => println!("streamed: run it with `cargo bench -p wsstream-benches --bench streamed`"),
    }
}

// ---------------------------------------------------------------------------
// The payload

/// The payload's bytes: a pattern of [`PERIOD`] bytes repeated, held twice
/// over so that any slice up to [`PERIOD`] long at any offset is one
/// `Bytes` slice, not a copy.
struct Pattern {
    doubled: Bytes,
}

impl Pattern {
    fn new(data: Data) -> Self {
        let one = match data {
            Data::Binary => {
                let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
                (0..PERIOD)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state >> 24) as u8
                    })
                    .collect::<Vec<u8>>()
            }
            Data::Json => json(PERIOD).into_bytes(),
        };
        let mut doubled = Vec::with_capacity(2 * PERIOD);
        doubled.extend_from_slice(&one);
        doubled.extend_from_slice(&one);
        Self {
            doubled: Bytes::from(doubled),
        }
    }

    /// `len` bytes (at most [`PERIOD`]) of the payload from `offset`.
    fn slice(&self, offset: u64, len: usize) -> Bytes {
        let at = (offset % PERIOD as u64) as usize;
        self.doubled.slice(at..at + len)
    }

    /// A whole message of `len` bytes, from offset 0.
    fn message(&self, len: u64) -> Bytes {
        let len = usize::try_from(len).expect("message fits in memory");
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let take = (len - out.len()).min(PERIOD);
            out.extend_from_slice(&self.doubled[..take]);
        }
        Bytes::from(out)
    }

    fn byte_at(&self, offset: u64) -> u8 {
        self.doubled[(offset % PERIOD as u64) as usize]
    }

    /// Checks the first, middle and last byte of `chunk`, which arrived at
    /// `offset` in the message.
    fn check(&self, offset: u64, chunk: &[u8]) {
        assert!(!chunk.is_empty(), "empty chunk at {offset}");
        for at in [0, chunk.len() / 2, chunk.len() - 1] {
            assert_eq!(
                chunk[at],
                self.byte_at(offset + at as u64),
                "wrong byte at {}",
                offset + at as u64
            );
        }
    }
}

/// ASCII text that compresses about as well as a JSON price feed does,
/// `size` bytes of it.
fn json(size: usize) -> String {
    let mut out = String::with_capacity(size + 128);
    let mut i = 0usize;
    while out.len() < size {
        let _ = write!(
            out,
            "{{\"id\":{i},\"symbol\":\"SYM{}\",\"bid\":{}.{:02},\"ask\":{}.{:02},\"size\":{},\"venue\":\"X{}\"}},",
            i % 97,
            100 + i % 13,
            i % 100,
            101 + i % 11,
            (i * 7) % 100,
            (i * 31) % 1000,
            i % 5
        );
        i += 1;
    }
    out.truncate(size);
    out
}

// ---------------------------------------------------------------------------
// The children

/// What one side reports: `RESULT k=v ...`.
#[derive(Debug, Clone, Copy, Default)]
struct SideResult {
    wall: Duration,
    cpu: Duration,
    /// Peak RSS above the baseline, KiB.
    rss_kib: u64,
    /// Chunks (or messages) read; 0 on the sending side.
    chunks: u64,
}

impl SideResult {
    fn line(&self) -> String {
        format!(
            "RESULT wall_ns={} cpu_ns={} rss_kib={} chunks={}",
            self.wall.as_nanos(),
            self.cpu.as_nanos(),
            self.rss_kib,
            self.chunks
        )
    }

    fn from_line(line: &str) -> Option<Self> {
        let mut fields = BTreeMap::new();
        for field in line.strip_prefix("RESULT ")?.split_whitespace() {
            let (k, v) = field.split_once('=')?;
            fields.insert(k, v.parse::<u64>().ok()?);
        }
        Some(Self {
            wall: Duration::from_nanos(*fields.get("wall_ns")?),
            cpu: Duration::from_nanos(*fields.get("cpu_ns")?),
            rss_kib: *fields.get("rss_kib")?,
            chunks: *fields.get("chunks")?,
        })
    }
}

fn server_options(case: Case) -> ServerOptions {
    let mut options = ServerOptions::default();
    if case.path == Path::Whole {
        options = options.max_frame_size(WHOLE_MESSAGE as usize);
    }
    if case.deflate {
        options = options.deflate(DeflateConfig::default());
    }
    options
}

fn client_options(case: Case) -> Options {
    let mut options = Options::default();
    if case.path == Path::Whole {
        options = options.max_frame_size(WHOLE_MESSAGE as usize);
    }
    if case.deflate {
        options = options.deflate(DeflateConfig::default());
    }
    options
}

/// One side of one measurement: opens the connection, sends or receives,
/// closes, and prints its `RESULT` line.
fn run_child(server: bool) {
    pin_to_cpu(env_usize(CPU));
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!("streamed: a child still running after {WATCHDOG:?}; exiting");
        std::process::exit(3);
    });
    let case = CASES[env_usize(CASE)];
    let direction = Direction::from_env_value(&env_string(DIRECTION));
    let total: u64 = env_string(BYTES).parse().expect("bytes");
    let sender = server == (direction == Direction::Down);
    let runtime = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    // In a spawned task, not in `block_on`, as benches/compare explains.
    let result = local.block_on(&runtime, async move {
        tokio::task::spawn_local(async move {
            let (ws, opened) = if server {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                println!("PORT {}", listener.local_addr().unwrap().port());
                let (tcp, _) = listener.accept().await.unwrap();
                tcp.set_nodelay(true).unwrap();
                let ws = WebSocketStream::accept(tcp, server_options(case))
                    .await
                    .unwrap();
                let opened = ws.opened().await.unwrap();
                (ws, opened)
            } else {
                let url = format!("ws://{}/", env_string(ADDR));
                let ws = WebSocketStream::connect(url, client_options(case));
                let opened = ws.opened().await.unwrap();
                (ws, opened)
            };
            assert_eq!(
                opened.extensions.is_empty(),
                !case.deflate,
                "negotiated extensions: {:?}",
                opened.extensions
            );
            let Opened {
                mut readable,
                mut writable,
                ..
            } = opened;
            let pattern = Pattern::new(case.data);
            let result = if sender {
                send(&mut readable, &mut writable, case, &pattern, total).await
            } else {
                receive(&mut readable, &mut writable, case, &pattern, total).await
            };
            if sender {
                ws.close(1000, "").unwrap();
            }
            // The receiver reads to the sender's close, the sender to the
            // receiver's reply.
            if let Some(message) = readable.next().await {
                panic!("unexpected message after the transfer: {message:?}");
            }
            let closed = ws.closed().await.expect("a clean close");
            assert_eq!(closed.code, 1000);
            result
        })
        .await
        .unwrap()
    });
    println!("{}", result.line());
}

/// Empties this process's peak RSS and returns its RSS now, in KiB; if
/// the peak cannot be reset, returns the peak so far.
fn reset_peak_rss() -> u64 {
    if fs::write("/proc/self/clear_refs", "5").is_ok() {
        status_kib("VmRSS")
    } else {
        peak_rss_kib()
    }
}

fn status_kib(field: &str) -> u64 {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn kind(data: Data) -> MessageKind {
    match data {
        Data::Binary => MessageKind::Binary,
        Data::Json => MessageKind::Text,
    }
}

async fn expect_text(readable: &mut Readable, want: &str) {
    let message = readable
        .next()
        .await
        .unwrap_or_else(|| panic!("the connection ended before {want:?}"))
        .unwrap_or_else(|e| panic!("waiting for {want:?}: {e}"));
    assert_eq!(message, Message::text(want.to_owned()));
}

async fn send(
    readable: &mut Readable,
    writable: &mut Writable,
    case: Case,
    pattern: &Pattern,
    total: u64,
) -> SideResult {
    let baseline = reset_peak_rss();
    let whole = (case.path == Path::Whole).then(|| pattern.message(WHOLE_MESSAGE));
    expect_text(readable, "go").await;
    let cpu = cpu_time();
    let start = Instant::now();
    let write = async {
        match &whole {
            None => {
                let mut writer = writable.start_streamed(kind(case.data));
                let mut sent = 0;
                while sent < total {
                    let len = (total - sent).min(CHUNK as u64) as usize;
                    writer.feed(pattern.slice(sent, len)).await.unwrap();
                    sent += len as u64;
                }
                writer.finish().await.unwrap();
            }
            Some(message) => {
                assert_eq!(total % WHOLE_MESSAGE, 0, "whole messages only");
                for _ in 0..total / WHOLE_MESSAGE {
                    writable
                        .send(Message::binary(message.clone()))
                        .await
                        .unwrap();
                }
            }
        }
    };
    // Waiting for `done` while writing keeps the connection driven.
    tokio::join!(write, expect_text(readable, "done"));
    let wall = start.elapsed();
    let cpu = cpu_time().saturating_sub(cpu);
    drop(whole);
    SideResult {
        wall,
        cpu,
        rss_kib: peak_rss_kib().saturating_sub(baseline),
        chunks: 0,
    }
}

async fn receive(
    readable: &mut Readable,
    writable: &mut Writable,
    case: Case,
    pattern: &Pattern,
    total: u64,
) -> SideResult {
    let baseline = reset_peak_rss();
    writable.send(Message::text("go")).await.unwrap();
    let cpu = cpu_time();
    let start = Instant::now();
    let mut chunks = 0;
    match case.path {
        Path::Streamed => {
            let mut reader = readable
                .next_streamed()
                .await
                .expect("a message")
                .expect("a message");
            assert_eq!(reader.kind(), kind(case.data));
            let mut at = 0;
            while let Some(chunk) = reader.next().await {
                let chunk = chunk.unwrap_or_else(|e| panic!("reading at {at}: {e}"));
                pattern.check(at, &chunk);
                at += chunk.len() as u64;
                chunks += 1;
            }
            assert_eq!(at, total, "streamed message length");
            assert_eq!(reader.received(), total);
        }
        Path::Whole => {
            for _ in 0..total / WHOLE_MESSAGE {
                let message = readable.next().await.expect("a message").unwrap();
                assert!(message.is_binary());
                assert_eq!(message.len() as u64, WHOLE_MESSAGE);
                pattern.check(0, message.as_payload());
                chunks += 1;
            }
        }
    }
    writable.send(Message::text("done")).await.unwrap();
    let wall = start.elapsed();
    let cpu = cpu_time().saturating_sub(cpu);
    SideResult {
        wall,
        cpu,
        rss_kib: peak_rss_kib().saturating_sub(baseline),
        chunks,
    }
}

// ---------------------------------------------------------------------------
// The parent

/// One measurement: both sides' results.
#[derive(Debug, Clone, Copy)]
struct Sample {
    sender: SideResult,
    receiver: SideResult,
    bytes: u64,
}

impl Sample {
    fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / MIB as f64 / self.sender.wall.as_secs_f64()
    }

    /// CPU seconds per GiB moved.
    fn cpu_per_gib(&self, side: SideResult) -> f64 {
        side.cpu.as_secs_f64() * (1024 * MIB) as f64 / self.bytes as f64
    }

    fn mean_chunk_kib(&self) -> f64 {
        self.bytes as f64 / 1024.0 / self.receiver.chunks.max(1) as f64
    }
}

fn quick() -> bool {
    env_flag("STREAMED_BENCH_QUICK") || env::args().any(|a| a == "--quick")
}

fn run_parent() {
    let quick = quick();
    let bytes = if quick { QUICK_BYTES } else { FULL_BYTES };
    let rounds = env::var("STREAMED_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if quick { QUICK_ROUNDS } else { FULL_ROUNDS });
    let cpu = chosen_cpu(CPU);
    // `STREAMED_BENCH_CASES=0,3` measures only those cases (indexes into
    // `CASES`).
    let cases: Vec<usize> = env::var("STREAMED_BENCH_CASES").map_or_else(
        |_| (0..CASES.len()).collect(),
        |list| {
            list.split(',')
                .map(|c| c.trim().parse().expect("STREAMED_BENCH_CASES: indexes"))
                .filter(|&c: &usize| c < CASES.len())
                .collect()
        },
    );
    let measurements: Vec<(usize, Direction)> = cases
        .into_iter()
        .flat_map(|c| Direction::BOTH.map(|d| (c, d)))
        .collect();
    let started = Instant::now();
    let mut results: BTreeMap<(usize, Direction), Vec<Sample>> = BTreeMap::new();
    let mut failures = 0;
    for round in 0..rounds {
        for i in 0..measurements.len() {
            let (c, direction) = measurements[(i + round) % measurements.len()];
            let Some(sample) = measure(c, direction, bytes, cpu) else {
                failures += 1;
                continue;
            };
            eprintln!(
                "round {}/{rounds} | {:<32} {} | {:>8.1} MiB/s | RSS sender {:>7} KiB, receiver {:>7} KiB",
                round + 1,
                CASES[c].name,
                direction.label(),
                sample.mib_per_s(),
                sample.sender.rss_kib,
                sample.receiver.rss_kib,
            );
            results.entry((c, direction)).or_default().push(sample);
        }
    }
    print!(
        "{}",
        report(&results, bytes, rounds, cpu, failures, started.elapsed())
    );
}

/// Runs one measurement: a server child, then a client child.
fn measure(case: usize, direction: Direction, bytes: u64, cpu: usize) -> Option<Sample> {
    let child = |role: &str| {
        let mut command = Command::new(env::current_exe().expect("current_exe"));
        command
            .env(ROLE, role)
            .env(CPU, cpu.to_string())
            .env(CASE, case.to_string())
            .env(DIRECTION, direction.env_value())
            .env(BYTES, bytes.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        command
    };
    let mut server = child("server").spawn().expect("start the server");
    let mut server_out: Lines<BufReader<ChildStdout>> =
        BufReader::new(server.stdout.take().expect("stdout")).lines();
    let port = server_out
        .next()
        .and_then(Result::ok)
        .and_then(|line| line.strip_prefix("PORT ")?.trim().parse::<u16>().ok());
    let Some(port) = port else {
        eprintln!("streamed: the server said no PORT");
        stop(&mut server);
        return None;
    };
    let client = child("client")
        .env(ADDR, format!("127.0.0.1:{port}"))
        .output()
        .expect("run the client");
    let client_result = String::from_utf8_lossy(&client.stdout)
        .lines()
        .find_map(SideResult::from_line);
    if !client.status.success() || client_result.is_none() {
        eprintln!(
            "streamed: {} {}: the client failed ({})",
            CASES[case].name,
            direction.label(),
            client.status
        );
        stop(&mut server);
        return None;
    }
    let server_result = server_out
        .map_while(Result::ok)
        .find_map(|line| SideResult::from_line(&line));
    let status = server.wait().expect("wait for the server");
    let (Some(client_result), Some(server_result)) = (client_result, server_result) else {
        eprintln!(
            "streamed: {} {}: the server failed ({status})",
            CASES[case].name,
            direction.label(),
        );
        return None;
    };
    if !status.success() {
        eprintln!("streamed: the server exited with {status}");
        return None;
    }
    let (sender, receiver) = match direction {
        Direction::Up => (client_result, server_result),
        Direction::Down => (server_result, client_result),
    };
    Some(Sample {
        sender,
        receiver,
        bytes,
    })
}

/// Ends a server child this process started, and reaps it.
fn stop(server: &mut Child) {
    let _ = server.kill();
    let _ = server.wait();
}

fn report(
    results: &BTreeMap<(usize, Direction), Vec<Sample>>,
    bytes: u64,
    rounds: usize,
    cpu: usize,
    failures: usize,
    took: Duration,
) -> String {
    let median_of = |samples: &[Sample], f: &dyn Fn(&Sample) -> f64| {
        median(samples.iter().map(f).collect()).unwrap_or(f64::NAN)
    };
    let mib = |kib: f64| fmt_small(kib / 1024.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### {} MiB per measurement (median of {rounds} rounds)\n",
        fmt_count((bytes / MIB) as f64)
    );
    let _ = writeln!(
        out,
        "| case | direction | MiB/s | MiB/s, range | sender peak RSS, MiB | receiver peak RSS, MiB | sender CPU, s/GiB | receiver CPU, s/GiB | mean chunk read |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut medians: BTreeMap<(usize, Direction), (f64, f64)> = BTreeMap::new();
    for ((c, direction), samples) in results {
        let rate = median_of(samples, &|s| s.mib_per_s());
        let low = samples
            .iter()
            .map(Sample::mib_per_s)
            .fold(f64::INFINITY, f64::min);
        let high = samples.iter().map(Sample::mib_per_s).fold(0.0, f64::max);
        let receiver_rss = median_of(samples, &|s| s.receiver.rss_kib as f64);
        medians.insert((*c, *direction), (rate, receiver_rss));
        let chunk = median_of(samples, &|s| s.mean_chunk_kib());
        let chunk = if CASES[*c].path == Path::Whole {
            "64 MiB (a message)".to_owned()
        } else {
            format!("{} KiB", fmt_small(chunk))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {}–{} | {} | {} | {} | {} | {chunk} |",
            CASES[*c].name,
            direction.label(),
            fmt_count(rate),
            fmt_count(low),
            fmt_count(high),
            mib(median_of(samples, &|s| s.sender.rss_kib as f64)),
            mib(receiver_rss),
            fmt_small(median_of(samples, &|s| s.cpu_per_gib(s.sender))),
            fmt_small(median_of(samples, &|s| s.cpu_per_gib(s.receiver))),
        );
    }
    let _ = writeln!(
        out,
        "\n### Side by side (medians above)\n\n| comparison | direction | MiB/s, ratio | receiver peak RSS, MiB |\n|---|---|---:|---|"
    );
    for (name, a, b) in [
        ("streamed ÷ whole messages, binary", 0, 3),
        ("JSON text ÷ binary, streamed", 1, 0),
        ("deflate ÷ no deflate, streamed JSON text", 2, 1),
    ] {
        for direction in Direction::BOTH {
            let (Some(x), Some(y)) = (medians.get(&(a, direction)), medians.get(&(b, direction)))
            else {
                continue;
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {:.2}× | {} against {} |",
                direction.label(),
                x.0 / y.0,
                mib(x.1),
                mib(y.1)
            );
        }
    }
    let _ = writeln!(out, "\n### Setup\n");
    out.push_str(&machine_lines(
        &format!("server and client pinned to CPU {cpu}"),
        if uncommitted_src() {
            ", with uncommitted changes in src/"
        } else {
            ""
        },
    ));
    out.push_str(&version_lines(&["flate2", "tokio", "zlib-rs"]));
    let _ = writeln!(
        out,
        "- {} measurements failed; the run took {:.0} s",
        failures,
        took.as_secs_f64()
    );
    out
}

/// Whether `git status` shows changes in src/ (the commit in the setup
/// list is then not all of what was measured).
fn uncommitted_src() -> bool {
    Command::new("git")
        .args(["status", "--porcelain", "--", "src"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
}
