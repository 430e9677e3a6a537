//! The lines of stdin, read on a thread of their own.
//!
//! tokio's stdin reads on its blocking pool, where a read cannot be
//! cancelled: a client whose peer closed first would then wait for one
//! more line before it could exit. A plain thread is never waited for:
//! the process exits while it sits in its read.

use std::io::{self, BufRead};

use tokio::sync::mpsc;

/// How many lines may wait for the writer before the thread stops reading.
const QUEUED_LINES: usize = 64;

/// Starts reading stdin and returns its lines, each without its line end
/// (`\n` or `\r\n`); the channel ends at the end of stdin, after an `Err`
/// if reading failed.
pub(crate) fn lines() -> io::Result<mpsc::Receiver<io::Result<Vec<u8>>>> {
    let (sender, receiver) = mpsc::channel(QUEUED_LINES);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut input = io::stdin().lock();
            loop {
                let mut line = Vec::new();
                let line = match input.read_until(b'\n', &mut line) {
                    Ok(0) => break,
                    Ok(_) => Ok(without_line_end(line)),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => Err(err),
                };
                let failed = line.is_err();
                if sender.blocking_send(line).is_err() || failed {
                    break;
                }
            }
        })?;
    Ok(receiver)
}

/// `line` without its final `\n` or `\r\n`.
fn without_line_end(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_are_dropped() {
        assert_eq!(without_line_end(b"hi\n".to_vec()), b"hi");
        assert_eq!(without_line_end(b"hi\r\n".to_vec()), b"hi");
        assert_eq!(without_line_end(b"last".to_vec()), b"last");
        assert_eq!(without_line_end(b"\n".to_vec()), b"");
        assert_eq!(without_line_end(b"a\rb\n".to_vec()), b"a\rb");
    }
}
