//! The tokio layer over a transport the input controls.
//!
//! `WebSocketStream::connect_over` runs on a current-thread runtime with a
//! paused clock (time moves only when an operation advances it, so timers
//! fire without real waits). The transport answers the client's request
//! with a 101 whose `Sec-WebSocket-Accept` it computes from the request
//! (or, by the config byte, with a bad one), and its reads and writes do
//! what the input says: partial, `Pending` woken at once or later, errors.
//! Operations poll `opened`, `closed`, the readable and the writable (feed,
//! send, flush, close), drop futures half-way (cancellation) and drop the
//! halves and the handle; the peer sends well-formed frames, raw bytes or
//! EOF.
//!
//! Streamed messages, each within one operation (the reader and the writer
//! borrow their half, so they live on the stack of the operation):
//! `next_streamed` polled once (dropped if `Pending`: cancellation), then
//! the `MessageReader` polled as a `Stream` or through `AsyncRead` with a
//! small buffer for up to K chunks and dropped, part-way or not; and
//! `start_streamed` with an input-chosen fragment size, fed chunks through
//! `Sink<Bytes>`, `Sink<Utf8Bytes>` or `AsyncWrite` (invalid text among
//! them), flushed, finished or dropped part-way. A `Pending` ends the
//! operation, unless the input grants a few more polls while the task was
//! woken (as an executor would).
//!
//! Checked: what the transport received decodes (as a server decodes)
//! into the messages the sink accepted, in order, all of them once a flush
//! succeeded or the close was clean; nothing follows a close frame and
//! nothing is written after shutdown; sending fails once our close is out;
//! while the peer was well-formed, the readable yields its messages in
//! order and a clean close reports the peer's code. Streamed writes: the
//! fragments reassemble into exactly what the writer accepted, each at
//! most the fragment size and none empty before the last, in order with
//! whole messages; text is refused exactly when what was accepted and the
//! chunk are not the start of UTF-8; a flush puts every accepted byte on
//! the wire; a writer dropped part-way is followed by control frames only
//! and a close (1011 when nothing else closed first). Streamed reads: each
//! chunk is non-empty (as a `Stream`), text chunks are UTF-8 on their own,
//! the chunks are a prefix of the peer's message and all of it at the
//! end, an error comes once and then the end, and the messages after a
//! reader dropped part-way still arrive, in order. Finally the peer ends
//! the stream and every future must finish, polled only when its waker
//! fires: a lost wakeup or a busy loop fails the run.
//!
//! Input: `[config] [op]...`, ops `op % 28`. config bits 0-2: the server's
//! answer; bit 3: a 1 KiB write high-water mark instead of the default;
//! bit 4: the transport takes vectored writes.

#![no_main]

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use futures_sink::Sink;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wsstream::handshake::accept_key;
use wsstream::proto::{Frame, FrameDecoder, OpCode, Role};
use wsstream::{
    ClosedFuture, Error, Message, MessageKind, MessageReader, MessageWriter, Opened, OpenedFuture,
    Options, Readable, Utf8Bytes, WebSocketStream, Writable, DEFAULT_FRAGMENT_SIZE,
};
use wsstream_fuzz::{close_code, fragmented, frame, trace, Input, Sent};

/// Operations per run, at most.
const MAX_OPS: usize = 3000;

// ---------------------------------------------------------------------------
// The transport

#[derive(Debug, Clone, Copy)]
enum ReadAct {
    /// Give at most this many bytes.
    Upto(usize),
    /// `Pending`; wake at once (`true`) or at a later `wake` operation.
    Pending(bool),
    Error,
}

#[derive(Debug, Clone, Copy)]
enum WriteAct {
    Upto(usize),
    Pending(bool),
    Error,
    /// `Ok(0)`: the library must treat it as an error, not loop.
    Zero,
    /// The next `poll_flush` is `Pending`.
    FlushPending(bool),
}

#[derive(Default)]
struct Wire {
    config: u8,
    // ---- peer to client ----
    incoming: Vec<u8>,
    read_pos: usize,
    peer_eof: bool,
    read_plan: VecDeque<ReadAct>,
    read_waker: Option<Waker>,
    // ---- client to peer ----
    request: Vec<u8>,
    request_done: bool,
    written: Vec<u8>,
    write_plan: VecDeque<WriteAct>,
    write_waker: Option<Waker>,
    shutdown: bool,
    /// The peer no longer misbehaves: everything is ready, reads end in EOF.
    finishing: bool,
}

impl Wire {
    fn wake_later(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }

    fn peer_send(&mut self, bytes: &[u8]) {
        self.incoming.extend_from_slice(bytes);
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
    }

    /// The request is complete: queue the server's answer before anything
    /// the peer already queued.
    fn answer(&mut self) {
        let text = std::str::from_utf8(&self.request).expect("request is not UTF-8");
        assert!(
            text.starts_with("GET / HTTP/1.1\r\n"),
            "request line: {text:?}"
        );
        assert!(text.contains("\r\nHost: fuzz\r\n"), "{text:?}");
        let key = text
            .split("\r\n")
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .expect("request has no key");
        let accept = accept_key(key.as_bytes());
        let response = match self.config & 7 {
            0..=3 => format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ),
            4 => format!(
                "HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n\
                 sec-websocket-accept:   {accept}  \r\nX-Extra: 1\r\n\r\n"
            ),
            5 => "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"
                .to_owned(),
            6 => "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_owned(),
            _ => format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
            ),
        };
        assert_eq!(self.read_pos, 0, "client read before its request was out");
        self.incoming.splice(0..0, response.into_bytes());
    }
}

#[derive(Clone)]
struct FuzzIo(Arc<Mutex<Wire>>);

impl FuzzIo {
    fn wire(&self) -> std::sync::MutexGuard<'_, Wire> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl AsyncRead for FuzzIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut w = self.wire();
        let act = if w.finishing {
            None
        } else {
            w.read_plan.pop_front()
        };
        let limit = match act {
            Some(ReadAct::Pending(now)) => {
                if now {
                    cx.waker().wake_by_ref();
                } else {
                    w.read_waker = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
            Some(ReadAct::Error) => {
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            Some(ReadAct::Upto(n)) => n.max(1),
            None => usize::MAX,
        };
        let available = if w.request_done {
            w.incoming.len() - w.read_pos
        } else {
            0
        };
        if available == 0 {
            if w.peer_eof || w.finishing {
                return Poll::Ready(Ok(()));
            }
            w.read_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = available.min(limit).min(buf.remaining());
        let start = w.read_pos;
        buf.put_slice(&w.incoming[start..start + n]);
        w.read_pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for FuzzIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut w = self.wire();
        assert!(!w.shutdown, "write after shutdown");
        let act = if w.finishing {
            None
        } else {
            w.write_plan.front().copied()
        };
        let limit = match act {
            Some(WriteAct::FlushPending(_)) => usize::MAX,
            Some(act) => {
                w.write_plan.pop_front();
                match act {
                    WriteAct::Pending(now) => {
                        if now {
                            cx.waker().wake_by_ref();
                        } else {
                            w.write_waker = Some(cx.waker().clone());
                        }
                        return Poll::Pending;
                    }
                    WriteAct::Error => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                    WriteAct::Zero => return Poll::Ready(Ok(0)),
                    WriteAct::Upto(n) => n.max(1),
                    WriteAct::FlushPending(_) => unreachable!(),
                }
            }
            None => usize::MAX,
        };
        let n = data.len().min(limit);
        let data = &data[..n];
        if w.request_done {
            w.written.extend_from_slice(data);
        } else {
            w.request.extend_from_slice(data);
            if let Some(end) = w.request.windows(4).position(|x| x == b"\r\n\r\n") {
                assert_eq!(end + 4, w.request.len(), "frames written before the 101");
                w.request_done = true;
                w.answer();
                if let Some(r) = w.read_waker.take() {
                    r.wake();
                }
            }
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut w = self.wire();
        if w.finishing {
            return Poll::Ready(Ok(()));
        }
        if let Some(WriteAct::FlushPending(now)) = w.write_plan.front().copied() {
            w.write_plan.pop_front();
            if now {
                cx.waker().wake_by_ref();
            } else {
                w.write_waker = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.wire().shutdown = true;
        Poll::Ready(Ok(()))
    }

    /// Like a socket's `writev` when config bit 4 is set: the slices are
    /// written as one stream of bytes, as far as the write act allows.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let joined: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        self.poll_write(cx, &joined)
    }

    fn is_write_vectored(&self) -> bool {
        self.wire().config & 0x10 != 0
    }
}

// ---------------------------------------------------------------------------
// Tasks: futures polled with wakers that record being woken

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Task {
    flag: Arc<Flag>,
    waker: Waker,
}

impl Task {
    fn new() -> Self {
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        Self {
            waker: Waker::from(flag.clone()),
            flag,
        }
    }

    fn poll<T>(&self, f: impl FnOnce(&mut Context<'_>) -> Poll<T>) -> Poll<T> {
        self.flag.0.store(false, Ordering::SeqCst);
        f(&mut Context::from_waker(&self.waker))
    }

    fn schedule(&self) {
        self.flag.0.store(true, Ordering::SeqCst);
    }

    fn woken(&self) -> bool {
        self.flag.0.load(Ordering::SeqCst)
    }
}

/// What one poll of the readable gave.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Pending,
    /// A message or the error.
    Item,
    End,
}

/// `SinkExt::send` (flush after) or `feed` (no flush), by hand, so it can
/// be dropped at any point.
struct SendOp {
    message: Option<Message>,
    flush: bool,
}

// ---------------------------------------------------------------------------
// Streamed messages: what the harness expects of them

/// A message the writable accepted, as it must appear on the wire.
#[derive(Debug)]
enum Expect {
    /// Through the `Sink<Message>`: one frame.
    Whole(Sent),
    /// Through a `MessageWriter`: fragments.
    Streamed(StreamedOut),
}

/// Whether the final fragment of a streamed message was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fin {
    No,
    Yes,
    /// The connection failed as it was flushed: the final fragment may or
    /// may not have been queued first.
    Maybe,
}

/// A message sent through a `MessageWriter`, and what of it the wire
/// showed so far.
#[derive(Debug)]
struct StreamedOut {
    kind: MessageKind,
    fragment_size: usize,
    /// Every byte the writer accepted, in order.
    data: Vec<u8>,
    /// Bytes certainly queued as fragments (the rest is coalescing).
    emitted: usize,
    /// A fragment of unknown fate (see [`Fin::Maybe`]): the wire may hold
    /// up to all of `data`.
    maybe_more: bool,
    fin: Fin,
    /// Dropped before its end with nothing else known to have closed the
    /// connection: the close frame after it must carry 1011.
    expect_1011: bool,
    /// Bytes of it seen on the wire.
    seen: usize,
    /// It ended on the wire with a close frame (with that code) instead
    /// of a final fragment.
    cut: Option<Option<u16>>,
}

impl StreamedOut {
    /// A fragment of this message on the wire.
    fn fragment(&mut self, index: usize, payload: &[u8], fin: bool) {
        let limit = if self.maybe_more {
            self.data.len()
        } else {
            self.emitted
        };
        assert!(
            payload.len() <= self.fragment_size,
            "streamed message {index}: a fragment of {} bytes, over the fragment size {}",
            payload.len(),
            self.fragment_size
        );
        assert!(
            self.seen + payload.len() <= limit,
            "streamed message {index}: {} bytes on the wire, only {limit} sent",
            self.seen + payload.len()
        );
        assert!(
            self.data[self.seen..self.seen + payload.len()] == payload[..],
            "streamed message {index}: bytes {}..{} differ from what was written",
            self.seen,
            self.seen + payload.len()
        );
        self.seen += payload.len();
        if fin {
            assert!(
                self.fin != Fin::No,
                "streamed message {index} ended on the wire but was never finished"
            );
            assert_eq!(
                self.seen,
                self.data.len(),
                "streamed message {index} ended short"
            );
            if self.kind == MessageKind::Text {
                assert!(
                    std::str::from_utf8(&self.data).is_ok(),
                    "streamed text message {index} is not UTF-8"
                );
            }
        } else {
            assert!(
                !payload.is_empty(),
                "streamed message {index}: an empty fragment before the last"
            );
        }
    }

    /// Our close frame came before its final fragment.
    fn cut(&mut self, index: usize, code: Option<u16>) {
        assert!(
            self.fin != Fin::Yes,
            "a close frame inside streamed message {index}, which was finished"
        );
        trace!("  streamed message {index} cut by a close ({code:?})");
        self.cut = Some(code);
        self.check_cut(index);
    }

    fn check_cut(&self, index: usize) {
        if let (true, Some(code)) = (self.expect_1011, self.cut) {
            assert_eq!(
                code,
                Some(1011),
                "streamed message {index} abandoned part-way, then a close without 1011"
            );
        }
    }
}

/// Whether `tail` (an incomplete character, at most 3 bytes) followed by
/// `chunk` can start valid UTF-8; if so, the incomplete end after it.
fn utf8_continues(tail: &[u8], chunk: &[u8]) -> Option<Vec<u8>> {
    let mut joined = tail.to_vec();
    joined.extend_from_slice(chunk);
    match std::str::from_utf8(&joined) {
        Ok(_) => Some(Vec::new()),
        Err(e) if e.error_len().is_none() => Some(joined[e.valid_up_to()..].to_vec()),
        Err(_) => None,
    }
}

/// The bytes a `MessageWriter` queues as fragments when a chunk of `len`
/// bytes is appended to `buffered` coalesced ones, and what stays
/// coalesced: full fragments go at once, the rest waits.
fn predict_append(buffered: usize, len: usize, size: usize) -> (usize, usize) {
    let (mut emitted, rest) = if buffered > 0 || len < size {
        let take = (size - buffered).min(len);
        if buffered + take < size {
            return (0, buffered + take);
        }
        (size, len - take)
    } else {
        (0, len)
    };
    emitted += rest / size * size;
    (emitted, rest % size)
}

/// The `wsstream::Error` inside an `io::Error` from `AsyncRead` or
/// `AsyncWrite`, which must be there.
fn inner_error(err: &io::Error) -> &Error {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<Error>())
        .unwrap_or_else(|| panic!("an io::Error without the wsstream::Error: {err:?}"))
}

/// What the harness models of a `MessageWriter` while it lives.
struct WriterModel {
    /// The message's index in `accepted`.
    index: usize,
    /// Where the next chunk comes from, and how far it was taken.
    source: Vec<u8>,
    pos: usize,
    /// Bytes coalesced, not yet queued.
    buffered: usize,
    /// The incomplete character at the end of the text accepted so far.
    tail: Vec<u8>,
    /// The final fragment went: everything after fails with `Closed`.
    finished: bool,
    /// Something failed as the connection closes or ended: the model
    /// stops here.
    broken: bool,
    patience: usize,
}

/// How a streamed read polls its reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadMode {
    Stream,
    AsyncRead,
    /// Either, poll by poll.
    Mixed,
}

/// A message the readable yielded, whole or read in chunks.
#[derive(Debug, Clone, PartialEq)]
struct Got {
    sent: Sent,
    /// All of it: otherwise a prefix (a reader dropped part-way, or a
    /// failure).
    whole: bool,
}

impl Got {
    fn matches(&self, expected: &Sent) -> bool {
        if self.whole {
            return &self.sent == expected;
        }
        match (&self.sent, expected) {
            (Sent::Text(a), Sent::Text(b)) | (Sent::Binary(a), Sent::Binary(b)) => b.starts_with(a),
            _ => false,
        }
    }
}

/// Polls with `task`; while `Pending` and woken meanwhile, polls again,
/// up to `patience` times (an executor running a woken task).
fn poll_patient<T>(
    task: &Task,
    patience: usize,
    mut f: impl FnMut(&mut Context<'_>) -> Poll<T>,
) -> Poll<T> {
    let mut polled = task.poll(&mut f);
    for _ in 0..patience {
        if polled.is_ready() || !task.woken() {
            break;
        }
        polled = task.poll(&mut f);
    }
    polled
}

// ---------------------------------------------------------------------------
// The harness

#[derive(Debug, Clone, PartialEq)]
enum PeerEvent {
    Message(Sent),
    Close(Option<(u16, String)>),
}

struct Harness {
    io: FuzzIo,
    ws: Option<WebSocketStream>,
    opened: Option<OpenedFuture>,
    opened_task: Task,
    opened_result: Option<Result<(), Error>>,
    readable: Option<Readable>,
    reader_task: Task,
    reader_ended: Option<bool>,
    writable: Option<Writable>,
    writer_task: Task,
    send_op: Option<SendOp>,
    /// The final flush is over.
    writable_flushed: bool,
    closed: Vec<(ClosedFuture, Task)>,
    outcome: Option<Result<wsstream::CloseInfo, Error>>,
    /// Whether a message could have been read and dropped for want of a
    /// reader.
    discarding: bool,

    accepted: Vec<Expect>,
    received: Vec<Got>,
    /// Something other than an abandoned streamed write may have queued
    /// a close frame: `close`, the writable's close, the peer's close or
    /// broken peer traffic, an abandoned streamed write.
    close_maybe: bool,

    // ---- the peer ----
    pristine: bool,
    peer_events: Vec<PeerEvent>,
    peer_pings: Vec<Bytes>,
    peer_closed: bool,

    // ---- what the transport received, parsed back ----
    out_decoder: FrameDecoder,
    out_buf: BytesMut,
    out_seen: usize,
    out_data: usize,
    out_close: bool,
    /// A streamed message (`accepted[out_data]`) has begun on the wire.
    out_partial: bool,
    pongs_out: Vec<Bytes>,
    pings_out: Vec<Bytes>,
}

impl Harness {
    fn new(io: FuzzIo, ws: WebSocketStream) -> Self {
        Self {
            io,
            ws: Some(ws),
            opened: None,
            opened_task: Task::new(),
            opened_result: None,
            readable: None,
            reader_task: Task::new(),
            reader_ended: None,
            writable: None,
            writer_task: Task::new(),
            send_op: None,
            writable_flushed: false,
            closed: Vec::new(),
            outcome: None,
            discarding: false,
            accepted: Vec::new(),
            received: Vec::new(),
            close_maybe: false,
            pristine: true,
            peer_events: Vec::new(),
            peer_pings: Vec::new(),
            peer_closed: false,
            out_decoder: FrameDecoder::new(Role::Server, usize::MAX),
            out_buf: BytesMut::new(),
            out_seen: 0,
            out_data: 0,
            out_close: false,
            out_partial: false,
            pongs_out: Vec::new(),
            pings_out: Vec::new(),
        }
    }

    // ---- checking the output ----

    /// Decodes what was written since the last call.
    fn parse_out(&mut self) {
        let new = {
            let w = self.io.wire();
            w.written[self.out_seen..].to_vec()
        };
        if new.is_empty() {
            return;
        }
        assert!(
            !self.out_close,
            "{} bytes written after our close frame",
            new.len()
        );
        self.out_seen += new.len();
        self.out_buf.extend_from_slice(&new);
        loop {
            let Frame { header, payload } = match self.out_decoder.decode(&mut self.out_buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(err) => panic!("what the client wrote does not decode: {err}"),
            };
            assert!(!self.out_close, "a frame after our close frame");
            assert_eq!(header.rsv, 0);
            let index = self.out_data;
            match header.opcode {
                OpCode::Text | OpCode::Binary => {
                    assert!(
                        !self.out_partial,
                        "a data frame inside streamed message {index}"
                    );
                    let text = header.opcode == OpCode::Text;
                    match self.accepted.get_mut(index) {
                        None => panic!(
                            "message {index} on the wire ({} bytes) was never accepted",
                            payload.len()
                        ),
                        Some(Expect::Whole(sent)) => {
                            assert!(header.fin, "whole message {index} fragmented");
                            let got = if text {
                                Sent::Text(payload)
                            } else {
                                Sent::Binary(payload)
                            };
                            assert_eq!(&got, sent, "message {index} on the wire");
                            self.out_data += 1;
                        }
                        Some(Expect::Streamed(s)) => {
                            assert_eq!(
                                text,
                                s.kind == MessageKind::Text,
                                "streamed message {index}: opcode"
                            );
                            s.fragment(index, &payload, header.fin);
                            if header.fin {
                                self.out_data += 1;
                            } else {
                                self.out_partial = true;
                            }
                        }
                    }
                }
                OpCode::Continuation => {
                    assert!(self.out_partial, "a continuation frame outside a message");
                    let Some(Expect::Streamed(s)) = self.accepted.get_mut(index) else {
                        unreachable!("out_partial on a whole message");
                    };
                    s.fragment(index, &payload, header.fin);
                    if header.fin {
                        self.out_partial = false;
                        self.out_data += 1;
                    }
                }
                OpCode::Ping => self.pings_out.push(payload),
                OpCode::Pong => self.pongs_out.push(payload),
                OpCode::Close => {
                    let code = match &payload[..] {
                        [] => None,
                        [a, b, reason @ ..] => {
                            let code = u16::from_be_bytes([*a, *b]);
                            assert!(
                                wsstream::CloseCode::new(code).is_some(),
                                "close code {code}"
                            );
                            assert!(std::str::from_utf8(reason).is_ok());
                            Some(code)
                        }
                        [_] => panic!("one-byte close payload"),
                    };
                    if self.out_partial {
                        let Some(Expect::Streamed(s)) = self.accepted.get_mut(index) else {
                            unreachable!("out_partial on a whole message");
                        };
                        s.cut(index, code);
                        self.out_partial = false;
                        self.out_data += 1;
                    }
                    self.out_close = true;
                    assert!(self.out_buf.is_empty(), "bytes after our close frame");
                }
            }
        }
    }

    /// After a successful flush every accepted message is on the wire.
    fn flushed(&mut self) {
        self.parse_out();
        assert_eq!(
            self.out_data,
            self.accepted.len(),
            "flush succeeded with messages unwritten"
        );
    }

    fn record_outcome(&mut self, outcome: Result<wsstream::CloseInfo, Error>) {
        let _ = outcome.as_ref().map_err(|e| e.to_string());
        match &self.outcome {
            // Every `closed` future sees the same outcome.
            Some(first) => assert_eq!(
                format!("{first:?}"),
                format!("{outcome:?}"),
                "closed futures disagree"
            ),
            None => self.outcome = Some(outcome),
        }
    }

    /// With the handle and every `opened` future gone before the halves
    /// were taken, no one can read: the connection discards messages.
    fn note_no_opener(&mut self) {
        if self.ws.is_none() && self.opened.is_none() && self.opened_result.is_none() {
            self.discarding = true;
        }
    }

    // ---- operations on the client ----

    fn poll_opened(&mut self) {
        if self.opened.is_none() {
            match &self.ws {
                Some(ws) => self.opened = Some(ws.opened()),
                None => return,
            }
        }
        let Some(fut) = &mut self.opened else { return };
        if let Poll::Ready(result) = self.opened_task.poll(|cx| Pin::new(&mut *fut).poll(cx)) {
            trace!("  opened -> {:?}", result.as_ref().map(|_| ()));
            self.opened = None;
            match result {
                Ok(Opened {
                    readable,
                    writable,
                    protocol,
                    extensions,
                    ..
                }) => {
                    assert!(self.opened_result.is_none(), "opened twice");
                    assert!(protocol.is_none() && extensions.is_empty());
                    assert!(
                        self.io.wire().config & 7 <= 4,
                        "opened on a bad handshake answer"
                    );
                    self.readable = Some(readable);
                    self.writable = Some(writable);
                    // New tasks for the halves: each is polled once to start.
                    self.reader_task.schedule();
                    self.writer_task.schedule();
                    self.opened_result = Some(Ok(()));
                }
                Err(Error::AlreadyOpened) => {
                    assert!(matches!(self.opened_result, Some(Ok(()))));
                }
                Err(err) => match &self.opened_result {
                    None => self.opened_result = Some(Err(err)),
                    // A failed opening fails the same way every time.
                    Some(Err(first)) => assert_eq!(format!("{first:?}"), format!("{err:?}")),
                    Some(Ok(())) => panic!("opened, then failed: {err}"),
                },
            }
        }
    }

    fn poll_next(&mut self) -> Next {
        let Some(readable) = &mut self.readable else {
            return Next::End;
        };
        let polled = self
            .reader_task
            .poll(|cx| Pin::new(&mut *readable).poll_next(cx));
        trace!(
            "  next -> {}",
            match &polled {
                Poll::Pending => "pending".to_owned(),
                Poll::Ready(Some(Ok(m))) => format!("message of {} bytes", m.len()),
                Poll::Ready(Some(Err(e))) => format!("error {e:?}"),
                Poll::Ready(None) => "end".to_owned(),
            }
        );
        match polled {
            Poll::Pending => Next::Pending,
            Poll::Ready(Some(Ok(message))) => {
                assert!(self.reader_ended.is_none(), "a message after the end");
                if let Message::Text(text) = &message {
                    // `as_str` trusts this.
                    assert!(
                        std::str::from_utf8(text.as_bytes()).is_ok(),
                        "a text message that is not UTF-8"
                    );
                }
                let got = Sent::of(&message);
                if self.pristine && !self.discarding {
                    let index = self.received.len();
                    assert_eq!(self.peer_message(index), Some(&got), "message {index} read");
                }
                self.received.push(Got {
                    sent: got,
                    whole: true,
                });
                Next::Item
            }
            Poll::Ready(Some(Err(err))) => {
                let _ = err.to_string();
                assert!(self.reader_ended.is_none(), "an error after the end");
                self.reader_ended = Some(false);
                Next::Item
            }
            Poll::Ready(None) => {
                if self.reader_ended.is_none() {
                    self.reader_ended = Some(true);
                }
                Next::End
            }
        }
    }

    /// One poll of the send in flight; true when it is over.
    fn poll_send(&mut self) -> bool {
        let Some(mut op) = self.send_op.take() else {
            return true;
        };
        if self.readable.is_none() {
            self.discarding = true;
        }
        if let Some(message) = op.message.take() {
            let Some(writable) = &mut self.writable else {
                return true;
            };
            match self
                .writer_task
                .poll(|cx| Pin::new(&mut *writable).poll_ready(cx))
            {
                Poll::Pending => {
                    op.message = Some(message);
                    self.send_op = Some(op);
                    return false;
                }
                Poll::Ready(Err(_)) => return true,
                Poll::Ready(Ok(())) => {}
            }
            let copy = match &message {
                Message::Text(t) => Sent::Text(Bytes::copy_from_slice(t.as_bytes())),
                Message::Binary(b) => Sent::Binary(Bytes::copy_from_slice(b)),
            };
            self.parse_out();
            let Some(writable) = &mut self.writable else {
                return true;
            };
            let sent = Pin::new(&mut *writable).start_send(message);
            trace!("  start_send -> {:?}", sent);
            match sent {
                Ok(()) => {
                    assert!(!self.out_close, "a message accepted after our close frame");
                    self.accepted.push(Expect::Whole(copy));
                }
                Err(err) => {
                    let _ = err.to_string();
                    return true;
                }
            }
            if !op.flush {
                return true;
            }
        }
        let Some(writable) = &mut self.writable else {
            return true;
        };
        match self
            .writer_task
            .poll(|cx| Pin::new(&mut *writable).poll_flush(cx))
        {
            Poll::Pending => {
                self.send_op = Some(op);
                false
            }
            Poll::Ready(result) => {
                if result.is_ok() {
                    self.flushed();
                }
                true
            }
        }
    }

    fn poll_flush(&mut self, close: bool) -> bool {
        let Some(writable) = &mut self.writable else {
            return true;
        };
        if self.readable.is_none() {
            self.discarding = true;
        }
        let mut w = Pin::new(writable);
        let result = self.writer_task.poll(|cx| {
            if close {
                w.as_mut().poll_close(cx)
            } else {
                w.as_mut().poll_flush(cx)
            }
        });
        trace!(
            "  {} -> {:?}",
            if close { "close" } else { "flush" },
            result
        );
        match result {
            Poll::Pending => false,
            Poll::Ready(Ok(())) => {
                self.flushed();
                true
            }
            Poll::Ready(Err(err)) => {
                let _ = err.to_string();
                true
            }
        }
    }

    fn poll_closed(&mut self, i: usize) -> bool {
        // Before the halves are taken, `closed` holds messages for them;
        // it discards only once the readable was taken and let go.
        if self.readable.is_none() && self.opened_result.is_some() {
            self.discarding = true;
        }
        let (fut, task) = &mut self.closed[i];
        match task.poll(|cx| Pin::new(&mut *fut).poll(cx)) {
            Poll::Pending => false,
            Poll::Ready(outcome) => {
                trace!("  closed -> {:?}", outcome);
                drop(self.closed.remove(i));
                self.record_outcome(outcome);
                true
            }
        }
    }

    /// The peer's `index`th message, if it sent that many before its close.
    fn peer_message(&self, index: usize) -> Option<&Sent> {
        self.peer_events
            .iter()
            .filter_map(|e| match e {
                PeerEvent::Message(m) => Some(m),
                PeerEvent::Close(_) => None,
            })
            .nth(index)
    }

    // ---- streamed messages ----

    /// `next_streamed`, polled once (or while woken, as the input allows)
    /// and dropped if still pending; then up to K chunks of the message,
    /// as a `Stream`, through `AsyncRead`, or both, and the reader dropped
    /// wherever it got.
    fn read_streamed(&mut self, input: &mut Input<'_>) {
        let mode = [ReadMode::Stream, ReadMode::AsyncRead, ReadMode::Mixed][input.below(3)];
        let buf_size = [1, 2, 3, 5, 64, 1000, 70_000][input.below(7)];
        let chunks = 1 + input.below(16);
        let patience = input.below(4);
        let Some(mut readable) = self.readable.take() else {
            return;
        };
        let checking = self.pristine && !self.discarding;
        let index = self.received.len();
        let expected = self.peer_message(index).cloned();
        {
            let mut next = readable.next_streamed();
            let started = poll_patient(&self.reader_task, patience, |cx| {
                Pin::new(&mut next).poll(cx)
            });
            trace!(
                "  next_streamed -> {}",
                match &started {
                    Poll::Pending => "pending (dropped)".to_owned(),
                    Poll::Ready(Some(Ok(r))) => format!("{r:?}"),
                    Poll::Ready(Some(Err(e))) => format!("error {e:?}"),
                    Poll::Ready(None) => "end".to_owned(),
                }
            );
            match started {
                // Cancellation: nothing may be lost.
                Poll::Pending => drop(next),
                Poll::Ready(None) => {
                    if self.reader_ended.is_none() {
                        self.reader_ended = Some(true);
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    let _ = err.to_string();
                    assert!(self.reader_ended.is_none(), "an error after the end");
                    self.reader_ended = Some(false);
                }
                Poll::Ready(Some(Ok(reader))) => {
                    assert!(self.reader_ended.is_none(), "a message after the end");
                    drop(next);
                    if checking {
                        let Some(expected) = &expected else {
                            panic!("message {index} read in chunks: the peer sent no such message");
                        };
                        let text = matches!(expected, Sent::Text(_));
                        assert_eq!(reader.is_text(), text, "message {index}: kind");
                    }
                    let got = self.read_chunks(reader, input, mode, buf_size, chunks, patience);
                    if checking {
                        let expected = expected.as_ref().expect("checked above");
                        assert!(
                            got.matches(expected),
                            "message {index} read in chunks: {got:?}, sent {expected:?}"
                        );
                    }
                    self.received.push(got);
                }
            }
        }
        self.readable = Some(readable);
    }

    /// Reads up to `chunks` chunks of `reader`, then drops it.
    fn read_chunks(
        &mut self,
        mut reader: MessageReader<'_>,
        input: &mut Input<'_>,
        mode: ReadMode,
        buf_size: usize,
        chunks: usize,
        patience: usize,
    ) -> Got {
        let kind = reader.kind();
        assert_eq!(reader.is_text(), kind == MessageKind::Text);
        let mut got = Vec::new();
        let mut whole = false;
        // Bytes handed out through `AsyncRead` may end inside a character,
        // and what a `Stream` poll gives after that is the rest of a chunk.
        let mut cut_by_read = false;
        let mut buf = vec![0u8; buf_size];
        for _ in 0..chunks {
            let as_stream = match mode {
                ReadMode::Stream => true,
                ReadMode::AsyncRead => false,
                ReadMode::Mixed => input.bool(),
            };
            if as_stream {
                let polled = poll_patient(&self.reader_task, patience, |cx| {
                    Pin::new(&mut reader).poll_next(cx)
                });
                trace!(
                    "  chunk -> {}",
                    match &polled {
                        Poll::Pending => "pending".to_owned(),
                        Poll::Ready(Some(Ok(c))) => format!("{} bytes", c.len()),
                        Poll::Ready(Some(Err(e))) => format!("error {e:?}"),
                        Poll::Ready(None) => "end".to_owned(),
                    }
                );
                match polled {
                    Poll::Pending => break,
                    Poll::Ready(Some(Ok(chunk))) => {
                        assert!(!chunk.is_empty(), "an empty chunk");
                        if kind == MessageKind::Text && !cut_by_read {
                            assert!(
                                std::str::from_utf8(&chunk).is_ok(),
                                "a text chunk that is not UTF-8 on its own: {chunk:?}"
                            );
                        }
                        got.extend_from_slice(&chunk);
                        if mode == ReadMode::Stream {
                            assert_eq!(reader.received(), got.len() as u64, "received()");
                        }
                    }
                    Poll::Ready(Some(Err(err))) => {
                        self.chunk_error(&err);
                        let again = self
                            .reader_task
                            .poll(|cx| Pin::new(&mut reader).poll_next(cx));
                        assert!(
                            matches!(again, Poll::Ready(None)),
                            "after an error, the reader must end"
                        );
                        break;
                    }
                    Poll::Ready(None) => {
                        whole = true;
                        break;
                    }
                }
            } else {
                let mut read_buf = ReadBuf::new(&mut buf);
                let polled = poll_patient(&self.reader_task, patience, |cx| {
                    Pin::new(&mut reader).poll_read(cx, &mut read_buf)
                });
                trace!(
                    "  read -> {}",
                    match &polled {
                        Poll::Pending => "pending".to_owned(),
                        Poll::Ready(Ok(())) => format!("{} bytes", read_buf.filled().len()),
                        Poll::Ready(Err(e)) => format!("error {e:?}"),
                    }
                );
                match polled {
                    Poll::Pending => break,
                    Poll::Ready(Ok(())) if read_buf.filled().is_empty() => {
                        whole = true;
                        break;
                    }
                    Poll::Ready(Ok(())) => {
                        got.extend_from_slice(read_buf.filled());
                        cut_by_read = true;
                        assert!(reader.received() >= got.len() as u64, "received()");
                    }
                    Poll::Ready(Err(err)) => {
                        let inner = inner_error(&err).clone();
                        let kind = err.kind();
                        match inner {
                            Error::Protocol(_) => assert_eq!(kind, io::ErrorKind::InvalidData),
                            Error::Closed | Error::ConnectionLost => {
                                assert_eq!(kind, io::ErrorKind::UnexpectedEof)
                            }
                            _ => {}
                        }
                        self.chunk_error(&inner);
                        let mut again = ReadBuf::new(&mut buf);
                        let polled = self
                            .reader_task
                            .poll(|cx| Pin::new(&mut reader).poll_read(cx, &mut again));
                        assert!(
                            matches!(polled, Poll::Ready(Ok(()))) && again.filled().is_empty(),
                            "after an error, the reader must be at its end"
                        );
                        break;
                    }
                }
            }
        }
        if whole {
            assert!(reader.is_done(), "the reader ended but is not done");
            assert_eq!(reader.received(), got.len() as u64, "received() at the end");
            // Ended: it stays ended.
            let again = self
                .reader_task
                .poll(|cx| Pin::new(&mut reader).poll_next(cx));
            assert!(matches!(again, Poll::Ready(None)), "a chunk after the end");
        }
        // Dropped, part-way or not: the rest of the message is discarded.
        drop(reader);
        let payload = Bytes::from(got);
        Got {
            sent: match kind {
                MessageKind::Text => Sent::Text(payload),
                MessageKind::Binary => Sent::Binary(payload),
            },
            whole,
        }
    }

    /// A message read in chunks failed: the connection did.
    fn chunk_error(&mut self, err: &Error) {
        let _ = err.to_string();
        trace!("  chunk error {err:?}");
        assert!(self.reader_ended.is_none(), "an error after the end");
        self.reader_ended = Some(false);
    }

    /// `start_streamed` with a fragment size from the input, then chunks,
    /// flushes and a finish, as the input says; the writer is dropped at
    /// the end of the operation, finished or not.
    fn write_streamed(&mut self, input: &mut Input<'_>) {
        let text = input.bool();
        let kind = if text {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        let fragment_size = match input.below(8) {
            0 => DEFAULT_FRAGMENT_SIZE,
            1 => 1,
            2 => 2,
            3 => 3,
            4 => 125,
            5 => 126,
            6 => 1 + input.below(2000),
            _ => 1 + input.below(200_000),
        };
        let source = if text {
            input.text(150_000).into_bytes()
        } else {
            input.payload(150_000)
        };
        let patience = input.below(4);
        let steps = 1 + input.below(16);
        let Some(mut writable) = self.writable.take() else {
            return;
        };
        if self.readable.is_none() {
            self.discarding = true;
        }
        let close_maybe = self.close_maybe || !self.pristine;
        self.parse_out();
        let index = self.accepted.len();
        self.accepted.push(Expect::Streamed(StreamedOut {
            kind,
            fragment_size,
            data: Vec::new(),
            emitted: 0,
            maybe_more: false,
            fin: Fin::No,
            expect_1011: false,
            seen: 0,
            cut: None,
        }));
        let mut model = WriterModel {
            index,
            source,
            pos: 0,
            buffered: 0,
            tail: Vec::new(),
            finished: false,
            broken: false,
            patience,
        };
        trace!("  start_streamed {kind:?}, fragments of {fragment_size}, {steps} steps");
        {
            let mut writer = writable.start_streamed(kind);
            if fragment_size != DEFAULT_FRAGMENT_SIZE || input.bool() {
                writer = writer.fragment_size(fragment_size);
            }
            assert_eq!(writer.kind(), kind);
            for _ in 0..steps {
                if !self.write_step(&mut writer, &mut model, input) {
                    break;
                }
            }
            trace!("  writer dropped: {writer:?}");
            // Finished or not: dropped part-way, it abandons the message.
            drop(writer);
        }
        self.writable = Some(writable);
        let Some(Expect::Streamed(s)) = self.accepted.get_mut(index) else {
            unreachable!("the streamed entry is last");
        };
        if s.fin == Fin::No && s.emitted == 0 && !s.maybe_more {
            // Nothing was queued: nothing may show.
            assert!(
                s.seen == 0 && s.cut.is_none() && self.out_data <= index,
                "a streamed message that sent nothing is on the wire"
            );
            self.accepted.pop();
        } else if s.fin != Fin::Yes {
            s.expect_1011 = !close_maybe && !model.broken && s.fin == Fin::No && !s.maybe_more;
            s.check_cut(index);
            self.close_maybe = true;
        }
        self.parse_out();
    }

    fn streamed(&mut self, index: usize) -> &mut StreamedOut {
        match self.accepted.get_mut(index) {
            Some(Expect::Streamed(s)) => s,
            _ => unreachable!("no streamed entry at {index}"),
        }
    }

    /// The next piece of the writer's source, of an input-chosen size.
    fn next_piece(model: &WriterModel, input: &mut Input<'_>, size: usize) -> Bytes {
        let n = match input.below(4) {
            0 => input.below(8),
            1 => input.below(2 * size.min(100_000) + 2),
            2 => input.size(150_000),
            _ => usize::MAX,
        };
        let end = model.pos.saturating_add(n).min(model.source.len());
        Bytes::copy_from_slice(&model.source[model.pos..end])
    }

    /// One step of a streamed write; `false` ends the operation.
    fn write_step(
        &mut self,
        writer: &mut MessageWriter<'_>,
        model: &mut WriterModel,
        input: &mut Input<'_>,
    ) -> bool {
        let index = model.index;
        let size = self.streamed(index).fragment_size;
        let text = self.streamed(index).kind == MessageKind::Text;
        let patience = model.patience;
        match input.below(12) {
            // A chunk through `Sink<Bytes>` or `Sink<Utf8Bytes>`, or invalid
            // text (a few continuation bytes, then 0xFF).
            step @ 0..=5 => {
                let (chunk, as_str) = if step == 5 && text {
                    let mut bad = vec![0x80 | (input.u8() & 0x3F); input.below(4)];
                    bad.push(0xFF);
                    (Bytes::from(bad), false)
                } else {
                    let mut chunk = Self::next_piece(model, input, size);
                    let as_str = text && step == 4;
                    if as_str {
                        // Whole characters, or (starting inside one) an
                        // ASCII byte, which must then be refused.
                        let end = match std::str::from_utf8(&chunk) {
                            Ok(_) => chunk.len(),
                            Err(e) => e.valid_up_to(),
                        };
                        chunk.truncate(end);
                        if end == 0 && model.pos < model.source.len() {
                            chunk = Bytes::from_static(b"x");
                        }
                    }
                    (chunk, as_str)
                };
                let ready = poll_patient(&self.writer_task, patience, |cx| {
                    Sink::<Bytes>::poll_ready(Pin::new(&mut *writer), cx)
                });
                trace!("  writer poll_ready -> {ready:?}");
                match ready {
                    Poll::Pending => return false,
                    Poll::Ready(Err(err)) => {
                        if !model.finished {
                            model.broken = true;
                        } else {
                            assert!(matches!(err, Error::Closed), "ready after finish: {err:?}");
                        }
                        return false;
                    }
                    Poll::Ready(Ok(())) => {
                        assert!(!model.finished, "a finished writer is ready for more");
                    }
                }
                let len = chunk.len();
                let continues = if text {
                    utf8_continues(&model.tail, &chunk)
                } else {
                    Some(Vec::new())
                };
                let sent = if as_str {
                    match Utf8Bytes::try_from(chunk.clone()) {
                        Ok(s) => Sink::<Utf8Bytes>::start_send(Pin::new(&mut *writer), s),
                        Err(_) => unreachable!("cut on a character boundary"),
                    }
                } else {
                    Sink::<Bytes>::start_send(Pin::new(&mut *writer), chunk.clone())
                };
                trace!("  writer start_send({len} bytes) -> {sent:?}");
                let Some(tail) = continues else {
                    assert!(
                        matches!(sent, Err(Error::InvalidText)),
                        "text that is not UTF-8 after what was accepted: {sent:?} \
                         (pending {:?}, chunk {:?})",
                        model.tail,
                        &chunk[..len.min(8)]
                    );
                    return true;
                };
                let (emits, buffered) = predict_append(model.buffered, len, size);
                match sent {
                    Ok(()) => {
                        model.tail = tail;
                        model.buffered = buffered;
                        if !(step == 5 && text) {
                            model.pos += len;
                        }
                        let s = self.streamed(index);
                        s.data.extend_from_slice(&chunk);
                        s.emitted += emits;
                    }
                    Err(Error::InvalidText) => panic!("valid text refused"),
                    Err(err) => {
                        assert!(emits > 0, "start_send failed with nothing to send: {err:?}");
                        model.broken = true;
                        return false;
                    }
                }
                true
            }
            // A piece through `AsyncWrite`.
            6 | 7 => {
                let chunk = Self::next_piece(model, input, size);
                let polled = poll_patient(&self.writer_task, patience, |cx| {
                    AsyncWrite::poll_write(Pin::new(&mut *writer), cx, &chunk)
                });
                trace!("  writer poll_write({} bytes) -> {polled:?}", chunk.len());
                let expect_n = chunk.len().min(size - model.buffered);
                let continues = if text {
                    utf8_continues(&model.tail, &chunk[..expect_n])
                } else {
                    Some(Vec::new())
                };
                match polled {
                    Poll::Pending => false,
                    Poll::Ready(Ok(n)) => {
                        assert!(!model.finished, "poll_write after finish");
                        assert_eq!(n, expect_n, "poll_write took {n} bytes");
                        let tail = continues.unwrap_or_else(|| {
                            panic!("poll_write took text that is not UTF-8 after what was accepted")
                        });
                        model.tail = tail;
                        model.pos += n;
                        model.buffered += n;
                        let emits = if model.buffered == size {
                            model.buffered = 0;
                            size
                        } else {
                            0
                        };
                        let s = self.streamed(index);
                        s.data.extend_from_slice(&chunk[..n]);
                        s.emitted += emits;
                        true
                    }
                    Poll::Ready(Err(err)) => {
                        let inner = inner_error(&err).clone();
                        if err.kind() == io::ErrorKind::InvalidData {
                            assert!(matches!(inner, Error::InvalidText), "{inner:?}");
                            assert!(continues.is_none(), "poll_write refused valid text");
                            return true;
                        }
                        if model.finished {
                            assert!(
                                matches!(inner, Error::Closed),
                                "write after finish: {inner:?}"
                            );
                        } else {
                            model.broken = true;
                        }
                        false
                    }
                }
            }
            // A flush: what is coalesced goes as a fragment.
            8 | 9 => {
                let as_sink = input.bool();
                let emits = !model.finished && model.buffered > 0;
                let polled = poll_patient(&self.writer_task, patience, |cx| {
                    if as_sink {
                        Sink::<Bytes>::poll_flush(Pin::new(&mut *writer), cx)
                    } else {
                        AsyncWrite::poll_flush(Pin::new(&mut *writer), cx)
                            .map_err(|e| inner_error(&e).clone())
                    }
                });
                trace!("  writer flush -> {polled:?}");
                let buffered = std::mem::take(&mut model.buffered);
                match polled {
                    Poll::Pending => {
                        self.streamed(index).emitted += buffered;
                        false
                    }
                    Poll::Ready(Ok(())) => {
                        self.streamed(index).emitted += buffered;
                        self.parse_out();
                        assert!(
                            self.out_data >= index,
                            "flush succeeded with messages unwritten"
                        );
                        let s = self.streamed(index);
                        assert_eq!(
                            s.seen, s.emitted,
                            "flush succeeded with fragments unwritten"
                        );
                        true
                    }
                    Poll::Ready(Err(err)) => {
                        if emits && !matches!(err, Error::Closed) {
                            // The fragment went and the flush failed (the
                            // socket, or the peer's traffic it read); or it
                            // did not go, the connection having failed
                            // before. (`Closed`: refused, a close being out;
                            // no connection ends with it.)
                            self.streamed(index).maybe_more = true;
                        }
                        if !model.finished {
                            model.broken = true;
                        }
                        false
                    }
                }
            }
            // Finish: the final fragment, then a flush.
            _ => {
                let as_sink = input.bool();
                let unfinished_text = text && !model.finished && !model.tail.is_empty();
                let was_finished = model.finished;
                let polled = poll_patient(&self.writer_task, patience, |cx| {
                    if as_sink {
                        Sink::<Bytes>::poll_close(Pin::new(&mut *writer), cx)
                    } else {
                        AsyncWrite::poll_shutdown(Pin::new(&mut *writer), cx)
                            .map_err(|e| inner_error(&e).clone())
                    }
                });
                trace!("  writer finish -> {polled:?}");
                if unfinished_text {
                    assert!(
                        matches!(polled, Poll::Ready(Err(Error::InvalidText))),
                        "finished text that ends inside a character: {polled:?}"
                    );
                    return true;
                }
                let finish = |s: &mut StreamedOut, fin: Fin| {
                    if !was_finished {
                        s.fin = fin;
                        if fin == Fin::Yes {
                            s.emitted = s.data.len();
                        } else {
                            s.maybe_more = true;
                        }
                    }
                };
                match polled {
                    Poll::Pending => {
                        finish(self.streamed(index), Fin::Yes);
                        model.finished = true;
                        false
                    }
                    Poll::Ready(Ok(())) => {
                        finish(self.streamed(index), Fin::Yes);
                        model.finished = true;
                        model.buffered = 0;
                        self.parse_out();
                        assert!(
                            self.out_data > index,
                            "finish succeeded with the message unwritten"
                        );
                        true
                    }
                    Poll::Ready(Err(err)) => {
                        if !was_finished {
                            // As for a flush: the final fragment may have
                            // gone, unless it was refused.
                            if !matches!(err, Error::Closed) {
                                finish(self.streamed(index), Fin::Maybe);
                            }
                            model.broken = true;
                        }
                        false
                    }
                }
            }
        }
    }

    // ---- the peer ----

    fn peer(&mut self, input: &mut Input<'_>) {
        let mut w = self.io.wire();
        match input.below(10) {
            0..=3 => {
                let text = input.bool();
                let (payload, sent) = if text {
                    let s = input.text(150_000);
                    let b = Bytes::from(s);
                    (b.to_vec(), Sent::Text(b))
                } else {
                    let p = input.payload(150_000);
                    (p.clone(), Sent::Binary(Bytes::from(p)))
                };
                let opcode = if text { OpCode::Text } else { OpCode::Binary };
                let mut pings = Vec::new();
                let (bytes, _) = fragmented(
                    input,
                    opcode,
                    &payload,
                    |_| None,
                    |input, out| {
                        if input.u8() % 4 == 0 {
                            let p = input.payload(125);
                            out.extend_from_slice(&frame(true, OpCode::Ping, None, &p));
                            pings.push(Bytes::from(p));
                        }
                    },
                );
                if !self.peer_closed {
                    self.peer_pings.extend(pings);
                    self.peer_events.push(PeerEvent::Message(sent));
                }
                w.peer_send(&bytes);
            }
            4 => {
                let p = input.payload(125);
                let op = if input.bool() {
                    OpCode::Ping
                } else {
                    OpCode::Pong
                };
                if op == OpCode::Ping && !self.peer_closed {
                    self.peer_pings.push(Bytes::copy_from_slice(&p));
                }
                w.peer_send(&frame(true, op, None, &p));
            }
            5 => {
                // Answers the client's latest keepalive ping.
                drop(w);
                self.parse_out();
                let p = self.pings_out.last().cloned().unwrap_or_default();
                self.io
                    .wire()
                    .peer_send(&frame(true, OpCode::Pong, None, &p));
            }
            6 => {
                let body = if input.u8() % 4 == 0 {
                    None
                } else {
                    Some((close_code(input).as_u16(), input.text(123)))
                };
                let mut payload = Vec::new();
                if let Some((code, reason)) = &body {
                    payload.extend_from_slice(&code.to_be_bytes());
                    payload.extend_from_slice(reason.as_bytes());
                }
                if !self.peer_closed {
                    self.peer_events.push(PeerEvent::Close(body));
                    self.peer_closed = true;
                }
                self.close_maybe = true;
                w.peer_send(&frame(true, OpCode::Close, None, &payload));
            }
            7 | 8 => {
                let n = input.below(24);
                let raw = input.bytes(n);
                self.pristine = false;
                w.peer_send(raw);
            }
            _ => {
                w.peer_eof = true;
                if let Some(r) = w.read_waker.take() {
                    r.wake();
                }
            }
        }
    }

    fn plan(&mut self, input: &mut Input<'_>) {
        let mut w = self.io.wire();
        let n = 1 + input.below(8);
        let reads = input.bool();
        for _ in 0..n {
            let b = input.u8();
            if reads {
                let act = match b % 8 {
                    0..=3 => ReadAct::Upto(1 + usize::from(b >> 3) * usize::from(b >> 3)),
                    4 | 5 => ReadAct::Pending(b & 0x10 != 0),
                    6 => ReadAct::Upto(1),
                    _ => ReadAct::Error,
                };
                w.read_plan.push_back(act);
            } else {
                let act = match b % 16 {
                    0..=7 => WriteAct::Upto(1 + usize::from(b >> 4) * 97),
                    8..=10 => WriteAct::Pending(b & 0x10 != 0),
                    11 | 12 => WriteAct::FlushPending(b & 0x10 != 0),
                    13 => WriteAct::Zero,
                    14 => WriteAct::Upto(1),
                    _ => WriteAct::Error,
                };
                w.write_plan.push_back(act);
            }
        }
    }

    // ---- the run ----

    async fn op(&mut self, input: &mut Input<'_>) {
        let op = input.below(28);
        trace!(
            "op {op}: accepted {} written {} received {} outcome {:?}",
            self.accepted.len(),
            self.out_data,
            self.received.len(),
            self.outcome
        );
        match op {
            0 | 1 => self.poll_opened(),
            2 => {
                self.opened = None;
                self.note_no_opener();
            }
            3 | 4 => {
                if self.send_op.is_none() {
                    let message = if input.bool() {
                        Message::text(input.text(150_000))
                    } else {
                        Message::binary(input.payload(150_000))
                    };
                    self.send_op = Some(SendOp {
                        message: Some(message),
                        flush: input.bool(),
                    });
                }
                self.poll_send();
            }
            5 | 6 => {
                for _ in 0..1 + input.below(4) {
                    if self.poll_send() {
                        break;
                    }
                }
            }
            // Cancellation: the send future is dropped wherever it was.
            7 => self.send_op = None,
            8 => {
                self.poll_flush(false);
            }
            9 => {
                if self.writable.is_some() {
                    self.close_maybe = true;
                }
                self.poll_flush(true);
            }
            10..=12 => {
                for _ in 0..1 + input.below(4) {
                    if self.poll_next() == Next::End {
                        break;
                    }
                }
            }
            13 => {
                if let Some(ws) = &self.ws {
                    let code = match input.below(4) {
                        0 => 1000,
                        1 => 3000 + input.below(2000) as u16,
                        2 => input.u16(),
                        _ => 1001,
                    };
                    let reason = if input.u8() < 240 {
                        input.text(123)
                    } else {
                        "x".repeat(124)
                    };
                    let valid =
                        (code == 1000 || (3000..=4999).contains(&code)) && reason.len() <= 123;
                    let result = ws.close(code, &reason);
                    if result.is_ok() {
                        self.close_maybe = true;
                    }
                    assert_eq!(
                        result.is_ok(),
                        valid,
                        "close({code}, {} bytes)",
                        reason.len()
                    );
                }
            }
            14 => {
                if self.closed.len() < 2 {
                    if let Some(ws) = &self.ws {
                        self.closed.push((ws.closed(), Task::new()));
                    }
                }
                if !self.closed.is_empty() {
                    let i = input.below(self.closed.len());
                    self.poll_closed(i);
                }
            }
            15 => {
                if !self.closed.is_empty() {
                    let i = input.below(self.closed.len());
                    drop(self.closed.remove(i));
                }
            }
            16 => match input.below(4) {
                0 => {
                    if self.readable.take().is_some() {
                        self.discarding = true;
                    }
                }
                1 => {
                    self.send_op = None;
                    self.writable = None;
                }
                2 => {
                    self.ws = None;
                    self.note_no_opener();
                }
                _ => {}
            },
            17 | 18 => self.peer(input),
            19 | 20 => self.plan(input),
            21 => self.io.wire().wake_later(),
            22 => {
                for _ in 0..1 + input.below(8) {
                    tokio::task::yield_now().await;
                }
            }
            24 | 25 => self.read_streamed(input),
            26 | 27 => self.write_streamed(input),
            _ => {
                let ms = match input.below(4) {
                    0 => u64::from(input.u8()),
                    1 => 1000 * u64::from(input.u8() % 32),
                    2 => 10_000,
                    _ => 20_000,
                };
                tokio::time::advance(Duration::from_millis(ms)).await;
            }
        }
    }

    /// The peer turns well-behaved and ends the stream; every future left
    /// must finish, each polled only when its waker fired.
    async fn finish(mut self) {
        {
            let mut w = self.io.wire();
            w.finishing = true;
            w.peer_eof = true;
            w.wake_later();
        }
        if let Some(ws) = &self.ws {
            if self.closed.is_empty() {
                self.closed.push((ws.closed(), Task::new()));
            }
            // As an application would: take the halves and read them, or
            // what waits for them holds `closed` back forever.
            if self.opened.is_none() && self.opened_result.is_none() {
                self.opened = Some(ws.opened());
                self.opened_task.schedule();
            }
        }
        let mut first = true;
        let mut idle = 0;
        for _ in 0..20_000 {
            let mut polled = false;
            if self.opened.is_some() && (first || self.opened_task.woken()) {
                polled = true;
                self.poll_opened();
            }
            let mut reader_done = self.reader_ended.is_some() || self.readable.is_none();
            if !reader_done && (first || self.reader_task.woken()) {
                polled = true;
                // Like `while let Some(_) = next().await`: on until Pending.
                loop {
                    match self.poll_next() {
                        Next::Item => continue,
                        Next::Pending => break,
                        Next::End => {
                            reader_done = true;
                            break;
                        }
                    }
                }
            }
            let mut writer_busy =
                self.writable.is_some() && (self.send_op.is_some() || !self.writable_flushed);
            if writer_busy && (first || self.writer_task.woken()) {
                polled = true;
                // One task: the send in flight, then a flush.
                let sent = self.send_op.is_none() || self.poll_send();
                if sent && self.poll_flush(false) {
                    self.writable_flushed = true;
                }
                writer_busy = self.send_op.is_some() || !self.writable_flushed;
            }
            let mut i = 0;
            while i < self.closed.len() {
                if first || self.closed[i].1.woken() {
                    polled = true;
                    if self.poll_closed(i) {
                        continue;
                    }
                }
                i += 1;
            }
            first = false;
            let done =
                self.opened.is_none() && reader_done && !writer_busy && self.closed.is_empty();
            if done {
                self.check_end();
                return;
            }
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            idle = if polled { 0 } else { idle + 1 };
            if idle > 200 {
                panic!(
                    "hang: futures pending and none woken (opened {}, reader {}, writer {}, closed {})",
                    self.opened.is_some(),
                    !reader_done,
                    writer_busy,
                    self.closed.len()
                );
            }
        }
        panic!("the connection does not finish: futures keep waking without end");
    }

    fn check_end(&mut self) {
        self.parse_out();
        let clean = matches!(self.outcome, Some(Ok(_)));
        if clean {
            assert_eq!(
                self.out_data,
                self.accepted.len(),
                "clean close with messages unsent"
            );
            assert!(self.out_close, "clean close without our close frame");
            assert!(self.out_buf.is_empty(), "clean close with a partial frame");
        }
        if self.pristine {
            // Pongs answer the peer's pings, in order.
            let mut pings = self.peer_pings.iter();
            for pong in &self.pongs_out {
                assert!(pings.any(|p| p == pong), "pong {pong:?} answers no ping");
            }
            if let Some(Ok(info)) = &self.outcome {
                let close = self.peer_events.iter().find_map(|e| match e {
                    PeerEvent::Close(body) => Some(body.clone()),
                    PeerEvent::Message(_) => None,
                });
                let expected = match close {
                    Some(Some((code, reason))) => (code, reason),
                    Some(None) => (1005, String::new()),
                    None => panic!("clean close without a close from the peer"),
                };
                assert_eq!((info.code, info.reason.clone()), expected, "close info");
            }
            if self.reader_ended == Some(true) && !self.discarding {
                let messages: Vec<Sent> = self
                    .peer_events
                    .iter()
                    .map_while(|e| match e {
                        PeerEvent::Message(m) => Some(m.clone()),
                        PeerEvent::Close(_) => None,
                    })
                    .collect();
                assert_eq!(
                    self.received.len(),
                    messages.len(),
                    "messages read before the close: {:?}",
                    self.received
                );
                for (i, (got, sent)) in self.received.iter().zip(&messages).enumerate() {
                    assert!(
                        got.matches(sent),
                        "message {i}: read {got:?}, sent {sent:?}"
                    );
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let config = input.u8();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let io = FuzzIo(Arc::new(Mutex::new(Wire {
            config,
            ..Wire::default()
        })));
        let mut options = Options::default();
        if config & 8 != 0 {
            options = options.write_high_water(1024);
        }
        let ws = WebSocketStream::connect_over(io.clone(), "ws://fuzz/", options);
        let mut h = Harness::new(io, ws);
        let mut ops = 0;
        while !input.is_empty() && ops < MAX_OPS {
            ops += 1;
            h.op(&mut input).await;
        }
        h.finish().await;
    });
});
