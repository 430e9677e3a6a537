//! `WebSocketStream`: connect, `opened`, `closed`, `close`, and accept.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::driver::Driver;
use super::halves::{Readable, Writable};
use super::options::{ConnConfig, Options, ServerOptions};
use super::shared::Shared;
use crate::handshake::{
    parse_request, reject_response, ClientHandshake, DeflateParams, HandshakeError, HeadScan,
    Negotiated, ServerReply, Target, MAX_HEAD_LEN,
};
use crate::proto::{CloseCode, CloseFrame, Connection, Role, MAX_CLOSE_REASON};
use crate::transport::{BoxedTransport, Endpoint, Transport};
use crate::{Error, Timeout};

/// A WebSocket connection, shaped like WHATWG's `WebSocketStream`.
///
/// [`connect`](Self::connect) returns at once and connects in the
/// background; [`opened`](Self::opened) resolves to the readable and
/// writable halves, [`closed`](Self::closed) to how the connection ended,
/// and [`close`](Self::close) starts the close handshake.
pub struct WebSocketStream {
    shared: Arc<Shared>,
    request: Option<http::Request<()>>,
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
    /// Nothing else runs in the background afterwards. A bad URL, bad
    /// subprotocols, a reserved header or a missing runtime make `opened`
    /// (and `closed`) fail before any I/O.
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
        let shared = Shared::new(abort.clone());
        let ws = Self {
            shared: shared.clone(),
            request: None,
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
        if !runtime_with_timers() {
            shared.finish_opening(Err(Error::NoRuntime));
            return ws;
        }
        let weak = Arc::downgrade(&shared);
        tokio::spawn(async move {
            // One deadline for every leg: connectors (proxies) see it too,
            // and report their own leg when it passes.
            let deadline = tokio::time::Instant::now() + options.open_timeout;
            let handshake = tokio::time::timeout_at(
                deadline,
                client_handshake(io, &target, &options, deadline),
            );
            let result = tokio::select! {
                biased;
                () = abort.cancelled() => Err(Error::Aborted),
                result = handshake => result.unwrap_or(Err(Error::Timeout(Timeout::Open))),
            };
            if let Some(shared) = weak.upgrade() {
                shared.finish_opening(result);
            }
        });
        drop(shared);
        ws
    }

    /// Answers a client's opening handshake on `io` and returns the open
    /// connection (its [`opened`](Self::opened) resolves at once).
    ///
    /// A request that is not an acceptable upgrade gets `400`, `405` or
    /// `426` with a plain-text reason and fails with
    /// [`HandshakeError::Rejected`].
    ///
    /// Reading the request and answering it are bounded by
    /// [`ServerOptions::handshake_timeout`] (10 s by default), so a client
    /// that drips its request fails with [`Timeout::Open`].
    ///
    /// Cancel safety: dropping the future drops `io` and whatever part of
    /// the handshake it held.
    ///
    /// For a TCP stream, set `TCP_NODELAY` before handing it over (the
    /// client side does so itself): wsstream already batches frames into
    /// few writes, and with Nagle's algorithm on, the tail of a batch
    /// waits for the peer's delayed ACK (40 ms per round trip on Linux).
    pub async fn accept<T: Transport>(io: T, options: ServerOptions) -> Result<Self, Error> {
        if !runtime_with_timers() {
            return Err(Error::NoRuntime);
        }
        let handshake = server_handshake(Box::pin(io), &options);
        let (driver, negotiated, request) =
            tokio::time::timeout(options.handshake_timeout, handshake)
                .await
                .unwrap_or(Err(Error::Timeout(Timeout::Open)))?;
        let shared = Shared::new(CancellationToken::new());
        shared.finish_opening(Ok((driver, negotiated)));
        Ok(Self {
            shared,
            request: Some(request),
        })
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
            shared: Some(self.shared.clone()),
        }
    }

    /// WHATWG's `closed`: resolves to the peer's close code and reason after
    /// a clean close, and fails with the error that ended the connection
    /// otherwise (no close handshake, a protocol violation, an I/O error,
    /// an aborted opening). May be awaited from any task, any number of
    /// times; the future is `'static`.
    ///
    /// The close handshake moves forward as the readable is polled; while
    /// no one reads (the readable was never taken, was dropped, or ended),
    /// polling `closed` reads in its place and discards data messages.
    pub fn closed(&self) -> ClosedFuture {
        ClosedFuture {
            shared: self.shared.clone(),
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
        self.shared.close(Some(frame));
        Ok(())
    }

    /// The upgrade request this server-side connection answered (`None`
    /// for a client).
    pub fn request(&self) -> Option<&http::Request<()>> {
        self.request.as_ref()
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
    shared: Option<Arc<Shared>>,
}

impl Future for OpenedFuture {
    type Output = Result<Opened, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(shared) = &self.shared else {
            return Poll::Ready(Err(Error::AlreadyOpened));
        };
        let negotiated = std::task::ready!(shared.poll_opened(cx));
        let shared = self.shared.take();
        Poll::Ready(negotiated.and_then(|negotiated| {
            let shared = shared.ok_or(Error::AlreadyOpened)?;
            Ok(Opened {
                readable: Readable::new(shared.clone()),
                writable: Writable::new(shared),
                protocol: negotiated.protocol,
                extensions: negotiated.extensions,
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

/// Reads and checks the client's request, and answers it.
async fn server_handshake(
    mut io: BoxedTransport,
    options: &ServerOptions,
) -> Result<(Driver, Negotiated, http::Request<()>), Error> {
    let mut buf = BytesMut::with_capacity(4096);
    let mut scan = HeadScan::default();
    let head = loop {
        if scan.is_complete(&buf) || buf.len() > MAX_HEAD_LEN {
            match parse_request(&mut buf) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(err) => return Err(reject(&mut io, err).await),
            }
        }
        buf.reserve(4096);
        if io.read_buf(&mut buf).await? == 0 {
            return Err(HandshakeError::Incomplete.into());
        }
    };
    let protocol = options.choose(&head.request, &head.protocols);
    let deflate = options
        .conn
        .deflate
        .and_then(|policy| head.choose_deflate(&policy));
    let answer = deflate.as_ref().map(|(_, answer)| answer.as_str());
    io.write_all(&ServerReply::accept_with_extensions(
        &head,
        protocol.as_deref(),
        answer,
    ))
    .await?;
    io.flush().await?;
    let (deflate, extensions) = deflate.unzip();
    let driver = open_driver(io, Role::Server, options.conn, buf, deflate);
    let negotiated = Negotiated {
        protocol,
        extensions: extensions.unwrap_or_default(),
        deflate,
    };
    Ok((driver, negotiated, head.request))
}

/// Connects (unless the caller brought a transport) and runs the client
/// side of the opening handshake.
async fn client_handshake(
    io: Option<BoxedTransport>,
    target: &Target,
    options: &Options,
    deadline: tokio::time::Instant,
) -> Result<(Driver, Negotiated), Error> {
    let mut io = match io {
        Some(io) => io,
        None => connect(target, options, deadline).await?,
    };
    let handshake = ClientHandshake::offering(
        target,
        &options.protocols,
        &options.headers,
        options.conn.deflate,
    )?;
    io.write_all(handshake.request()).await?;
    io.flush().await?;
    let mut buf = BytesMut::with_capacity(4096);
    let mut scan = HeadScan::default();
    let negotiated = loop {
        if scan.is_complete(&buf) || buf.len() > MAX_HEAD_LEN {
            if let Some(negotiated) = handshake.read_response(&mut buf)? {
                break negotiated;
            }
        }
        buf.reserve(4096);
        if io.read_buf(&mut buf).await? == 0 {
            return Err(HandshakeError::Incomplete.into());
        }
    };
    let driver = open_driver(io, Role::Client, options.conn, buf, negotiated.deflate);
    Ok((driver, negotiated))
}

/// Opens the byte stream with the configured connector and, for `wss`,
/// TLS to the server over it.
async fn connect(
    target: &Target,
    options: &Options,
    deadline: tokio::time::Instant,
) -> Result<BoxedTransport, Error> {
    let connector = options.connector.as_ref().map_err(Clone::clone)?;
    let endpoint =
        Endpoint::new(target.host.clone(), target.port, target.tls).with_deadline(deadline);
    let io = connector.connector.connect(&endpoint).await?;
    if !target.tls {
        return Ok(io);
    }
    #[cfg(feature = "tls")]
    {
        crate::transport::start_tls(io, &target.host, options.tls.clone()).await
    }
    #[cfg(not(feature = "tls"))]
    {
        Err(Error::TlsUnavailable(
            "wsstream was built without the `tls` feature",
        ))
    }
}

fn open_driver(
    io: BoxedTransport,
    role: Role,
    config: ConnConfig,
    leftover: BytesMut,
    deflate: Option<DeflateParams>,
) -> Driver {
    #[allow(unused_mut)]
    let mut connection = Connection::new(role, config.limits);
    #[cfg(feature = "deflate")]
    if let (Some(params), Some(policy)) = (deflate, config.deflate) {
        connection.enable_deflate(&params, &policy);
    }
    #[cfg(not(feature = "deflate"))]
    let _ = deflate;
    // The handshake's 4 KiB buffer is only worth keeping while it holds
    // frames the peer sent right behind its head; a connection opened and
    // not yet read from should hold no read buffer.
    let leftover = if leftover.is_empty() {
        BytesMut::new()
    } else {
        leftover
    };
    Driver::new(io, connection, leftover, config)
}

/// Whether we run inside a tokio runtime with the time driver, which
/// keepalive and the timeouts need (tokio panics without it; we report
/// [`Error::NoRuntime`] instead).
fn runtime_with_timers() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
        && std::panic::catch_unwind(|| {
            let mut sleep = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
            let _ = sleep
                .as_mut()
                .poll(&mut Context::from_waker(std::task::Waker::noop()));
        })
        .is_ok()
}

/// Answers a request we will not upgrade, then reports why.
async fn reject(io: &mut BoxedTransport, err: HandshakeError) -> Error {
    let (status, reason) = match &err {
        HandshakeError::Rejected { status, reason } => (*status, *reason),
        HandshakeError::HeadTooLarge | HandshakeError::TooManyHeaders => (
            http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request head too large",
        ),
        _ => (http::StatusCode::BAD_REQUEST, "malformed request"),
    };
    // The peer may already be gone; the error we report is the same.
    let _ = io.write_all(&reject_response(status, reason)).await;
    let _ = io.shutdown().await;
    err.into()
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
