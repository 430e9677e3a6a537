//! The ways a connection opens, one file each, all ending in the same
//! place: an [`Established`] connection, a driver over a transport plus
//! what the handshake negotiated, which [`WebSocketStream`] wraps without
//! knowing which way it came in.
//!
//! - [`client`]: the HTTP/1.1 upgrade as a client: connect (connector,
//!   proxy), TLS for `wss`, request, response checks.
//! - [`http2`]: the client's HTTP/2 extended CONNECT (RFC 8441, feature
//!   `http2`): a stream of a pooled connection, or the way back to
//!   [`client`]'s HTTP/1.1 upgrade when HTTP/2 is only preferred.
//! - [`server`]: the HTTP/1.1 upgrade on a raw socket: request, checks,
//!   101 or a rejection. (Servers take HTTP/2 WebSockets through hyper:
//!   [`Upgrade`](crate::Upgrade) checks both kinds of request.)
//!
//! The rules themselves (keys, subprotocols, permessage-deflate, request
//! and response checks) are sans-io, in [`crate::handshake`]; the files
//! here only move bytes and apply deadlines.
//!
//! [`WebSocketStream`]: crate::WebSocketStream

pub(crate) mod client;
#[cfg(feature = "http2")]
pub(crate) mod http2;
pub(crate) mod server;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;

use super::driver::Driver;
use super::options::ConnConfig;
use super::wire::Wire;
use crate::handshake::{HandshakeError, HeadScan, Negotiated, MAX_HEAD_LEN};
use crate::proto::{Connection, Role};
use crate::transport::BoxedTransport;
use crate::Error;

/// An open connection, however it was opened.
pub(crate) struct Established {
    /// The protocol state over the transport.
    pub(crate) driver: Driver,
    /// What the opening handshake agreed on.
    pub(crate) negotiated: Negotiated,
}

impl Established {
    /// Starts the protocol over `wire` for `role` with what was negotiated;
    /// `leftover` holds what the handshake read past its head (frames the
    /// peer sent right behind it). Called inside the connection's span
    /// (see [`crate::trace`]), which the driver keeps.
    pub(crate) fn new(
        wire: Wire,
        role: Role,
        config: ConnConfig,
        leftover: BytesMut,
        negotiated: Negotiated,
    ) -> Self {
        #[allow(unused_mut)]
        let mut connection = Connection::new(role, config.limits);
        #[cfg(feature = "deflate")]
        if let (Some(params), Some(policy)) = (&negotiated.deflate, &config.deflate) {
            connection.enable_deflate(params, policy);
        }
        crate::trace::debug_event!(
            protocol = negotiated.protocol.as_deref().unwrap_or(""),
            extensions = negotiated.extensions.as_str(),
            version = ?negotiated.response.version(),
            "opened"
        );
        Self {
            driver: Driver::new(wire, connection, leftover, config),
            negotiated,
        }
    }
}

/// How much more room a handshake's buffer gets before each read.
pub(crate) const HEAD_CHUNK: usize = 1024;

/// Reads from `io` into `buf` until `parse` finds a whole HTTP head in it,
/// searching only new bytes for its end and handing `parse` at most
/// [`MAX_HEAD_LEN`] plus one read. The outer error is the transport's (or
/// [`HandshakeError::Incomplete`] when the peer left); the inner one says
/// the head itself is not acceptable, for the server to answer.
async fn read_head<T>(
    io: &mut BoxedTransport,
    buf: &mut BytesMut,
    mut parse: impl FnMut(&mut BytesMut) -> Result<Option<T>, HandshakeError>,
) -> Result<Result<T, HandshakeError>, Error> {
    let mut scan = HeadScan::default();
    loop {
        if scan.is_complete(buf) || buf.len() > MAX_HEAD_LEN {
            match parse(buf) {
                Ok(Some(head)) => return Ok(Ok(head)),
                Ok(None) => {}
                Err(err) => return Ok(Err(err)),
            }
        }
        buf.reserve(HEAD_CHUNK);
        if io.read_buf(buf).await? == 0 {
            return Err(HandshakeError::Incomplete.into());
        }
    }
}

/// Whether we run inside a tokio runtime that can run a connection: one
/// with the time driver, which keepalive and the timeouts need.
///
/// Outside any runtime this is `Handle::try_current`, which does not
/// unwind. Tokio has no way to ask for the time driver but to make a timer,
/// which panics without one; so that probe is made, under `catch_unwind`,
/// only where panics unwind. A program built with `panic = "abort"` skips
/// it: there, a runtime without `enable_time` meets tokio's own panic at
/// the first timer, as it would with any tokio library.
pub(crate) fn runtime_ready() -> bool {
    tokio::runtime::Handle::try_current().is_ok() && has_time_driver()
}

#[cfg(panic = "unwind")]
fn has_time_driver() -> bool {
    use std::future::Future;
    std::panic::catch_unwind(|| {
        let mut sleep = std::pin::pin!(tokio::time::sleep(std::time::Duration::ZERO));
        let _ = sleep
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
    })
    .is_ok()
}

#[cfg(not(panic = "unwind"))]
fn has_time_driver() -> bool {
    true
}
