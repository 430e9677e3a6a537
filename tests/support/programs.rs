//! What the supports that run programs installed on the system share
//! (`browser.rs` for chromedriver, `proxies.rs` for the proxies,
//! `tests/http2_nghttpx.rs` for nghttpx, and `python.rs` and `node.rs` for
//! the peers they install under `target/peers`): finding a program, telling
//! whether we are root, saying what is about to be installed, running an
//! install script, a free port, a fresh temporary directory, and reading a
//! log file.
//!
//! A support file includes it with `#[path = "programs.rs"] mod programs;`
//! (as `node.rs` does `peer_process.rs`), a test with
//! `#[path = "support/programs.rs"] mod programs;`, and the command-line
//! tool's tests (`cli/tests/support`) from there. A test binary that
//! includes it twice (a test and a support file, or two support files)
//! allows clippy's `duplicate_mod`, saying which.

#![allow(dead_code)]

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The first of `names` found in `PATH`, `/usr/bin`, `/usr/sbin`,
/// `/usr/local/bin` or `/usr/local/sbin` (Debian puts some daemons in
/// `sbin`, which is not on every user's `PATH`).
pub fn find_program(names: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"].map(PathBuf::from));
    names.iter().find_map(|name| {
        dirs.iter()
            .map(|dir| dir.join(name))
            .find(|path| is_executable(path))
    })
}

#[cfg(unix)]
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
pub fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Whether we run as root (the effective user).
#[cfg(unix)]
#[allow(unsafe_code)]
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(not(unix))]
pub fn is_root() -> bool {
    false
}

/// The script that installs every system peer of the tests at once,
/// relative to the repository root.
pub const INSTALL_ALL_SCRIPT: &str = "tests/peers/install-all.sh";

/// Why `script` (relative to the repository root) was not run, and what to run
/// instead to install `packages`, or every peer the tests use.
pub fn not_root_hint(script: &str, packages: &str) -> String {
    format!(
        "not root, so `{script}` was not run (run `sudo bash {script}` or `sudo apt-get install \
         {packages}`, or `sudo bash {INSTALL_ALL_SCRIPT}` once for every peer the tests use, \
         then `cargo test` without root)"
    )
}

/// `<target>/peers`, in Cargo's target directory (`CARGO_TARGET_TMPDIR` is
/// `<target>/tmp`): where the tests install their peers (`python-venv`,
/// `node`) and keep pip's and npm's caches and logs. Not created here.
pub fn target_peers() -> PathBuf {
    option_env!("CARGO_TARGET_TMPDIR")
        .and_then(|tmp| Path::new(tmp).parent().map(Path::to_path_buf))
        .unwrap_or_else(|| repo_root().join("target"))
        .join("peers")
}

/// The repository's root, where `tests/peers/` is: the crate root of the
/// library's tests, the parent of the command-line tool's (`cli/`), which
/// include this file too.
pub fn repo_root() -> &'static Path {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| dir.join("tests/peers").is_dir())
        .unwrap_or(manifest)
}

/// `path` relative to the repository root when it lies inside it
/// (`target/peers/node`), else in full.
pub fn shown(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Says on the terminal, just before the tests install something (or skip
/// for want of it), what and where: one line `wsstream tests: WHAT` on
/// standard error. It is written to the stream itself, not with
/// `eprintln!`, which libtest captures and shows only for a failing test:
/// an install or a skip is news even when every test passes.
pub fn announce(what: &str) {
    let line = format!("wsstream tests: {what}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// The words of `list` as an English list: `tinyproxy, microsocks and
/// stunnel4` for `"tinyproxy microsocks stunnel4"`.
pub fn word_list(list: &str) -> String {
    let words: Vec<&str> = list.split_whitespace().collect();
    match words.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Runs `bash SCRIPT` (relative to the repository root) there with
/// no input, after [announcing](announce) that it installs the Debian
/// `packages` (space-separated); `Err` with its exit status and output when
/// it fails. Call it only when a program of `packages` is missing.
pub fn run_install_script(script: &str, packages: &str) -> Result<(), String> {
    announce(&format!(
        "installing {} with apt-get ({script}, first run only)",
        word_list(packages)
    ));
    let root = repo_root();
    let output = Command::new("bash")
        .arg(root.join(script))
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("could not run `bash {script}`: {err}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "`bash {script}` failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// A port of 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|err| panic!("binding 127.0.0.1:0 to find a free port: {err}"))
}

/// A path in the temporary directory that no other process, and no other
/// call in this one, gets: `wsstream-test-<name>-<pid>-<n>` (not created).
pub fn unique_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "wsstream-test-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The file at `path` as text, empty if it cannot be read (a log not
/// written yet).
pub fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// `name` found, or installed by `script` (as root) from the Debian
/// `packages` and then found; panics with what to do when neither works,
/// so that a test needing it fails rather than skips.
pub fn require_program(name: &str, script: &str, packages: &str) -> PathBuf {
    if let Some(path) = find_program(&[name]) {
        return path;
    }
    if !is_root() {
        panic!("{name} not found; {}", not_root_hint(script, packages));
    }
    if let Err(err) = run_install_script(script, packages) {
        panic!("{name} not found, and installing it failed: {err}");
    }
    find_program(&[name]).unwrap_or_else(|| panic!("`{script}` ran, but {name} is still missing"))
}
