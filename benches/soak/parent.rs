//! The parent: starts the server and the client, gathers their lines
//! until both have reported (every wait with a deadline), then checks,
//! reports, writes the samples and the plot, and fails if a check did.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::checks::checks;
use crate::client::{CONNECTION_LIMIT, DRAIN_LIMIT, RAMP};
use crate::gauges::QUIET_LIMIT;
use crate::plot::{write_csv, write_svg};
use crate::process::{
    env_u64, Event, Proc, Side, ADDR, CONNECTIONS, DEFAULT_CONNECTIONS, DEFAULT_SECONDS, SECONDS,
    SEED,
};
use crate::report::report;
use crate::rng::run_seed;
use crate::run::{fields, reading, Run, Sample};
use crate::tally::Tally;
use crate::tls::{self, Pki, TLS};

/// Where `SOAK_OUT` points, or `target/soak` (the target directory of
/// this binary). A relative `SOAK_OUT` is taken from the workspace root,
/// where the command is typed (`cargo bench` runs this in `benches/`).
fn out_dir() -> PathBuf {
    match std::env::var_os("SOAK_OUT") {
        Some(dir) => {
            let benches = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            benches.parent().unwrap_or(benches).join(dir)
        }
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.ancestors().nth(3)?.join("soak")))
            .unwrap_or_else(|| PathBuf::from("target/soak")),
    }
}

pub(crate) fn run_parent() {
    let began = Instant::now();
    let mut run = Run {
        seconds: env_u64(SECONDS, DEFAULT_SECONDS),
        conns: env_u64(CONNECTIONS, DEFAULT_CONNECTIONS),
        seed: run_seed(),
        tls: tls::enabled(),
        ..Run::default()
    };
    eprintln!(
        "soak: {} connections for {} s (SOAK_SEED={}), {}, 127.0.0.1 only",
        run.conns,
        run.seconds,
        run.seed,
        if run.tls { "wss" } else { "ws" }
    );
    // A CA and a server certificate made for this run alone.
    let pki = run.tls.then(Pki::generate);
    // Everything the children do, with room to spare: the churn, the
    // ramp, the last connections, the drain, both waits for quiet.
    let deadline = began
        + Duration::from_secs(run.seconds)
        + RAMP
        + CONNECTION_LIMIT
        + DRAIN_LIMIT
        + QUIET_LIMIT * 2
        + Duration::from_secs(90);
    let (events, inbox) = mpsc::channel();
    let common = [
        (SECONDS, run.seconds.to_string()),
        (CONNECTIONS, run.conns.to_string()),
        (SEED, run.seed.to_string()),
        (TLS, u8::from(run.tls).to_string()),
    ];
    let mut vars = common.to_vec();
    vars.extend(pki.iter().flat_map(Pki::server_vars));
    let mut server = Proc::start(Side::Server, &vars, events.clone());
    let port = match inbox.recv_timeout(Duration::from_secs(10)) {
        Ok(Event {
            line: Some(line), ..
        }) => line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse::<u16>().ok()),
        _ => None,
    };
    let Some(port) = port else {
        panic!("the server did not say its port");
    };
    let mut vars = common.to_vec();
    vars.extend(pki.iter().flat_map(Pki::client_vars));
    vars.push((ADDR, format!("127.0.0.1:{port}")));
    let mut client = Proc::start(Side::Client, &vars, events);
    let mut open = [true, true];
    while open.iter().any(|&o| o) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(event) = inbox.recv_timeout(left) else {
            run.problems.push(format!(
                "the children had not finished after {:.0} s: stopped",
                began.elapsed().as_secs_f64()
            ));
            break;
        };
        let t = event.at.duration_since(began).as_secs_f64();
        let side = event.side;
        let Some(line) = event.line else {
            open[side as usize] = false;
            if run.child(side).result.is_none() {
                run.problems
                    .push(format!("the {} exited before its result", side.name()));
                break;
            }
            continue;
        };
        let (word, rest) = line.split_once(' ').unwrap_or((&line, ""));
        match word {
            "SAMPLE" => {
                let reading = reading(rest);
                run.samples.push(Sample { side, t, reading });
            }
            "START" => run.child_mut(side).start = Some(reading(rest)),
            "CHURN_START" => {
                run.churn_start = Some(t);
                eprintln!("soak: churning for {} s", run.seconds);
            }
            "CHURN_END" => {
                run.churn_end = Some(t);
                eprintln!("soak: churn over; the last connections end");
            }
            "DRAINED" => run.drained_ms = fields(rest).get("ms").copied(),
            "END" => {
                let f = fields(rest);
                let child = run.child_mut(side);
                child.end = Some(reading(rest));
                child.trimmed_rss_kib = f.get("trimmed_rss_kib").copied();
                child.quiet = Some((
                    f.get("quiet_ms").copied().unwrap_or(0),
                    f.get("quiet") == Some(&1),
                ));
            }
            "RESULT" => {
                let Some(tally) = Tally::parse(rest) else {
                    run.problems
                        .push(format!("the {}'s result did not parse", side.name()));
                    break;
                };
                run.child_mut(side).result = Some(tally);
                match side {
                    // Every client connection is over: the server's turn.
                    Side::Client => server.say("FINISH"),
                    Side::Server => server.close_stdin(),
                }
            }
            _ => eprintln!("{}: {line}", side.name()),
        }
    }
    server.close_stdin();
    client.close_stdin();
    let exit_by = Instant::now() + Duration::from_secs(10);
    for (side, proc) in [(Side::Server, &mut server), (Side::Client, &mut client)] {
        match proc.wait(exit_by) {
            Some(status) if status.success() => {}
            Some(status) => run
                .problems
                .push(format!("the {} exited with {status}", side.name())),
            None => run
                .problems
                .push(format!("the {} had to be killed", side.name())),
        }
    }
    run.wall = began.elapsed().as_secs_f64();
    let checks = checks(&run);
    let dir = out_dir();
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| write_csv(&run, &dir.join("soak-samples.csv")))
        .map_err(|e| e.to_string())
        .and_then(|()| write_svg(&run, &dir.join("soak.svg")));
    print!("{}", report(&run, &checks, &dir, written.as_ref().err()));
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.what.as_str())
        .collect();
    assert!(
        failed.is_empty(),
        "the soak failed (SOAK_SEED={}): {}",
        run.seed,
        failed.join("; ")
    );
}
