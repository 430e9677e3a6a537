//! Upgrading requests served by [hyper] 1 (feature `hyper`, off by
//! default).
//!
//! hyper parses the request, and the application routes and authenticates
//! it; [`upgrade`] then checks that it is a WebSocket upgrade, negotiates
//! under [`ServerOptions`] (subprotocols, permessage-deflate) and gives the
//! response to return from the service (`101`; `200` for a WebSocket over
//! HTTP/2, an extended CONNECT, with the features `hyper` and `http2` and
//! hyper's `enable_connect_protocol`), and an [`Upgrading`] future
//! that resolves to the [`WebSocketStream`] once hyper hands over the
//! connection. The connection keeps every wsstream option: limits,
//! timeouts, keepalive, deflate, backpressure.
//!
//! The connection must be served with upgrades on
//! (`http1::Builder::serve_connection(..).with_upgrades()`, or
//! hyper-util's `serve_connection_with_upgrades`); reading the request is
//! hyper's, so set its `header_read_timeout` against clients that drip it.
//!
//! ```no_run
//! use bytes::Bytes;
//! use futures::{SinkExt, StreamExt};
//! use http_body_util::Full;
//! use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request, Response};
//! use hyper_util::rt::TokioIo;
//! use wsstream::ServerOptions;
//!
//! async fn serve(mut request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
//!     let options = ServerOptions::default().protocols(["chat"]);
//!     match wsstream::hyper::upgrade(&mut request, &options) {
//!         Ok((response, upgrading)) => {
//!             tokio::spawn(async move {
//!                 let ws = upgrading.await?;
//!                 let opened = ws.opened().await?;
//!                 opened.readable.forward(opened.writable).await
//!             });
//!             Ok(response)
//!         }
//!         // 400, 405 or 426, with the reason as a plain-text body.
//!         Err(rejection) => Ok(rejection.into_response().map(Full::new)),
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     tokio::spawn(
//!         http1::Builder::new()
//!             .serve_connection(TokioIo::new(tcp), service_fn(serve))
//!             .with_upgrades(),
//!     );
//! }
//! # }
//! ```
//!
//! [hyper]: https://docs.rs/hyper/1

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ::hyper::upgrade::OnUpgrade;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use crate::{Error, Rejection, ServerOptions, Timeout, Upgrade, WebSocketStream};

/// Checks that `request` is a WebSocket upgrade and negotiates it under
/// `options`: the response to return from the service (`101`, or `200`
/// for an HTTP/2 extended CONNECT), and the
/// future of the connection. A request that is not an acceptable upgrade
/// gives the [`Rejection`] to answer with instead (400, 405 or 426, as
/// [`Upgrade::new`] says; 500 when hyper cannot upgrade this connection,
/// for instance one served without `with_upgrades()`).
///
/// `request` is borrowed mutably to take hyper's upgrade handle from its
/// extensions; its head is copied for [`WebSocketStream::request`].
pub fn upgrade<B>(
    request: &mut Request<B>,
    options: &ServerOptions,
) -> Result<(Response<Full<Bytes>>, Upgrading), Rejection> {
    let upgrade = Upgrade::new(request, options)?;
    let on_upgrade = take_on_upgrade(request.extensions_mut())?;
    let response = upgrade.response().clone().map(|()| Full::new(Bytes::new()));
    let upgrading = Upgrading::new(on_upgrade, upgrade, options.handshake_timeout);
    Ok((response, upgrading))
}

/// hyper's handle on the connection's upgrade, or a 500 saying why there
/// is none.
pub(crate) fn take_on_upgrade(extensions: &mut http::Extensions) -> Result<OnUpgrade, Rejection> {
    extensions.remove::<OnUpgrade>().ok_or_else(|| {
        Rejection::server_error("this connection cannot be upgraded (served without upgrades?)")
            .body("WebSocket upgrades are not available on this connection")
    })
}

/// The [`WebSocketStream`] of an upgraded request, once hyper has sent the
/// `101` and handed over the connection; `opened` then resolves at once.
///
/// Fails with [`Timeout::Open`] when the hand-over takes longer than the
/// options' [`handshake_timeout`](ServerOptions::handshake_timeout), and
/// with [`Error::Io`] when hyper reports the upgrade failed (the client
/// left, or the response was not sent).
#[must_use = "futures do nothing unless polled"]
pub struct Upgrading {
    inner: Pin<Box<dyn Future<Output = Result<WebSocketStream, Error>> + Send>>,
}

impl Upgrading {
    pub(crate) fn new(on_upgrade: OnUpgrade, upgrade: Upgrade, timeout: Duration) -> Self {
        Self {
            inner: Box::pin(async move {
                let upgraded = tokio::time::timeout(timeout, on_upgrade)
                    .await
                    .map_err(|_| Error::Timeout(Timeout::Open))?
                    .map_err(|err| Error::io(std::io::Error::other(err)))?;
                upgrade.open(TokioIo::new(upgraded))
            }),
        }
    }
}

impl Future for Upgrading {
    type Output = Result<WebSocketStream, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for Upgrading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgrading").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_without_an_upgrade_handle_is_a_500_not_a_hang() {
        let mut request = Request::get("/")
            .header("host", "x")
            .header("upgrade", "websocket")
            .header("connection", "upgrade")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .unwrap();
        let rejection = upgrade(&mut request, &ServerOptions::default()).unwrap_err();
        assert_eq!(rejection.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    }
}
