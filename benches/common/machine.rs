//! What the process-per-measurement benches (`compare`, `http2`, `server`)
//! say about where they ran: the CPU, the kernel, the toolchain, wsstream's
//! commit and the locked versions of the other crates.

use std::fmt::Write as _;
use std::fs;
use std::process::Command;

/// The first items of a report's setup list: the CPU model and core count
/// followed by `; {pinning}`, the kernel, rustc, and wsstream's version and
/// commit followed by `wsstream_note`.
pub(crate) fn machine_lines(pinning: &str, wsstream_note: &str) -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "- CPU: {model}, {cores} cores; {pinning}");
    let _ = writeln!(out, "- Linux {}", kernel.trim());
    let _ = writeln!(out, "- {}", command_output("rustc", &["-V"]).trim());
    let _ = writeln!(
        out,
        "- wsstream {} ({}){wsstream_note}",
        // Not this package's version: the benches are a package of their own.
        locked_versions(&["wsstream"])
            .first()
            .map_or("unknown", |(_, v)| v.as_str()),
        command_output("git", &["rev-parse", "--short", "HEAD"]).trim()
    );
    out
}

/// A `- name version` item for each crate of `wanted` in Cargo.lock, in
/// the lock file's order.
pub(crate) fn version_lines(wanted: &[&str]) -> String {
    let mut out = String::new();
    for (name, version) in locked_versions(wanted) {
        let _ = writeln!(out, "- {name} {version}");
    }
    out
}

/// `(name, version)` of each crate of `wanted` in Cargo.lock, in the lock
/// file's order.
fn locked_versions(wanted: &[&str]) -> Vec<(String, String)> {
    let lock = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
        .unwrap_or_default();
    let mut found = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_owned());
        } else if let Some(v) = line.strip_prefix("version = ") {
            if let Some(n) = name.take().filter(|n| wanted.contains(&n.as_str())) {
                found.push((n, v.trim_matches('"').to_owned()));
            }
        }
    }
    found
}

/// What `program args` prints when run in the crate's directory, or
/// `unknown`.
fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |o| String::from_utf8_lossy(&o.stdout).into_owned(),
        )
}
