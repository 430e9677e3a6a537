//! Autobahn|Testsuite client: runs every case of a `wstest -m fuzzingserver`
//! through wsstream's public API (`WebSocketStream::connect`, the readable
//! Stream and the writable Sink), echoing each text and binary message.
//!
//! ```sh
//! wstest -m fuzzingserver -s spec.json   # see autobahn/run.sh
//! cargo run --release --example autobahn_client -- ws://127.0.0.1:9001 wsstream
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use wsstream::{DeflateConfig, Options, WebSocketStream};

/// A case that is still running after this long is abandoned (the suite's own
/// case timeouts are shorter); it keeps one broken case from hanging the run.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (base, agent) = match args.as_slice() {
        [_, base, agent] => (base.trim_end_matches('/').to_owned(), agent.clone()),
        _ => {
            eprintln!("usage: autobahn_client <base ws url, e.g. ws://127.0.0.1:9001> <agent>");
            return ExitCode::from(2);
        }
    };

    let count = match case_count(&base).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("autobahn_client: cannot get the case count from {base}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("autobahn_client: {count} cases from {base} as agent {agent}");

    let started = Instant::now();
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        if tokio::time::timeout(CASE_TIMEOUT, run_case(&url))
            .await
            .is_err()
        {
            eprintln!(
                "autobahn_client: case {case} still running after {CASE_TIMEOUT:?}; moving on"
            );
        }
        if case % 50 == 0 || case == count {
            println!(
                "autobahn_client: {case}/{count} cases done ({:.1}s)",
                started.elapsed().as_secs_f64()
            );
        }
    }

    let url = format!("{base}/updateReports?agent={agent}");
    let ws = WebSocketStream::connect(url.as_str(), Options::default());
    if let Err(e) = ws.opened().await {
        eprintln!("autobahn_client: updateReports failed: {e}");
        return ExitCode::FAILURE;
    }
    let _ = ws.closed().await;
    println!("autobahn_client: reports updated");
    ExitCode::SUCCESS
}

/// `/getCaseCount`: one text message holding the number of cases.
async fn case_count(base: &str) -> Result<u32, String> {
    let url = format!("{base}/getCaseCount");
    let ws = WebSocketStream::connect(url.as_str(), Options::default());
    let opened = ws.opened().await.map_err(|e| e.to_string())?;
    let mut readable = opened.readable;
    let msg = match readable.next().await {
        Some(Ok(m)) => m,
        Some(Err(e)) => return Err(e.to_string()),
        None => return Err("closed before sending the count".into()),
    };
    let text = msg.as_text().ok_or("the count was not a text message")?;
    let n = text
        .trim()
        .parse::<u32>()
        .map_err(|e| format!("bad count {text:?}: {e}"))?;
    drop(readable);
    let _ = ws.closed().await;
    Ok(n)
}

/// One case: echo every message until the readable ends (or fails), then wait
/// for the close handshake to finish. Errors are the point of many cases
/// (protocol violations the suite sends on purpose), so they are ignored here;
/// the suite judges the outcome.
async fn run_case(url: &str) {
    // permessage-deflate offered with the defaults, so 12.* and 13.* run.
    let options = Options::default().deflate(DeflateConfig::default());
    let ws = WebSocketStream::connect(url, options);
    if let Ok(opened) = ws.opened().await {
        let mut readable = opened.readable;
        let mut writable = opened.writable;
        // send_all feeds each message to the writable as it arrives and flushes
        // whenever the readable has nothing ready, so bursts of small messages
        // (case 9.7.*, 9.8.*) go out batched. It stops at the first error of
        // either side and does not close the writable.
        let _ = writable.send_all(&mut readable).await;
    }
    let _ = ws.closed().await;
}
