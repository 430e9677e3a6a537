//! Measuring a test: the process's memory, bytes through a transport, and
//! running one test alone in a fresh process so that its memory figures are
//! not mixed with those of the tests running beside it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PAGE: usize = 4096;

/// The process's resident set size now, from `/proc/self/statm` (0 where
/// there is no procfs).
pub fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * PAGE
}

/// The highest resident set size the process has had (`VmHWM` in
/// `/proc/self/status`): in a fresh process, the peak of the test itself.
pub fn peak_rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| {
            kib.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<usize>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// The environment variable that tells a re-executed test binary which test
/// it runs alone.
const ALONE: &str = "WSSTREAM_TEST_ALONE";

/// Runs test `name` (its path in the test binary, as `--exact` wants it) in
/// a fresh process of its own: the test binary is started again with only
/// that test selected. Returns `true` in that fresh process, where the
/// caller runs the test's body; returns `false` in the original one, after
/// the fresh process passed (it panics if it failed or took longer than
/// `limit`).
///
/// ```ignore
/// #[test]
/// fn measured() {
///     if !measure::alone("measured", Duration::from_secs(60)) {
///         return;
///     }
///     // the body, alone in its process
/// }
/// ```
pub fn alone(name: &str, limit: Duration) -> bool {
    if std::env::var(ALONE).is_ok_and(|v| v == name) {
        return true;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ALONE, name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("re-run the test binary");
    let out = child.stdout.take().expect("child stdout");
    let err = child.stderr.take().expect("child stderr");
    let out = std::thread::spawn(move || read_all(out));
    let err = std::thread::spawn(move || read_all(err));
    let status = wait_bounded(&mut child, limit);
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    // Shown by the harness with the parent test's output.
    print!("{out}");
    eprint!("{err}");
    let status = status.unwrap_or_else(|| panic!("{name} alone took longer than {limit:?}"));
    assert!(status.success(), "{name} failed in its own process");
    assert!(
        out.contains("1 passed"),
        "{name} did not run in its own process"
    );
    false
}

fn read_all(mut from: impl Read) -> String {
    let mut text = String::new();
    let _ = from.read_to_string(&mut text);
    text
}

/// Waits for `child` to exit, killing it after `limit` (then `None`).
pub fn wait_bounded(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            return Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lines of a child's output, each delivered as it is written, so a parent
/// can wait for one with a timeout.
pub struct Lines(std::sync::mpsc::Receiver<String>);

impl Lines {
    pub fn new(from: impl Read + Send + 'static) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self(rx)
    }

    /// The next line that starts with `prefix` (the prefix removed); other
    /// lines are printed. Panics after `limit` or at end of output.
    pub fn expect(&self, prefix: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) => match line.strip_prefix(prefix) {
                    Some(rest) => return rest.to_owned(),
                    None => println!("  | {line}"),
                },
                Err(err) => panic!("no line starting with {prefix:?}: {err}"),
            }
        }
    }
}

/// A transport that counts the bytes read through it and the write calls
/// made on it.
pub struct CountingIo<T> {
    pub inner: T,
    pub read: Arc<AtomicUsize>,
    pub writes: Arc<AtomicUsize>,
}

impl<T> CountingIo<T> {
    pub fn new(inner: T) -> (Self, Arc<AtomicUsize>) {
        let read = Arc::new(AtomicUsize::new(0));
        (
            Self {
                inner,
                read: read.clone(),
                writes: Arc::new(AtomicUsize::new(0)),
            },
            read,
        )
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CountingIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.read.fetch_add(n, Ordering::SeqCst);
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CountingIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
