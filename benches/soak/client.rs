//! The client process: `SOAK_CONNECTIONS` loops, each connecting,
//! exchanging messages, ending its connection one of three ways and
//! connecting again until the churn's time is up; then the wait for its
//! figures to come back, and its counts.
//!
//! Lines on stdout: `START <fields>` (before the first connection),
//! `SAMPLE <fields>` every second, `CHURN_START`, `CHURN_END` (no new
//! connection from here on), `DRAINED ms=…` (every loop done), `END
//! <fields> trimmed_rss_kib=… quiet_ms=… quiet=0|1` (the RSS once the
//! allocator gave its free pages back), `RESULT <tally>`.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout, Instant};
use wsstream::{Message, Options, Readable, WebSocketStream, Writable};

use crate::gauges::{say, start_sampling, trim, wait_for_quiet, OpenGuard, Reading};
use crate::os_limits::rss_kib;
use crate::payload::{close_reason, close_request, message, read, Mismatch};
use crate::plan::{Ending, Plan};
use crate::process::{
    child_setup, env_u64, ADDR, CONNECTIONS, DEFAULT_CONNECTIONS, DEFAULT_SECONDS, SECONDS, SEED,
};
use crate::runtime::runtime;
use crate::tally::{kind, note, End, Shared, Tally};
use crate::tls;

/// The longest any one step (open, send, an echo, the close) may take.
pub(crate) const STEP: Duration = Duration::from_secs(20);
/// The longest a whole connection may take, its steps and pauses
/// together.
pub(crate) const CONNECTION_LIMIT: Duration = Duration::from_secs(60);
/// How long the loops may take to finish their last connection once the
/// churn's time is up.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(75);
/// The loops start over this span, not all at once.
pub(crate) const RAMP: Duration = Duration::from_secs(2);
/// A keepalive ping's pong must come within this.
pub(crate) const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// What every loop shares.
struct Ctx {
    /// `ws://…/soak/`, or `wss://…/soak/` with TLS.
    url: String,
    /// With TLS: the configuration trusting the run's CA alone.
    tls: Option<Arc<rustls::ClientConfig>>,
    seed: u64,
    conns: u64,
    deadline: Instant,
    tally: Shared,
}

pub(crate) fn run_client() {
    child_setup();
    let addr = std::env::var(ADDR).expect("SOAK_ADDR");
    let seconds = env_u64(SECONDS, DEFAULT_SECONDS);
    let conns = env_u64(CONNECTIONS, DEFAULT_CONNECTIONS);
    let seed = env_u64(SEED, 0);
    // Built before the first reading, so that the start includes it.
    let tls = tls::enabled().then(tls::client_config);
    // The parent closes our stdin only if it is going away.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(1);
    });
    let runtime = runtime();
    let handle = runtime.handle().clone();
    runtime.block_on(async move {
        let start = Reading::now(&handle);
        say(&format!("START {}", start.fields()));
        start_sampling(handle);
        say("CHURN_START");
        let began = Instant::now();
        let ctx = Arc::new(Ctx {
            url: format!(
                "{}://{addr}/soak/",
                if tls.is_some() { "wss" } else { "ws" }
            ),
            tls,
            seed,
            conns,
            deadline: began + Duration::from_secs(seconds),
            tally: Mutex::default(),
        });
        let mut loops = JoinSet::new();
        for slot in 0..conns {
            let ctx = ctx.clone();
            loops.spawn(async move {
                sleep(RAMP.mul_f64(slot as f64 / conns as f64)).await;
                connection_loop(slot, &ctx).await;
            });
        }
        sleep_until(ctx.deadline).await;
        say("CHURN_END");
        let draining = Instant::now();
        let drained = timeout(DRAIN_LIMIT, async {
            while let Some(joined) = loops.join_next().await {
                joined.expect("a connection loop panicked");
            }
        })
        .await;
        if drained.is_err() {
            let left = loops.len() as u64;
            ctx.tally
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .add("error.drain.deadline", left);
            loops.abort_all();
            while loops.join_next().await.is_some() {}
        }
        say(&format!("DRAINED ms={}", draining.elapsed().as_millis()));
        let (end, took, quiet) = wait_for_quiet(start).await;
        trim();
        say(&format!(
            "END {} trimmed_rss_kib={} quiet_ms={} quiet={}",
            end.fields(),
            rss_kib(),
            took.as_millis(),
            u8::from(quiet)
        ));
        let tally = ctx.tally.lock().unwrap_or_else(PoisonError::into_inner);
        say(&format!("RESULT {}", tally.line()));
    });
    std::process::exit(0);
}

/// One of the loops: connection after connection until the deadline.
async fn connection_loop(slot: u64, ctx: &Ctx) {
    let mut round = 0;
    while Instant::now() < ctx.deadline {
        let id = round * ctx.conns + slot;
        round += 1;
        let plan = Plan::new(ctx.seed, id);
        let mut conn = Conn {
            id,
            tally: Tally::default(),
            open: None,
        };
        if timeout(CONNECTION_LIMIT, conn.run(ctx, &plan))
            .await
            .is_err()
        {
            conn.fail("error.connection.deadline".to_owned());
        }
        // Opened and not finished: the deadline cut it short.
        if conn.open.is_some() {
            conn.finish(End::Error);
        }
        ctx.tally
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .merge(&conn.tally);
        sleep(plan.reconnect_after).await;
    }
}

/// One connection's own counts, added to the process's when it ends.
struct Conn {
    id: u64,
    tally: Tally,
    /// From the opening until it ends: counted in `OPEN`.
    open: Option<OpenGuard>,
}

/// A step of a connection (the client's and the server's): `Err(key)`
/// names what went wrong.
pub(crate) type Step<T> = Result<T, String>;

/// `future` within [`STEP`]; `what` names it in the error's key.
async fn step<T>(what: &str, future: impl Future<Output = T>) -> Step<T> {
    timeout(STEP, future)
        .await
        .map_err(|_| format!("error.{what}.deadline"))
}

/// A `Result<_, wsstream::Error>` step.
pub(crate) async fn try_step<T>(
    what: &str,
    future: impl Future<Output = Result<T, wsstream::Error>>,
) -> Step<T> {
    step(what, future)
        .await?
        .map_err(|e| format!("error.{what}.{}", kind(&e)))
}

impl Conn {
    fn fail(&mut self, key: String) {
        note(format_args!("client: connection {}: {key}", self.id));
        self.tally.add(key, 1);
    }

    fn finish(&mut self, end: End) {
        self.tally.end(self.id, end);
        self.open = None;
    }

    async fn run(&mut self, ctx: &Ctx, plan: &Plan) {
        let mut options = Options::default()
            .ping_interval(plan.keepalive)
            .ping_timeout(Some(PING_TIMEOUT));
        if let Some(deflate) = plan.deflate {
            options = options.deflate(deflate);
        }
        if let Some(tls) = &ctx.tls {
            options = options.tls_config(tls.clone());
        }
        let ws = WebSocketStream::connect(format!("{}{}", ctx.url, self.id), options);
        let opened = match try_step("open", ws.opened()).await {
            Ok(opened) => opened,
            Err(key) => return self.fail(key),
        };
        self.tally.open(self.id);
        self.open = Some(OpenGuard::new());
        let deflated = opened.extensions.starts_with("permessage-deflate");
        if deflated != plan.deflate.is_some() {
            self.fail("error.open.extensions".to_owned());
        }
        self.tally.add("opens.deflate", u64::from(deflated));
        self.tally
            .add("opens.keepalive", u64::from(plan.keepalive.is_some()));
        let (mut readable, mut writable) = (opened.readable, opened.writable);
        let ended = match self.exchange(plan, &mut readable, &mut writable).await {
            Ok(()) => {
                self.end(plan.ending, &ws, &mut readable, &mut writable)
                    .await
            }
            Err(key) => Err(key),
        };
        match ended {
            Ok(end) => self.finish(end),
            Err(key) => {
                self.fail(key);
                self.finish(End::Error);
            }
        }
    }

    /// The plan's batches: each batch's messages sent while their echoes
    /// are read (a client that wrote a batch of 128 KiB messages before
    /// reading could wait on a server waiting on it), every echo compared
    /// with what was sent byte for byte; then the pause, reading.
    async fn exchange(
        &mut self,
        plan: &Plan,
        readable: &mut Readable,
        writable: &mut Writable,
    ) -> Step<()> {
        let mut seq = 0;
        for batch in &plan.batches {
            let messages: Vec<Message> = batch
                .messages
                .iter()
                .map(|&(text, len)| {
                    seq += 1;
                    message(self.id, seq - 1, text, len)
                })
                .collect();
            let sending = async {
                for m in &messages {
                    try_step("send", writable.feed(m.clone())).await?;
                }
                try_step("send", writable.flush()).await
            };
            let (_, echoes) = tokio::try_join!(sending, echoes(readable, messages.len()))?;
            self.tally.add("msgs.sent", messages.len() as u64);
            let bytes: usize = messages.iter().map(Message::len).sum();
            self.tally.add("bytes.sent", bytes as u64);
            self.tally.add("msgs.received", echoes.len() as u64);
            for (got, want) in echoes.iter().zip(&messages) {
                self.check_echo(got, want);
            }
            if !batch.pause.is_zero() {
                match timeout(batch.pause, readable.next()).await {
                    Err(_) => {}
                    Ok(Some(Ok(_))) => return Err("error.pause.unexpected_message".to_owned()),
                    Ok(Some(Err(e))) => return Err(format!("error.pause.{}", kind(&e))),
                    Ok(None) => return Err("error.pause.ended".to_owned()),
                }
            }
        }
        Ok(())
    }

    fn check_echo(&mut self, got: &Message, want: &Message) {
        if got == want {
            self.tally.add("msgs.verified", 1);
            return;
        }
        let key = match read(got) {
            Err(mismatch) => mismatch.key(),
            // Well formed, but not the one expected.
            Ok(_) if got.kind() == want.kind() => "mismatch.order",
            Ok(_) => Mismatch::Content.key(),
        };
        self.fail(key.to_owned());
    }

    /// Ends the connection as planned; returns the end as the server
    /// should see it.
    async fn end(
        &mut self,
        ending: Ending,
        ws: &WebSocketStream,
        readable: &mut Readable,
        writable: &mut Writable,
    ) -> Step<End> {
        let code = match ending {
            Ending::Drop => return Ok(End::Drop),
            Ending::ClientClose(code) | Ending::ServerClose(code) => code,
        };
        let reason = close_reason(self.id, code);
        if let Ending::ClientClose(_) = ending {
            ws.close(code, &reason)
                .map_err(|e| format!("error.close.{}", kind(&e)))?;
        } else {
            try_step("close_request", writable.send(close_request(code, &reason))).await?;
        }
        match step("close", readable.next()).await? {
            None => {}
            Some(Ok(_)) => return Err("error.close.unexpected_message".to_owned()),
            Some(Err(e)) => return Err(format!("error.close.{}", kind(&e))),
        }
        let closed = try_step("closed", ws.closed()).await?;
        if closed.code != code {
            return Err("error.closed.code".to_owned());
        }
        match ending {
            Ending::ClientClose(_) => Ok(End::ClientClose(code)),
            _ if closed.reason != reason => Err("mismatch.close_reason".to_owned()),
            _ => Ok(End::ServerClose(code)),
        }
    }
}

/// The next `count` messages.
async fn echoes(readable: &mut Readable, count: usize) -> Step<Vec<Message>> {
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        match step("echo", readable.next()).await? {
            Some(Ok(message)) => got.push(message),
            Some(Err(e)) => return Err(format!("error.echo.{}", kind(&e))),
            None => return Err("error.echo.ended".to_owned()),
        }
    }
    Ok(got)
}
