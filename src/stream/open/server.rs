//! The raw-socket server's way in: read the upgrade request, check it, and
//! answer with 101 or a rejection.

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::{read_head, Established};
use crate::handshake::{parse_request, reject_response, HandshakeError, Negotiated, ServerReply};
use crate::proto::Role;
use crate::stream::options::ServerOptions;
use crate::transport::BoxedTransport;
use crate::{Error, Timeout};

/// Answers a client's opening handshake on `io` within the handshake
/// timeout; returns the open connection and the request it answered.
pub(crate) async fn accept(
    io: BoxedTransport,
    options: &ServerOptions,
) -> Result<(Established, http::Request<()>), Error> {
    tokio::time::timeout(options.handshake_timeout, handshake(io, options))
        .await
        .unwrap_or(Err(Error::Timeout(Timeout::Open)))
}

/// Reads and checks the client's request, and answers it.
async fn handshake(
    mut io: BoxedTransport,
    options: &ServerOptions,
) -> Result<(Established, http::Request<()>), Error> {
    let mut buf = BytesMut::with_capacity(4096);
    let head = match read_head(&mut io, &mut buf, parse_request).await? {
        Ok(head) => head,
        Err(err) => return Err(reject(&mut io, err).await),
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
    let negotiated = Negotiated {
        protocol,
        extensions: extensions.unwrap_or_default(),
        deflate,
    };
    let established = Established::new(io, Role::Server, options.conn, buf, negotiated);
    Ok((established, head.request))
}

/// Answers a request we will not upgrade, then reports why: the status of
/// a [`HandshakeError::Rejected`], 431 for a head too large or with too
/// many fields, 400 for anything else malformed.
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
