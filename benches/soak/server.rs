//! The server process: a listener on 127.0.0.1, `WebSocketStream::accept`
//! on a task per TCP connection (with `SOAK_TLS=1`, on the TLS stream
//! that `tokio_rustls::TlsAcceptor` made of it; its frames counted on the
//! way, in plaintext: `wire.rs`), every data message checked and echoed,
//! a close when the client asks for one, and each connection's end
//! counted; on `FINISH` (stdin), the wait for its figures to come back,
//! and its counts.
//!
//! Lines on stdout: `PORT n`, `START <fields>` (listening, no connection
//! yet), `SAMPLE <fields>` every second, `END <fields> trimmed_rss_kib=…
//! quiet_ms=… quiet=0|1` (the RSS once the allocator gave its free pages
//! back), `RESULT <tally>`. It exits when its stdin ends.

use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{FutureExt, SinkExt, StreamExt};
use rustls::HandshakeKind;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use wsstream::{DeflateConfig, Readable, ServerOptions, WebSocketStream, Writable};

use crate::client::{try_step, Step, CONNECTION_LIMIT, DRAIN_LIMIT, PING_TIMEOUT, RAMP, STEP};
use crate::gauges::{say, start_sampling, trim, wait_for_quiet, OpenGuard, Reading, QUIET_LIMIT};
use crate::os_limits::rss_kib;
use crate::payload::{close_reason, read, Incoming};
use crate::process::{child_setup, env_u64, DEFAULT_SECONDS, SECONDS, SEED};
use crate::rng::Rng;
use crate::runtime::runtime;
use crate::tally::{kind, note, End, Shared, Tally};
use crate::tls;
use crate::wire::{self, Counted};

/// The share of connections with server keepalive pings, in %.
const KEEPALIVE_SHARE: u64 = 30;
/// The listen backlog: the client's loops start 2,500 a second.
const BACKLOG: u32 = 4096;
/// How long the server waits at most for the client's next message
/// (longer than any pause of the client's plans, and than its steps).
const READ_LIMIT: Duration = Duration::from_secs(30);
/// A whole connection's limit: longer than the client's, so that the
/// client's own limit fires first.
const CONNECTION_LIMIT_SERVER: Duration = Duration::from_secs(90);
/// The ends of a dropped connection that the server may see: the TCP
/// connection ended (or was reset) without a close frame. With TLS the
/// list needs nothing more: a client that drops its connection sends no
/// TLS close_notify either, and rustls reports the TCP end that follows
/// as `io.unexpectedeof` where plain TCP gives `connection_lost` (in a
/// 60 s wss run: 13,009 of 13,058 drops; the rest reset or broken pipe,
/// as with ws).
const UNCLEAN: [&str; 4] = [
    "connection_lost",
    "io.connectionreset",
    "io.brokenpipe",
    "io.unexpectedeof",
];

struct Ctx {
    seed: u64,
    tally: Shared,
    /// With TLS: the acceptor presenting the run's certificate.
    tls: Option<TlsAcceptor>,
}

pub(crate) fn run_server() {
    child_setup();
    let seed = env_u64(SEED, 0);
    let seconds = env_u64(SECONDS, DEFAULT_SECONDS);
    // Built before the first reading, so that the start includes it.
    let tls = tls::enabled().then(|| TlsAcceptor::from(tls::server_config()));
    let (finish, finished) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut finish = Some(finish);
        for line in std::io::stdin().lock().lines() {
            match line.as_deref().map(str::trim) {
                Ok("FINISH") => {
                    if let Some(finish) = finish.take() {
                        let _ = finish.send(());
                    }
                }
                _ => break,
            }
        }
        // The end of stdin: the parent has what it needs, or is gone.
        std::process::exit(if finish.is_none() { 0 } else { 1 });
    });
    let runtime = runtime();
    let handle = runtime.handle().clone();
    runtime.block_on(async move {
        let listener = listen();
        say(&format!(
            "PORT {}",
            listener.local_addr().expect("local_addr").port()
        ));
        let ctx = Arc::new(Ctx {
            seed,
            tally: Mutex::default(),
            tls,
        });
        tokio::spawn(accept_loop(listener, ctx.clone()));
        tokio::task::yield_now().await;
        let start = Reading::now(&handle);
        say(&format!("START {}", start.fields()));
        start_sampling(handle);
        // The client's whole run, with room to spare.
        let limit = Duration::from_secs(seconds)
            + RAMP
            + CONNECTION_LIMIT
            + DRAIN_LIMIT
            + QUIET_LIMIT
            + Duration::from_secs(60);
        if !matches!(timeout(limit, finished).await, Ok(Ok(()))) {
            lock(&ctx.tally).add("error.server.no_finish", 1);
        }
        let (end, took, quiet) = wait_for_quiet(start).await;
        trim();
        say(&format!(
            "END {} trimmed_rss_kib={} quiet_ms={} quiet={}",
            end.fields(),
            rss_kib(),
            took.as_millis(),
            u8::from(quiet)
        ));
        let mut tally = lock(&ctx.tally);
        wire::report(&mut tally);
        say(&format!("RESULT {}", tally.line()));
    });
    // The control thread exits when the parent closes our stdin.
    std::thread::sleep(Duration::from_secs(60));
    std::process::exit(1);
}

fn lock(tally: &Shared) -> std::sync::MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(PoisonError::into_inner)
}

fn listen() -> TcpListener {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind 127.0.0.1");
    socket.listen(BACKLOG).expect("listen")
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>) {
    let mut accepted = 0;
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                accepted += 1;
                let ctx = ctx.clone();
                tokio::spawn(async move { serve(tcp, accepted, &ctx).await });
            }
            Err(e) => {
                note(format_args!("server: accept: {e}"));
                lock(&ctx.tally).add(format!("error.listen.{:?}", e.kind()).to_lowercase(), 1);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// The `n`th accepted connection, from the handshake to its end.
async fn serve(tcp: TcpStream, n: u64, ctx: &Ctx) {
    let mut conn = Conn {
        id: None,
        tally: Tally::default(),
        open: None,
    };
    if timeout(CONNECTION_LIMIT_SERVER, conn.run(tcp, n, ctx))
        .await
        .is_err()
    {
        conn.fail("error.connection.deadline".to_owned());
    }
    // Opened and not finished: the deadline cut it short.
    if conn.open.is_some() {
        conn.finish(End::Error);
    }
    lock(&ctx.tally).merge(&conn.tally);
}

/// One connection's own counts.
struct Conn {
    /// The client's id for it, from the request path.
    id: Option<u64>,
    tally: Tally,
    open: Option<OpenGuard>,
}

impl Conn {
    fn fail(&mut self, key: String) {
        note(format_args!("server: connection {:?}: {key}", self.id));
        self.tally.add(key, 1);
    }

    fn finish(&mut self, end: End) {
        self.tally.end(self.id.unwrap_or(u64::MAX), end);
        self.open = None;
    }

    async fn run(&mut self, tcp: TcpStream, n: u64, ctx: &Ctx) {
        let _ = tcp.set_nodelay(true);
        let mut rng = Rng::of(ctx.seed ^ 0x5e4e_e5e4, n);
        let keepalive = rng
            .percent(KEEPALIVE_SHARE)
            .then(|| Duration::from_millis(rng.between(100, 500)));
        let options = ServerOptions::default()
            .deflate(DeflateConfig::default())
            .ping_interval(keepalive)
            .ping_timeout(Some(PING_TIMEOUT));
        let accepted = match &ctx.tls {
            None => accept(tcp, options).await,
            Some(acceptor) => match self.tls_handshake(acceptor, tcp).await {
                Ok(tls) => accept(tls, options).await,
                Err(key) => Err(key),
            },
        };
        let ws = match accepted {
            Ok(ws) => ws,
            Err(key) => return self.fail(key),
        };
        let id = ws
            .request()
            .and_then(|r| r.uri().path().strip_prefix("/soak/")?.parse().ok());
        let Some(id) = id else {
            return self.fail("error.accept.path".to_owned());
        };
        self.id = Some(id);
        let opened = match try_step("open", ws.opened()).await {
            Ok(opened) => opened,
            Err(key) => return self.fail(key),
        };
        self.tally.open(id);
        self.open = Some(OpenGuard::new());
        self.tally.add(
            "opens.deflate",
            u64::from(opened.extensions.starts_with("permessage-deflate")),
        );
        self.tally
            .add("opens.keepalive", u64::from(keepalive.is_some()));
        let (mut readable, mut writable) = (opened.readable, opened.writable);
        match self.echo(id, &ws, &mut readable, &mut writable).await {
            Ok(end) => self.finish(end),
            Err(key) => {
                self.fail(key);
                self.finish(End::Error);
            }
        }
    }

    /// The TLS handshake, within [`STEP`] like the server's other steps; a
    /// failure is an error of its own kind (`error.tls.deadline`,
    /// `error.tls.io.<kind>`). Counts full and resumed handshakes
    /// (`tls.full`, `tls.resumed`).
    async fn tls_handshake(
        &mut self,
        acceptor: &TlsAcceptor,
        tcp: TcpStream,
    ) -> Step<TlsStream<TcpStream>> {
        let tls = timeout(STEP, acceptor.accept(tcp))
            .await
            .map_err(|_| "error.tls.deadline".to_owned())?
            .map_err(|e| {
                note(format_args!("server: TLS handshake: {e}"));
                format!("error.tls.io.{:?}", e.kind()).to_lowercase()
            })?;
        let resumed = tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
        self.tally
            .add(if resumed { "tls.resumed" } else { "tls.full" }, 1);
        Ok(tls)
    }

    /// Checks and echoes every data message, closes when asked, until the
    /// connection ends; returns how it ended.
    async fn echo(
        &mut self,
        id: u64,
        ws: &WebSocketStream,
        readable: &mut Readable,
        writable: &mut Writable,
    ) -> Step<End> {
        let mut next_seq = 0u32;
        let mut closing = None;
        let mut unflushed = false;
        loop {
            // What has arrived is echoed in one flush: flush only when
            // nothing more is ready (a `next()` dropped when pending loses
            // nothing: the readable is cancel safe).
            let item = match readable.next().now_or_never() {
                Some(item) => item,
                None => {
                    if unflushed {
                        try_step("echo", writable.flush()).await?;
                        unflushed = false;
                    }
                    timeout(READ_LIMIT, readable.next())
                        .await
                        .map_err(|_| "error.read.deadline".to_owned())?
                }
            };
            let message = match item {
                Some(Ok(message)) => message,
                Some(Err(e)) => {
                    let kind = kind(&e);
                    if closing.is_some() || !UNCLEAN.contains(&kind.as_str()) {
                        return Err(format!("error.read.{kind}"));
                    }
                    self.tally.add(format!("unclean.{kind}"), 1);
                    return Ok(End::Drop);
                }
                None => {
                    let closed = try_step("closed", ws.closed()).await?;
                    return match closing {
                        Some(code) if closed.code == code => Ok(End::ServerClose(code)),
                        Some(_) => Err("error.closed.code".to_owned()),
                        None => {
                            if closed.reason != close_reason(id, closed.code) {
                                self.fail("mismatch.close_reason".to_owned());
                            }
                            Ok(End::ClientClose(closed.code))
                        }
                    };
                }
            };
            match read(&message) {
                Ok(Incoming::CloseRequest(code, reason)) => {
                    if reason != close_reason(id, code) {
                        self.fail("mismatch.close_reason".to_owned());
                    }
                    if unflushed {
                        try_step("echo", writable.flush()).await?;
                        unflushed = false;
                    }
                    ws.close(code, &reason)
                        .map_err(|e| format!("error.close.{}", kind(&e)))?;
                    closing = Some(code);
                    continue;
                }
                Ok(Incoming::Data(header)) => {
                    if header.id == id && header.seq == next_seq {
                        self.tally.add("msgs.verified", 1);
                    } else {
                        self.fail("mismatch.order".to_owned());
                    }
                    next_seq = header.seq.wrapping_add(1);
                }
                // Echoed all the same: the client sees it too.
                Err(mismatch) => self.fail(mismatch.key().to_owned()),
            }
            self.tally.add("msgs.received", 1);
            try_step("echo", writable.feed(message)).await?;
            self.tally.add("msgs.echoed", 1);
            unflushed = true;
        }
    }
}

/// The WebSocket handshake over `io` (TCP, or TLS over it), its frames
/// counted from here on, in plaintext.
async fn accept<T>(io: T, options: ServerOptions) -> Step<WebSocketStream>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    try_step("accept", WebSocketStream::accept(Counted::new(io), options)).await
}
