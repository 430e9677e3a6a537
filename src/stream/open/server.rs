//! The raw-socket server's way in: read the upgrade request, check it, ask
//! the accept hook, and answer with 101 or a rejection. The checks and the
//! answers are [`Upgrade`]'s and [`Rejection`]'s, as on hyper and axum.

use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::{read_head, HEAD_CHUNK};
use crate::handshake::{check_upgrade, parse_request_head_raw, write_response};
use crate::stream::options::{AcceptHook, ServerOptions};
use crate::stream::upgrade::{check_acceptance, Upgrade};
use crate::stream::verdict::{Acceptance, Rejection};
use crate::stream::websocket::WebSocketStream;
use crate::transport::BoxedTransport;
use crate::{Error, Timeout};

/// Answers a client's opening handshake on `io` within the handshake
/// timeout; returns the open connection.
pub(crate) async fn accept(
    io: BoxedTransport,
    options: &ServerOptions,
) -> Result<WebSocketStream, Error> {
    let result = tokio::time::timeout(options.handshake_timeout, handshake(io, options))
        .await
        .unwrap_or_else(|_| {
            crate::trace::debug_event!(timeout = ?Timeout::Open, "timed out");
            Err(Error::Timeout(Timeout::Open))
        });
    crate::trace::opening_failed(&result);
    result
}

/// Reads and checks the client's request, and answers it.
async fn handshake(
    mut io: BoxedTransport,
    options: &ServerOptions,
) -> Result<WebSocketStream, Error> {
    // Most requests fit in 1 KiB; `read_head` grows the buffer for the
    // rest. Thousands of handshakes at once each hold this while they run.
    let mut buf = BytesMut::with_capacity(HEAD_CHUNK);
    let checked = match read_head(&mut io, &mut buf, parse_request_head_raw).await? {
        Ok((request, raw)) => check_upgrade(&request).map(|offer| (request, raw, offer)),
        Err(err) => Err(err),
    };
    let (request, raw_head, offer) = match checked {
        Ok(checked) => checked,
        Err(err) => return Err(refuse(&mut io, Rejection::from(&err), err.into()).await),
    };
    let acceptance = match &options.hook {
        None => Acceptance::new(),
        Some(hook) => match ask(&**hook, &request).await {
            Ok(acceptance) => acceptance,
            Err(rejection) => {
                return Err(refuse(&mut io, rejection.clone(), rejection.into()).await)
            }
        },
    };
    if let Err(err) = check_acceptance(&acceptance) {
        let rejection = Rejection::server_error("the accept hook set a reserved header");
        return Err(refuse(&mut io, rejection, err).await);
    }
    let upgrade = Upgrade::negotiate(request, &offer, options, acceptance);
    io.write_all(&write_response(upgrade.response(), b""))
        .await?;
    io.flush().await?;
    Ok(upgrade.establish(io, buf, Some(raw_head)))
}

/// Runs the accept hook; a panic, in the call or in its future, refuses
/// the request with a 500 instead of unwinding through the caller.
async fn ask(hook: &AcceptHook, request: &http::Request<()>) -> Result<Acceptance, Rejection> {
    let Ok(mut decision) = catch_unwind(AssertUnwindSafe(|| hook(request))) else {
        return Err(Rejection::hook_panicked());
    };
    std::future::poll_fn(|cx| {
        catch_unwind(AssertUnwindSafe(|| {
            std::future::Future::poll(decision.as_mut(), cx)
        }))
        .unwrap_or_else(|_| std::task::Poll::Ready(Err(Rejection::hook_panicked())))
    })
    .await
}

/// Sends `rejection` and closes the connection, then reports `err`.
async fn refuse(io: &mut BoxedTransport, rejection: Rejection, err: Error) -> Error {
    let mut response = rejection.into_response();
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    // The peer may already be gone; the error we report is the same.
    let _ = io
        .write_all(&write_response(&response, response.body()))
        .await;
    let _ = io.shutdown().await;
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hook that panics when called, or when its future is polled.
    #[tokio::test]
    async fn a_panicking_hook_is_a_500_not_an_unwind() {
        let request = http::Request::new(());
        let in_call: Box<AcceptHook> = Box::new(|_| panic!("in the call"));
        let in_future: Box<AcceptHook> = Box::new(|_| Box::pin(async { panic!("in the future") }));
        for hook in [in_call, in_future] {
            let rejection = ask(&*hook, &request).await.unwrap_err();
            assert_eq!(rejection.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        }
        let fine: Box<AcceptHook> = Box::new(|_| Box::pin(async { Ok(Acceptance::new()) }));
        assert!(ask(&*fine, &request).await.is_ok());
    }
}
