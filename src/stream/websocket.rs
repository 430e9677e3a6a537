//! `WebSocketStream`: connect, `opened`, `closed`, `close`, and accept.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio_util::sync::CancellationToken;

use super::halves::{Readable, Writable};
use super::open::{self, Established};
use super::options::{Options, ServerOptions};
use super::request_head::RequestHead;
use super::shared::{Opener, Shared};
use crate::handshake::Target;
use crate::proto::{CloseCode, CloseFrame, MAX_CLOSE_REASON};
use crate::trace;
use crate::transport::{BoxedTransport, Transport};
use crate::Error;
#[cfg(doc)]
use crate::{handshake::HandshakeError, Timeout};

/// A WebSocket connection, shaped like WHATWG's `WebSocketStream`.
///
/// [`connect`](Self::connect) returns at once and connects in the
/// background; [`opened`](Self::opened) resolves to the readable and
/// writable halves, [`closed`](Self::closed) to how the connection ended,
/// and [`close`](Self::close) starts the close handshake.
pub struct WebSocketStream {
    /// The shared state, held as one of the handles that may take the halves.
    opener: Opener,
    request: RequestHead,
}

/// The open connection, as WHATWG's `opened` promise gives it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Opened {
    /// The messages from the peer: a `futures::Stream`.
    pub readable: Readable,
    /// Where messages to the peer go: a `futures::Sink`.
    pub writable: Writable,
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
    /// The negotiated extensions, as the `Sec-WebSocket-Extensions` value
    /// (empty when none).
    pub extensions: String,
    /// The accepting response (`101 Switching Protocols`, or `200` over
    /// HTTP/2, with its version), status and fields
    /// (`Set-Cookie`, say): on a client, as the server sent it; on a
    /// server, as it was sent.
    pub response: http::Response<()>,
}

/// `Opened` is also a `Stream` and a `Sink` (its readable and writable), so
/// code that wants one duplex value can use it whole, for example with
/// `StreamExt::split`.
impl futures_core::Stream for Opened {
    type Item = Result<crate::Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.readable).poll_next(cx)
    }
}

impl futures_sink::Sink<crate::Message> for Opened {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.writable).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, message: crate::Message) -> Result<(), Error> {
        Pin::new(&mut self.writable).start_send(message)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.writable).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.writable).poll_close(cx)
    }
}

/// How a connection ended cleanly: the code and reason of the peer's close
/// frame, as WHATWG's `closed` promise gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code; 1005 when the close frame carried none.
    pub code: u16,
    /// The close reason (empty when none).
    pub reason: String,
}

impl CloseInfo {
    /// A close frame without a code (1005, "no status received").
    pub const NO_STATUS: Self = Self {
        code: 1005,
        reason: String::new(),
    };
}

impl WebSocketStream {
    /// Starts connecting to a `ws`, `wss`, `http` or `https` URL and returns
    /// at once, like `new WebSocketStream(url, options)`.
    ///
    /// Must be called within a tokio runtime: the connection and handshake
    /// run on a task of their own until [`opened`](Self::opened) resolves.
    /// After that, the open connection runs only as its halves and
    /// `closed` are polled, with one exception: when the peer breaks the
    /// protocol, a task drains the socket for at most 2 s or 1 MiB after
    /// our close frame, so that a TCP reset does not destroy that frame
    /// before the peer reads it. A bad URL, bad subprotocols, a reserved
    /// header or a missing runtime make `opened` (and `closed`) fail before
    /// any I/O.
    pub fn connect(url: impl AsRef<str>, options: Options) -> Self {
        Self::start(url.as_ref(), options, None)
    }

    /// Like [`connect`](Self::connect), but runs the handshake over a
    /// transport the caller opened: a tunnel, a unix socket, an in-memory
    /// pipe. The URL still gives the `Host` header and the request path.
    pub fn connect_over<T: Transport>(io: T, url: impl AsRef<str>, options: Options) -> Self {
        Self::start(url.as_ref(), options, Some(Box::pin(io)))
    }

    fn start(url: &str, options: Options, io: Option<BoxedTransport>) -> Self {
        let abort = options
            .signal
            .as_ref()
            .map_or_else(CancellationToken::new, CancellationToken::child_token);
        let shared = Shared::new(Some(abort.clone()));
        let ws = Self {
            opener: Opener::new(shared.clone()),
            request: RequestHead::None,
        };
        let prepared = Target::parse(url)
            .map_err(Error::InvalidUrl)
            .and_then(|target| options.validate().map(|()| target));
        let target = match prepared {
            Ok(target) => target,
            Err(err) => {
                shared.finish_opening(Err(err));
                return ws;
            }
        };
        if !open::runtime_ready() {
            shared.finish_opening(Err(Error::NoRuntime));
            return ws;
        }
        let weak = Arc::downgrade(&shared);
        let span = trace::client_span(&target.url);
        let opening = async move {
            let result = open::client::open(io, &target, &options, &abort).await;
            trace::opening_failed(&result);
            if let Some(shared) = weak.upgrade() {
                shared.finish_opening(result);
            }
        };
        tokio::spawn(trace::instrument(opening, &span));
        drop(shared);
        ws
    }

    /// Answers a client's opening handshake on `io` and returns the open
    /// connection (its [`opened`](Self::opened) resolves at once).
    ///
    /// A request that cannot be upgraded is answered with a plain-text
    /// reason and `Sec-WebSocket-Version: 13`, and the error says why:
    ///
    /// | the request | answer | error |
    /// |---|---|---|
    /// | not `GET` | 405 | [`HandshakeError::Rejected`] |
    /// | no `Upgrade: websocket`, or a version other than 13 | 426 | [`HandshakeError::Rejected`] |
    /// | not HTTP/1.1, no `Host`, no `Connection: Upgrade`, a missing, repeated or invalid key, a request target or field that is not valid | 400 | [`HandshakeError::Rejected`] |
    /// | not HTTP at all | 400 | [`HandshakeError::Malformed`] |
    /// | a head over 64 KiB, or over 128 fields | 431 | [`HandshakeError::HeadTooLarge`], [`HandshakeError::TooManyHeaders`] |
    /// | the client left before its head was complete | none | [`HandshakeError::Incomplete`] |
    ///
    /// Reading the request and answering it are bounded by
    /// [`ServerOptions::handshake_timeout`] (10 s by default), so a client
    /// that drips its request fails with [`Timeout::Open`]; a failing
    /// socket gives [`Error::Io`].
    ///
    /// Cancel safety: dropping the future drops `io` and whatever part of
    /// the handshake it held.
    ///
    /// For a TCP stream, set `TCP_NODELAY` before handing it over (the
    /// client side does so itself): wsstream already batches frames into
    /// few writes, and with Nagle's algorithm on, the tail of a batch
    /// waits for the peer's delayed ACK (40 ms per round trip on Linux).
    pub fn accept<T: Transport>(
        io: T,
        options: ServerOptions,
    ) -> impl Future<Output = Result<Self, Error>> + Send + 'static {
        // Boxed: a server's connection task usually awaits this and then
        // lives as long as the connection, and a task is as large as the
        // largest future it awaits. The handshake's state (2.4 KiB) would
        // stay reserved in every idle connection's task; boxed, the task
        // holds a pointer, and the box is freed once the handshake is done.
        let span = trace::server_span(&io);
        let accepting = async move {
            if !open::runtime_ready() {
                return Err(Error::NoRuntime);
            }
            open::server::accept(Box::pin(io), &options).await
        };
        Box::pin(trace::instrument(accepting, &span))
    }

    /// The server side of a connection whose handshake is done.
    pub(crate) fn established(established: Established, request: RequestHead) -> Self {
        let shared = Shared::new(None);
        let ws = Self {
            opener: Opener::new(shared.clone()),
            request,
        };
        shared.finish_opening(Ok(established));
        ws
    }

    /// WHATWG's `opened`: resolves to the readable and writable halves and
    /// what the handshake negotiated, or fails if the connection could not
    /// be opened. The halves are handed out once; later calls fail with
    /// [`Error::AlreadyOpened`].
    ///
    /// The future owns what it needs (it is `'static`), and dropping it
    /// before it resolves takes nothing.
    pub fn opened(&self) -> OpenedFuture {
        OpenedFuture {
            opener: Some(Opener::new(self.opener.shared().clone())),
        }
    }

    /// WHATWG's `closed`: resolves to the peer's close code and reason after
    /// a clean close, and fails with the error that ended the connection
    /// otherwise (no close handshake, a protocol violation, an I/O error,
    /// an aborted opening). May be awaited from any task, any number of
    /// times; the future is `'static`.
    ///
    /// The close handshake moves forward as the readable is polled. While
    /// the readable sits unpolled, or is not yet taken from
    /// [`opened`](Self::opened), polling `closed` reads in its place and
    /// holds the first message for it, reading on once it is taken: so
    /// `closed` may be awaited before `opened` without losing a message.
    /// Once no one can read (the readable was dropped or ended, or the
    /// halves were never taken and this handle and every `opened` future
    /// are gone), `closed` reads and discards data messages.
    pub fn closed(&self) -> ClosedFuture {
        ClosedFuture {
            shared: self.opener.shared().clone(),
        }
    }

    /// WHATWG's `close(code, reason)`: starts the close handshake with code
    /// 1000 or 3000–4999 and a reason of at most 123 UTF-8 bytes. Invalid
    /// arguments fail at once and change nothing. Before the connection
    /// opens, closing aborts it: `opened` and `closed` fail with
    /// [`Error::Aborted`]. Closing twice, or after the connection ended,
    /// does nothing.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        let frame = whatwg_close_frame(code, reason)?;
        self.opener.shared().close(Some(frame));
        Ok(())
    }

    /// Starts the close handshake with any code an endpoint may send, where
    /// [`close`](Self::close) allows only WHATWG's: 1001 from a server going
    /// down, 1008 for a policy violation, 1011, 1012 or 1013. A
    /// [`CloseFrame`] holds only codes that may go on the wire and a reason
    /// of at most 123 bytes, so this cannot fail; otherwise it is `close`.
    ///
    /// ```
    /// # fn shutting_down(ws: &wsstream::WebSocketStream) {
    /// use wsstream::{CloseCode, CloseFrame};
    ///
    /// ws.close_with(CloseFrame::truncated(CloseCode::GOING_AWAY, "server shutting down"));
    /// # }
    /// ```
    pub fn close_with(&self, frame: CloseFrame) {
        self.opener.shared().close(Some(frame));
    }

    /// The upgrade request this server-side connection answered (`None`
    /// for a client).
    pub fn request(&self) -> Option<&http::Request<()>> {
        self.request.get()
    }
}

impl fmt::Debug for WebSocketStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketStream").finish_non_exhaustive()
    }
}

/// Checks `close` arguments the WHATWG way.
fn whatwg_close_frame(code: u16, reason: &str) -> Result<CloseFrame, Error> {
    if code != 1000 && !(3000..=4999).contains(&code) {
        return Err(Error::InvalidCloseCode(code));
    }
    if reason.len() > MAX_CLOSE_REASON {
        return Err(Error::CloseReasonTooLong(reason.len()));
    }
    let code = CloseCode::new(code).ok_or(Error::InvalidCloseCode(code))?;
    CloseFrame::new(code, reason).ok_or(Error::CloseReasonTooLong(reason.len()))
}

/// The future [`WebSocketStream::opened`] returns.
#[must_use = "futures do nothing unless polled"]
pub struct OpenedFuture {
    /// Until it resolves: it may take the halves.
    opener: Option<Opener>,
}

impl Future for OpenedFuture {
    type Output = Result<Opened, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(opener) = &self.opener else {
            return Poll::Ready(Err(Error::AlreadyOpened));
        };
        let negotiated = std::task::ready!(opener.shared().poll_opened(cx));
        // Resolved: this future can take nothing more.
        let opener = self.opener.take();
        Poll::Ready(negotiated.and_then(|negotiated| {
            let shared = opener.ok_or(Error::AlreadyOpened)?.shared().clone();
            Ok(Opened {
                readable: Readable::new(shared.clone()),
                writable: Writable::new(shared),
                protocol: negotiated.protocol,
                extensions: negotiated.extensions,
                response: negotiated.response,
            })
        }))
    }
}

impl fmt::Debug for OpenedFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedFuture").finish_non_exhaustive()
    }
}

/// The future [`WebSocketStream::closed`] returns.
#[must_use = "futures do nothing unless polled"]
pub struct ClosedFuture {
    shared: Arc<Shared>,
}

impl Future for ClosedFuture {
    type Output = Result<CloseInfo, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.shared.poll_closed(cx)
    }
}

impl fmt::Debug for ClosedFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClosedFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_arguments_follow_whatwg() {
        assert!(whatwg_close_frame(1000, "").is_ok());
        assert!(whatwg_close_frame(3000, "x").is_ok());
        assert!(whatwg_close_frame(4999, &"a".repeat(123)).is_ok());
        for code in [0, 999, 1001, 1002, 1005, 1011, 2999, 5000] {
            assert!(
                matches!(whatwg_close_frame(code, ""), Err(Error::InvalidCloseCode(c)) if c == code)
            );
        }
        assert!(matches!(
            whatwg_close_frame(1000, &"a".repeat(124)),
            Err(Error::CloseReasonTooLong(124))
        ));
    }
}
