//! A pseudo-terminal to type into and read, as a person would: a tmux
//! server of its own (its own socket name), one session 200×50 running an
//! interactive shell, killed when dropped even if the test failed.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::programs::require_program;
use super::{clean, DEADLINE};

/// The install script for tmux, relative to the workspace root.
const INSTALL_SCRIPT: &str = "tests/peers/install-tmux.sh";

/// A tmux server with one session, killed on drop.
pub struct Tmux {
    program: PathBuf,
    /// The `-L` socket name, unique to this process and call.
    socket: String,
    /// The socket's file, which tmux leaves behind when killed: removed on
    /// drop.
    socket_path: Option<PathBuf>,
}

impl Tmux {
    /// Starts a tmux server whose one session runs an interactive `sh`
    /// with the prompt `$ `; installs tmux first (as root) when missing.
    pub fn start() -> Self {
        let program = require_program("tmux", INSTALL_SCRIPT, "tmux");
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "wsstream-cli-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut tmux = Self {
            program,
            socket,
            socket_path: None,
        };
        // The server inherits this clean environment, and the shell in the
        // session from it; `sh -i` so that it has job control and a
        // command runs in the terminal's foreground, where Ctrl-C reaches
        // it alone.
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "200",
            "-y",
            "50",
            "-s",
            "main",
            "env PS1='$ ' ENV= sh -i",
        ]);
        let path = tmux
            .run(&["display-message", "-p", "#{socket_path}"])
            .stdout;
        let path = String::from_utf8_lossy(&path).trim().to_owned();
        tmux.socket_path = (!path.is_empty()).then(|| PathBuf::from(path));
        tmux.wait_for_pane("the shell's prompt", |pane| pane.contains("$ "));
        tmux
    }

    /// Runs `tmux -L SOCKET ARGS…`; panics when it fails.
    fn run(&self, args: &[&str]) -> Output {
        let mut command = clean(&self.program);
        command.arg("-L").arg(&self.socket).args(args);
        let output = command
            .output()
            .unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
        assert!(
            output.status.success(),
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Types `text` as it is (no key names).
    pub fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "main", "-l", text]);
    }

    /// Presses keys by tmux's names: `Enter`, `C-c`, `C-d`.
    pub fn press(&self, key: &str) {
        self.run(&["send-keys", "-t", "main", key]);
    }

    /// Types a line and presses Enter.
    pub fn type_line(&self, text: &str) {
        self.type_text(text);
        self.press("Enter");
    }

    /// What the pane shows now, as text.
    pub fn screen(&self) -> String {
        let output = self.run(&["capture-pane", "-p", "-J", "-t", "main"]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until the pane shows what `matches` looks for, and returns the
    /// screen; panics with the screen when the deadline passes.
    pub fn wait_for_pane(&self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let screen = self.screen();
            if matches(&screen) {
                return screen;
            }
            if Instant::now() >= deadline {
                panic!("the pane did not show {what} within {DEADLINE:?}; it shows:\n{screen}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // No panic here: this may run while a failed test unwinds.
        let _ = Command::new(&self.program)
            .arg("-L")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}
