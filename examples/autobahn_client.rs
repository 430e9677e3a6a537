//! Autobahn|Testsuite client: runs every case of a `wstest -m fuzzingserver`
//! through wsstream's public API (`WebSocketStream::connect`, the readable
//! Stream and the writable Sink), echoing each text and binary message.
//!
//! With `--http2` (feature `http2`) every WebSocket is opened over HTTP/2
//! (RFC 8441): cleartext h2c with prior knowledge, all of them sharing the
//! connection of one `Options` value. wstest speaks only HTTP/1.1, so an
//! HTTP/2 proxy that turns extended CONNECT into the HTTP/1.1 upgrade
//! (nghttpx in autobahn/run.sh) stands between the two. Each case's
//! response must then be an HTTP/2 one; any other makes the exit status
//! non-zero.
//!
//! ```sh
//! wstest -m fuzzingserver -s spec.json   # see autobahn/run.sh
//! cargo run --release --example autobahn_client -- ws://127.0.0.1:9001 wsstream
//! cargo run --release --features http2 --example autobahn_client -- --http2 ws://127.0.0.1:3000 wsstream
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use wsstream::{DeflateConfig, Options, WebSocketStream};

/// A case that is still running after this long is abandoned (the suite's own
/// case timeouts are shorter); it keeps one broken case from hanging the run.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// How the cases' WebSockets opened, by HTTP version of their response.
#[derive(Default)]
struct Tally {
    http2: u32,
    other: u32,
    failed: u32,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let http2 = match args.iter().position(|a| a == "--http2") {
        Some(i) => {
            args.remove(i);
            true
        }
        None => false,
    };
    let (base, agent) = match args.as_slice() {
        [base, agent] => (base.trim_end_matches('/').to_owned(), agent.clone()),
        _ => {
            eprintln!(
                "usage: autobahn_client [--http2] <base ws url, e.g. ws://127.0.0.1:9001> <agent>"
            );
            return ExitCode::from(2);
        }
    };
    let Some(base_options) = base_options(http2) else {
        eprintln!(
            "autobahn_client: --http2 needs the `http2` feature (cargo build --features http2)"
        );
        return ExitCode::from(2);
    };

    let count = match case_count(&base, &base_options).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("autobahn_client: cannot get the case count from {base}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let over = if http2 { "HTTP/2" } else { "HTTP/1.1" };
    println!("autobahn_client: {count} cases from {base} as agent {agent} over {over}");

    // permessage-deflate offered with the defaults, so 12.* and 13.* run.
    // Clones of one value: over HTTP/2 they share its connection.
    let case_options = base_options.clone().deflate(DeflateConfig::default());
    let mut tally = Tally::default();
    let started = Instant::now();
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        match tokio::time::timeout(CASE_TIMEOUT, run_case(&url, case_options.clone())).await {
            Err(_) => {
                eprintln!(
                    "autobahn_client: case {case} still running after {CASE_TIMEOUT:?}; moving on"
                );
            }
            Ok(None) => tally.failed += 1,
            Ok(Some(version)) if version == http::Version::HTTP_2 => tally.http2 += 1,
            Ok(Some(version)) => {
                tally.other += 1;
                if http2 {
                    eprintln!("autobahn_client: case {case} opened over {version:?}, not HTTP/2");
                }
            }
        }
        if case % 50 == 0 || case == count {
            println!(
                "autobahn_client: {case}/{count} cases done ({:.1}s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "autobahn_client: {} WebSockets opened over HTTP/2, {} over HTTP/1.x, {} failed to open",
        tally.http2, tally.other, tally.failed
    );

    // The last case's result must be recorded before the reports are
    // written, and nothing orders our next WebSocket after the suite's
    // handling of the last one's close: through the HTTP/2 proxy each
    // WebSocket is a stream of ours but a connection of its own toward
    // wstest, and one run's report lacked its last case (13.7.18), reports
    // updated before wstest had recorded it. `getCaseStatus` answers only
    // once the suite has recorded the case.
    if count > 0 {
        let url = format!("{base}/getCaseStatus?case={count}&agent={agent}");
        match tokio::time::timeout(CASE_TIMEOUT, first_text(&url, &base_options)).await {
            Ok(Ok(status)) => println!("autobahn_client: case {count} recorded: {status}"),
            Ok(Err(e)) => eprintln!("autobahn_client: getCaseStatus for case {count} failed: {e}"),
            Err(_) => eprintln!(
                "autobahn_client: case {count} not recorded after {CASE_TIMEOUT:?}; updating the reports anyway"
            ),
        }
    }

    let url = format!("{base}/updateReports?agent={agent}");
    let ws = WebSocketStream::connect(url.as_str(), base_options);
    if let Err(e) = ws.opened().await {
        eprintln!("autobahn_client: updateReports failed: {e}");
        return ExitCode::FAILURE;
    }
    let _ = ws.closed().await;
    println!("autobahn_client: reports updated");
    if http2 && tally.other > 0 {
        eprintln!(
            "autobahn_client: --http2, but {} WebSockets did not open over HTTP/2",
            tally.other
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The options every WebSocket starts from: the defaults, or with `--http2`
/// HTTP/2 required, with prior knowledge on `ws` URLs. `None` when
/// `--http2` was asked for in a build without the `http2` feature.
fn base_options(http2: bool) -> Option<Options> {
    if !http2 {
        return Some(Options::default());
    }
    #[cfg(feature = "http2")]
    {
        Some(
            Options::default()
                .http_version(wsstream::HttpVersion::RequireHttp2)
                .http2_prior_knowledge(true),
        )
    }
    #[cfg(not(feature = "http2"))]
    {
        None
    }
}

/// `/getCaseCount`: one text message holding the number of cases.
async fn case_count(base: &str, options: &Options) -> Result<u32, String> {
    let url = format!("{base}/getCaseCount");
    let text = first_text(&url, options).await?;
    text.trim()
        .parse::<u32>()
        .map_err(|e| format!("bad count {text:?}: {e}"))
}

/// The first message of a suite command that answers with one text message
/// and closes (`getCaseCount`, `getCaseStatus`).
async fn first_text(url: &str, options: &Options) -> Result<String, String> {
    let ws = WebSocketStream::connect(url, options.clone());
    let opened = ws.opened().await.map_err(|e| e.to_string())?;
    let mut readable = opened.readable;
    let msg = match readable.next().await {
        Some(Ok(m)) => m,
        Some(Err(e)) => return Err(e.to_string()),
        None => return Err("closed before sending its answer".into()),
    };
    let text = msg
        .as_text()
        .ok_or("the answer was not a text message")?
        .to_owned();
    drop(readable);
    let _ = ws.closed().await;
    Ok(text)
}

/// One case: echo every message until the readable ends (or fails), then wait
/// for the close handshake to finish. Errors are the point of many cases
/// (protocol violations the suite sends on purpose), so they are ignored here;
/// the suite judges the outcome. Returns the HTTP version of the opening
/// handshake's response, or `None` when the WebSocket did not open.
async fn run_case(url: &str, options: Options) -> Option<http::Version> {
    let ws = WebSocketStream::connect(url, options);
    let version = match ws.opened().await {
        Ok(opened) => {
            let version = opened.response.version();
            let mut readable = opened.readable;
            let mut writable = opened.writable;
            // send_all feeds each message to the writable as it arrives and
            // flushes whenever the readable has nothing ready, so bursts of
            // small messages (case 9.7.*, 9.8.*) go out batched. It stops at
            // the first error of either side and does not close the writable.
            let _ = writable.send_all(&mut readable).await;
            Some(version)
        }
        Err(_) => None,
    };
    let _ = ws.closed().await;
    version
}
