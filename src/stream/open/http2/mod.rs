//! The client's way in over HTTP/2 (RFC 8441): an extended CONNECT on a
//! stream of a shared connection, or the route back to the HTTP/1.1
//! upgrade when HTTP/2 is only preferred and the server does not offer it.

mod pool;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::Response;

use super::Established;
use crate::handshake::{ExtendedConnect, HandshakeError, Target, MAX_REFUSAL_BODY};
use crate::proto::Role;
use crate::stream::options::{HttpVersion, Options};
use crate::stream::wire::http2::{stream_error, Http2Stream};
use crate::stream::wire::Wire;
use crate::transport::BoxedTransport;
use crate::Error;

pub(crate) use pool::Http2Pool;
use pool::{Dialed, StreamSlot};

/// Where a client's open goes after looking at HTTP/2.
pub(crate) enum Route {
    /// The WebSocket is open on an HTTP/2 stream.
    Opened(Box<Established>),
    /// Use the HTTP/1.1 upgrade: over this transport when given (TLS chose
    /// `http/1.1` by ALPN, or the caller's own), else on a fresh connection.
    Http1(Option<BoxedTransport>),
}

/// Opens the WebSocket over HTTP/2 when the options ask for it and the
/// server allows it; otherwise says how to go on with HTTP/1.1, or fails
/// when HTTP/2 was required.
pub(crate) async fn open(
    io: Option<BoxedTransport>,
    target: &Target,
    options: &Options,
    deadline: tokio::time::Instant,
) -> Result<Route, Error> {
    let settings = &options.http2;
    let required = settings.version == HttpVersion::RequireHttp2;
    if settings.version == HttpVersion::Http1 {
        return Ok(Route::Http1(io));
    }
    if let Some(io) = io {
        // The caller's own transport: HTTP/2 only by prior knowledge, and
        // the connection is this WebSocket's alone.
        if !settings.prior_knowledge {
            return unavailable(
                required,
                "a transport given to connect_over needs http2_prior_knowledge",
                Some(io),
            );
        }
        let connection = match pool::handshake(io).await? {
            Dialed::Http2(connection) => connection,
            Dialed::Http1(io) => return Ok(Route::Http1(Some(io))),
            Dialed::NoExtendedConnect => {
                return Err(Error::Http2Unavailable(NO_EXTENDED_CONNECT));
            }
        };
        let Some(place) = Arc::new(connection).reserve() else {
            return Err(Error::Http2Unavailable("the server allows no stream"));
        };
        return open_stream(place, target, options).await;
    }
    if !target.tls && !settings.prior_knowledge {
        return unavailable(
            required,
            "ws:// URLs need http2_prior_knowledge (cleartext HTTP/2)",
            None,
        );
    }
    match settings.pool.connection(target, options, deadline).await? {
        Dialed::Http2(place) => open_stream(place, target, options).await,
        Dialed::Http1(io) => {
            unavailable(required, "the server did not choose h2 by ALPN", Some(io))
        }
        Dialed::NoExtendedConnect => unavailable(required, NO_EXTENDED_CONNECT, None),
    }
}

const NO_EXTENDED_CONNECT: &str =
    "the server does not allow WebSockets over HTTP/2 (no SETTINGS_ENABLE_CONNECT_PROTOCOL)";

/// The HTTP/1.1 route when HTTP/2 was only preferred, else the error.
fn unavailable(
    required: bool,
    why: &'static str,
    io: Option<BoxedTransport>,
) -> Result<Route, Error> {
    if required {
        Err(Error::Http2Unavailable(why))
    } else {
        Ok(Route::Http1(io))
    }
}

/// Sends the extended CONNECT on a new stream at `place` and checks the
/// answer.
async fn open_stream(
    place: StreamSlot,
    target: &Target,
    options: &Options,
) -> Result<Route, Error> {
    let handshake = ExtendedConnect::offering(
        target,
        &options.protocols,
        &options.headers,
        options.conn.deflate,
    )?;
    let mut request = handshake.request().clone();
    request
        .extensions_mut()
        .insert(h2::ext::Protocol::from_static(
            crate::handshake::WEBSOCKET_PROTOCOL,
        ));
    let mut sender = place
        .connection()
        .sender()
        .ready()
        .await
        .map_err(|err| Error::io(stream_error(err)))?;
    let (response, send) = sender
        .send_request(request, false)
        .map_err(|err| Error::io(stream_error(err)))?;
    let response = response.await.map_err(|err| Error::io(stream_error(err)))?;
    let negotiated = match handshake.check_response(&response) {
        Ok(negotiated) => negotiated,
        Err(mut err) => {
            if let HandshakeError::Status { body, .. } = &mut err {
                *body = read_refusal_body(response).await;
            }
            return Err(err.into());
        }
    };
    let recv = response.into_body();
    let stream = Http2Stream::new(send, recv, Some(Box::new(place)));
    Ok(Route::Opened(Box::new(Established::new(
        Wire::Http2(Box::new(stream)),
        Role::Client,
        options.conn,
        BytesMut::new(),
        negotiated,
    ))))
}

/// Reads what the server sends of a refusal's body, up to
/// [`MAX_REFUSAL_BODY`], for at most the same time as over HTTP/1.1.
async fn read_refusal_body(response: Response<h2::RecvStream>) -> Bytes {
    let mut recv = response.into_body();
    let mut body = BytesMut::new();
    let read = async {
        while body.len() < MAX_REFUSAL_BODY {
            match recv.data().await {
                Some(Ok(data)) => {
                    let _ = recv.flow_control().release_capacity(data.len());
                    let room = MAX_REFUSAL_BODY - body.len();
                    body.extend_from_slice(&data[..data.len().min(room)]);
                }
                Some(Err(_)) | None => break,
            }
        }
    };
    let _ = tokio::time::timeout(super::client::REFUSAL_BODY_WAIT, read).await;
    body.freeze()
}
