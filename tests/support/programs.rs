//! What the supports that run programs installed on the system share
//! (`browser.rs` for chromedriver, `proxies.rs` for the proxies, and
//! `tests/http2_nghttpx.rs` for nghttpx): finding a program, telling
//! whether we are root, running an install script, a free port, a fresh
//! temporary directory, and reading a log file.
//!
//! A support file includes it with `#[path = "programs.rs"] mod programs;`
//! (as `node.rs` does `peer_process.rs`), a test with
//! `#[path = "support/programs.rs"] mod programs;`; a test binary must not
//! do both (clippy's `duplicate_mod`).

#![allow(dead_code)]

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

/// Why `script` (relative to the crate root) was not run, and what to run
/// instead to install `packages`.
pub fn not_root_hint(script: &str, packages: &str) -> String {
    format!(
        "not root, so `{script}` was not run (run `sudo bash {script}` or `sudo apt-get install \
         {packages}`)"
    )
}

/// Runs `bash SCRIPT` (relative to the crate root) in the crate root with
/// no input; `Err` with its exit status and output when it fails.
pub fn run_install_script(script: &str) -> Result<(), String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let output = Command::new("bash")
        .arg(Path::new(root).join(script))
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
