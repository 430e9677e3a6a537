//! An [axum] 0.8 extractor for WebSocket upgrades (feature `axum`, off by
//! default), in the style of axum's own `WebSocketUpgrade`, giving a
//! wsstream [`WebSocketStream`] with every wsstream option: limits,
//! timeouts, keepalive, permessage-deflate, backpressure.
//!
//! ```no_run
//! use axum::{response::Response, routing::get, Router};
//! use futures::StreamExt;
//! use wsstream::axum::WebSocketUpgrade;
//! use wsstream::ServerOptions;
//!
//! async fn echo(ws: WebSocketUpgrade) -> Response {
//!     ws.options(ServerOptions::default().protocols(["echo"]).max_message_size(1 << 20))
//!         .on_upgrade(|ws| async move {
//!             if let Ok(opened) = ws.opened().await {
//!                 let _ = opened.readable.forward(opened.writable).await;
//!             }
//!         })
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let app = Router::new().route("/echo", get(echo));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! Over HTTP/2 (features `axum` and `http2`, and a server with extended
//! CONNECT enabled), WebSockets arrive as `CONNECT` requests, which `get`
//! does not route: use `axum::routing::any(echo)` and one route takes both
//! versions.
//!
//! A request that is not a WebSocket upgrade is refused by the extractor
//! with a [`Rejection`] (400, 405 or 426 and a plain-text reason), which
//! axum sends as the response.
//!
//! [axum]: https://docs.rs/axum/0.8

use std::fmt;
use std::future::Future;

use ::hyper::upgrade::OnUpgrade;
use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::Request;

use crate::handshake::{check_upgrade, UpgradeOffer};
use crate::hyper::{take_on_upgrade, Upgrading};
use crate::stream::copy_head;
use crate::{Acceptance, Error, Rejection, ServerOptions, Upgrade, WebSocketStream};

/// What to do when the connection cannot be taken over after the `101`.
type FailedUpgrade = Box<dyn FnOnce(Error) + Send>;

/// Extracts a WebSocket upgrade request; [`on_upgrade`](Self::on_upgrade)
/// answers it.
pub struct WebSocketUpgrade {
    request: Request<()>,
    offer: UpgradeOffer,
    on_upgrade: OnUpgrade,
    options: ServerOptions,
    on_failed: Option<FailedUpgrade>,
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Rejection> {
        let request = copy_head(
            &parts.method,
            &parts.uri,
            parts.version,
            &parts.headers,
            &parts.extensions,
        );
        let offer = check_upgrade(&request).map_err(|err| Rejection::from(&err))?;
        let on_upgrade = take_on_upgrade(&mut parts.extensions)?;
        Ok(Self {
            request,
            offer,
            on_upgrade,
            options: ServerOptions::default(),
            on_failed: None,
        })
    }
}

impl WebSocketUpgrade {
    /// The options of the connection: subprotocols, limits, timeouts,
    /// keepalive, deflate. Their accept hook is not run (the handler
    /// already has the request); their `handshake_timeout` bounds the wait
    /// for the upgraded connection.
    pub fn options(mut self, options: ServerOptions) -> Self {
        self.options = options;
        self
    }

    /// Subprotocols this endpoint speaks, in its order of preference (the
    /// first the client offered is chosen); shorthand for
    /// [`ServerOptions::protocols`].
    pub fn protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.options = self.options.protocols(protocols);
        self
    }

    /// The subprotocols the client offered, in its order of preference.
    pub fn offered_protocols(&self) -> &[String] {
        &self.offer.protocols
    }

    /// The request's head: method, URI, version and fields (`Origin`,
    /// cookies), as [`WebSocketStream::request`] will give it.
    pub fn request(&self) -> &Request<()> {
        &self.request
    }

    /// Called with the error when the connection cannot be taken over after
    /// the `101` (the client left, or the hand-over timed out). Without it,
    /// such a failure is dropped with the task.
    pub fn on_failed_upgrade(mut self, callback: impl FnOnce(Error) + Send + 'static) -> Self {
        self.on_failed = Some(Box::new(callback));
        self
    }

    /// The `101` response to return from the handler; once axum has sent
    /// it and handed over the connection, `callback` runs on a task of its
    /// own with the [`WebSocketStream`], whose `opened` resolves at once.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(WebSocketStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        // Checked by the extractor: only the negotiation is left.
        let upgrade =
            Upgrade::negotiate(self.request, &self.offer, &self.options, Acceptance::new());
        let response = upgrade.response().clone().map(|()| Body::empty());
        let upgrading = Upgrading::new(self.on_upgrade, upgrade, self.options.handshake_timeout);
        let on_failed = self.on_failed;
        tokio::spawn(async move {
            match upgrading.await {
                Ok(ws) => callback(ws).await,
                Err(err) => {
                    if let Some(on_failed) = on_failed {
                        on_failed(err);
                    }
                }
            }
        });
        response
    }
}

impl fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("uri", self.request.uri())
            .field("offered", &self.offer.protocols)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A refused upgrade is answered with its status, fields and body.
impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        Rejection::into_response(self).map(Body::from)
    }
}
