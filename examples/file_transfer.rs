//! Copies a file through one WebSocket message, streamed: the sender copies
//! the file into a `MessageWriter`, the receiver copies the `MessageReader`
//! into the destination, and the file is never in memory whole.
//!
//! ```sh
//! # one process: an embedded server on 127.0.0.1 receives SRC into DST
//! cargo run --release --example file_transfer -- SRC DST
//! # two processes: a server that receives one file, and a client that sends it
//! cargo run --release --example file_transfer -- serve 127.0.0.1:9001 DST
//! cargo run --release --example file_transfer -- send ws://127.0.0.1:9001/ SRC
//! ```
//!
//! The sender announces the size in a first text message, then sends the
//! file as one binary message; the receiver shows its progress on stderr
//! and answers with the number of bytes it wrote, and the sender closes.

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::fs::File;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpListener;
use tokio_util::io::InspectWriter;
use wsstream::{Message, MessageKind, Options, ServerOptions, WebSocketStream};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const USAGE: &str = "usage: file_transfer SRC DST | serve ADDR DST | send URL SRC";
/// Large file reads and writes; the message goes in fragments of 64 KiB.
const FILE_BUFFER: usize = 1 << 20;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into())
        .collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve", addr, dst] => serve(addr, dst).await,
        ["send", url, src] => send(url, src).await.map(drop),
        [src, dst] if !["serve", "send"].contains(&src) => copy(src, dst).await,
        _ => Err(USAGE.into()),
    };
    let Err(err) = result else {
        return ExitCode::SUCCESS;
    };
    // wsstream's errors say what failed, their source() why.
    let (mut message, mut cause) = (err.to_string(), err.source());
    while let Some(err) = cause {
        message = format!("{message}: {err}");
        cause = err.source();
    }
    eprintln!("file_transfer: {message}");
    ExitCode::FAILURE
}

/// Copies `src` to `dst` through a server on 127.0.0.1 in this process.
/// (Also run by `tests/file_transfer.rs`.)
pub(crate) async fn copy(src: &str, dst: &str) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/", listener.local_addr()?);
    let started = Instant::now();
    let (sent, ()) = tokio::try_join!(send(&url, src), receive_one(&listener, dst))?;
    eprintln!("{src} -> {dst}: {sent} bytes in {:.2?}", started.elapsed());
    Ok(())
}

/// Receives one file into `dst` on `addr`, then exits.
async fn serve(addr: &str, dst: &str) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|err| format!("{addr}: {err}"))?;
    eprintln!("listening on ws://{}/", listener.local_addr()?);
    receive_one(&listener, dst).await
}

/// Sends `src` to the server at `url` as one message; returns its length.
async fn send(url: &str, src: &str) -> Result<u64> {
    let file = File::open(src)
        .await
        .map_err(|err| format!("{src}: {err}"))?;
    let size = file.metadata().await?.len();
    let ws = WebSocketStream::connect(url, Options::default());
    let opened = ws.opened().await?;
    let (mut readable, mut writable) = (opened.readable, opened.writable);
    writable.send(Message::text(size.to_string())).await?;
    let upload = async {
        let mut message = writable.start_streamed(MessageKind::Binary);
        let mut file = BufReader::with_capacity(FILE_BUFFER, file);
        let sent = tokio::io::copy(&mut file, &mut message).await?;
        message.finish().await?;
        Ok::<_, Box<dyn Error>>(sent)
    };
    // Read while sending: the receiver's answer comes at the end, and
    // reading answers its keepalive pings during a long upload.
    let answer = async { Ok::<_, Box<dyn Error>>(readable.next().await.transpose()?) };
    let (sent, answer): (u64, Option<Message>) = tokio::try_join!(upload, answer)?;
    let expected = format!("received {sent}");
    if answer.as_ref().and_then(Message::as_text) != Some(expected.as_str()) {
        return Err(format!("the receiver answered {answer:?}, not {expected:?}").into());
    }
    ws.close(1000, "done")?;
    while readable.next().await.transpose()?.is_some() {}
    ws.closed().await?;
    Ok(sent)
}

/// Accepts one connection on `listener` and receives its file into `dst`.
async fn receive_one(listener: &TcpListener, dst: &str) -> Result<()> {
    let (tcp, _) = listener.accept().await?;
    let ws = WebSocketStream::accept(tcp, ServerOptions::default()).await?;
    let opened = ws.opened().await?;
    let (mut readable, mut writable) = (opened.readable, opened.writable);
    let header = readable
        .next()
        .await
        .ok_or("the sender left before the size")??;
    let mut progress = Progress::new(header.as_text().and_then(|size| size.parse().ok()));
    let mut message = readable
        .next_streamed()
        .await
        .ok_or("the sender left before the file")??;
    let file = File::create(dst)
        .await
        .map_err(|err| format!("{dst}: {err}"))?;
    let file = BufWriter::with_capacity(FILE_BUFFER, file);
    let mut out = InspectWriter::new(file, |bytes: &[u8]| progress.add(bytes.len()));
    let received = tokio::io::copy(&mut message, &mut out).await?;
    out.shutdown().await?;
    drop((out, message));
    progress.show();
    eprintln!();
    writable
        .send(Message::text(format!("received {received}")))
        .await?;
    // The sender closes.
    while readable.next().await.transpose()?.is_some() {}
    ws.closed().await?;
    Ok(())
}

/// The receiver's progress line, redrawn at most five times a second.
struct Progress {
    size: Option<u64>,
    done: u64,
    started: Instant,
    shown: Instant,
}

impl Progress {
    fn new(size: Option<u64>) -> Self {
        let now = Instant::now();
        Self {
            size,
            done: 0,
            started: now,
            shown: now,
        }
    }

    fn add(&mut self, bytes: usize) {
        self.done += bytes as u64;
        if self.shown.elapsed() >= Duration::from_millis(200) {
            self.show();
        }
    }

    fn show(&mut self) {
        self.shown = Instant::now();
        let rate = self.done as f64 / f64::from(1 << 20) / self.started.elapsed().as_secs_f64();
        let percent = match self.size {
            Some(size) if size > 0 => format!(" ({:.1}%)", 100.0 * self.done as f64 / size as f64),
            _ => String::new(),
        };
        eprint!("\r{} bytes{percent}, {rate:.1} MiB/s ", self.done);
    }
}
