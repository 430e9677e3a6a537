//! `wsstream serve ADDR`: an echo server, or with `--broadcast` one that
//! sends every message to every client, to try clients against.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use wsstream::{
    Backpressure, Broadcast, CancellationToken, CloseCode, CloseFrame, DeflateConfig, Opened,
    ServerOptions, WebSocketStream,
};

use crate::interrupt::Interrupts;
use crate::report::{self, status};
use crate::{Exit, ServeArgs};

/// What a broadcast member may hold unwritten before it is closed with
/// 1013 (try again later): a client that stops reading is dropped rather
/// than slowing every sender or growing the server's memory.
const BROADCAST_BACKLOG: usize = 4 << 20;

/// How long Ctrl-C waits for the clients to answer the close: the
/// library's close timeout (10 s), and a little more.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(12);

/// The reason of the close (1001, going away) sent to every client at
/// shutdown.
const SHUTTING_DOWN: &str = "server shutting down";

/// How long to pause after a failed `accept` (out of descriptors, say),
/// so that the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Runs the server until Ctrl-C.
pub(crate) async fn run(args: ServeArgs) -> Exit {
    let mut interrupts = match Interrupts::new() {
        Ok(interrupts) => interrupts,
        Err(err) => {
            report::error("cannot listen for Ctrl-C", &err);
            return Exit::Failure;
        }
    };
    let listener = match TcpListener::bind(&args.addr).await {
        Ok(listener) => listener,
        Err(err) => {
            report::error(format_args!("cannot listen on {}", args.addr), &err);
            return Exit::Failure;
        }
    };
    match listener.local_addr() {
        Ok(addr) => status(format_args!("listening on ws://{addr}")),
        Err(err) => report::error("listening, but on which address", &err),
    }
    let broadcast = args.broadcast.then(|| {
        status("broadcast: every message goes to every client");
        Broadcast::new(
            BROADCAST_BACKLOG,
            Backpressure::Close(CloseCode::TRY_AGAIN_LATER),
        )
    });
    if broadcast.is_none() {
        status("echo: every message goes back to its sender");
    }
    let mut options = ServerOptions::default().protocols(args.protocols.iter().cloned());
    if args.deflate {
        options = options.deflate(DeflateConfig::default());
    }
    let shutdown = CancellationToken::new();
    let mut clients = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let (options, broadcast) = (options.clone(), broadcast.clone());
                    clients.spawn(serve_client(tcp, peer, options, broadcast, shutdown.clone()));
                }
                Err(err) => {
                    report::error("accept failed", &err);
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            // Reaps the clients that are done.
            Some(_) = clients.join_next() => {}
            () = interrupts.next() => break,
        }
    }
    drop(listener);
    status("interrupted: closing every connection (Ctrl-C again to quit at once)");
    shutdown.cancel();
    let deadline = tokio::time::sleep(SHUTDOWN_WAIT);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            done = clients.join_next() => if done.is_none() { break },
            () = &mut deadline => {
                status(format_args!("{} connection(s) did not close in time", clients.len()));
                break;
            }
            () = interrupts.next() => {
                status("interrupted again: quitting at once");
                return Exit::Forced;
            }
        }
    }
    status("stopped");
    Exit::Clean
}

/// Serves one client: the handshake, then echo or broadcast until the
/// connection ends, or until `shutdown` asks to close it.
async fn serve_client(
    tcp: TcpStream,
    peer: SocketAddr,
    options: ServerOptions,
    broadcast: Option<Broadcast>,
    shutdown: CancellationToken,
) {
    // The writes are batched already; Nagle would only delay their tails.
    let _ = tcp.set_nodelay(true);
    let accepted = tokio::select! {
        accepted = WebSocketStream::accept(tcp, options) => accepted,
        () = shutdown.cancelled() => return,
    };
    let ws = match accepted {
        Ok(ws) => ws,
        Err(err) => {
            report::error(format_args!("{peer}: handshake failed"), &err);
            return;
        }
    };
    let Opened {
        mut readable,
        mut writable,
        protocol,
        extensions,
        ..
    } = match ws.opened().await {
        Ok(opened) => opened,
        Err(err) => {
            report::error(format_args!("{peer}: could not open"), &err);
            return;
        }
    };
    let path = ws.request().map_or("/", |request| request.uri().path());
    let mut connected = format!("{peer}: connected to {path}");
    if let Some(protocol) = protocol {
        connected.push_str(&format!(", protocol {protocol}"));
    }
    if !extensions.is_empty() {
        connected.push_str(&format!(", extensions {extensions}"));
    }
    // A member before it is announced: a client told of the connection
    // (by this log) gets every broadcast from then on.
    if let Some(broadcast) = &broadcast {
        broadcast.add(&writable);
    }
    status(connected);
    let mut closing = false;
    loop {
        tokio::select! {
            message = readable.next() => match message {
                Some(Ok(message)) => match &broadcast {
                    Some(broadcast) => {
                        broadcast.send(message).await;
                    }
                    // A failed send means the connection is failing: the
                    // readable ends next, and `closed` tells why.
                    None => {
                        let _ = writable.send(message).await;
                    }
                },
                Some(Err(_)) | None => break,
            },
            () = shutdown.cancelled(), if !closing => {
                closing = true;
                ws.close_with(CloseFrame::truncated(CloseCode::GOING_AWAY, SHUTTING_DOWN));
            }
        }
    }
    match ws.closed().await {
        Ok(closed) => status(format_args!(
            "{peer}: closed: {}",
            report::close(closed.code, &closed.reason)
        )),
        Err(err) => report::error(format_args!("{peer}: connection failed"), &err),
    }
}
