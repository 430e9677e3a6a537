//! The client's way in: connect, TLS for `wss`, and the HTTP/1.1 upgrade.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::{read_head, Established};
use crate::handshake::{BodyCollector, ClientHandshake, HandshakeError, Target};
use crate::proto::Role;
use crate::stream::options::Options;
use crate::stream::wire::Wire;
use crate::transport::{BoxedTransport, Endpoint};
use crate::{Error, Timeout};

/// Opens a client connection to `target`: over `io` when the caller
/// brought a transport, else through the configured connector. Connecting,
/// TLS and the handshake share one deadline, `open_timeout`; `abort` stops
/// them at any point.
pub(crate) async fn open(
    io: Option<BoxedTransport>,
    target: &Target,
    options: &Options,
    abort: &CancellationToken,
) -> Result<Established, Error> {
    // One deadline for every leg: connectors (proxies) see it too, and
    // report their own leg when it passes.
    let deadline = tokio::time::Instant::now() + options.open_timeout;
    let handshake = tokio::time::timeout_at(deadline, handshake(io, target, options, deadline));
    tokio::select! {
        biased;
        () = abort.cancelled() => Err(Error::Aborted),
        result = handshake => result.unwrap_or_else(|_| {
            crate::trace::debug_event!(timeout = ?Timeout::Open, "timed out");
            Err(Error::Timeout(Timeout::Open))
        }),
    }
}

/// Connects (unless the caller brought a transport) and runs the client
/// side of the opening handshake.
async fn handshake(
    io: Option<BoxedTransport>,
    target: &Target,
    options: &Options,
    deadline: tokio::time::Instant,
) -> Result<Established, Error> {
    #[cfg(feature = "http2")]
    let io = match super::http2::open(io, target, options, deadline).await? {
        super::http2::Route::Opened(established) => return Ok(*established),
        super::http2::Route::Http1(io) => io,
    };
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
    let negotiated = match read_head(&mut io, &mut buf, |buf| handshake.read_response(buf)).await? {
        Ok(negotiated) => negotiated,
        Err(mut err) => {
            if let HandshakeError::Status {
                status,
                headers,
                body,
            } = &mut err
            {
                *body = read_refusal_body(&mut io, &mut buf, *status, headers, deadline).await;
            }
            return Err(err.into());
        }
    };
    Ok(Established::new(
        Wire::Bytes(io),
        Role::Client,
        options.conn,
        buf,
        negotiated,
    ))
}

/// Reads what the server sends of a refusal's body, up to
/// [`MAX_REFUSAL_BODY`](crate::handshake::MAX_REFUSAL_BODY), for at most
/// 1 s and never past the open deadline: the refusal is reported with
/// whatever part of its body arrived.
async fn read_refusal_body(
    io: &mut BoxedTransport,
    buf: &mut BytesMut,
    status: http::StatusCode,
    headers: &http::HeaderMap,
    deadline: tokio::time::Instant,
) -> bytes::Bytes {
    let mut body = BodyCollector::new(status, headers);
    let until = deadline.min(tokio::time::Instant::now() + REFUSAL_BODY_WAIT);
    let read = async {
        while !body.feed(buf) {
            buf.reserve(4096);
            match io.read_buf(buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout_at(until, read).await;
    body.finish()
}

/// How long a refusal's body may take to arrive.
pub(super) const REFUSAL_BODY_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Opens the byte stream with the configured connector and, for `wss`,
/// TLS to the server over it.
async fn connect(
    target: &Target,
    options: &Options,
    deadline: tokio::time::Instant,
) -> Result<BoxedTransport, Error> {
    let io = connect_stream(target, options, deadline).await?;
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

/// Opens the byte stream to the server with the configured connector
/// (directly, through a proxy, over a unix socket): no TLS yet.
pub(super) async fn connect_stream(
    target: &Target,
    options: &Options,
    deadline: tokio::time::Instant,
) -> Result<BoxedTransport, Error> {
    let connector = options.connector.as_ref().map_err(Clone::clone)?;
    let endpoint =
        Endpoint::new(target.host.clone(), target.port, target.tls).with_deadline(deadline);
    connector.connector.connect(&endpoint).await
}
