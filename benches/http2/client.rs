//! The client process: one workload over one HTTP version, its figures on
//! a `RESULT` line.

use std::io::{self, BufRead, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use wsstream::{Message, Opened, Options, WebSocketStream};

use crate::common::echo::check_echo;
use crate::common::os::{
    cpu_time, current_thread_runtime, env_string, env_usize, peak_rss_kib, pin_to_cpu,
};
use crate::process::{env_http, kernel_socket_bytes, open_fds, ADDR, CPU, WORKLOAD};
use crate::workloads::{payload, quick, workloads, Http, Shape, Workload};

/// Untimed, fully checked round trips before the single WebSocket's timed
/// ones.
const VERIFY_TRIPS: usize = 64;
/// WebSockets opened at once while opening many.
const OPEN_BATCH: usize = 100;
/// How long a client may take before it reports where it is and gives up.
const WATCHDOG: Duration = Duration::from_secs(60);

/// How far the client got, for the watchdog's report.
#[derive(Default)]
struct Progress {
    /// WebSockets open.
    opened: AtomicUsize,
    /// WebSockets through their timed round trips.
    finished: AtomicUsize,
}

/// The client process.
pub(super) fn run_client() {
    pin_to_cpu(env_usize(CPU));
    let rss_baseline = peak_rss_kib();
    let kernel_baseline = kernel_socket_bytes();
    let http = env_http();
    let workload = workloads(quick()).swap_remove(env_usize(WORKLOAD));
    let url = format!("ws://{}/echo", env_string(ADDR));
    let progress = Arc::new(Progress::default());
    let watched = progress.clone();
    let name = workload.name.clone();
    std::thread::spawn(move || {
        std::thread::sleep(WATCHDOG);
        eprintln!(
            "{} client stuck after {WATCHDOG:?} on {name:?}: {} WebSockets opened, {} finished",
            http.name(),
            watched.opened.load(Ordering::SeqCst),
            watched.finished.load(Ordering::SeqCst),
        );
        std::process::exit(3);
    });
    let runtime = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    // A spawned task, as a connection's code usually is (see the top of
    // benches/compare/main.rs on `block_on`'s waker).
    let task = local.spawn_local(async move {
        let (mut fields, kept) = measure(workload, http, &url, progress, kernel_baseline).await;
        let rss = peak_rss_kib().saturating_sub(rss_baseline);
        fields.push(("rss_kib", u128::from(rss)));
        let line: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("RESULT {}", line.join(" "));
        io::stdout().flush().expect("stdout");
        // The parent reads the server's figures, then closes our stdin;
        // the WebSockets stay open until then.
        let _ = io::stdin().lock().read_line(&mut String::new());
        drop(kept);
    });
    local.block_on(&runtime, task).expect("measurement task");
}

type Fields = Vec<(&'static str, u128)>;

/// Says `READY` and waits for the parent's `GO` (it reads the server's
/// figures in between). Blocks the runtime: nothing is in flight.
fn ready_and_wait() {
    println!("READY");
    io::stdout().flush().expect("stdout");
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line).expect("stdin");
    assert_eq!(line.trim(), "GO", "the parent said {line:?}");
}

async fn measure(
    workload: Workload,
    http: Http,
    url: &str,
    progress: Arc<Progress>,
    kernel_baseline: Option<u64>,
) -> (Fields, Vec<Opened>) {
    let options = http.options();
    match workload.shape {
        Shape::RoundTrip { count } => {
            let mut conn = connect(url, options, http, &progress).await;
            for seed in 0..VERIFY_TRIPS {
                round_trip(&mut conn, &payload(workload.size, seed), true).await;
            }
            let mut fields = all_open(kernel_baseline);
            ready_and_wait();
            let message = payload(workload.size, 0);
            let mut latencies = Vec::with_capacity(count);
            let (wall, cpu) = (Instant::now(), cpu_time());
            for _ in 0..count {
                let sent = Instant::now();
                round_trip(&mut conn, &message, false).await;
                latencies.push(sent.elapsed());
            }
            fields.extend(timed(count, wall, cpu));
            latencies.sort_unstable();
            fields.push(("p50_ns", latencies[count / 2].as_nanos()));
            fields.push(("p99_ns", latencies[count * 99 / 100].as_nanos()));
            progress.finished.fetch_add(1, Ordering::SeqCst);
            (fields, vec![conn])
        }
        Shape::Many { sockets, trips } => {
            let (open_wall, open_cpu) = (Instant::now(), cpu_time());
            let mut open = Vec::with_capacity(sockets);
            while open.len() < sockets {
                let batch = (sockets - open.len()).min(OPEN_BATCH);
                let batch = (0..batch).map(|_| connect(url, options.clone(), http, &progress));
                open.extend(futures::future::join_all(batch).await);
            }
            let open_fields = [
                ("open_wall_ns", open_wall.elapsed().as_nanos()),
                ("open_cpu_ns", (cpu_time() - open_cpu).as_nanos()),
            ];
            let size = workload.size;
            let checks = open.iter_mut().enumerate().map(|(seed, conn)| async move {
                round_trip(conn, &payload(size, seed), true).await;
            });
            futures::future::join_all(checks).await;
            let mut fields = all_open(kernel_baseline);
            fields.extend(open_fields);
            ready_and_wait();
            let message = payload(size, 0);
            let (wall, cpu) = (Instant::now(), cpu_time());
            let tasks = open.into_iter().map(|mut conn| {
                let message = message.clone();
                let progress = progress.clone();
                tokio::task::spawn_local(async move {
                    for _ in 0..trips {
                        round_trip(&mut conn, &message, false).await;
                    }
                    progress.finished.fetch_add(1, Ordering::SeqCst);
                    conn
                })
            });
            let done = futures::future::join_all(tasks).await;
            fields.extend(timed(sockets * trips, wall, cpu));
            let kept = done
                .into_iter()
                .map(|conn| conn.expect("a WebSocket's task"))
                .collect();
            (fields, kept)
        }
    }
}

/// The figures taken with every WebSocket open, before the timed section.
fn all_open(kernel_baseline: Option<u64>) -> Fields {
    let mut fields = vec![("fds", u128::from(open_fds()))];
    if let (Some(before), Some(now)) = (kernel_baseline, kernel_socket_bytes()) {
        fields.push(("kernel_bytes", u128::from(now.saturating_sub(before))));
    }
    fields
}

fn timed(messages: usize, wall: Instant, cpu: Duration) -> Fields {
    vec![
        ("messages", messages as u128),
        ("wall_ns", wall.elapsed().as_nanos()),
        ("cpu_ns", (cpu_time() - cpu).as_nanos()),
    ]
}

/// Opens one WebSocket and checks which HTTP carried it.
async fn connect(url: &str, options: Options, http: Http, progress: &Progress) -> Opened {
    let ws = WebSocketStream::connect(url, options);
    let opened = match ws.opened().await {
        Ok(opened) => opened,
        Err(err) => panic!(
            "{}: opening a WebSocket failed after {} opened: {err} ({err:?})",
            http.name(),
            progress.opened.load(Ordering::SeqCst),
        ),
    };
    let (version, status) = (opened.response.version(), opened.response.status());
    match http {
        Http::H1 => assert_eq!(status, 101, "HTTP/1.1 upgrade answered {status}"),
        Http::H2 => assert!(
            version == http::Version::HTTP_2 && status == 200,
            "extended CONNECT answered {version:?} {status}"
        ),
    }
    progress.opened.fetch_add(1, Ordering::SeqCst);
    opened
}

/// Sends `message` and checks its echo.
async fn round_trip(conn: &mut Opened, message: &Bytes, full_check: bool) {
    conn.send(Message::binary(message.clone()))
        .await
        .expect("send");
    match conn.next().await {
        Some(Ok(Message::Binary(echo))) => check_echo(&echo, message, full_check, "echo"),
        other => panic!("expected a binary echo, got {other:?}"),
    }
}
