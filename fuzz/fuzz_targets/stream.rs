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
//! Checked: what the transport received decodes (as a server decodes)
//! into the messages the sink accepted, in order, all of them once a flush
//! succeeded or the close was clean; nothing follows a close frame and
//! nothing is written after shutdown; sending fails once our close is out;
//! while the peer was well-formed, the readable yields its messages in
//! order and a clean close reports the peer's code. Finally the peer ends
//! the stream and every future must finish, polled only when its waker
//! fires: a lost wakeup or a busy loop fails the run.
//!
//! Input: `[config] [op]...`. config bits 0-2: the server's answer;
//! bit 3: a 1 KiB write high-water mark instead of the default; bit 4: the
//! transport takes vectored writes.

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
    ClosedFuture, Error, Message, Opened, OpenedFuture, Options, Readable, WebSocketStream,
    Writable,
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

    accepted: Vec<Sent>,
    received: Vec<Sent>,

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
            pristine: true,
            peer_events: Vec::new(),
            peer_pings: Vec::new(),
            peer_closed: false,
            out_decoder: FrameDecoder::new(Role::Server, usize::MAX),
            out_buf: BytesMut::new(),
            out_seen: 0,
            out_data: 0,
            out_close: false,
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
            match header.opcode {
                OpCode::Text | OpCode::Binary => {
                    assert!(header.fin, "a fragmented message");
                    let got = if header.opcode == OpCode::Text {
                        Sent::Text(payload)
                    } else {
                        Sent::Binary(payload)
                    };
                    assert_eq!(
                        self.accepted.get(self.out_data),
                        Some(&got),
                        "message {} on the wire",
                        self.out_data
                    );
                    self.out_data += 1;
                }
                OpCode::Continuation => panic!("a continuation frame"),
                OpCode::Ping => self.pings_out.push(payload),
                OpCode::Pong => self.pongs_out.push(payload),
                OpCode::Close => {
                    match &payload[..] {
                        [] => {}
                        [a, b, reason @ ..] => {
                            let code = u16::from_be_bytes([*a, *b]);
                            assert!(
                                wsstream::CloseCode::new(code).is_some(),
                                "close code {code}"
                            );
                            assert!(std::str::from_utf8(reason).is_ok());
                        }
                        [_] => panic!("one-byte close payload"),
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
                let got = Sent::of(&message);
                if self.pristine && !self.discarding {
                    let expected = self
                        .peer_events
                        .iter()
                        .filter_map(|e| match e {
                            PeerEvent::Message(m) => Some(m),
                            PeerEvent::Close(_) => None,
                        })
                        .nth(self.received.len());
                    assert_eq!(expected, Some(&got), "message {} read", self.received.len());
                }
                self.received.push(got);
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
                    self.accepted.push(copy);
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
        let op = input.below(24);
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
                assert_eq!(self.received, messages, "messages read before the close");
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
