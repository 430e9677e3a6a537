//! What crosses the server's sockets, frame by frame: the server accepts
//! over its `TcpStream` wrapped in [`Counted`] (with TLS, the TLS stream
//! over it: the frames are counted in plaintext), which reads the header
//! of every frame in both directions (past the HTTP upgrade) and counts
//! pings, pongs, close frames and data frames. The API shows none of the
//! control frames, so this is how the soak knows that keepalive pings went
//! out and were each answered (but the last of a connection, which may
//! still be on its way when it ends), and that every clean close had one
//! close frame each way.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::tally::Tally;

/// The kinds of frames counted, by index.
const KINDS: [&str; 4] = ["data", "close", "ping", "pong"];
const PING: usize = 2;
const PONG: usize = 3;

/// The frames of one direction, counted over every connection.
pub(crate) struct Frames([AtomicU64; 4]);

impl Frames {
    const fn new() -> Self {
        Self([const { AtomicU64::new(0) }; 4])
    }

    fn add(&self, counts: &[u64; 4]) {
        for (total, &n) in self.0.iter().zip(counts) {
            total.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Adds the counts to `tally` as `wire.<direction>.<kind>`.
    fn report(&self, direction: &str, tally: &mut Tally) {
        for (kind, total) in KINDS.iter().zip(&self.0) {
            tally.add(
                format!("wire.{direction}.{kind}"),
                total.load(Ordering::Relaxed),
            );
        }
    }
}

/// What the server read (from the clients), over the connections that
/// have ended.
static IN: Frames = Frames::new();
/// What the server wrote.
static OUT: Frames = Frames::new();
/// Connection sides (client or server pings) whose last ping was still
/// unanswered when the connection ended. Keepalive waits for each pong
/// before the next ping, so one per side is all there can be.
static LAST_UNANSWERED: AtomicU64 = AtomicU64::new(0);
/// Connection sides with more than one ping unanswered, or more pongs
/// than pings: none, if every ping is answered once.
static WRONG: AtomicU64 = AtomicU64::new(0);

/// Adds the counts of every connection that has ended to `tally`.
pub(crate) fn report(tally: &mut Tally) {
    IN.report("in", tally);
    OUT.report("out", tally);
    tally.add(
        "wire.unanswered.last",
        LAST_UNANSWERED.load(Ordering::Relaxed),
    );
    tally.add("wire.unanswered.wrong", WRONG.load(Ordering::Relaxed));
}

/// Follows one direction of a connection: the HTTP head up to its blank
/// line, then frame headers, skipping the payloads.
#[derive(Default)]
struct Scanner {
    /// How much of `\r\n\r\n` was just seen; 4 once past the HTTP head.
    head: u8,
    /// The frame header read so far.
    header: [u8; 14],
    have: usize,
    /// Payload bytes still to skip.
    skip: u64,
    /// The frames seen, by [`KINDS`].
    frames: [u64; 4],
}

impl Scanner {
    fn scan(&mut self, mut bytes: &[u8]) {
        while let Some((&byte, rest)) = bytes.split_first() {
            if self.head < 4 {
                self.head = match (self.head, byte) {
                    (0 | 2, b'\r') | (1 | 3, b'\n') => self.head + 1,
                    (_, b'\r') => 1,
                    _ => 0,
                };
                bytes = rest;
            } else if self.skip > 0 {
                let n = self.skip.min(bytes.len() as u64);
                self.skip -= n;
                bytes = &bytes[n as usize..];
            } else {
                self.header[self.have] = byte;
                self.have += 1;
                bytes = rest;
                if self.have >= 2 && self.have == self.header_len() {
                    let kind = match self.header[0] & 0x0f {
                        0x0..=0x2 => Some(0),
                        0x8 => Some(1),
                        0x9 => Some(PING),
                        0xa => Some(PONG),
                        _ => None,
                    };
                    if let Some(kind) = kind {
                        self.frames[kind] += 1;
                    }
                    self.skip = self.payload_len();
                    self.have = 0;
                }
            }
        }
    }

    /// The length of the header begun in `header` (two bytes of it read).
    fn header_len(&self) -> usize {
        let extended = match self.header[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        2 + extended + mask
    }

    fn payload_len(&self) -> u64 {
        match self.header[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => u64::from_be_bytes(self.header[2..10].try_into().expect("8 bytes")),
            n => u64::from(n),
        }
    }
}

/// A byte stream whose frames are counted as they pass.
pub(crate) struct Counted<T> {
    io: T,
    read: Scanner,
    write: Scanner,
}

impl<T> Counted<T> {
    pub(crate) fn new(io: T) -> Self {
        Self {
            io,
            read: Scanner::default(),
            write: Scanner::default(),
        }
    }
}

/// The connection is over (the library dropped its transport): its
/// counts join the totals, and its pings are matched with its pongs.
impl<T> Drop for Counted<T> {
    fn drop(&mut self) {
        let (read, written) = (&self.read.frames, &self.write.frames);
        IN.add(read);
        OUT.add(written);
        // The clients' pings and the server's pongs; the server's pings
        // and the clients' pongs.
        for (pings, pongs) in [(read[PING], written[PONG]), (written[PING], read[PONG])] {
            match pings.checked_sub(pongs) {
                Some(0) => {}
                Some(1) => {
                    LAST_UNANSWERED.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    WRONG.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.read.scan(&buf.filled()[before..]);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            this.write.scan(&buf[..n]);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(mut n)) = polled {
            for buf in bufs {
                let taken = n.min(buf.len());
                this.write.scan(&buf[..taken]);
                n -= taken;
                if n == 0 {
                    break;
                }
            }
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
