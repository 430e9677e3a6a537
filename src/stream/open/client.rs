//! The client's way in: connect, TLS for `wss`, and the HTTP/1.1 upgrade.

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::{read_head, Established};
use crate::handshake::{ClientHandshake, Target};
use crate::proto::Role;
use crate::stream::options::Options;
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
        result = handshake => result.unwrap_or(Err(Error::Timeout(Timeout::Open))),
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
    let negotiated = read_head(&mut io, &mut buf, |buf| handshake.read_response(buf)).await??;
    Ok(Established::new(
        io,
        Role::Client,
        options.conn,
        buf,
        negotiated,
    ))
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
