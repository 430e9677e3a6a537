//! The client process: runs one library on one workload and reports a
//! `Sample`.

use std::collections::BTreeMap;
use std::env;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::os::{cpu_times, current_thread_runtime, env_usize, peak_rss_kib, pin_to_cpu};
use crate::fast_client::FastWebSockets;
use crate::libraries::{Library, TokioWebsockets, Tungstenite, Wsstream};
use crate::workloads::{payload, quick, workloads, Plan, Shape, Workload};

/// Untimed round trips (distinct payloads, full comparison) before a
/// round-trip workload's timed run.
const VERIFY_TRIPS: usize = 64;

/// What a client child measured.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Sample {
    messages: usize,
    wall: Duration,
    cpu: Duration,
    /// The user-space part of `cpu`: the library, the runtime and libc.
    user: Duration,
    pub(super) rss_kib: u64,
    pub(super) p50: Option<Duration>,
}

impl Sample {
    pub(super) fn rate(&self) -> f64 {
        self.messages as f64 / self.wall.as_secs_f64()
    }

    pub(super) fn cpu_us_per_message(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.messages as f64
    }

    pub(super) fn user_us_per_message(&self) -> f64 {
        self.user.as_secs_f64() * 1e6 / self.messages as f64
    }

    fn to_line(self) -> String {
        format!(
            "RESULT messages={} wall_ns={} cpu_ns={} user_ns={} rss_kib={} p50_ns={}",
            self.messages,
            self.wall.as_nanos(),
            self.cpu.as_nanos(),
            self.user.as_nanos(),
            self.rss_kib,
            self.p50.map_or(0, |p| p.as_nanos()),
        )
    }

    pub(super) fn from_line(line: &str) -> Option<Self> {
        let fields: BTreeMap<&str, u64> = line
            .strip_prefix("RESULT ")?
            .split_whitespace()
            .filter_map(|f| f.split_once('='))
            .map(|(k, v)| v.parse().ok().map(|v| (k, v)))
            .collect::<Option<_>>()?;
        let p50 = *fields.get("p50_ns")?;
        Some(Self {
            messages: usize::try_from(*fields.get("messages")?).ok()?,
            wall: Duration::from_nanos(*fields.get("wall_ns")?),
            cpu: Duration::from_nanos(*fields.get("cpu_ns")?),
            user: Duration::from_nanos(*fields.get("user_ns")?),
            rss_kib: *fields.get("rss_kib")?,
            p50: (p50 > 0).then(|| Duration::from_nanos(p50)),
        })
    }
}

/// Wall and CPU time from `start` on.
struct Meter {
    wall: Instant,
    /// User and system CPU time at the start.
    cpu: (Duration, Duration),
}

impl Meter {
    fn start() -> Self {
        Self {
            wall: Instant::now(),
            cpu: cpu_times(),
        }
    }

    fn stop(self, messages: usize) -> Sample {
        let (user, system) = cpu_times();
        let user = user.saturating_sub(self.cpu.0);
        Sample {
            messages,
            wall: self.wall.elapsed(),
            cpu: user + system.saturating_sub(self.cpu.1),
            user,
            ..Sample::default()
        }
    }
}

/// The client process: one library, one workload, one `RESULT` line.
pub(super) fn run_client() {
    pin_to_cpu(env_usize("COMPARE_CPU"));
    let baseline = peak_rss_kib();
    let library = env_usize("COMPARE_LIBRARY");
    let workload = workloads(quick())[env_usize("COMPARE_WORKLOAD")];
    let addr: SocketAddr = env::var("COMPARE_ADDR")
        .expect("COMPARE_ADDR")
        .parse()
        .expect("address");
    let local = tokio::task::LocalSet::new();
    let measurement = async move {
        match library {
            0 => measure::<Wsstream>(workload, addr).await,
            1 => measure::<Tungstenite>(workload, addr).await,
            2 => measure::<FastWebSockets>(workload, addr).await,
            _ => measure::<TokioWebsockets>(workload, addr).await,
        }
    };
    let runtime = current_thread_runtime();
    // A spawned task, as a connection's code usually is; the runtime's
    // `block_on` future has a waker of its own (see the top of main.rs).
    let mut sample = if env::var_os("COMPARE_IN_BLOCK_ON").is_some() {
        local.block_on(&runtime, measurement)
    } else {
        let task = local.spawn_local(measurement);
        local.block_on(&runtime, task).expect("measurement task")
    };
    sample.rss_kib = peak_rss_kib().saturating_sub(baseline);
    println!("{}", sample.to_line());
}

async fn measure<L: Library>(workload: Workload, addr: SocketAddr) -> Sample {
    match workload.shape {
        Shape::RoundTrip { count } => round_trips::<L>(addr, workload.size, count).await,
        Shape::Pipelined { window, total } => {
            let mut conn = L::connect(addr).await;
            L::pipeline(&mut conn, &Plan::verify(workload.size, window)).await;
            let plan = Plan::timed(workload.size, window, total);
            let meter = Meter::start();
            L::pipeline(&mut conn, &plan).await;
            meter.stop(total)
        }
        Shape::Connections { conns, trips } => {
            connections::<L>(addr, workload.size, conns, trips).await
        }
    }
}

async fn round_trips<L: Library>(addr: SocketAddr, size: usize, count: usize) -> Sample {
    let mut conn = L::connect(addr).await;
    for seed in 0..VERIFY_TRIPS {
        L::round_trip(&mut conn, &payload(size, seed), true).await;
    }
    let message = payload(size, 0);
    let mut latencies = Vec::with_capacity(count);
    let meter = Meter::start();
    for _ in 0..count {
        let sent = Instant::now();
        L::round_trip(&mut conn, &message, false).await;
        latencies.push(sent.elapsed());
    }
    let mut sample = meter.stop(count);
    latencies.sort_unstable();
    sample.p50 = latencies.get(count / 2).copied();
    sample
}

/// `conns` connections, each on a task of its own, `trips` round trips
/// each, all at once. Opening them (and a first, fully checked round trip
/// on each) is not timed.
async fn connections<L: Library>(
    addr: SocketAddr,
    size: usize,
    conns: usize,
    trips: usize,
) -> Sample {
    let mut open = Vec::with_capacity(conns);
    while open.len() < conns {
        let batch = (conns - open.len()).min(100);
        open.extend(futures::future::join_all((0..batch).map(|_| L::connect(addr))).await);
    }
    futures::future::join_all(open.iter_mut().enumerate().map(|(seed, conn)| async move {
        L::round_trip(conn, &payload(size, seed), true).await;
    }))
    .await;
    let message = payload(size, 0);
    let meter = Meter::start();
    let tasks = open.into_iter().map(|mut conn| {
        let message = message.clone();
        tokio::task::spawn_local(async move {
            for _ in 0..trips {
                L::round_trip(&mut conn, &message, false).await;
            }
            conn
        })
    });
    let done = futures::future::join_all(tasks).await;
    let sample = meter.stop(conns * trips);
    drop(done);
    sample
}
